//go:build ignore

// Fixture: the modes the secret writer uses (R5).

package secfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

func writeOK(path, dir string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	_ = os.Mkdir(filepath.Join(dir, "sub"), 0700)
	_ = os.Chmod(dir, 0o700)
	_ = os.Chmod(path, 0o600)
	if err := os.WriteFile(path, data, 0600); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fs.FileMode(0o600))
	if err != nil {
		// Without O_CREATE the mode is not used.
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer tmp.Close()
	return f.Chmod(0o600)
}
