//go:build unix

package provision

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockOut locks a batch's output directory for as long as the batch runs:
// an exclusive flock on the directory's own descriptor, so that no lock
// file is left among the images that are handed on. locked is false where
// the file system has no flock (the batch then runs unlocked, as before);
// another batch holding the lock is an error wrapping ErrOutBusy.
func lockOut(dir string) (unlock func(), locked bool, err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		d.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, fmt.Errorf("%s: %w", dir, ErrOutBusy)
		}
		return func() {}, false, nil
	}
	// Closing the descriptor releases the lock.
	return func() { d.Close() }, true, nil
}
