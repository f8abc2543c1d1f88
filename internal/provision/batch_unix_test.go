//go:build unix

package provision

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usmp/usmp-psk/internal/secfile"
)

// TestBatchChecksBeforeTheDirectory: the location rules of a batch's new
// output directory are checked before it is created (the git guard answers
// for a path whose directory does not exist yet), so a refused batch never
// creates — and never removes — a directory another process may be using.
// A git wrapper records whether the directory existed when the guard ran.
func TestBatchChecksBeforeTheDirectory(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	root := t.TempDir()
	cmd := exec.Command(git, "init", "-q", root)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + root, "GIT_CONFIG_NOSYSTEM=1"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	bin := t.TempDir()
	seen := filepath.Join(bin, "seen")
	out := filepath.Join(root, "a", "factory")
	wrapper := "#!/bin/sh\nif [ -d '" + filepath.Join(root, "a") + "' ]; then echo dir >> '" + seen + "'; else echo none >> '" + seen + "'; fi\nexec '" + git + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(wrapper), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	ids, _ := NewCountIDs("r-", 1, 2)
	spec := BatchSpec{IDs: ids, Source: Derive, Master: master, Out: out, Image: ImageOptions{Layout: DefaultLayout()}, PerDeviceKeys: true}
	_, err = RunBatch(context.Background(), batchReg(t, filepath.Join(t.TempDir(), "reg.db")), spec)
	var ue *secfile.UnsafeError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "git does not ignore it") {
		t.Fatalf("err = %v, want the git guard's refusal", err)
	}
	got, err := os.ReadFile(seen)
	if err != nil {
		t.Fatalf("git did not run: %v", err)
	}
	if strings.Contains(string(got), "dir") {
		t.Fatalf("the output directory existed when the git guard ran (%q)", got)
	}
	if _, err := os.Lstat(filepath.Join(root, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the refused batch left a directory: %v", err)
	}
}

// TestBatchProbesTheKeysFiles: with --encrypt-per-device the batch writes
// secret keys files (DIR/keys/<id>.bin) too; a work tree that ignores the
// images but not them refuses the batch up front (R19), before anything is
// recorded or created.
func TestBatchProbesTheKeysFiles(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	root := t.TempDir()
	if out, err := exec.Command(git, "init", "-q", root).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(root, ".gitignore"), []byte("out/*.bin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "out")
	regPath := filepath.Join(t.TempDir(), "reg.db")
	ids, _ := NewCountIDs("d", 1, 3)
	spec := BatchSpec{IDs: ids, Source: Random, Out: out, Image: ImageOptions{Layout: DefaultLayout()}, PerDeviceKeys: true}
	_, err = RunBatch(context.Background(), batchReg(t, regPath), spec)
	var ue *secfile.UnsafeError
	if !errors.As(err, &ue) || ue.Path != filepath.Join(out, "keys", "d1.bin") {
		t.Fatalf("err = %v, want the keys file refused", err)
	}
	for _, p := range []string{out, regPath} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the refused batch left %s: %v", p, err)
		}
	}
}

// TestBatchRefusesSymlinkedFiles: a re-run writes and reads its files in
// place, and a symbolic link planted where an image or keys file goes must
// not send a key outside the directory (and past the git guard, which
// checks the paths inside it): the batch fails, the link's target is left
// alone. Review found both were followed.
func TestBatchRefusesSymlinkedFiles(t *testing.T) {
	tests := []struct {
		name string
		link string // relative to out
	}{
		{"image", "r-2.bin"},
		{"keys file", "keys/r-1.bin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			mustMkdirAll(t, filepath.Join(out, "keys"))
			target := filepath.Join(dir, "leak.bin")
			if err := os.WriteFile(target, []byte("untouched"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(out, tt.link)); err != nil {
				t.Fatal(err)
			}
			ids, _ := NewCountIDs("r-", 1, 3)
			spec := BatchSpec{IDs: ids, Source: Random, Out: out, Image: ImageOptions{Layout: DefaultLayout()}, PerDeviceKeys: true}
			_, err := RunBatch(context.Background(), batchReg(t, filepath.Join(dir, "reg.db")), spec)
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Fatalf("err = %v, want a refusal of the link", err)
			}
			if b, err := os.ReadFile(target); err != nil || string(b) != "untouched" {
				t.Fatalf("the link's target was written: %q %v", b, err)
			}
		})
	}
}

func mustMkdirAll(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}
