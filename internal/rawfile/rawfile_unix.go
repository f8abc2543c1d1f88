//go:build unix

package rawfile

import (
	"errors"
	"io"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

func writeNew(path string, data []byte, perm fs.FileMode) error {
	var fd int
	err := retry(func() (err error) {
		fd, err = unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, uint32(perm.Perm()))
		return err
	})
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	werr := writeAll(fd, path, data)
	cerr := unix.Close(fd)
	if werr == nil && cerr != nil {
		werr = &fs.PathError{Op: "close", Path: path, Err: cerr}
	}
	if werr != nil {
		_ = unix.Unlink(path)
		return werr
	}
	return nil
}

// writeAll writes data, resuming after a short write.
func writeAll(fd int, path string, data []byte) error {
	for len(data) > 0 {
		var n int
		err := retry(func() (err error) {
			n, err = unix.Write(fd, data)
			return err
		})
		if err != nil {
			return &fs.PathError{Op: "write", Path: path, Err: err}
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		data = data[n:]
	}
	return nil
}

// retry repeats a system call that a signal interrupted.
func retry(call func() error) error {
	for {
		err := call()
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
