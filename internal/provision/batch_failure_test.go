package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// diskFull is a disk that fills up: the first `room` bytes written through
// it are written, then every write is cut short with ENOSPC, as on a full
// file system. It is safe for the batch's parallel writers.
type diskFull struct {
	mu   sync.Mutex
	room int
}

func (d *diskFull) write(f *os.File, b []byte) (int, error) {
	d.mu.Lock()
	n := min(len(b), d.room)
	d.room -= n
	d.mu.Unlock()
	if n < len(b) {
		m, _ := f.Write(b[:n])
		return m, syscall.ENOSPC
	}
	return f.Write(b)
}

// checkOut fails unless every .bin file under dir has size bytes (or, under
// keys/, the 4096 of an nvs_keys partition) and no temporary file is left.
func checkOut(t *testing.T, dir string, size int) int {
	t.Helper()
	n := 0
	for rel, b := range snapshot(t, dir) {
		switch {
		case strings.Contains(filepath.Base(rel), ".tmp-"):
			t.Errorf("temporary file left: %s", rel)
		case strings.HasPrefix(rel, "keys"+string(filepath.Separator)) && len(b) != 4096:
			t.Errorf("%s: %d bytes, a keys file cut short", rel, len(b))
		case !strings.HasPrefix(rel, "keys") && strings.HasSuffix(rel, ".bin") && len(b) != size:
			t.Errorf("%s: %d bytes, an image cut short", rel, len(b))
		case strings.HasSuffix(rel, ".bin"):
			n++
		}
	}
	return n
}

// TestBatchDiskFull: a batch whose disk fills up fails with the I/O error,
// removes the images (and keys files) it had not finished writing, leaves
// no temporary file and no manifest; a re-run on a disk with room finishes
// it, byte for byte as a batch that never failed (issue 13 item 3: the
// partial images stayed, and verify called them a match).
func TestBatchDiskFull(t *testing.T) {
	for _, perDevice := range []bool{false, true} {
		for _, room := range []int{0, 3*DefaultSize + 5000, 7*DefaultSize + 8192} {
			name := fmt.Sprintf("%s, room %d", map[bool]string{false: "images", true: "images and keys"}[perDevice], room)
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				root := t.TempDir()
				ids, _ := NewCountIDs("d-", 1, 12)
				spec := BatchSpec{IDs: ids, Source: Derive, Master: master, Out: filepath.Join(root, "out"),
					Image: ImageOptions{Layout: DefaultLayout()}, PerDeviceKeys: perDevice, Jobs: 3, Chunk: 5,
					Rand: bytes.NewReader(bytes.Repeat([]byte{7}, 1<<16))}
				spec.write = (&diskFull{room: room}).write
				regPath := filepath.Join(root, "reg.json")
				if _, err := RunBatch(ctx, batchReg(t, regPath), spec); !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("err = %v, want ENOSPC", err)
				}
				checkOut(t, spec.Out, DefaultSize)
				if _, err := os.Stat(filepath.Join(spec.Out, "manifest.json")); err == nil {
					t.Fatal("a failed batch published its manifest")
				}
				spec.write = nil
				res, err := RunBatch(ctx, batchReg(t, regPath), spec)
				if err != nil || res.Devices != 12 {
					t.Fatalf("re-run: %+v %v", res, err)
				}
				if n := checkOut(t, spec.Out, DefaultSize); n != map[bool]int{false: 12, true: 24}[perDevice] {
					t.Fatalf("%d files after the re-run", n)
				}
				if perDevice {
					return // random keys: nothing to compare with
				}
				clean := spec
				clean.Out = filepath.Join(root, "clean")
				if _, err := RunBatch(ctx, batchReg(t, filepath.Join(root, "clean.json")), clean); err != nil {
					t.Fatal(err)
				}
				sameFiles(t, snapshot(t, clean.Out), snapshot(t, spec.Out))
			})
		}
	}
}
