package cli

// The nvs command group, and what its subcommands share: the argument
// conventions of Espressif's nvs_partition_gen.py (underscore flag names
// that also take dashes, the .bin extension checks, --outdir and the keys/
// directory), reading key files (R7), and writing a run's outputs as secret
// files that are all there or none (R5, R8, R19). Images, key files and
// HMAC keys are secrets: their bytes only ever go to 0600 files, and reports
// name paths, sizes and KCVs (R10, R21).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/nvs/nvscrypt"
	"github.com/usmp/usmp-psk/internal/provision"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/secfile"
)

// nvsDeps is what the nvs subcommands use of the Factory (house style §6),
// copied into their options by their constructors.
type nvsDeps struct {
	IO *IOStreams
	// ReadKeyFile reads a key file (readKeyFile: the R7 mode check, and a
	// FIFO does not hold up an interrupt).
	ReadKeyFile keyFileReader
	// Layout is where images keep the id and the key (the nvs.* settings),
	// read when the command runs, once the configuration is loaded.
	Layout func() provision.Layout
	// StepHook is the run's test seam at the steps of reads that give way
	// to an interrupt (readInterruptibly); nil in production.
	StepHook func(step, path string)
}

// keyFileReader reads the key file at path, named what in errors.
type keyFileReader func(what, path string) ([]byte, error)

func newNVSDeps(f *Factory) nvsDeps {
	return nvsDeps{IO: f.IO, ReadKeyFile: keyFiles(f), Layout: f.layout, StepHook: f.fileStepHook()}
}

// keyFiles is readKeyFile for f's run.
func keyFiles(f *Factory) keyFileReader {
	return func(what, path string) ([]byte, error) { return readKeyFile(f, what, path) }
}

// newNVSCmd groups the NVS image commands: the drop-in generator commands
// of Espressif's nvs_partition_gen.py and our reader and checker.
func newNVSCmd(f *Factory, root *rootOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nvs <command>",
		Short: "Build, encrypt, read and check ESP32 NVS partition images",
		Long: `Build, encrypt, read and check ESP-IDF NVS partition images.

The generate, encrypt, decrypt and generate-key subcommands take the arguments
of Espressif's nvs_partition_gen.py and write byte-identical images. Like it,
they replace their output files; unlike it, they write them 0600 and
atomically, refuse them where git would not ignore them, take keys only from
crypto/rand, and report on standard error. See docs/nvs.md.

dump and check read any image, generator-made or read off a device, the way
ESP-IDF's NVS library reads it. They never print a blob or the PSK: those show
as their length and key check value (KCV).`,
	}
	cmd.AddCommand(
		newNVSGenerateCmd(f, root, nil),
		newNVSEncryptCmd(f, root, nil),
		newNVSDecryptCmd(f, root, nil),
		newNVSGenerateKeyCmd(f, root, nil),
		newNVSDumpCmd(f, nil),
		newNVSCheckCmd(f, nil),
		newNVSSetCmd(f, root, nil),
		newNVSEraseCmd(f, root, nil),
	)
	return cmd
}

// nvsUnderscoreFlags are the reference's flag names with underscores. The
// dash spellings (--key-protect-hmac, …) are accepted too.
var nvsUnderscoreFlags = map[string]bool{
	"key_protect_hmac": true,
	"kp_hmac_keygen":   true,
	"kp_hmac_keyfile":  true,
	"kp_hmac_inputkey": true,
}

// nvsNormalizeFlag maps --key-protect-hmac to --key_protect_hmac (and the
// other kp_hmac flags). Other names are left alone: a normalize func also
// renames the inherited flags (--allow-unignored), which must keep theirs.
func nvsNormalizeFlag(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if u := strings.ReplaceAll(name, "-", "_"); nvsUnderscoreFlags[u] {
		return pflag.NormalizedName(u)
	}
	return pflag.NormalizedName(name)
}

// nvsInputError marks an error as bad input (exit 2) without changing its
// text.
type nvsInputError struct{ err error }

func (e *nvsInputError) Error() string  { return e.err.Error() }
func (e *nvsInputError) Unwrap() error  { return e.err }
func (e *nvsInputError) BadInput() bool { return true }

// badInput wraps err as bad input; nil stays nil.
func badInput(err error) error {
	if err == nil {
		return nil
	}
	return &nvsInputError{err}
}

// badInputf builds a bad-input error.
func badInputf(format string, a ...any) error {
	return &nvsInputError{fmt.Errorf(format, a...)}
}

// pyExt returns the extension of p as Python's os.path.splitext sees it:
// from the last dot of the base name, unless only dots precede it
// (".bin" has no extension).
func pyExt(p string) string {
	base := p[strings.LastIndexAny(p, `/`+string(os.PathSeparator))+1:]
	i := strings.LastIndexByte(base, '.')
	if i <= 0 || strings.Trim(base[:i], ".") == "" {
		return ""
	}
	return base[i:]
}

// checkBinExt applies the reference's extension rule to a file argument:
// its extension must contain ".bin" (so .bin and .binary pass).
func checkBinExt(what, p string) error {
	if !strings.Contains(pyExt(p), ".bin") {
		return badInputf("%s %s: only the .bin extension is allowed (as in nvs_partition_gen.py)\nhint: name it %s.bin", what, p, strings.TrimSuffix(p, pyExt(p)))
	}
	return nil
}

// keyFileName applies the reference's rule to a key file name: without an
// extension, .bin is added; another extension must contain ".bin".
func keyFileName(what, name string) (string, error) {
	if pyExt(name) == "" {
		return name + ".bin", nil
	}
	return name, checkBinExt(what, name)
}

// nvsOutdir is --outdir: the directory relative output names go to.
type nvsOutdir struct {
	dir string
	set bool
}

func addOutdirFlag(cmd *cobra.Command, o *nvsOutdir) {
	cmd.Flags().StringVar(&o.dir, "outdir", "", "write the output files under `DIR` (created 0700 if missing; default: the current directory)")
}

// fill records whether --outdir was given and expands a leading ~ as the
// reference does.
func (o *nvsOutdir) fill(f *Factory, cmd *cobra.Command) {
	o.set = cmd.Flags().Changed("outdir")
	if o.dir == "~" || strings.HasPrefix(o.dir, "~/") {
		if home := f.Getenv("HOME"); home != "" {
			o.dir = home + o.dir[1:]
		}
	}
}

// target places name under dir the way the reference's set_target_filepath
// does: an absolute name ignores dir. The second result says it did so.
func target(dir, name string) (string, bool) {
	if filepath.IsAbs(name) {
		return filepath.Clean(name), dir != ""
	}
	if dir == "" {
		return filepath.Clean(name), false
	}
	return filepath.Join(dir, name), false
}

// outputPath is the image output under --outdir, warning like the
// reference when an absolute path makes --outdir moot.
func (o *nvsOutdir) outputPath(ios *IOStreams, name string) string {
	dir := ""
	if o.set {
		dir = o.dir
	}
	p, ignored := target(dir, name)
	if ignored {
		ios.Warnf("%s is an absolute path: --outdir is ignored for it", name)
	}
	return p
}

// maxKeyFile bounds what is read from a key file (a keys partition is 4 KiB).
const maxKeyFile = 1 << 20

// readKeyFile reads a key file, refusing one that group or others can write
// and warning about one they can read (R7). Errors name the path, never the
// content (R9).
func readKeyFile(f *Factory, what, path string) ([]byte, error) {
	// A FIFO that never delivers must not hold up an interrupt.
	stream := isStream(path)
	return readInterruptibly(f, func() ([]byte, error) { return readKeyFileBytes(f, what, path) }, psk.Wipe,
		func(d []byte, err error) bool { return stream && (err != nil || len(d) == 0) })
}

// readKeyFileBytes does the reading for readKeyFile.
func readKeyFileBytes(f *Factory, what, path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, badInputf("%s: %w", what, err)
	}
	defer fh.Close()
	if err := psk.CheckKeyFileMode(fh, path, f.IO.Warn); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(fh, maxKeyFile+1))
	if err != nil {
		psk.Wipe(data)
		return nil, fmt.Errorf("%s %s: read failed", what, path)
	}
	if len(data) > maxKeyFile {
		psk.Wipe(data)
		return nil, badInputf("%s %s: larger than 1 MiB; not a key file", what, path)
	}
	return data, nil
}

// readInputKeys reads an nvs_keys partition file the way the reference's
// encrypt --inputkey and decrypt do (its first 64 bytes), warning when the
// device would refuse it (size or CRC).
func (d nvsDeps) readInputKeys(what, path string) (*nvscrypt.Keys, error) {
	data, err := d.ReadKeyFile(what, path)
	if err != nil {
		return nil, err
	}
	defer psk.Wipe(data)
	if k, err := nvscrypt.ParseKeysPartition(data); err == nil {
		return k, nil
	} else if len(data) >= nvscrypt.XTSKeySize {
		d.IO.Warnf("%s: not a valid nvs_keys partition (%v); using its first 64 bytes as nvs_partition_gen.py does, but the device will refuse this file", path, err)
	}
	k, err := nvscrypt.ParseKeysPartitionLenient(data)
	if err != nil {
		return nil, badInputf("%s %s: %w (an nvs_keys partition holds at least 64 bytes)", what, path, err)
	}
	return k, nil
}

// readImageFile reads an NVS image (or an encrypted one), bounded by the
// largest flash chip; a pipe or FIFO that never delivers does not hold up
// an interrupt (issue 13 item 6).
func readImageFile(ctx context.Context, path string) ([]byte, error) {
	return readFileInterruptibly(ctx, path, func() ([]byte, error) { return readImageBytes(path) })
}

// readImageBytes does the reading for readImageFile.
func readImageBytes(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, badInput(err)
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err == nil && fi.IsDir() {
		return nil, badInputf("%s: a directory, not an image", path)
	}
	data, err := io.ReadAll(io.LimitReader(fh, nvs.MaxImageSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, unwrapPathError(err))
	}
	if len(data) > nvs.MaxImageSize {
		psk.Wipe(data)
		return nil, badInputf("%s: larger than 16 MiB; not an NVS partition image", path)
	}
	return data, nil
}

// nvsOutput is one secret file a run writes.
type nvsOutput struct {
	path string
	data []byte
	// keep: an existing file is not replaced (a keys file, unless --force;
	// issue 14 item 6). Images of the drop-in commands are replaced.
	keep bool
}

// writeNVSOutputs writes a run's secret files (0600, atomic, replacing
// existing files like the reference, design §7). Every destination is
// checked first (R7, R19), so a refused one stops the run before anything is
// written; if a write still fails, the files and directories this run made
// are removed, so an error leaves no output behind (R8). fileOptions are
// the secret-file options of the run (Factory.fileOptionsFor).
func writeNVSOutputs(fileOptions func(replace bool) secfile.Options, outs []nvsOutput) (err error) {
	if err := checkDistinctOutputs(outs); err != nil {
		return err
	}
	var madeDirs, written []string
	defer func() {
		if err == nil {
			return
		}
		for _, p := range written {
			_ = os.Remove(p)
		}
		for _, d := range madeDirs {
			_ = os.Remove(d) // only removes it while empty
		}
	}()
	for _, o := range outs {
		made, err := mkdirTracked(filepath.Dir(o.path))
		madeDirs = append(made, madeDirs...)
		if err != nil {
			return err
		}
	}
	for _, o := range outs {
		// The check is quiet: the write warns, once.
		check := secfile.Options{Replace: !o.keep, AllowUnignored: fileOptions(!o.keep).AllowUnignored}
		if err := secfile.Check(o.path, check); err != nil {
			return err
		}
		if _, err := os.Lstat(o.path); err == nil && o.keep {
			// Before anything is written: a run that writes keys and an
			// image writes neither.
			return keyFileExistsHint(o, &secfile.ExistsError{Path: o.path})
		}
	}
	for _, o := range outs {
		if err := secfile.WriteFile(o.path, o.data, fileOptions(!o.keep)); err != nil {
			return err
		}
		written = append(written, o.path)
	}
	return nil
}

// checkDistinctOutputs refuses a run whose outputs share a path, such as
// OUTPUT keys/k.bin with --keyfile k: the reference writes both, and the
// image silently replaces the only copy of its keys (or the HMAC key the
// keys file). Paths are compared cleaned and absolute, and as files where
// both exist (a symbolic link, a case-insensitive file system).
func checkDistinctOutputs(outs []nvsOutput) error {
	for i := range outs {
		for j := range i {
			if !samePath(outs[i].path, outs[j].path) {
				continue
			}
			where := outs[i].path
			if outs[j].path != outs[i].path {
				where = outs[j].path + " and " + outs[i].path
			}
			return badInputf("%s: two outputs of this run go to the same file, and the second would replace the first; nothing was written\nhint: give OUTPUT, --keyfile and --kp_hmac_keyfile different names", where)
		}
	}
	return nil
}

func samePath(a, b string) bool {
	aa, errA := filepath.Abs(a)
	ab, errB := filepath.Abs(b)
	if errA == nil && errB == nil && aa == ab {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// mkdirTracked creates dir and its missing parents (0700) and returns the
// ones it created, deepest first.
func mkdirTracked(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || !errors.Is(err, os.ErrNotExist) {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	if err := secfile.MkdirAll(dir); err != nil {
		return missing, fmt.Errorf("create directory %s: %w", dir, err)
	}
	return missing, nil
}

// keyFileExistsHint adds to the refusal to replace a keys file why, and the
// way out (issue 14 item 6).
func keyFileExistsHint(o nvsOutput, err error) error {
	var ee *secfile.ExistsError
	if !o.keep || !errors.As(err, &ee) {
		return err
	}
	return fmt.Errorf("%w\nhint: a keys file is never replaced without --force (unlike nvs_partition_gen.py): every image encrypted with it would become unreadable; choose another --keyfile, or add --force if the old keys are no longer needed", err)
}

// unwrapPathError drops the *fs.PathError around err, whose text repeats
// the path the caller's message already names.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
