//go:build !linux

package main

import "github.com/rogpeppe/go-internal/testscript"

// canMountTmpfs is false where the scripts cannot mount a tmpfs.
func canMountTmpfs() bool { return false }

// cmdTmpfs is never reached: scripts that use it need the tmpfs condition.
func cmdTmpfs(ts *testscript.TestScript, _ bool, _ []string) {
	ts.Fatalf("tmpfs: not supported on this system")
}
