//go:build unix

package registry

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// chmodNoFollow makes the regular file at path 0600 without following a
// symbolic link (or blocking on a FIFO); a missing file is no error.
func chmodNoFollow(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer func() { _ = unix.Close(fd) }() // read-only: nothing to lose
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s: not a regular file", path)
	}
	if err := unix.Fchmod(fd, 0o600); err != nil {
		return &fs.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}

// noFollow makes an open fail on a symbolic link: the legacy writers' lock
// file must not be created or opened through one planted at its path.
const noFollow = unix.O_NOFOLLOW

// nonBlock makes an open of a FIFO return at once instead of waiting for a
// writer, so that the file can be refused for not being regular (issue 13
// item 6).
const nonBlock = unix.O_NONBLOCK
