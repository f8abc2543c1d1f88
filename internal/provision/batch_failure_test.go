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
					Image: ImageOptions{Layout: DefaultLayout()}, PerDeviceKeys: perDevice, Jobs: 3, Chunk: 5}
				spec.write = (&diskFull{room: room}).write
				regPath := filepath.Join(root, "reg.db")
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
				if _, err := RunBatch(ctx, batchReg(t, filepath.Join(root, "clean.db")), clean); err != nil {
					t.Fatal(err)
				}
				sameFiles(t, snapshot(t, clean.Out), snapshot(t, spec.Out))
			})
		}
	}
}

// TestBatchCleansUp: a batch removes the temporary manifests that killed
// runs left in its directory (they accumulated), and rewrites an image cut
// short (a batch killed mid-write leaves one, 0 bytes or a few pages).
func TestBatchCleansUp(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	out := filepath.Join(root, "out")
	if err := os.MkdirAll(out, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		".manifest.json.tmp-1234567": []byte(`{"version":1`),
		".manifest.json.tmp-89":      nil,
		"d-2.bin":                    bytes.Repeat([]byte{0xff}, 8192),
		"d-3.bin":                    nil,
		"unrelated.tmp-1":            []byte("not the batch's"),
	} {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ids, _ := NewCountIDs("d-", 1, 4)
	spec := BatchSpec{IDs: ids, Source: Derive, Master: master, Out: out, Image: ImageOptions{Layout: DefaultLayout()}}
	if _, err := RunBatch(ctx, batchReg(t, filepath.Join(root, "reg.db")), spec); err != nil {
		t.Fatal(err)
	}
	files := snapshot(t, out)
	for _, gone := range []string{".manifest.json.tmp-1234567", ".manifest.json.tmp-89"} {
		if _, ok := files[gone]; ok {
			t.Errorf("%s is still there", gone)
		}
	}
	if string(files["unrelated.tmp-1"]) != "not the batch's" {
		t.Error("a file that is not the batch's was touched")
	}
	for _, name := range []string{"d-2.bin", "d-3.bin"} {
		di, err := ReadImage(files[name], ImageOptions{Layout: DefaultLayout()})
		if len(files[name]) != DefaultSize || err != nil || di.ID != strings.TrimSuffix(name, ".bin") {
			t.Errorf("%s: %d bytes, %v: not rewritten", name, len(files[name]), err)
		}
	}
}

// TestBatchOutBusy: a second batch into a directory another batch is
// writing fails (a batch owns its directory) instead of racing it, and
// removes none of its files.
func TestBatchOutBusy(t *testing.T) {
	root := t.TempDir()
	out := filepath.Join(root, "out")
	if err := os.MkdirAll(out, 0o700); err != nil {
		t.Fatal(err)
	}
	unlock, locked, err := lockOut(out)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if !locked {
		t.Skip("no flock on this file system")
	}
	tmp := filepath.Join(out, ".manifest.json.tmp-1")
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ids, _ := NewCountIDs("d-", 1, 2)
	spec := BatchSpec{IDs: ids, Source: Derive, Master: master, Out: out, Image: ImageOptions{Layout: DefaultLayout()}}
	if _, err := RunBatch(context.Background(), batchReg(t, filepath.Join(root, "reg.db")), spec); !errors.Is(err, ErrOutBusy) {
		t.Fatalf("err = %v, want ErrOutBusy", err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatal("the other batch's temporary file was removed")
	}
}
