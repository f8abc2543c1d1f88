//go:build unix

package secfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestNotSecret: a file that holds no secret (Options.NotSecret: the batch
// manifest, R18) is written inside a git work tree that does not ignore it,
// without a warning, still 0600; the directory rules (R7) still apply.
func TestNotSecret(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	repo := gitInit(t)
	path := filepath.Join(repo, "manifest.json")
	var warns []string
	opts := Options{NotSecret: true, Warn: func(m string) { warns = append(warns, m) }}
	if err := Check(path, opts); err != nil {
		t.Fatal(err)
	}
	if err := CheckMkdir(filepath.Join(repo, "new", "manifest.json"), opts); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("{}"), opts); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	if len(warns) != 0 {
		t.Fatalf("warnings %v", warns)
	}
	// A secret file at the same place is still refused.
	if err := WriteFile(filepath.Join(repo, "k.bin"), []byte("x"), Options{}); err == nil {
		t.Fatal("a secret file was written into the unignored work tree")
	}
	open := filepath.Join(repo, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	var ue *UnsafeError
	if err := WriteFile(filepath.Join(open, "manifest.json"), []byte("{}"), opts); !errors.As(err, &ue) {
		t.Fatalf("err = %v, want the open directory refused (R7)", err)
	}
}
