//go:build unix

package secfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPublishedError: a write whose directory sync fails after the rename
// says that the file is in place (*PublishedError, with the cause's text),
// so a caller can tell "written, maybe not durable" from "not written".
// A failure before the rename is no PublishedError.
func TestPublishedError(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "out")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "k.bin")
	// The directory moves away just before its sync, which then fails.
	moveAway := Options{StepHook: func(step, p string) {
		if step == "before-dirsync" && p == path {
			_ = os.Rename(dir, dir+".away")
		}
	}}
	err := WriteFile(path, []byte("key"), moveAway)
	var pe *PublishedError
	if !errors.As(err, &pe) || pe.Path != path || !strings.HasPrefix(err.Error(), "open directory "+dir+":") {
		t.Fatalf("err = %v, want a *PublishedError for %s", err, path)
	}
	if b, rerr := os.ReadFile(filepath.Join(dir+".away", "k.bin")); rerr != nil || string(b) != "key" {
		t.Fatalf("the file is not in place: %q %v", b, rerr)
	}
	// Refused before the rename: not published.
	err = WriteFile(filepath.Join(dir+".away", "k.bin"), []byte("key"), Options{})
	if err == nil || errors.As(err, &pe) {
		t.Fatalf("err = %v, want an error that is no *PublishedError", err)
	}
}
