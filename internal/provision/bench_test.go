package provision

// Batch speed (design §8, issue #7): a batch is bounded by creating one
// file per device, so it is measured on a RAM file system against the floor
// — one process creating the same number of files of the same size and
// nothing else (open exclusive, write, close, single-threaded). Run both
// with scripts/bench-batch.sh, which alternates rounds and prints ratios.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/rawfile"
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
	// Not b.TempDir: that is under $TMPDIR, usually a disk (design §8).
	dir, err := os.MkdirTemp(base, "usmp-bench-") //nolint:usetesting // the benchmarks run on tmpfs, not in $TMPDIR
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func benchBatch(b *testing.B, n int, perDevice bool) { benchBatchJobs(b, n, perDevice, 0) }

func benchBatchJobs(b *testing.B, n int, perDevice bool, jobs int) {
	ctx := context.Background()
	ids, _ := NewCountIDs("fac-", 1, n)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		dir := benchDir(b)
		reg, err := registry.Open(filepath.Join(dir, "reg.db"), registry.Options{})
		if err != nil {
			b.Fatal(err)
		}
		spec := BatchSpec{IDs: ids, Source: Derive, Master: master, Out: filepath.Join(dir, "out"), Image: ImageOptions{Layout: DefaultLayout()}, PerDeviceKeys: perDevice, Jobs: jobs}
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

// BenchmarkBatch10kJobs1 is BenchmarkBatch10k with one image writer: what
// a runner with one CPU gets, and the batch's CPU time per device (compare
// with BenchmarkFloor10k: the difference is what the batch does besides
// creating files).
func BenchmarkBatch10kJobs1(b *testing.B) { benchBatchJobs(b, 10000, false, 1) }

// BenchmarkBatch1k is the same with 1,000 devices.
func BenchmarkBatch1k(b *testing.B) { benchBatch(b, 1000, false) }

// BenchmarkBatchPerDeviceKeys1k encrypts every image with its own keys
// (two files per device).
func BenchmarkBatchPerDeviceKeys1k(b *testing.B) { benchBatch(b, 1000, true) }

func benchFloor(b *testing.B, n int, write func(path string, data []byte) error) {
	data := make([]byte, DefaultSize)
	for i := range data {
		data[i] = 0xff
	}
	for b.Loop() {
		b.StopTimer()
		dir := benchDir(b)
		b.StartTimer()
		for i := 0; i < n; i++ {
			if err := write(filepath.Join(dir, fmt.Sprintf("fac-%05d.bin", i+1)), data); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/device")
}

// rawWrite is the floor's file: three system calls, as the batch makes them.
func rawWrite(path string, data []byte) error { return rawfile.WriteNew(path, data, 0o600) }

// osWrite is the same through os.OpenFile, which adds five system calls
// (internal/rawfile): what the floor was before the batch used rawfile.
func osWrite(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// BenchmarkFloor10k creates 10,000 files of 0x6000 bytes, single-threaded.
func BenchmarkFloor10k(b *testing.B) { benchFloor(b, 10000, rawWrite) }

// BenchmarkFloor10kOSFile is BenchmarkFloor10k through os.OpenFile.
func BenchmarkFloor10kOSFile(b *testing.B) { benchFloor(b, 10000, osWrite) }

// BenchmarkFloor1k creates 1,000 such files.
func BenchmarkFloor1k(b *testing.B) { benchFloor(b, 1000, rawWrite) }

// The parts of a batch's cost per device, to read a profile against
// (scripts/bench-batch.sh; docs/factory.md, "Measuring"). Each reports
// ns/device.

// BenchmarkBatchPartRegistry10k records 10,000 derived devices in a fresh
// registry in one transaction, as RunBatch does before any image is written
// (keys derived, KCVs, audit log, the durable write).
func BenchmarkBatchPartRegistry10k(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	reqs := make([]registry.AddRequest, n)
	for i := range reqs {
		reqs[i] = registry.AddRequest{ID: fmt.Sprintf("fac-%05d", i+1), Key: registry.Derived(master, 0)}
	}
	for b.Loop() {
		b.StopTimer()
		dir := benchDir(b)
		reg, err := registry.Open(filepath.Join(dir, "reg.db"), registry.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		added, err := reg.AddMany(ctx, reqs, registry.AddOptions{Event: registry.EventBatch, KeepExisting: true})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		for _, a := range added {
			a.Key.Destroy()
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/device")
}

// benchParts is how many devices one op of the small parts handles, so
// that -benchtime 3x (as docs/factory.md runs them) still measures.
const benchParts = 1000

// BenchmarkBatchPartImage builds USMP images (0x6000) in a reused buffer.
func BenchmarkBatchPartImage(b *testing.B) {
	ids := make([]string, benchParts)
	keys := make([]*psk.Secret, benchParts)
	for i := range ids {
		ids[i] = fmt.Sprintf("fac-%05d", i+1)
		keys[i] = psk.Derive(master, ids[i], 0)
		defer keys[i].Destroy()
	}
	buf := make([]byte, 0, DefaultSize)
	for b.Loop() {
		for i, id := range ids {
			img, err := nvs.AppendUSMP(buf[:0], nvs.USMPImage{USMPLayout: nvs.DefaultUSMPLayout(), DeviceID: id, PSK: keys[i].Expose(), Size: DefaultSize, Version: 2})
			if err != nil {
				b.Fatal(err)
			}
			buf = img
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchParts, "ns/device")
}

// BenchmarkBatchPartSHA256 hashes 0x6000-byte images for the manifest's
// sha256 (design §5).
func BenchmarkBatchPartSHA256(b *testing.B) {
	img := make([]byte, DefaultSize)
	for i := range img {
		img[i] = 0xff
	}
	b.SetBytes(DefaultSize * benchParts)
	for b.Loop() {
		for range benchParts {
			sum := sha256.Sum256(img)
			img[0] = sum[0]
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchParts, "ns/device")
}
