//go:build linux

package main

import (
	"os"
	"syscall"

	"github.com/rogpeppe/go-internal/testscript"
)

// canMountTmpfs reports whether this test process can mount a tmpfs (root,
// outside a container that forbids it): the tmpfs condition of scripts
// that fill a disk for real.
func canMountTmpfs() bool {
	if os.Geteuid() != 0 {
		return false
	}
	dir, err := os.MkdirTemp("", "tmpfs-probe-")
	if err != nil {
		return false
	}
	defer func() { _ = os.Remove(dir) }()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4k"); err != nil {
		return false
	}
	return syscall.Unmount(dir, 0) == nil
}

// cmdTmpfs mounts a tmpfs of SIZE (mount's size= option, e.g. 160k) on DIR
// for the rest of the script, or with -remount gives the one there a new
// size: tmpfs [-remount] DIR SIZE.
func cmdTmpfs(ts *testscript.TestScript, neg bool, args []string) {
	var flags uintptr
	if len(args) == 3 && args[0] == "-remount" {
		flags, args = syscall.MS_REMOUNT, args[1:]
	}
	if neg || len(args) != 2 {
		ts.Fatalf("usage: tmpfs [-remount] DIR SIZE")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(syscall.Mount("tmpfs", dir, "tmpfs", flags, "size="+args[1]+",mode=0700"))
	if flags == 0 {
		ts.Defer(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	}
}
