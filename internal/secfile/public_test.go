//go:build unix

package secfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestPublic: a file that holds nothing secret (Options.Public: an export
// encrypted with age) is written 0644 inside a git work tree that does not
// ignore it and into a directory others can write, without a warning; it
// is still written atomically and never replaced without Replace.
func TestPublic(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	repo := gitInit(t)
	open := filepath.Join(repo, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	var warns []string
	opts := Options{Public: true, Warn: func(m string) { warns = append(warns, m) }}
	for _, path := range []string{filepath.Join(repo, "export.json.age"), filepath.Join(open, "export.json.age")} {
		if err := WriteFile(path, []byte("age-encryption.org/v1\n"), opts); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
			t.Fatalf("%s: mode %v, %v; want 0644", path, fi.Mode(), err)
		}
		var ee *ExistsError
		if err := WriteFile(path, []byte("other"), opts); !errors.As(err, &ee) {
			t.Fatalf("%s replaced without Replace: %v", path, err)
		}
		repl := opts
		repl.Replace = true
		if err := WriteFile(path, []byte("new"), repl); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != "new" {
			t.Fatalf("%s holds %q", path, b)
		}
	}
	if len(warns) != 0 {
		t.Fatalf("warnings %v", warns)
	}
	if entries, _ := filepath.Glob(filepath.Join(open, ".*tmp*")); len(entries) != 0 {
		t.Fatalf("temporary files left: %v", entries)
	}
	// The same places still refuse a secret file.
	if err := WriteFile(filepath.Join(open, "k.bin"), []byte("x"), Options{}); err == nil {
		t.Fatal("a secret file was written into the open directory")
	}
	if err := WriteFile(filepath.Join(repo, "plain.json"), []byte("{}"), Options{}); err == nil {
		t.Fatal("a secret file was written into the unignored work tree")
	}
	if err := WriteFile(filepath.Join(repo, "missing", "x.age"), nil, opts); err == nil {
		t.Fatal("wrote into a directory that does not exist")
	}
}
