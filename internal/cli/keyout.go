package cli

// Writing key bytes: only to a 0600 file (-o) or a non-terminal stdout (R10).

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/secfile"
)

// errTerminal is the refusal to print key bytes on a terminal (R10).
var errTerminal = &FlagError{noUsageLine: true, Err: errors.New("refusing to write key bytes to a terminal\nhint: use -o FILE (written 0600) or pipe the output")}

// keyReport is what commands say after writing a key: never the key.
type keyReport struct {
	Path     string `json:"path"`
	Bytes    int    `json:"bytes"`
	KCV      string `json:"kcv"`
	Encoding string `json:"encoding"`
	DeviceID string `json:"device_id,omitempty"`
	Epoch    *int64 `json:"epoch,omitempty"`
}

// keyOutput says where and how a key is written.
type keyOutput struct {
	path     string
	encoding psk.Encoding
	force    bool
	json     bool
	// fileOptions are the secret-file options of -o FILE
	// (Factory.fileOptionsFor).
	fileOptions func(replace bool) secfile.Options
}

// checkKeyOutput validates the destination before any key exists, so
// nothing is generated or derived for a run that would fail anyway.
func checkKeyOutput(ios *IOStreams, o keyOutput) error {
	if o.path == "" || o.path == "-" {
		if o.json {
			return flagErrorf("--json needs -o FILE: standard output carries the key")
		}
		if ios.IsStdoutTTY() {
			return errTerminal
		}
		return nil
	}
	return secfile.Check(o.path, o.fileOptions(false))
}

// writeKey writes key in o.encoding to o.path (0600, atomic, exclusive
// unless --force) or to stdout, then reports path, length and KCV on stderr
// (or as JSON on stdout when the key went to a file).
func writeKey(ios *IOStreams, key *psk.Secret, o keyOutput, rep keyReport) error {
	if err := checkKeyOutput(ios, o); err != nil {
		return err
	}
	enc := psk.Encode(key, o.encoding)
	defer psk.Wipe(enc)
	rep.Bytes, rep.KCV, rep.Encoding = key.Len(), psk.KCV(key), string(o.encoding)
	if o.path == "" || o.path == "-" {
		if mode, ok := ios.stdoutMode(); ok && mode&0o044 != 0 {
			ios.Warnf("standard output is a file that group or others can read (mode %04o); keys belong in 0600 files: use -o FILE", mode)
		}
		if _, err := ios.Out.Write(enc); err != nil {
			return fmt.Errorf("write standard output: %w", err)
		}
		rep.Path = "-"
		ios.Infof("wrote %s to standard output (%s, kcv %s)", rep.what(), rep.Encoding, rep.KCV)
		return nil
	}
	if err := secfile.WriteFile(o.path, enc, o.fileOptions(o.force)); err != nil {
		return err
	}
	rep.Path = o.path
	if o.json {
		return printJSON(ios, rep)
	}
	ios.Infof("wrote %s to %s (%s, kcv %s)", rep.what(), rep.Path, rep.Encoding, rep.KCV)
	return nil
}

// what describes the key: "32-byte key" or "32-byte key of device X (epoch N)".
func (r keyReport) what() string {
	s := fmt.Sprintf("%d-byte key", r.Bytes)
	if r.DeviceID != "" {
		s += " of device " + r.DeviceID
		if r.Epoch != nil {
			s += fmt.Sprintf(" (epoch %d)", *r.Epoch)
		}
	}
	return s
}

// printJSON writes v as indented JSON on stdout.
func printJSON(ios *IOStreams, v any) error {
	enc := json.NewEncoder(ios.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
