package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestArgRedactor: a key-like part of any argument is cut out of a
// message wherever it sits, and nothing else is (issue 13 item 2).
func TestArgRedactor(t *testing.T) {
	const (
		hex = "5c0ffee1d2e3f4a5b6c7d8e9fa0b1c2d3e4f5a6b7c8d9eafb0c1d2e3f4a5b6c7"
		// base64 of a key that holds '/'
		b64 = "K0wfZNDxdOhZQJTx5PssM6ySGBwW/amgS48kPD7YYmg="
		// a SHA-256 the tool computed (an audit hash), not on the command line
		sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
		R   = keyArgRedaction
	)
	tests := []struct {
		name string
		args []string
		msg  string
		want string
	}{
		{"path component", []string{"derive", "dev-a", "-o", hex + "/x"}, "output directory: stat " + hex + ": no such file", "output directory: stat " + R + ": no such file"},
		{"joined short flag", []string{"derive", "dev-a", "-o" + hex}, hex + ": already exists", R + ": already exists"},
		{"joined short flag whose letter is a hex digit", []string{"x", "-f" + hex}, "open " + hex, "open " + R},
		{"flag=value", []string{"--registry=" + hex + ".db"}, "created registry " + hex + ".db", "created registry " + R + ".db"},
		{"absolute path", []string{"-o", "./" + hex}, "wrote it to /work/" + hex + " (hex)", "wrote it to /work/" + R + " (hex)"},
		{"base64 with a slash", []string{"-o", b64}, "stat K0wfZNDxdOhZQJTx5PssM6ySGBwW: no such file", "stat " + R + ": no such file"},
		{"base64 whole", []string{"-o", "d/" + b64}, "d/" + b64 + ": x", "d/" + R + ": x"},
		{"hashes the tool computed stay", []string{"registry", "audit", "-o", hex}, "entry 3: hash " + sha, "entry 3: hash " + sha},
		{"other arguments stay", []string{"derive", "dev-a", "-o", "out/dev-a.psk"}, "wrote out/dev-a.psk", "wrote out/dev-a.psk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newArgRedactor(tt.args).apply(tt.msg); got != tt.want {
				t.Fatalf("apply = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRedactorHide: a setting announced without its value is named by
// label in later messages, in the forms a path takes, as whole words only
// (issue 13 item 2).
func TestRedactorHide(t *testing.T) {
	abs, err := filepath.Abs("hunter2.db")
	if err != nil {
		t.Fatal(err)
	}
	const label = "the registry set by $USMP_PSK_REGISTRY"
	r := &redactor{}
	r.hide("registry", "./hunter2.db", label)
	r.hide("value", "db", "the value set by $USMP_PSK_VALUE")
	r.hide("value", "hunter3x", "the value set by $USMP_PSK_VALUE")
	r.hide("registry", "POSTGRES://alice@h/secretdb", "the registry set by $USMP_PSK_REGISTRY")
	tests := []struct{ msg, want string }{
		{"./hunter2.db: registry does not exist", label + ": registry does not exist"},
		{"hunter2.db: registry does not exist", label + ": registry does not exist"},
		{"created registry hunter2.db", "created " + label},
		{"lock " + abs + ".lock: busy", "lock " + label + ".lock: busy"},
		{"not-hunter2.db.x", "not-" + label + ".x"},
		// a value replaces no part of a word, and a short one nothing:
		// it would cut up messages that merely hold the same word
		{"two dbs in sqlite.dbx", "two dbs in sqlite.dbx"},
		{"db: x", "db: x"},
		{"set hunter3x/ssid", "set the value set by $USMP_PSK_VALUE/ssid"},
		{"hunter3xy", "hunter3xy"},
		// a URL as the registry writes it, its scheme in lower case
		{"postgres://alice@h/secretdb: connect", "the registry set by $USMP_PSK_REGISTRY: connect"},
	}
	for _, tt := range tests {
		if got := r.apply(tt.msg); got != tt.want {
			t.Errorf("apply(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
	if strings.Contains(r.apply("."), "registry set") {
		t.Error("a bare . was replaced")
	}
}

// TestChildOutputRedactsByLine: a child's output (esptool's) is redacted a
// line at a time, so that a key split across its writes is still cut out,
// and a last line without its end is written by Flush.
func TestChildOutputRedactsByLine(t *testing.T) {
	const hex = "5c0ffee1d2e3f4a5b6c7d8e9fa0b1c2d3e4f5a6b7c8d9eafb0c1d2e3f4a5b6c7"
	var errOut bytes.Buffer
	ios := &IOStreams{ErrOut: &errOut, redact: newArgRedactor([]string{"--port", "/dev/" + hex})}
	w := &childOutput{s: ios}
	for _, p := range []string{"Serial port /dev/" + hex[:20], hex[20:] + "\r\nConnecting.", "...\nWrote to /dev/" + hex} {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	want := "Serial port /dev/" + keyArgRedaction + "\r\nConnecting....\nWrote to /dev/" + keyArgRedaction
	if got := errOut.String(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
