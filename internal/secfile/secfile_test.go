//go:build unix

package secfile

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestWriteFilePerms is the R5 matrix: umask × target state → exactly 0600.
func TestWriteFilePerms(t *testing.T) {
	for _, umask := range []int{0o000, 0o002, 0o022, 0o077} {
		for _, state := range []string{"absent", "existing-0644", "existing-0600"} {
			t.Run(state, func(t *testing.T) {
				dir := t.TempDir()
				old := syscall.Umask(umask)
				defer syscall.Umask(old)
				p := filepath.Join(dir, "key.hex")
				if state != "absent" {
					mode := os.FileMode(0o644)
					if state == "existing-0600" {
						mode = 0o600
					}
					if err := os.WriteFile(p, []byte("old"), mode); err != nil {
						t.Fatal(err)
					}
					_ = os.Chmod(p, mode)
				}
				if err := WriteFile(p, []byte("new"), Options{Replace: true}); err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Fatalf("umask %03o %s: mode %04o, want 0600", umask, state, fi.Mode().Perm())
				}
				sub := filepath.Join(dir, "a", "b")
				if err := MkdirAll(sub); err != nil {
					t.Fatal(err)
				}
				if fi, _ := os.Stat(sub); fi.Mode().Perm() != 0o700&^os.FileMode(umask) {
					t.Fatalf("dir mode %04o", fi.Mode().Perm())
				}
			})
		}
	}
}

// TestNoOverwrite is R6: without Replace an existing file is kept as it was.
func TestNoOverwrite(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "key.hex")
	if err := os.WriteFile(p, []byte("sentinel"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(p, []byte("new"), Options{})
	var ee *ExistsError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want ExistsError", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "sentinel" {
		t.Fatal("file changed")
	}
	assertNoTemps(t, filepath.Dir(p))
}

// TestFailureLeavesNothing is R8: a failing writer leaves no target and no
// temporary file.
func TestFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "key.hex")
	err := Write(p, Options{}, func(w io.Writer) error {
		_, _ = w.Write([]byte("partial"))
		return errors.New("injected write error")
	})
	if err == nil {
		t.Fatal("no error")
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("partial target left behind")
	}
	assertNoTemps(t, dir)
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}

// TestOpenDirectory is R7: a group/other-writable directory without the
// sticky bit is refused; with the sticky bit (like /tmp) it is accepted.
func TestOpenDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o777)
	err := WriteFile(filepath.Join(dir, "k"), []byte("x"), Options{})
	var ue *UnsafeError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "0777") {
		t.Fatalf("err = %v", err)
	}
	_ = os.Chmod(dir, 0o777|os.ModeSticky)
	if err := WriteFile(filepath.Join(dir, "k"), []byte("x"), Options{}); err != nil {
		t.Fatalf("sticky dir refused: %v", err)
	}
}

func TestRemoveStaleTemps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "reg.json")
	_ = os.WriteFile(filepath.Join(dir, ".reg.json.tmp-123"), nil, 0o600)
	_ = os.WriteFile(filepath.Join(dir, "other"), nil, 0o600)
	if err := RemoveStaleTemps(p); err != nil {
		t.Fatal(err)
	}
	assertNoTemps(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "other")); err != nil {
		t.Fatal("removed an unrelated file")
	}
}

func gitInit(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	for _, args := range [][]string{{"init", "-q"}, {"config", "user.email", "t@example.com"}, {"config", "user.name", "t"}} {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	return dir
}

func gitRun(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v %s", args, err, out)
	}
}

// TestGitGuard is the R19 matrix.
func TestGitGuard(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	t.Run("a not ignored", func(t *testing.T) {
		repo := gitInit(t)
		err := WriteFile(filepath.Join(repo, "psk.hex"), []byte("x"), Options{})
		if err == nil || !strings.Contains(err.Error(), "does not ignore") {
			t.Fatalf("err = %v", err)
		}
		if _, err := os.Stat(filepath.Join(repo, "psk.hex")); !os.IsNotExist(err) {
			t.Fatal("file written")
		}
	})
	t.Run("b ignored", func(t *testing.T) {
		repo := gitInit(t)
		_ = os.WriteFile(filepath.Join(repo, ".gitignore"), []byte("*.hex\n"), 0o644)
		var warns []string
		if err := WriteFile(filepath.Join(repo, "psk.hex"), []byte("x"), Options{Warn: func(m string) { warns = append(warns, m) }}); err != nil {
			t.Fatal(err)
		}
		if len(warns) != 0 {
			t.Fatalf("unexpected warnings %v", warns)
		}
	})
	t.Run("c tracked under ignored dir", func(t *testing.T) {
		repo := gitInit(t)
		_ = os.Mkdir(filepath.Join(repo, "secrets"), 0o700)
		_ = os.WriteFile(filepath.Join(repo, "secrets", "psk.hex"), []byte("old"), 0o600)
		gitRun(t, repo, "add", "secrets/psk.hex")
		gitRun(t, repo, "commit", "-qm", "oops")
		_ = os.WriteFile(filepath.Join(repo, ".gitignore"), []byte("secrets/\n"), 0o644)
		err := WriteFile(filepath.Join(repo, "secrets", "psk.hex"), []byte("x"), Options{Replace: true})
		if err == nil || !strings.Contains(err.Error(), "tracks") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("d excludes file only", func(t *testing.T) {
		repo := gitInit(t)
		_ = os.WriteFile(filepath.Join(repo, ".git", "info", "exclude"), []byte("*.hex\n"), 0o644)
		var warns []string
		if err := WriteFile(filepath.Join(repo, "psk.hex"), []byte("x"), Options{Warn: func(m string) { warns = append(warns, m) }}); err != nil {
			t.Fatal(err)
		}
		if len(warns) != 1 || !strings.Contains(warns[0], "does not travel") {
			t.Fatalf("warnings %v", warns)
		}
	})
	t.Run("e no repo", func(t *testing.T) {
		if err := WriteFile(filepath.Join(t.TempDir(), "psk.hex"), []byte("x"), Options{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("f no git binary", func(t *testing.T) {
		repo := t.TempDir()
		_ = os.Mkdir(filepath.Join(repo, ".git"), 0o700)
		noGit := Options{lookGit: func() (string, error) { return "", exec.ErrNotFound }}
		err := WriteFile(filepath.Join(repo, "psk.hex"), []byte("x"), noGit)
		if err == nil || !strings.Contains(err.Error(), "not installed") {
			t.Fatalf("err = %v", err)
		}
	})
	// The warning names what allowed the write, and never a flag that was
	// not passed (issue 13 item 1).
	for _, tt := range []struct{ by, want string }{
		{"", "although git does not ignore it (allow-unignored)"},
		{"--allow-unignored", "(--allow-unignored)"},
		{"allow-unignored from $USMP_PSK_ALLOW_UNIGNORED", "(allow-unignored from $USMP_PSK_ALLOW_UNIGNORED)"},
	} {
		t.Run("allow unignored "+tt.by, func(t *testing.T) {
			repo := gitInit(t)
			var warns []string
			o := Options{AllowUnignored: true, AllowUnignoredBy: tt.by, Warn: func(m string) { warns = append(warns, m) }}
			if err := WriteFile(filepath.Join(repo, "psk.hex"), []byte("x"), o); err != nil {
				t.Fatal(err)
			}
			if len(warns) != 1 || !strings.HasSuffix(warns[0], tt.want) || (tt.by != "--allow-unignored" && strings.Contains(warns[0], "--")) {
				t.Fatalf("warnings %v, want one ending %q", warns, tt.want)
			}
		})
	}
}
