//go:build unix

package provision

import (
	"os"
	"syscall"
)

// currentUmask reads the process umask (single-threaded start of a batch).
func currentUmask() int {
	old := syscall.Umask(0o077)
	syscall.Umask(old)
	return old
}

// syncAll makes the batch's files durable with one sync at the end
// (design §8) instead of one fsync per image: the output's file system
// where the OS can do just that (syncfs), else every file system.
func syncAll(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := syncFS(d); err != nil {
		return err
	}
	return d.Sync()
}
