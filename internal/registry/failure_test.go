package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/usmp/usmp-psk/internal/secfile"
)

// snapshot lists every file and directory under root (but .git) with its
// mode and content, to show that a command left root exactly as it was.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		if fi.Mode().IsRegular() {
			line += fmt.Sprintf(" %q", readFile(t, p))
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// gitInit makes dir a git work tree, or skips the test without git.
func gitInit(t *testing.T, dir string) {
	t.Helper()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	cmd := exec.Command(git, "init", "-q", dir)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
}

func openAt(t *testing.T, path string, mod ...func(*Options)) *Registry {
	t.Helper()
	opts := Options{Now: clock(), User: func() string { return "tester" }, Getenv: func(string) string { return "" }, LockTimeout: 30 * time.Second}
	for _, m := range mod {
		m(&opts)
	}
	reg, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func importSet(t *testing.T) *ImportSet {
	t.Helper()
	set, err := ParseImport("keys.json", []byte(`{"imp-1": "`+randomHex(t, 32)+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestRefusedWriteLeavesNothing (design §7 "nothing lost", R7, R19): a
// writer refused by a location rule leaves the directory exactly as it was:
// no registry, audit log or lock file, no directory it made, no audit
// entry. The one exception: a refusal that can only be known under the
// lock (an import into an existing registry, which learns there whether it
// adds keys) leaves the empty lock file it created, which is never removed
// (docs/registry.md §4).
func TestRefusedWriteLeavesNothing(t *testing.T) {
	ctx := context.Background()
	master := canaryMaster(t)
	addRandom := func(r *Registry) error { _, err := r.Add(ctx, "r1", Random()); return err }
	addDerived := func(r *Registry) error { _, err := r.Add(ctx, "d2", Derived(master, 0)); return err }
	tests := []struct {
		name    string
		git     bool
		open    bool   // the registry's directory is 0777
		reg     string // the registry, relative to the test directory
		derived bool   // an existing registry with one derived device
		noLock  bool   // ... whose lock file was removed
		lock    bool   // the lock file stays: refused under the lock
		op      func(*Registry) error
	}{
		{name: "git, new registry, add --random", git: true, reg: "usmp-registry.json", op: addRandom},
		{name: "git, new registry in new directories", git: true, reg: "a/b/r.json", op: addRandom},
		{name: "git, new registry, import (refused before the lock)", git: true, reg: "usmp-registry.json", op: func(r *Registry) error { _, err := r.Import(ctx, importSet(t)); return err }},
		{name: "git, derived registry, add --random", git: true, reg: "usmp-registry.json", derived: true, op: addRandom},
		{name: "git, derived registry without lock file, import", git: true, reg: "usmp-registry.json", derived: true, noLock: true, lock: true, op: func(r *Registry) error { _, err := r.Import(ctx, importSet(t)); return err }},
		{name: "git, derived registry without lock file, rotate --random", git: true, reg: "usmp-registry.json", derived: true, noLock: true, op: func(r *Registry) error {
			_, err := r.Rotate(ctx, "d1", RotateOptions{Random: true})
			return err
		}},
		{name: "open directory, new registry, add --random", open: true, reg: "open/r.json", op: addRandom},
		{name: "open directory, new registry, add --derive", open: true, reg: "open/r.json", op: addDerived},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.git {
				gitInit(t, root)
			}
			path := filepath.Join(root, tt.reg)
			if tt.derived {
				reg := openAt(t, path)
				if _, err := reg.Add(ctx, "d1", Derived(master, 0)); err != nil {
					t.Fatal(err)
				}
				if tt.noLock {
					if err := os.Remove(path + ".lock"); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tt.open {
				dir := filepath.Join(root, "open")
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, 0o777); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, root)
			err := tt.op(openAt(t, path))
			var ue *secfile.UnsafeError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want a refusal", err)
			}
			if tt.lock {
				if fi, err := os.Stat(path + ".lock"); err != nil || fi.Size() != 0 {
					t.Fatalf("the lock file: %v", err)
				}
				if err := os.Remove(path + ".lock"); err != nil {
					t.Fatal(err)
				}
			}
			if after := snapshot(t, root); after != before {
				t.Fatalf("the refused write changed the directory:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// TestRefusalBeforeTheLock: a write known to store keys is refused by the
// location rules before the writer takes (or creates) the lock: with the
// lock held elsewhere it is refused at once, not after the lock timeout.
func TestRefusalBeforeTheLock(t *testing.T) {
	ctx := context.Background()
	for _, where := range []string{"git", "open directory"} {
		t.Run(where, func(t *testing.T) {
			root := t.TempDir()
			dir := root
			if where == "git" {
				gitInit(t, root)
			} else {
				dir = filepath.Join(root, "open")
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, 0o777); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, "r.json")
			held := flock.New(path + ".lock")
			if err := held.Lock(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = held.Unlock() }()
			reg := openAt(t, path, func(o *Options) { o.LockTimeout = 20 * time.Second })
			start := time.Now()
			_, err := reg.Add(ctx, "r1", Random())
			var ue *secfile.UnsafeError
			if !errors.As(err, &ue) || time.Since(start) > 10*time.Second {
				t.Fatalf("err = %v after %v, want a refusal at once", err, time.Since(start))
			}
		})
	}
}

// failRegistryWrite makes the writes of the registry at path fail after the
// audit append and before the rename, as a full disk does: at secfile's
// "after-write" step the temporary file is removed, so the rename fails.
// also, when set, runs at that moment too.
func failRegistryWrite(t *testing.T, path string, also func()) {
	t.Helper()
	secfile.CrashHookAt = func(step, p string) {
		if step != "after-write" || p != path {
			return
		}
		temps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"))
		for _, tmp := range temps {
			_ = os.Remove(tmp)
		}
		if also != nil {
			also()
		}
	}
	t.Cleanup(func() { secfile.CrashHookAt = nil })
}

// TestFailedWriteRemovesItsAuditEntries (docs/registry.md §5): when the
// registry write fails and the writer is still alive, the entries it
// appended are removed again, so the log matches the registry (nothing
// uncommitted) and a first write leaves nothing behind. An export entry
// stays: its keys were delivered.
func TestFailedWriteRemovesItsAuditEntries(t *testing.T) {
	ctx := context.Background()
	master := canaryMaster(t)
	tests := []struct {
		name        string
		existing    bool // a registry with init and one derived device
		halfLine    bool // ... and half a line of an interrupted append
		op          func(*Registry) error
		uncommitted uint64 // after the failure
	}{
		{name: "add", existing: true, op: func(r *Registry) error { _, err := r.Add(ctx, "y1", Random()); return err }},
		{name: "add three in one transaction", existing: true, op: func(r *Registry) error {
			_, err := r.AddMany(ctx, []AddRequest{{ID: "y1", Key: Random()}, {ID: "y2", Key: Derived(master, 0)}, {ID: "y3", Key: Random()}}, AddOptions{Event: EventBatch})
			return err
		}},
		{name: "revoke", existing: true, op: func(r *Registry) error { _, err := r.Revoke(ctx, "d1", "lost"); return err }},
		{name: "first write", op: func(r *Registry) error { _, err := r.Add(ctx, "y1", Random()); return err }},
		{name: "init", op: func(r *Registry) error { return r.Init(ctx) }},
		{name: "after an interrupted append", existing: true, halfLine: true, op: func(r *Registry) error { _, err := r.Add(ctx, "y1", Random()); return err }},
		{name: "export keeps its entry", existing: true, uncommitted: 1, op: func(r *Registry) error {
			ex, err := r.ExportTo(ctx, master, func(*Export) error { return nil })
			if err == nil {
				ex.Destroy()
			}
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			dir, ap := filepath.Dir(e.path), AuditPath(e.path)
			if tt.existing {
				if _, err := e.reg.Add(ctx, "d1", Derived(master, 0)); err != nil {
					t.Fatal(err)
				}
			}
			complete := ""
			if tt.halfLine {
				complete = string(readFile(t, ap))
				if err := os.WriteFile(ap, []byte(complete+`{"seq":3,"time":"2025-`), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, dir)
			var regBefore []byte
			if tt.existing {
				regBefore = readFile(t, e.path)
			}
			failRegistryWrite(t, e.path, nil)

			err := tt.op(e.reg)
			if err == nil || !strings.Contains(err.Error(), "rename") {
				t.Fatalf("err = %v, want the failed rename", err)
			}
			var rb *AuditRollbackError
			if errors.As(err, &rb) {
				t.Fatalf("the rollback failed: %v", err)
			}
			if !tt.existing {
				// The lock file this writer created stays (empty): it is
				// never removed (docs/registry.md §4).
				if fi, err := os.Stat(e.path + ".lock"); err != nil || fi.Size() != 0 {
					t.Fatalf("the lock file: %v", err)
				}
				if err := os.Remove(e.path + ".lock"); err != nil {
					t.Fatal(err)
				}
			}
			after := snapshot(t, dir)
			switch {
			case tt.halfLine:
				// The incomplete line of the interrupted writer is gone
				// (with a warning); the rest is as it was.
				if got := string(readFile(t, ap)); got != complete {
					t.Fatalf("audit log after the failure:\n%s\nwant:\n%s", got, complete)
				}
				if w := e.warnings(); len(w) != 1 || !strings.Contains(w[0], "incomplete last line") {
					t.Fatalf("warnings %q", w)
				}
			case tt.uncommitted > 0:
				if got := auditLines(t, ap); len(got) != 3 || !bytes.Contains(got[2], []byte(`"event":"export"`)) {
					t.Fatalf("audit log after the failed export: %q", got)
				}
			case after != before:
				t.Fatalf("the failed write changed the directory:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if !tt.existing {
				return
			}
			if !bytes.Equal(regBefore, readFile(t, e.path)) {
				t.Fatal("the registry changed")
			}
			rep, err := e.reg.VerifyAudit(ctx)
			if err != nil || rep.Uncommitted != tt.uncommitted {
				t.Fatalf("audit after the failure: %v %+v, want %d uncommitted", err, rep, tt.uncommitted)
			}

			// The next write works and continues the chain.
			secfile.CrashHookAt = nil
			if _, err := e.reg.Add(ctx, "next", Random()); err != nil {
				t.Fatal(err)
			}
			if rep, err := e.reg.VerifyAudit(ctx); err != nil || rep.Uncommitted != 0 {
				t.Fatalf("audit after the next write: %v %+v", err, rep)
			}
		})
	}
}

// TestFailedRollbackIsReported: when the entries of a failed write cannot
// be removed, the error says so (exit 1, not the write error's code) and
// the entry stays, reported as uncommitted.
func TestFailedRollbackIsReported(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if _, err := e.reg.Add(ctx, "d1", Random()); err != nil {
		t.Fatal(err)
	}
	ap := AuditPath(e.path)
	regBefore := readFile(t, e.path)
	// The log is moved away and a directory takes its place: it cannot be
	// truncated.
	failRegistryWrite(t, e.path, func() {
		if err := os.Rename(ap, ap+".away"); err != nil {
			t.Error(err)
		}
		if err := os.Mkdir(ap, 0o700); err != nil {
			t.Error(err)
		}
	})
	_, err := e.reg.Add(ctx, "y1", Random())
	var rb *AuditRollbackError
	if !errors.As(err, &rb) || rb.Entries != 1 || rb.BadInput() {
		t.Fatalf("err = %v, want an AuditRollbackError", err)
	}
	for _, want := range []string{"rename", "removing its audit entries from " + ap + " failed too", "registry audit' reports them as uncommitted"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	secfile.CrashHookAt = nil
	if err := os.Remove(ap); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(ap+".away", ap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(regBefore, readFile(t, e.path)) {
		t.Fatal("the registry changed")
	}
	rep, err := e.reg.VerifyAudit(ctx)
	if err != nil || rep.Uncommitted != 1 {
		t.Fatalf("audit: %v %+v, want 1 uncommitted", err, rep)
	}
}

// TestFailureAfterTheRename: a write that fails after the rename (the
// directory sync) has replaced the registry: its audit entries are
// committed and stay, nothing is undone.
func TestFailureAfterTheRename(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	dir := filepath.Join(root, "reg")
	path := filepath.Join(dir, "usmp-registry.json")
	reg := openAt(t, path)
	if _, err := reg.Add(ctx, "d1", Random()); err != nil {
		t.Fatal(err)
	}
	// The directory moves away just before its sync, which then fails.
	secfile.CrashHookAt = func(step, p string) {
		if step == "before-dirsync" && p == path {
			_ = os.Rename(dir, dir+".away")
		}
	}
	t.Cleanup(func() { secfile.CrashHookAt = nil })
	_, err := reg.Add(ctx, "y1", Random())
	if err == nil || !strings.Contains(err.Error(), "directory "+dir) {
		t.Fatalf("err = %v, want the failed directory sync", err)
	}
	// ... reported as recorded, so that no one repeats it
	var ce *CommittedError
	if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "the change was recorded in "+path+", but ") {
		t.Fatalf("err = %v, want a *CommittedError", err)
	}
	secfile.CrashHookAt = nil
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Show(ctx, "y1"); err != nil {
		t.Fatalf("the renamed registry lost the device: %v", err)
	}
	rep, err := reg.VerifyAudit(ctx)
	if err != nil || rep.Uncommitted != 0 || rep.Entries != 3 {
		t.Fatalf("audit: %v %+v", err, rep)
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Fatalf("lock file: %v", err)
	}
}
