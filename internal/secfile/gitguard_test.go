package secfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestGitGuardEscapes covers two ways a key file once slipped past the git
// guard (R19), found by review: a negated .gitignore rule (check-ignore -v
// exits 0 when the last matching pattern is "!…", which means NOT ignored),
// and a symbolic link from outside a work tree into it (the walk up for
// .git followed the path as written). Each case is checked for an existing
// directory and for one still to be created.
func TestGitGuardEscapes(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	tests := []struct {
		name      string
		gitignore string
		// target returns the path to check, given the repo and a private
		// directory outside it.
		target  func(t *testing.T, repo, outside string) string
		refused bool
	}{
		{"negated rule, existing dir", "*.json\n!keep/*.json\n", func(t *testing.T, repo, _ string) string {
			mustMkdir(t, filepath.Join(repo, "keep"))
			return filepath.Join(repo, "keep", "r.json")
		}, true},
		{"negated rule, new dir", "*.json\n!keep/*.json\n", func(_ *testing.T, repo, _ string) string {
			return filepath.Join(repo, "keep", "r.json")
		}, true},
		{"negation undone by a later rule", "*.json\n!keep/*.json\nkeep/r.json\n", func(_ *testing.T, repo, _ string) string {
			return filepath.Join(repo, "keep", "r.json")
		}, false},
		{"ignored, no negation", "*.json\n", func(_ *testing.T, repo, _ string) string {
			return filepath.Join(repo, "keep", "r.json")
		}, false},
		{"symlink into the work tree", "", func(t *testing.T, repo, outside string) string {
			mustMkdir(t, filepath.Join(repo, "secrets"))
			link := filepath.Join(outside, "link")
			if err := os.Symlink(filepath.Join(repo, "secrets"), link); err != nil {
				t.Skip("no symlinks:", err)
			}
			return filepath.Join(link, "r.json")
		}, true},
		{"symlink into the work tree, new dir below it", "", func(t *testing.T, repo, outside string) string {
			mustMkdir(t, filepath.Join(repo, "secrets"))
			link := filepath.Join(outside, "link")
			if err := os.Symlink(filepath.Join(repo, "secrets"), link); err != nil {
				t.Skip("no symlinks:", err)
			}
			return filepath.Join(link, "new", "sub", "r.json")
		}, true},
		{"symlink into the work tree, ignored there", "secrets/\n", func(t *testing.T, repo, outside string) string {
			mustMkdir(t, filepath.Join(repo, "secrets"))
			link := filepath.Join(outside, "link")
			if err := os.Symlink(filepath.Join(repo, "secrets"), link); err != nil {
				t.Skip("no symlinks:", err)
			}
			return filepath.Join(link, "r.json")
		}, false},
		{"symlink out of the work tree", "", func(t *testing.T, repo, outside string) string {
			link := filepath.Join(repo, "out")
			if err := os.Symlink(outside, link); err != nil {
				t.Skip("no symlinks:", err)
			}
			return filepath.Join(link, "r.json")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := gitInit(t)
			outside := t.TempDir()
			if tt.gitignore != "" {
				if err := os.WriteFile(filepath.Join(repo, ".gitignore"), []byte(tt.gitignore), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := GitGuard(tt.target(t, repo, outside), Options{})
			if tt.refused {
				if err == nil || !strings.Contains(err.Error(), "does not ignore") {
					t.Fatalf("GitGuard = %v, want a refusal", err)
				}
			} else if err != nil {
				t.Fatalf("GitGuard = %v, want nil", err)
			}
		})
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

// TestGitGuardAll: every file of a batch is checked, with one git run for
// all of them, so a rule naming single files cannot let the others through
// (R19; review found that only the first file of a batch was probed).
func TestGitGuardAll(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	names := []string{"d-1.bin", "d-2.bin", "d-3.bin"}
	tests := []struct {
		name      string
		gitignore string
		setup     func(t *testing.T, repo string) // before the check
		inRepo    bool                            // else a directory outside any work tree
		allow     bool
		wantErr   string // "" for nil
		wantWarns int
	}{
		{name: "outside any work tree", wantErr: ""},
		{name: "directory ignored", inRepo: true, gitignore: "out/\n"},
		{name: "pattern ignores all", inRepo: true, gitignore: "out/*.bin\n"},
		{name: "directory not yet created, ignored", inRepo: true, gitignore: "/out\n"},
		{name: "nothing ignored", inRepo: true, wantErr: "out/d-1.bin: refusing to write a secret file inside git work tree"},
		{name: "rule names one file only", inRepo: true, gitignore: "out/d-1.bin\n", wantErr: "out/d-2.bin: refusing to write a secret file inside git work tree .*: git does not ignore it \\(and 1 more of the 3 files\\)"},
		{name: "negation lets one through", inRepo: true, gitignore: "out/*.bin\n!out/d-3.bin\n", wantErr: "out/d-3.bin: .*git does not ignore it\nhint: "},
		{name: "tracked file under an ignored directory", inRepo: true, gitignore: "out/\n", setup: func(t *testing.T, repo string) {
			mustMkdir(t, filepath.Join(repo, "out"))
			if err := os.WriteFile(filepath.Join(repo, "out", "d-2.bin"), []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			gitRun(t, repo, "add", "-f", "out/d-2.bin")
		}, wantErr: "out/d-2.bin: .*git tracks it"},
		{name: "allowed with one warning", inRepo: true, gitignore: "out/d-1.bin\n", allow: true, wantWarns: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			if tt.inRepo {
				base = gitInit(t)
			}
			if tt.gitignore != "" {
				if err := os.WriteFile(filepath.Join(base, ".gitignore"), []byte(tt.gitignore), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.setup != nil {
				tt.setup(t, base)
			}
			var warns []string
			err := GitGuardAll(filepath.Join(base, "out"), names, Options{AllowUnignored: tt.allow, Warn: func(m string) { warns = append(warns, m) }})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("GitGuardAll = %v", err)
				}
			} else if err == nil || !regexp.MustCompile(tt.wantErr).MatchString(err.Error()) {
				t.Fatalf("GitGuardAll = %v, want %q", err, tt.wantErr)
			}
			if len(warns) != tt.wantWarns {
				t.Fatalf("warnings %q, want %d", warns, tt.wantWarns)
			}
		})
	}
}

// TestGitGuardUnresolvableFailsClosed: when the symbolic links of the
// output's directory cannot be resolved, the guard cannot know which work
// tree the file lands in, so it refuses, with and without
// --allow-unignored, rather than judging the path as written (it once
// did). The directory here is /proc/self/fd/N of a directory that was
// removed while open: it exists for stat, but its link names a path that
// does not.
func TestGitGuardUnresolvableFailsClosed(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc/self/fd")
	}
	dir := filepath.Join(t.TempDir(), "gone")
	mustMkdir(t, dir)
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("/proc/self/fd/%d", d.Fd())
	if _, err := os.Stat(out); err != nil {
		t.Skipf("%s: %v (no /proc here)", out, err)
	}
	for _, allow := range []bool{false, true} {
		opts := Options{AllowUnignored: allow, Warn: func(string) {}}
		var ue *UnsafeError
		if err := GitGuard(filepath.Join(out, "k.psk"), opts); !errors.As(err, &ue) || !strings.Contains(err.Error(), "cannot resolve") {
			t.Errorf("GitGuard (allow-unignored %v) = %v, want a refusal that says the path cannot be resolved", allow, err)
		}
		if err := GitGuardAll(out, []string{"a.bin", "b.bin"}, opts); !errors.As(err, &ue) || !strings.Contains(err.Error(), "cannot resolve") {
			t.Errorf("GitGuardAll (allow-unignored %v) = %v, want a refusal that says the path cannot be resolved", allow, err)
		}
	}
}

// TestDirRuleHint: the rule a batch refusal suggests ignores the directory,
// anchored at the work tree's top (issue 14 item 4).
func TestDirRuleHint(t *testing.T) {
	for _, tt := range []struct{ rel, want string }{
		{"factory/images", "echo '/factory/images/' >> /w/.gitignore"},
		{"out", "echo '/out/' >> /w/.gitignore"},
		{".", "write the files outside the work tree"},
	} {
		if got := dirRuleHint("/w", tt.rel); !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q lacks %q", tt.rel, got, tt.want)
		}
	}
}
