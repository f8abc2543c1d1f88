package rawfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

func TestWriteNew(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{0xff}, 0x6000)
	tests := []struct {
		name    string
		path    string
		data    []byte
		wantErr error
	}{
		{"new file", filepath.Join(dir, "a.bin"), big, nil},
		{"empty file", filepath.Join(dir, "empty"), nil, nil},
		{"exists", existing, big, fs.ErrExist},
		{"no directory", filepath.Join(dir, "missing", "a.bin"), big, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteNew(tt.path, tt.data, 0o600)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("WriteNew: %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				var pe *fs.PathError
				if !errors.As(err, &pe) || pe.Path != tt.path {
					t.Fatalf("error %v does not name %s", err, tt.path)
				}
				return
			}
			got, err := os.ReadFile(tt.path)
			if err != nil || !bytes.Equal(got, tt.data) {
				t.Fatalf("read back %d bytes (%v), want %d", len(got), err, len(tt.data))
			}
			if fi, _ := os.Stat(tt.path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep" {
		t.Fatalf("an existing file was changed: %q", b)
	}
}

// TestWriteNewRemovesUnfinished runs WriteNew in a child process whose file
// size limit stops the write half way: the file must not stay behind.
func TestWriteNewRemovesUnfinished(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("RLIMIT_FSIZE: Linux")
	}
	if os.Getenv("RAWFILE_CHILD") != "" {
		return // the child's work is in TestMain
	}
	path := filepath.Join(t.TempDir(), "cut.bin")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RAWFILE_CHILD="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("file too large")) {
		t.Fatalf("child did not fail the write with EFBIG: %s", out)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an unfinished file stayed behind: %v", err)
	}
}
