package provision

// Batch speed (design §8, issue #7): a batch is bounded by creating one
// file per device, so it is measured on a RAM file system against the floor
// — one process creating the same number of files of the same size and
// nothing else (open exclusive, write, close, single-threaded). Run both
// with scripts/bench-batch.sh, which alternates rounds and prints ratios.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/usmp/usmp-psk/internal/registry"
)

// benchDir is a fresh directory on tmpfs when /dev/shm exists.
func benchDir(b *testing.B) string {
	b.Helper()
	base := os.Getenv("USMP_BENCH_DIR")
	if base == "" {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			base = "/dev/shm"
		}
	}
	dir, err := os.MkdirTemp(base, "usmp-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func benchBatch(b *testing.B, n int, perDevice bool) {
	ctx := context.Background()
	ids, _ := NewCountIDs("fac-", 1, n)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		dir := benchDir(b)
		reg, err := registry.Open(filepath.Join(dir, "reg.json"), registry.Options{})
		if err != nil {
			b.Fatal(err)
		}
		spec := BatchSpec{IDs: ids, Source: Derive, Master: master, Out: filepath.Join(dir, "out"), Image: ImageOptions{Layout: DefaultLayout()}, PerDeviceKeys: perDevice}
		b.StartTimer()
		if _, err := RunBatch(ctx, reg, spec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/device")
}

// BenchmarkBatch10k is a derived batch of 10,000 devices, registry and
// manifest included.
func BenchmarkBatch10k(b *testing.B) { benchBatch(b, 10000, false) }

// BenchmarkBatch1k is the same with 1,000 devices.
func BenchmarkBatch1k(b *testing.B) { benchBatch(b, 1000, false) }

// BenchmarkBatchPerDeviceKeys1k encrypts every image with its own keys
// (two files per device).
func BenchmarkBatchPerDeviceKeys1k(b *testing.B) { benchBatch(b, 1000, true) }

func benchFloor(b *testing.B, n int) {
	data := make([]byte, DefaultSize)
	for i := range data {
		data[i] = 0xff
	}
	for b.Loop() {
		b.StopTimer()
		dir := benchDir(b)
		b.StartTimer()
		for i := 0; i < n; i++ {
			f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("fac-%05d.bin", i+1)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Write(data); err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/device")
}

// BenchmarkFloor10k creates 10,000 files of 0x6000 bytes, single-threaded.
func BenchmarkFloor10k(b *testing.B) { benchFloor(b, 10000) }

// BenchmarkFloor1k creates 1,000 such files.
func BenchmarkFloor1k(b *testing.B) { benchFloor(b, 1000) }
