package secfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Options controls one secret-file write.
type Options struct {
	// Replace allows replacing an existing file (--force, or the drop-in nvs
	// commands and batches that overwrite by design). The result is 0600
	// even when the old file was not.
	Replace bool
	// AllowUnignored writes even inside a git work tree that does not ignore
	// the path (--allow-unignored), with a loud warning.
	AllowUnignored bool
	// AllowUnignoredBy names what set AllowUnignored, for that warning:
	// "--allow-unignored", or "allow-unignored from $USMP_PSK_ALLOW_UNIGNORED"
	// when it came from the environment or a config file, so the warning
	// never blames a flag that was not passed. Empty: "allow-unignored".
	AllowUnignoredBy string
	// NotSecret says the file holds no secret (the batch manifest, R18):
	// the git guard (R19) does not apply to it, so it may be committed.
	// Everything else does: 0600, atomic, the directory rules (R7).
	NotSecret bool
	// Public says the file holds nothing secret at all (an export
	// encrypted with age: only its recipients' identities open it). It is
	// still written atomically and never replaced without Replace, but
	// mode 0644, without the git guard (R19) and without the directory
	// rule (R7), which are there to keep secrets in.
	Public bool
	// OneOfMany says the file is one of many a run writes to its directory
	// (a batch's images): the git guard's hint suggests ignoring the whole
	// directory, not the one file it names (issue 14 item 4).
	OneOfMany bool
	// IgnorePattern is the .gitignore rule the git guard's hint suggests
	// in place of the file's own name, for a file with companions in its
	// directory ("usmp-registry.db*" also covers the -wal and -shm).
	IgnorePattern string
	// Warn receives warnings; nil drops them.
	Warn func(msg string)
	// StepHook, when set, is called with the target path at each step of
	// a write: "after-write", "after-fsync", "after-rename",
	// "before-dirsync". It is the seam of the R16 crash tests, whose test
	// binary kills itself there (cmd/usmp-psk/main_test.go); production
	// never sets it.
	StepHook func(step, path string)

	// lookGit finds git; nil is exec.LookPath. This package's tests set it
	// to simulate a machine without git.
	lookGit func() (string, error)
}

// allowedBy is the parenthesis of the warning written when AllowUnignored
// lets a file through the git guard.
func (o Options) allowedBy() string {
	if o.AllowUnignoredBy == "" {
		return "allow-unignored"
	}
	return o.AllowUnignoredBy
}

func (o Options) warn(msg string) {
	if o.Warn != nil {
		o.Warn(msg)
	}
}

// ExistsError reports a target that exists while replacing was not allowed.
type ExistsError struct{ Path string }

func (e *ExistsError) Error() string {
	return e.Path + ": already exists; refusing to overwrite it (use --force to replace it)"
}

// BadInput marks the error as the user's to fix (exit code 2).
func (e *ExistsError) BadInput() bool { return true }

// UnsafeError reports a location that secret files must not be written to
// (an open directory, an unignored git work tree).
type UnsafeError struct {
	Path string
	Msg  string
	Hint string
}

func (e *UnsafeError) Error() string {
	s := e.Path + ": " + e.Msg
	if e.Hint != "" {
		s += "\nhint: " + e.Hint
	}
	return s
}

// BadInput marks the error as the user's to fix (exit code 2).
func (e *UnsafeError) BadInput() bool { return true }

// PublishedError reports a write that failed after the file was renamed
// into place (its directory's sync failed): the complete file IS at Path,
// it may just not survive a power loss. Its text is the cause's.
type PublishedError struct {
	Path string
	Err  error
}

func (e *PublishedError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *PublishedError) Unwrap() error { return e.Err }

// step calls the StepHook, if any.
func (o Options) step(name, path string) {
	if o.StepHook != nil {
		o.StepHook(name, path)
	}
}

// WriteFile writes data to path as a secret file. See the package comment.
func WriteFile(path string, data []byte, opts Options) error {
	return Write(path, opts, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write creates path as a secret file whose content fn writes. Nothing is
// visible at path until fn has succeeded and the data is on disk; on any
// error the target is untouched and no temporary file remains (R8) —
// except a *PublishedError: the file is in place, and only the directory's
// sync failed.
func Write(path string, opts Options, fn func(w io.Writer) error) (err error) {
	if err := Check(path, opts); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if !opts.Replace {
		if _, err := os.Lstat(path); err == nil {
			return &ExistsError{Path: path}
		}
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file in %s: %w", dir, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// CreateTemp uses 0600 already; make it explicit whatever the umask.
	if opts.Public {
		err = f.Chmod(0o644) //secretcheck:ignore secfile-perm a Public file holds nothing secret: an export encrypted with age
	} else {
		err = f.Chmod(0o600)
	}
	if err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err = fn(f); err != nil {
		return err
	}
	opts.step("after-write", path)
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	opts.step("after-fsync", path)
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = publish(tmp, path, opts.Replace); err != nil {
		return err
	}
	opts.step("after-rename", path)
	opts.step("before-dirsync", path)
	if err := SyncDir(dir); err != nil {
		return &PublishedError{Path: path, Err: err}
	}
	return nil
}

// publish moves tmp to path: rename when replacing is allowed, otherwise a
// hard link, which fails if path appeared meanwhile (exclusive creation).
func publish(tmp, path string, replace bool) error {
	if replace {
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("rename to %s: %w", path, err)
		}
		return nil
	}
	err := os.Link(tmp, path)
	switch {
	case err == nil:
		_ = os.Remove(tmp)
		return nil
	case errors.Is(err, fs.ErrExist):
		return &ExistsError{Path: path}
	}
	// File systems without hard links: fall back to check-then-rename.
	if _, lerr := os.Lstat(path); lerr == nil {
		return &ExistsError{Path: path}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename to %s: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs a directory so a rename in it is durable (R16).
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Check applies the location rules to a secret file that is about to be
// written: the directory must exist and not be open to group or others
// without the sticky bit (R7), and a git work tree must ignore the path and
// not track it (R19; not for opts.NotSecret). A Public file needs only a
// directory to go into.
func Check(path string, opts Options) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	if opts.Public {
		if !fi.IsDir() {
			return &UnsafeError{Path: dir, Msg: "not a directory"}
		}
		return nil
	}
	if err := checkDir(dir, fi); err != nil {
		return err
	}
	return gitGuard(path, opts)
}

// gitGuard is GitGuard unless the file holds no secret.
func gitGuard(path string, opts Options) error {
	if opts.NotSecret {
		return nil
	}
	return GitGuard(path, opts)
}

// CheckMkdir is Check for a secret file whose directory MkdirAll is about
// to create (with its missing parents): it changes nothing, so a refusal
// leaves no directory behind. An existing directory is judged as Check
// judges it. Otherwise the rule of R7 applies to the nearest existing
// ancestor, the directory the new ones go under: MkdirAll creates them
// 0700, so no one else can write into them, but whoever can write that
// ancestor (without the sticky bit) can rename or replace them, and with
// them the secret file. The git guard runs on the path as it will be (git
// answers for paths that do not exist yet).
func CheckMkdir(path string, opts Options) error {
	dir := filepath.Dir(path)
	anc, fi, err := existingAncestor(dir)
	if err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	if err := checkDir(anc, fi); err != nil {
		return err
	}
	return gitGuard(path, opts)
}

// existingAncestor returns dir, when it exists, or its nearest parent that
// does, with its FileInfo (os.Stat: symbolic links followed).
func existingAncestor(dir string) (string, fs.FileInfo, error) {
	d := filepath.Clean(dir)
	for {
		fi, err := os.Stat(d)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return d, fi, err
		}
		parent := filepath.Dir(d)
		if parent == d {
			return d, nil, err
		}
		d = parent
	}
}

// checkDir applies R7 to the directory a secret file goes into (or under).
func checkDir(dir string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		return &UnsafeError{Path: dir, Msg: "not a directory"}
	}
	if runtime.GOOS != "windows" {
		perm := fi.Mode()
		if perm.Perm()&0o022 != 0 && perm&fs.ModeSticky == 0 {
			return &UnsafeError{Path: dir, Msg: fmt.Sprintf("refusing to write a secret file into a directory that group or others can write (mode %04o)", perm.Perm()),
				Hint: "use a private directory (chmod 700) or one with the sticky bit"}
		}
	}
	return nil
}

// MkdirAll creates dir and its missing parents with mode 0700 (R5). The
// umask can only remove bits, so what we create is never more open than
// 0700; existing directories are left as they are (and Check judges them).
func MkdirAll(dir string) error {
	return os.MkdirAll(dir, 0o700)
}

// RemoveStaleTemps deletes temporary files that an interrupted Write left
// next to path (R16: cleaned up on the next run). Call it only while holding
// the lock that serializes writers of path.
func RemoveStaleTemps(path string) error {
	dir, base := filepath.Dir(path), filepath.Base(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	prefix := "." + base + ".tmp-"
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}
