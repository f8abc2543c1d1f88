// Package golden holds the golden-file helper of the tests (house style
// §21) and the one -update flag that refreshes every golden file and, in
// cmd/usmp-psk, the testscript scripts. It is used only by tests, but lives
// in a normal package so that tests of several packages share it, like
// internal/leakcheck.
//
// `make golden` (scripts/update-golden.sh) runs `go test -update` on the
// packages whose tests import this one: a test binary that does not define
// the flag refuses it, so `go test ./... -update` cannot work.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// update is -update. The flag package is process-wide by design; this is
// its one definition in any test binary.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/ (and, in cmd/usmp-psk, the testscript scripts)")

// Update reports whether the test binary runs with -update.
func Update() bool { return *update }

// Check compares got with dir/<TestName>.golden (a subtest's slashes
// written as underscores), or writes got there with -update.
func Check(t testing.TB, dir string, got []byte) {
	t.Helper()
	CheckFile(t, filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".golden"), got)
}

// CheckFile compares got with the golden file at path, line endings
// normalised, or writes got there with -update.
func CheckFile(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		// Golden files are public test data, committed with the code.
		if err := os.WriteFile(path, got, 0o644); err != nil { //nolint:gosec // G306: a committed test fixture, not a secret
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (make golden creates it)", err)
	}
	norm := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }
	if !bytes.Equal(norm(got), norm(want)) {
		t.Errorf("output differs from %s (make golden rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
