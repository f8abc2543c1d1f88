package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usmp/usmp-psk/internal/golden"
)

// planLines are the dry runs of the plan goldens: ids counted, from a
// file (with a ':' that the image name escapes), a shard, per-device
// keys, and a shard with no device.
var planLines = [][]string{
	{"batch", "--count", "3", "--prefix", "x-", "--out", "dry", "--dry-run"},
	{"batch", "--ids", "ids.txt", "--out", "dry", "--dry-run", "--shard", "1/2"},
	{"batch", "--count", "12", "--out", "dry", "--dry-run", "--random", "--encrypt-per-device", "--shard", "1/5"},
	{"batch", "--count", "2", "--prefix", "x-", "--out", "dry", "--dry-run", "--shard", "3/3"},
}

// planTranscript runs the plan lines with stdout as spec says, plus args.
func planTranscript(t *testing.T, spec stdoutSpec, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ids.txt"), []byte("24:6F:28:AA\ndevice-id-1\nb-1\nb-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for _, line := range planLines {
		line = append(append([]string{}, line...), args...)
		code, out, errOut := runOn(t, spec, dir, line...)
		fmt.Fprintf(&all, "$ usmp-psk %s\n# exit %d\n%s", strings.Join(line, " "), code, out)
		if errOut != "" {
			fmt.Fprintf(&all, "# stderr: %s", errOut)
		}
		if _, err := os.Stat(filepath.Join(dir, "dry")); err == nil {
			t.Fatalf("%v wrote its output directory", line)
		}
	}
	return all.Bytes()
}

// TestBatchPlanJSON is the golden of batch --dry-run --json.
func TestBatchPlanJSON(t *testing.T) {
	golden.Check(t, testdataDir, planTranscript(t, pipe, "--json"))
}
