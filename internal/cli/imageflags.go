package cli

// Flags shared by the commands that write or read a device's NVS image
// (provision, rotate, verify, batch, flash): size or partition table,
// encryption keys, base image.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/nvs/nvscrypt"
	"github.com/usmp/usmp-psk/internal/partition"
	"github.com/usmp/usmp-psk/internal/provision"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
	"github.com/usmp/usmp-psk/internal/secfile"
)

// imageFlags are the image options as given on the command line.
type imageFlags struct {
	size           string
	partitionTable string
	partitionName  string
	version        int
	keys           string
	hmacKey        string
	base           string
}

func (fl *imageFlags) addLayout(cmd *cobra.Command) {
	cmd.Flags().StringVar(&fl.size, "size", "", "image `SIZE` (decimal, 0x, 0o or 0b; default 0x6000)")
	cmd.Flags().StringVar(&fl.partitionTable, "partition-table", "", "take size and offset from the nvs partition of this `TABLE` (CSV or binary)")
	cmd.Flags().StringVar(&fl.partitionName, "partition", provision.DefaultPartition, "partition `NAME` in --partition-table")
	cmd.Flags().IntVar(&fl.version, "version", provision.DefaultVersion, "NVS format version `N` of a fresh image: 1 or 2")
	cmd.MarkFlagsMutuallyExclusive("size", "partition-table")
}

func (fl *imageFlags) addKeys(cmd *cobra.Command) {
	cmd.Flags().StringVar(&fl.keys, "keys", "", "encrypt with the nvs_keys partition in `KEYS.bin` (NVS encryption)")
	cmd.Flags().StringVar(&fl.hmacKey, "hmac-key", "", "encrypt with keys derived from the 32-byte eFuse HMAC key in `FILE` (HMAC scheme)")
	cmd.MarkFlagsMutuallyExclusive("keys", "hmac-key")
}

func (fl *imageFlags) addBase(cmd *cobra.Command) {
	cmd.Flags().StringVar(&fl.base, "base", "", "keep every other entry of this `IMAGE` read off the device (esptool read_flash)")
}

// resolvedImage is what the flags resolve to.
type resolvedImage struct {
	opts   provision.ImageOptions
	offset int64 // flash offset of the partition
	// tableNote says where size and offset came from, for reports.
	tableNote string
}

// resolve reads the partition table, base image and key files the flags
// name. Key files get the R7 mode check.
func (fl *imageFlags) resolve(f *Factory) (*resolvedImage, error) {
	r := &resolvedImage{offset: provision.DefaultOffset}
	r.opts.Layout = f.layout()
	if fl.version != 1 && fl.version != 2 {
		return nil, flagErrorf("--version must be 1 or 2")
	}
	r.opts.Version = fl.version
	switch {
	case fl.size != "":
		n, err := parseSize(settingBy(f, "size"), fl.size)
		if err != nil {
			return nil, err
		}
		r.opts.Size = n
	case fl.partitionTable != "":
		p, err := findPartition(f.runContext(), fl.partitionTable, fl.partitionName)
		if err != nil {
			return nil, err
		}
		r.opts.Size, r.offset = int(p.Size), int64(p.Offset)
		r.tableNote = fmt.Sprintf("partition %s of %s at 0x%x", p.Name, fl.partitionTable, p.Offset)
	}
	if fl.base != "" {
		b, err := readImageFile(f.runContext(), fl.base)
		if err != nil { // context.Canceled when interrupted: exit 130 all the same
			return nil, inputError(fmt.Errorf("--base: %w", err))
		}
		if r.opts.Size != 0 && r.opts.Size != len(b) {
			return nil, flagErrorf(fmt.Sprintf("--base %s is %d bytes but the partition is %d", fl.base, len(b), r.opts.Size))
		}
		if len(b) < nvs.PageSize || len(b)%nvs.PageSize != 0 {
			return nil, flagErrorf(fmt.Sprintf("--base %s is %d bytes, not a whole number of 4096-byte pages", fl.base, len(b)))
		}
		r.opts.Base, r.opts.BaseName = b, fl.base
	}
	keys, err := loadNVSKeys(f, fl.keys, fl.hmacKey)
	if err != nil {
		return nil, err
	}
	if r.opts.Base != nil {
		if err := fl.checkBase(r.opts.Base, keys); err != nil {
			keys.Destroy()
			return nil, err
		}
	}
	r.opts.Keys = keys
	return r, nil
}

// checkBase refuses a --base that cannot be edited with the keys given,
// before anything is recorded or written: one that looks encrypted when no
// keys were given (exit 2: editing it would drop every entry), one the keys
// do not decrypt (exit 3, as nvs dump, check and set say).
func (fl *imageFlags) checkBase(base []byte, keys *nvscrypt.Keys) error {
	err := provision.CheckBase(base, keys)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, provision.ErrNotNVS):
		return badInputf("--base %s: %w; nothing was recorded or written", fl.base, err)
	case errors.Is(err, provision.ErrLooksEncrypted):
		return encryptedImageError("--base "+fl.base, "nothing was recorded or written",
			"the new image is encrypted with the same keys")
	case errors.Is(err, provision.ErrWrongKeys):
		return &wrongKeyError{image: "--base " + fl.base, keysFile: fl.keys + fl.hmacKey, kcv: keys.KCV(), err: err}
	}
	return fmt.Errorf("--base %s: %w", fl.base, err)
}

// encryptedImageError refuses an image that looks encrypted, read without
// keys (exit 2). what names the file; done says what did not happen.
func encryptedImageError(what, done, note string) error {
	hint := "give its keys with --keys KEYS.bin (its nvs_keys partition) or --hmac-key FILE"
	if note != "" {
		hint += "; " + note
	}
	return badInputf("%s: %w; editing it without its keys would erase every entry, so %s\nhint: %s",
		what, provision.ErrLooksEncrypted, done, hint)
}

// checkImageOutput makes sure, before anything is recorded, that an image can
// be written to path: the location rules (R6, R8), no existing file
// without --force, and a directory this process can create files in.
func checkImageOutput(path string, wopts secfile.Options) error {
	if err := secfile.Check(path, wopts); err != nil {
		return err
	}
	if !wopts.Replace && exists(path) {
		return &secfile.ExistsError{Path: path}
	}
	dir := filepath.Dir(path)
	probe, err := os.CreateTemp(dir, ".usmp-psk-probe-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("output directory %s: cannot create files in it: %w", dir, err)
	}
	name := probe.Name()
	_ = probe.Close()
	return os.Remove(name)
}

// args returns the image flags as given, for a command line in a hint.
func (fl *imageFlags) args() []string {
	var argv []string
	add := func(flag, v string) {
		if v != "" {
			argv = append(argv, flag, v)
		}
	}
	add("--base", fl.base)
	add("--keys", fl.keys)
	add("--hmac-key", fl.hmacKey)
	add("--size", fl.size)
	add("--partition-table", fl.partitionTable)
	if fl.partitionTable != "" && fl.partitionName != provision.DefaultPartition {
		add("--partition", fl.partitionName)
	}
	if fl.base == "" && fl.version != provision.DefaultVersion {
		add("--version", fmt.Sprint(fl.version))
	}
	return argv
}

// unwrittenErr adds to an *provision.UnwrittenError the command that writes
// the image of the recorded key without recording anything again.
func unwrittenErr(err error, id, output string, fl *imageFlags, registryPath string) error {
	var ue *provision.UnwrittenError
	if !errors.As(err, &ue) {
		return err
	}
	argv := append([]string{"usmp-psk", "provision", id, "-o", output}, fl.args()...)
	if registryPath != registry.DefaultPath {
		argv = append(argv, "--registry", registryPath)
	}
	what := "write the image of the recorded key"
	if ue.Rotation {
		what = "do not rotate again: write the image of the new key"
	}
	if _, err := os.Lstat(output); err == nil {
		// An image is there (this one, or the old one the command was to
		// replace with --force): writing it again needs --force.
		argv = append(argv, "--force")
	}
	if ue.Published() {
		what = "to be sure it is durable, write the same image again"
		if ue.Rotation {
			what = "do not rotate again; to be sure the image is durable, write it again"
		}
	}
	return fmt.Errorf("%w\nhint: %s (provision without --derive/--random/--psk-file takes the registry's key):\n  %s",
		err, what, shellQuote(argv))
}

// findPartition reads a partition table and finds a partition by name; a
// pipe or FIFO that never delivers does not hold up an interrupt (issue 13
// item 6).
func findPartition(ctx context.Context, path, name string) (*partition.Partition, error) {
	data, err := readFileInterruptibly(ctx, path, func() ([]byte, error) { return os.ReadFile(path) })
	if err != nil { // context.Canceled when interrupted: exit 130 all the same
		return nil, inputError(fmt.Errorf("--partition-table: %w", err))
	}
	t, err := partition.Parse(data, path)
	if err != nil {
		return nil, err
	}
	p, ok := t.Find(name)
	if !ok {
		// The table's names are listed; the one asked for is not repeated.
		var names []string
		for _, q := range t.Partitions {
			names = append(names, q.Name)
		}
		return nil, &psk.InputError{Source: path, Msg: "no partition has the name given with --partition; the table has: " + strings.Join(names, ", ")}
	}
	return p, nil
}

// parseSize reads a partition size given in what (--size, SIZE). The error
// says what is accepted without repeating the value: nvs.ParseSize quotes a
// value that is not a number (SizeError.Value).
func parseSize(what, s string) (int, error) {
	n, err := nvs.ParseSize(s)
	var se *nvs.SizeError
	switch {
	case err == nil:
		return n, nil
	case errors.As(err, &se) && se.Value != "":
		return 0, &psk.InputError{Source: what, Msg: "not a partition size (want a number in decimal, 0x, 0o or 0b, a multiple of 4096)"}
	}
	// what names the flag, the argument or the setting: a flag typed on
	// the command line gets the help line (psk.InputError.OnCommandLine).
	return 0, &psk.InputError{Source: what, Msg: err.Error()}
}

// loadNVSKeys reads --keys (an nvs_keys partition, CRC checked) or
// --hmac-key (a 32-byte HMAC key, from which the XTS keys are derived),
// the way nvs dump and check read them; nil when neither is given.
func loadNVSKeys(f *Factory, keysPath, hmacPath string) (*nvscrypt.Keys, error) {
	return (&nvsKeySource{keys: keysPath, hmacKey: hmacPath}).load(keyFiles(f))
}

// errWrongKeys maps a wrong-keys error to a verification failure (exit 3).
func errWrongKeys(err error) error {
	if errors.Is(err, provision.ErrWrongKeys) || errors.Is(err, nvscrypt.ErrWrongKey) {
		return &mismatchError{msg: err.Error()}
	}
	return err
}
