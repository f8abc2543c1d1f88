//go:build unix

package rawfile

import (
	"bytes"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// child writes 24 KiB under a 4 KiB file size limit, with SIGXFSZ ignored
// so that the write fails with EFBIG instead of killing the process.
func child(path string) error {
	signal.Ignore(syscall.SIGXFSZ)
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: 4096, Max: 4096}); err != nil {
		return err
	}
	return WriteNew(path, bytes.Repeat([]byte{0xff}, 0x6000), 0o600)
}
