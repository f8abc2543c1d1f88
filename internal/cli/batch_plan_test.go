package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/usmp/usmp-psk/internal/golden"
	"github.com/usmp/usmp-psk/internal/provision"
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

// heapSampler throws away what is written to it and, every sampleEvery
// bytes, measures the live heap: the peak a printer reaches while it
// writes.
type heapSampler struct {
	written, next int
	peak          uint64
}

const sampleEvery = 1 << 20

func (h *heapSampler) Write(p []byte) (int, error) {
	h.written += len(p)
	if h.written >= h.next {
		h.next = h.written + sampleEvery
		h.peak = max(h.peak, liveHeap())
	}
	return len(p), nil
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestBatchPlanStreams: a dry run prints its plan a device at a time, as
// JSON too — --count 10000000 --json held every device, then all of its
// JSON, 6.7 GB. The live heap while a 200,000-device plan is written stays
// under 1 MiB above where it started (5 bytes a device: not even a slice
// of the positions fits).
func TestBatchPlanStreams(t *testing.T) {
	const devices = 200_000
	for _, mode := range []struct {
		name string
		json bool
		tty  bool
	}{{"json", true, false}, {"tsv", false, false}, {"table", false, true}} {
		t.Run(mode.name, func(t *testing.T) {
			ids, err := provision.NewCountIDs("dev-", 1, devices)
			if err != nil {
				t.Fatal(err)
			}
			spec := provision.BatchSpec{IDs: ids, Shard: provision.Shard{I: 1, N: 1}, Out: "out", PerDeviceKeys: true}
			ios, _, _, _ := testIOStreams()
			ios.SetStdoutTTY(mode.tty)
			ios.SetTerminalWidth(60)
			sink := &heapSampler{}
			ios.Out = sink
			opts := &batchOptions{IO: ios, json: mode.json}
			before := liveHeap()
			if err := printPlan(context.Background(), spec, opts); err != nil {
				t.Fatal(err)
			}
			if sink.written < devices*20 {
				t.Fatalf("%d bytes written for %d devices", sink.written, devices)
			}
			if grew := int64(sink.peak) - int64(before); grew > 1<<20 {
				t.Errorf("the live heap grew by %d bytes while the plan was written", grew)
			}
		})
	}
}

// TestBatchPlanInterrupted: Ctrl-C during a long plan stops it at the next
// buffer with the context's error (exit 130), not once all of it is out.
func TestBatchPlanInterrupted(t *testing.T) {
	ids, err := provision.NewCountIDs("dev-", 1, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	spec := provision.BatchSpec{IDs: ids, Shard: provision.Shard{I: 1, N: 1}, Out: "out"}
	for _, asJSON := range []bool{true, false} {
		ios, _, stdout, _ := testIOStreams()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := printPlan(ctx, spec, &batchOptions{IO: ios, json: asJSON})
		if !errors.Is(err, context.Canceled) || stdout.Len() > 0 {
			t.Fatalf("json %v: %v, %d bytes written", asJSON, err, stdout.Len())
		}
	}
}
