// Package rawfile creates a file, writes it and closes it with three
// system calls. os.OpenFile on Linux adds five more to every file (two
// fcntl to make it non-blocking, an epoll_ctl that a regular file refuses,
// two fcntl to undo it): for a factory batch, which creates one small file
// per device on a RAM file system, that is a large part of its time in the
// kernel (docs/factory.md, "Where the time goes").
package rawfile

import "io/fs"

// WriteNew creates path exclusively with mode perm (less the umask), writes
// data to it and closes it. A path that exists fails with an *fs.PathError
// that matches fs.ErrExist, and is left alone; a file it created but could
// not finish (a full disk, an I/O error) is removed before it returns.
func WriteNew(path string, data []byte, perm fs.FileMode) error {
	return writeNew(path, data, perm)
}
