package secfile

import (
	"os"
	"path/filepath"
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
