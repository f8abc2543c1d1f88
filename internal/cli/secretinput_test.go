package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usmp/usmp-psk/internal/psk"
)

// TestReadSecretInput: key files and import files are read the one way:
// whole up to their limit, more is bad input naming the source, a missing
// file names what it was meant to be, and a terminal is refused with the
// input's own words.
func TestReadSecretInput(t *testing.T) {
	dir := t.TempDir()
	small := secretInput{what: "test file", limit: 8, tooLarge: "too large for a test", typed: "no typing"}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name, file string
		in         secretInput
		tty        bool
		want       string // the data, or a part of the error
		bad        bool   // bad input (exit 2)
	}{
		{"within the limit", write("ok", "12345678"), small, false, "12345678", false},
		{"over the limit", write("big", "123456789"), small, false, "too large for a test", true},
		{"a key over 1 MiB", write("key", strings.Repeat("a", 1<<20+1)), keyInput, false, "larger than 1 MiB; not a key", true},
		{"missing", filepath.Join(dir, "none"), importInput, false, "import file: open", true},
		{"a key typed on a terminal", "-", keyInput, true, "refusing to read a key typed on a terminal", true},
		{"keys typed on a terminal", "-", importInput, true, "refusing to read keys typed on a terminal", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _, _ := testFactory(t, "")
			f.IO.SetStdinTTY(tt.tty)
			data, _, err := readSecretInput(f, tt.file, tt.in)
			var bad interface{ BadInput() bool }
			var fe *FlagError
			isBad := errors.As(err, &fe) || (errors.As(err, &bad) && bad.BadInput())
			switch {
			case err == nil && (tt.bad || string(data) != tt.want):
				t.Fatalf("read %q, want an error with %q", data, tt.want)
			case err != nil && (!tt.bad || !isBad || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("%v (bad input %v), want %q", err, isBad, tt.want)
			}
			psk.Wipe(data)
		})
	}
}
