//go:build unix

package registry

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/usmp/usmp-psk/internal/secfile"
)

// TestRefusalBeforeTheDirectory: the location rules of a new registry in a
// new directory are checked before the directory is created (git answers
// for a path whose directory does not exist), so a refused writer never
// creates, and never removes, a directory. A git wrapper records whether
// the directory existed when the guard ran.
func TestRefusalBeforeTheDirectory(t *testing.T) {
	ctx := context.Background()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	root := t.TempDir()
	gitInit(t, root)
	bin := t.TempDir()
	seen := filepath.Join(bin, "seen")
	dir := filepath.Join(root, "new", "sub")
	wrapper := "#!/bin/sh\nif [ -d '" + dir + "' ]; then echo dir >> '" + seen + "'; else echo none >> '" + seen + "'; fi\nexec '" + git + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(wrapper), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	path := filepath.Join(dir, "r.json")
	_, err = openAt(t, path).Add(ctx, "r1", Random())
	var ue *secfile.UnsafeError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "git does not ignore it") {
		t.Fatalf("err = %v, want the git guard's refusal", err)
	}
	got, err := os.ReadFile(seen)
	if err != nil {
		t.Fatalf("git did not run: %v", err)
	}
	if strings.Contains(string(got), "dir") {
		t.Fatalf("the directory existed when the git guard ran (%q)", got)
	}
	if _, err := os.Lstat(filepath.Join(root, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused writer left a directory: %v", err)
	}
	// A derived registry there is allowed: the directory is created then.
	if _, err := openAt(t, path).Add(ctx, "d1", Derived(canaryMaster(t), 0)); err != nil {
		t.Fatal(err)
	}
}

// TestRefusedWriterLeavesOthersDirectory: a writer refused for a new
// registry in a new directory runs alongside one that is allowed there
// (docs/registry.md §1); the allowed one always succeeds, since the
// refused one never removes a directory.
func TestRefusedWriterLeavesOthersDirectory(t *testing.T) {
	ctx := context.Background()
	master := canaryMaster(t)
	rounds := 30
	if testing.Short() {
		rounds = 5
	}
	for round := range rounds {
		root := t.TempDir()
		gitInit(t, root)
		path := filepath.Join(root, "new", "sub", "r.json")
		refused, allowed := openAt(t, path), openAt(t, path)
		var wg sync.WaitGroup
		var rerr, aerr error
		wg.Add(2)
		go func() { defer wg.Done(); _, rerr = refused.Add(ctx, "r1", Random()) }()
		go func() { defer wg.Done(); _, aerr = allowed.Add(ctx, "d1", Derived(master, 0)) }()
		wg.Wait()
		var ue *secfile.UnsafeError
		if !errors.As(rerr, &ue) {
			t.Fatalf("round %d: the random writer: %v, want a refusal", round, rerr)
		}
		if aerr != nil {
			t.Fatalf("round %d: the derived writer failed: %v", round, aerr)
		}
	}
}
