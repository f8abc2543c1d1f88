package rawfile

import (
	"fmt"
	"os"
	"testing"
)

// TestMain doubles as the child of TestWriteNewRemovesUnfinished.
func TestMain(m *testing.M) {
	if path := os.Getenv("RAWFILE_CHILD"); path != "" {
		fmt.Println(child(path))
		os.Exit(0)
	}
	os.Exit(m.Run())
}
