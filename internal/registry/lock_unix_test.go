//go:build unix

package registry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/usmp/usmp-psk/internal/secfile"
)

// TestFailedWriterKeepsTheLockFile (docs/registry.md §4): the lock file is
// never removed, so flock(1) — which an operator runs on PATH.lock for a
// backup, without checking that the file it locked is still at the path —
// holds off every writer. Here a writer that created the lock file fails
// (its registry write fails before the rename) while flock(1), simulated
// by flock(2) on the same file, waits for the lock; once it has the lock,
// the next writer must wait for it.
func TestFailedWriterKeepsTheLockFile(t *testing.T) {
	ctx := context.Background()
	master := canaryMaster(t)
	path := filepath.Join(t.TempDir(), "usmp-registry.json")
	if _, err := openAt(t, path).Add(ctx, "d1", Derived(master, 0)); err != nil {
		t.Fatal(err)
	}
	lp := path + ".lock"
	if err := os.Remove(lp); err != nil {
		t.Fatal(err)
	}
	var backup *os.File // the "flock(1)" of the backup
	locked := make(chan error, 1)
	failRegistryWrite(t, path, func() {
		// The failing writer holds the lock on the file it created; the
		// backup opens that file and waits for the lock.
		f, err := os.Open(lp)
		if err != nil {
			t.Error(err)
			return
		}
		backup = f
		go func() { locked <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	})
	if _, err := openAt(t, path).Add(ctx, "d2", Derived(master, 0)); err == nil {
		t.Fatal("the write did not fail")
	}
	secfile.CrashHookAt = nil
	if backup == nil {
		t.Fatal("the failing writer was not seen")
	}
	defer backup.Close()
	if err := <-locked; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(lp); err != nil {
		t.Fatalf("the failed writer removed the lock file: %v", err)
	}
	// While the backup holds the lock, a writer waits, then gives up.
	_, err := openAt(t, path, func(o *Options) { o.LockTimeout = 200 * time.Millisecond }).Add(ctx, "d3", Derived(master, 0))
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want the lock held by the backup", err)
	}
	_ = syscall.Flock(int(backup.Fd()), syscall.LOCK_UN)
	if _, err := openAt(t, path).Add(ctx, "d3", Derived(master, 0)); err != nil {
		t.Fatal(err)
	}
}
