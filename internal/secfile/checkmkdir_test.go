//go:build unix

package secfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckMkdir: the location rules of a secret file whose directories
// are still to be created (R7 on the nearest existing ancestor, R19 on the
// path as it will be), checked without creating anything. GitGuard alone
// answers for such paths too: git runs from the nearest existing ancestor.
func TestCheckMkdir(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	tests := []mkdirCase{
		{name: "no work tree, new directories", path: "a/b/k.hex"},
		{name: "work tree, new directories, not ignored", git: true, path: "a/b/k.hex", want: "git does not ignore it", guard: true},
		{name: "work tree, new directories, ignored by their name", git: true, ignore: "a/\n", path: "a/b/k.hex", guard: true},
		{name: "work tree, new directories, ignored by the file's name", git: true, ignore: "*.hex\n", path: "a/b/k.hex", guard: true},
		{name: "work tree, new directory, ignored by a nested pattern", git: true, ignore: "a/b/\n", path: "a/b/k.hex", guard: true},
		{name: "work tree, new directories, excludes file only", git: true, exclude: "*.hex\n", path: "a/b/k.hex", warn: "does not travel", guard: true},
		{name: "work tree, existing directory, ignored", git: true, ignore: "*.hex\n", path: "k.hex", guard: true},
		{name: "work tree, existing directory, not ignored", git: true, path: "k.hex", want: "git does not ignore it", guard: true},
		{name: "new directories under one others can write", open: 0o777, path: "open/x/y/k.hex", want: "open: refusing to write a secret file into a directory that group or others can write (mode 0777)"},
		{name: "new directories under a sticky one others can write", open: 0o777 | os.ModeSticky, path: "open/x/k.hex"},
		{name: "an existing directory others can write", open: 0o777, path: "open/k.hex", want: "mode 0777"},
		{name: "new directories under a file", file: true, path: "f/x/k.hex", want: "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t) })
	}
	// Check itself still wants the directory to exist.
	err := Check(filepath.Join(t.TempDir(), "a", "k.hex"), Options{})
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "output directory") {
		t.Fatalf("Check of a missing directory: %v", err)
	}
}

// mkdirCase is a case of TestCheckMkdir.
type mkdirCase struct {
	name    string
	git     bool
	ignore  string // .gitignore
	exclude string // .git/info/exclude
	open    os.FileMode
	file    bool   // "f" is a regular file
	path    string // relative to the test directory
	want    string // "" or a part of the error
	warn    string // a part of the one warning expected
	guard   bool   // GitGuard alone gives the same answer
}

// setup makes the case's directory: a work tree with its ignore rules, a
// directory others can write, a file where a directory would go.
func (tt mkdirCase) setup(t *testing.T) (root string) {
	t.Helper()
	root = t.TempDir()
	if tt.git {
		root = gitInit(t)
		if tt.ignore != "" {
			if err := os.WriteFile(filepath.Join(root, ".gitignore"), []byte(tt.ignore), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if tt.exclude != "" {
			if err := os.WriteFile(filepath.Join(root, ".git", "info", "exclude"), []byte(tt.exclude), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if tt.open != 0 {
		dir := filepath.Join(root, "open")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, tt.open); err != nil {
			t.Fatal(err)
		}
	}
	if tt.file {
		if err := os.WriteFile(filepath.Join(root, "f"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// run checks the case: CheckMkdir's verdict and warning, nothing created,
// and GitGuard's verdict where it must agree.
func (tt mkdirCase) run(t *testing.T) {
	root := tt.setup(t)
	before, _ := os.ReadDir(root)
	path := filepath.Join(root, tt.path)
	var warns []string
	opts := Options{Warn: func(m string) { warns = append(warns, m) }}
	err := CheckMkdir(path, opts)
	switch {
	case tt.want == "" && err != nil:
		t.Fatalf("err = %v, want none", err)
	case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
		t.Fatalf("err = %v, want %q", err, tt.want)
	}
	if tt.warn != "" && (len(warns) != 1 || !strings.Contains(warns[0], tt.warn)) || tt.warn == "" && len(warns) != 0 {
		t.Fatalf("warnings %q, want %q", warns, tt.warn)
	}
	if after, _ := os.ReadDir(root); len(after) != len(before) {
		t.Fatalf("the check created something: %v", after)
	}
	if tt.guard {
		gerr := GitGuard(path, opts)
		if (gerr == nil) != (err == nil) || gerr != nil && gerr.Error() != err.Error() {
			t.Fatalf("GitGuard: %v, CheckMkdir: %v", gerr, err)
		}
	}
}
