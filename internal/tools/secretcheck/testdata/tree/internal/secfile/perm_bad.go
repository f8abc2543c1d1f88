//go:build ignore

// Fixture for secfile-perm: the secret writer creates files 0600 and
// directories 0700, with the mode written as a literal (R5).

package secfile

import (
	"io/fs"
	"os"
)

const loose = 0o644

func writeBad(path, dir string, data []byte, perm fs.FileMode, flags int) error {
	_ = os.WriteFile(path, data, 0o644)                          // want "secfile-perm"
	_ = os.WriteFile(path, data, perm)                           // want "secfile-perm"
	_ = os.WriteFile(path, data, loose)                          // want "secfile-perm"
	_, _ = os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0644)      // want "secfile-perm"
	_, _ = os.OpenFile(path, flags, 0)                           // want "secfile-perm"
	_, _ = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0) // want "secfile-perm"
	_ = os.Chmod(path, 0o640)                                    // want "secfile-perm"
	_ = os.MkdirAll(dir, 0o755)                                  // want "secfile-perm"
	_ = os.Mkdir(dir, 0o600)                                     // want "secfile-perm"
	f, err := os.Create(path)                                    // want "secfile-perm"
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Chmod(fs.FileMode(0o604)) // want "secfile-perm"
}
