package registry

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/usmp/usmp-psk/internal/secfile"
)

// TestGitGuard (R19, design §5): a registry of derived devices holds no
// secret and may live in a git work tree that does not ignore it; the first
// stored key makes it a secret file, which is refused there — before the
// audit log records anything — unless AllowUnignored.
func TestGitGuard(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	cmd := exec.Command(git, "init", "-q", dir)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	path := filepath.Join(dir, "usmp-registry.json")
	ctx := context.Background()
	reg, _ := Open(path, Options{})
	if _, err := reg.Add(ctx, "d", Derived(canaryMaster(t), 0)); err != nil {
		t.Fatalf("derived-only registry in a work tree: %v", err)
	}
	before, auditBefore := readFile(t, path), readFile(t, AuditPath(path))
	_, err = reg.Add(ctx, "r", Random())
	var ue *secfile.UnsafeError
	if !errors.As(err, &ue) {
		t.Fatalf("a registry with a key in an unignored work tree: %v", err)
	}
	if !bytes.Equal(before, readFile(t, path)) || !bytes.Equal(auditBefore, readFile(t, AuditPath(path))) {
		t.Fatal("a refused write changed the registry or the audit log")
	}
	var warned []string
	loud, _ := Open(path, Options{AllowUnignored: true, Warn: func(m string) { warned = append(warned, m) }})
	if _, err := loud.Add(ctx, "r", Random()); err != nil {
		t.Fatal(err)
	}
	if len(warned) != 1 {
		t.Fatalf("warnings %q", warned)
	}
}
