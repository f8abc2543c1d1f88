//go:build linux

package provision

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestBatchDiskFullTmpfs is TestBatchDiskFull on a disk that really fills
// up: a tmpfs of 160 KiB (mounting one needs root; the test skips
// elsewhere). The failed batch leaves only whole images and no temporary
// file; with room made, a re-run finishes it.
func TestBatchDiskFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := filepath.Join(t.TempDir(), "tiny")
	mustMkdirAll(t, mnt)
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=160k,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })
	ctx := context.Background()
	regPath := filepath.Join(t.TempDir(), "reg.db") // not on the full disk
	ids, _ := NewCountIDs("d-", 1, 20)
	spec := BatchSpec{IDs: ids, Source: Derive, Master: master, Out: filepath.Join(mnt, "out"),
		Image: ImageOptions{Layout: DefaultLayout()}, Jobs: 2, Chunk: 8}
	_, err := RunBatch(ctx, batchReg(t, regPath), spec)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want ENOSPC", err)
	}
	if n := checkOut(t, spec.Out, DefaultSize); n == 0 || n >= 20 {
		t.Fatalf("%d whole images on a disk with room for about 6", n)
	}
	if _, err := os.Stat(filepath.Join(spec.Out, "manifest.json")); err == nil {
		t.Fatal("a failed batch published its manifest")
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_REMOUNT, "size=1m,mode=0700"); err != nil {
		t.Fatalf("make room: %v", err)
	}
	if _, err := RunBatch(ctx, batchReg(t, regPath), spec); err != nil {
		t.Fatal(err)
	}
	if n := checkOut(t, spec.Out, DefaultSize); n != 20 {
		t.Fatalf("%d images after the re-run", n)
	}
}
