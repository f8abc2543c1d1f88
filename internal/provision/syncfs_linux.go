//go:build linux

package provision

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes the file system that holds d (syncfs(2)), not the whole
// machine's dirty data.
func syncFS(d *os.File) error { return unix.Syncfs(int(d.Fd())) }
