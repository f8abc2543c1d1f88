package psk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
)

// MasterEnv is the environment variable the gateway reads its master from.
const MasterEnv = "USMP_MASTER_SECRET"

// MaxMasterBytes bounds what is read from any master source (R2).
const MaxMasterBytes = 1 << 20

// ErrNoMaster is returned when no source of the master secret is available.
var ErrNoMaster = errors.New("no master secret: set " + MasterEnv + " or pass --master-file PATH (no terminal to prompt on)")

// MasterSources says where the master secret may come from, in the order of
// design §4. The CLI fills it; this package never touches the terminal.
type MasterSources struct {
	// File is the --master-file path, "" when not given.
	File string
	// FileBy names what gave File, for messages: "" for the flag
	// ("--master-file"), or e.g. "master-file from $USMP_PSK_MASTER_FILE",
	// so that an error never blames a flag that was not passed.
	FileBy string
	// Env is the value USMP_MASTER_SECRET had, and HasEnv whether it was
	// set. The CLI reads and unsets the variable at start-up (R4), so child
	// processes never inherit it. An empty variable is an error on its own
	// (R2), but it does not conflict with --master-file: it cannot be meant
	// as the master.
	Env    string
	HasEnv bool
	// Prompt asks for the master on the terminal without echo; nil when no
	// terminal is attached.
	Prompt func() ([]byte, error)
	// Warn receives warnings (never holding any part of the secret).
	Warn func(msg string)
}

// LoadMaster returns the master secret from exactly one source (R1–R4):
// --master-file, else the environment, else the prompt. The bytes are used
// as they are — UTF-8 of the variable, no decoding or trimming — except that
// a file loses one trailing "\n" or "\r\n" (R2).
func LoadMaster(src MasterSources) (*Secret, error) {
	warn := src.Warn
	if warn == nil {
		warn = func(string) {}
	}
	var (
		s      *Secret
		source string
	)
	switch {
	case src.File != "" && src.HasEnv && src.Env != "":
		by := src.fileBy()
		return nil, &InputError{Source: "master secret", Msg: "both " + by + " and $" + MasterEnv + " are set; which one did you mean? unset one of them"}
	case src.File != "":
		var err error
		if s, err = readMasterFile(src.File, src.fileBy(), warn); err != nil {
			return nil, err
		}
		source = "file " + src.File
	case src.HasEnv:
		if len(src.Env) > MaxMasterBytes {
			return nil, &InputError{Source: "$" + MasterEnv, Msg: "longer than 1 MiB"}
		}
		s = NewSecret([]byte(src.Env))
		source = "$" + MasterEnv
	case src.Prompt != nil:
		b, err := src.Prompt()
		if err != nil {
			return nil, err
		}
		if len(b) > MaxMasterBytes {
			Wipe(b)
			return nil, &InputError{Source: "terminal", Msg: "longer than 1 MiB"}
		}
		s = NewSecret(b)
		source = "the terminal prompt"
	default:
		return nil, ErrNoMaster
	}
	if s.Len() == 0 {
		return nil, &InputError{Source: source, Msg: "the master secret is empty"}
	}
	// Not trimmed (the gateway does not trim either), but a master made
	// only of white space is a mistake — an editor's blank line, an unset
	// shell variable padded by a template — and is refused.
	if isAllSpace(s.Expose()) {
		s.Destroy()
		return nil, &InputError{Source: source, Msg: "the master secret is only white space (spaces, tabs, line breaks)"}
	}
	if s.Len() < 32 {
		warn(fmt.Sprintf("the master secret from %s is shorter than 32 bytes (%d); prefer 32 random bytes or more", source, s.Len()))
	}
	return s, nil
}

func (src MasterSources) fileBy() string {
	if src.FileBy == "" {
		return "--master-file"
	}
	return src.FileBy
}

// isAllSpace reports whether b holds nothing but white space.
func isAllSpace(b []byte) bool {
	for _, c := range b {
		if !isSpace(c) {
			return false
		}
	}
	return true
}

// readMasterFile reads a --master-file: refused when group or others can
// write it, a warning when they can read it (R7); at most 1 MiB (R2).
func readMasterFile(path, by string, warn func(string)) (*Secret, error) {
	f, err := os.Open(path)
	if err != nil {
		// A path that cannot be opened is the user's to fix, like a key
		// file's (exit 2); the *PathError names the path, never content.
		return nil, &InputError{Source: by, Msg: pathErrorText(err)}
	}
	defer f.Close()
	if err := CheckKeyFileMode(f, path, warn); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 512)
	buf := make([]byte, 4096)
	for {
		n, rerr := f.Read(buf)
		if len(b)+n > MaxMasterBytes {
			Wipe(b)
			Wipe(buf)
			return nil, &InputError{Source: "master file " + path, Msg: "larger than 1 MiB"}
		}
		b = appendWiping(b, buf[:n])
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			Wipe(b)
			Wipe(buf)
			return nil, fmt.Errorf("master file %s: read failed", path)
		}
	}
	Wipe(buf)
	switch {
	case len(b) >= 2 && b[len(b)-2] == '\r' && b[len(b)-1] == '\n':
		b = b[:len(b)-2]
	case len(b) >= 1 && b[len(b)-1] == '\n':
		b = b[:len(b)-1]
	}
	return NewSecret(b), nil
}

// pathErrorText is an open error without its "open " prefix: "PATH: no
// such file or directory".
func pathErrorText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

// appendWiping appends src to dst; when that needs a larger array, the old
// one is wiped so no stray copy of secret bytes is left to the GC (R26).
func appendWiping(dst, src []byte) []byte {
	if len(dst)+len(src) <= cap(dst) {
		return append(dst, src...)
	}
	n := make([]byte, len(dst), 2*(len(dst)+len(src)))
	copy(n, dst)
	Wipe(dst)
	return append(n, src...)
}

// CheckKeyFileMode applies R7 to a key file we read: refused when group or
// others can write it, a warning when they can read it. The mode rules only
// apply to regular files on Unix (R30); pipes and FIFOs pass. A directory
// is refused everywhere: reading it fails with EISDIR, which would come out
// as an I/O failure (exit 1) rather than the bad input it is.
func CheckKeyFileMode(f *os.File, path string, warn func(string)) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if fi.IsDir() {
		return &InputError{Source: path, Msg: "is a directory, not a key file"}
	}
	if runtime.GOOS == "windows" || !fi.Mode().IsRegular() {
		return nil
	}
	perm := fi.Mode().Perm()
	if perm&0o022 != 0 {
		return &InputError{Source: path, Msg: fmt.Sprintf("refusing a key file that group or others can write (mode %04o); run: chmod 600 %s", perm, path)}
	}
	if perm&0o044 != 0 && warn != nil {
		warn(fmt.Sprintf("%s can be read by group or others (mode %04o); consider chmod 600", path, perm))
	}
	return nil
}
