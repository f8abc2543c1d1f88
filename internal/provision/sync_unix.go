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
// (design §8) instead of one fsync per image.
func syncAll(dir string) error {
	syscall.Sync()
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
