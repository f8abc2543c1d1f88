package registry

// Benchmarks of the registry's cost as it grows (docs/scale-out.md has the
// figures and how to reproduce them; scripts/bench-registry.sh runs them
// with the process-level ones):
//
//	BenchmarkAdd/sqlite/1k, /100k        one 'registry add' on a registry of N devices
//	BenchmarkBatch/sqlite/10k, /200k     a batch's registry part, per device
//	BenchmarkBatch/postgres/10k          the same on PostgreSQL
//
// Set TMPDIR to a RAM file system (/dev/shm) to measure the registry and
// not the disk's fsync, as the factory benchmark does.

import (
	"context"
	"fmt"
	"testing"

	"github.com/usmp/usmp-psk/internal/psk"
)

// benchMaster derives the benchmark's devices.
var benchMaster = psk.NewSecret([]byte("benchmark master secret"))

// benchRegistry is a registry of n devices (every other one random) on
// the engine kind.
func benchRegistry(b *testing.B, kind string, n int) *Registry {
	b.Helper()
	f := newFixture(b, kind, func(o *Options) { o.Now = nil })
	recordBatch(b, f.env.reg, "dev-", n)
	return f.env.reg
}

// recordBatch records n devices the way 'usmp-psk batch' does: chunks of
// 512, 1024, … up to 16384 devices, each one AddMany with KeepExisting,
// every other device random.
func recordBatch(b *testing.B, reg *Registry, prefix string, n int) {
	b.Helper()
	ctx := context.Background()
	for start, size := 0, 512; start < n; start, size = start+size, min(2*size, 16384) {
		reqs := make([]AddRequest, 0, size)
		for i := start; i < min(start+size, n); i++ {
			spec := Derived(benchMaster, 0)
			if i%2 == 1 {
				spec = Random()
			}
			reqs = append(reqs, AddRequest{fmt.Sprintf("%s%07d", prefix, i), spec})
		}
		res, err := reg.AddMany(ctx, reqs, AddOptions{Event: EventBatch, KeepExisting: true})
		if err != nil {
			b.Fatal(err)
		}
		destroyResults(res)
	}
}

// BenchmarkAdd is one 'registry add' (a random key: the git guard's and
// the seal's work included) on a registry of 1,000 and of 100,000 devices.
func BenchmarkAdd(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("sqlite/%dk", n/1000), func(b *testing.B) {
			reg := benchRegistry(b, "sqlite", n)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				res, err := reg.Add(ctx, fmt.Sprintf("new-%08d", i), Random())
				if err != nil {
					b.Fatal(err)
				}
				res.Key.Destroy()
			}
		})
	}
}

// BenchmarkBatch records a batch of N devices into a new registry; the
// ns/device metric is the registry's cost per device.
func BenchmarkBatch(b *testing.B) {
	for _, tt := range []struct {
		kind string
		n    int
	}{{"sqlite", 10_000}, {"sqlite", 200_000}, {"postgres", 10_000}} {
		b.Run(fmt.Sprintf("%s/%dk", tt.kind, tt.n/1000), func(b *testing.B) {
			devices := 0
			for b.Loop() {
				b.StopTimer()
				f := newFixture(b, tt.kind, func(o *Options) { o.Now = nil })
				b.StartTimer()
				recordBatch(b, f.env.reg, "dev-", tt.n)
				devices += tt.n
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(devices), "ns/device")
		})
	}
}
