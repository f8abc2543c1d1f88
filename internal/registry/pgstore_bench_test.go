package registry

import (
	"context"
	"fmt"
	"testing"

	"github.com/usmp/usmp-psk/internal/psk"
)

// benchPG seeds a PostgreSQL registry with n devices (every other one
// random, so half the rows hold a sealed key) and returns it.
func benchPG(b *testing.B, n int) (*Registry, *psk.Secret) {
	b.Helper()
	ctx := context.Background()
	f := newFixture(b, "postgres", func(o *Options) { o.Now = nil })
	master := psk.NewSecret([]byte("benchmark master secret"))
	for start := 0; start < n; start += 5000 {
		var reqs []AddRequest
		for i := start; i < min(start+5000, n); i++ {
			spec := Derived(master, 0)
			if i%2 == 1 {
				spec = Random()
			}
			reqs = append(reqs, AddRequest{fmt.Sprintf("dev-%06d", i), spec})
		}
		res, err := f.env.reg.AddMany(ctx, reqs, AddOptions{Event: EventBatch})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			r.Key.Destroy()
		}
	}
	return f.env.reg, master
}

// BenchmarkPGAdd is one add (connect, lock, read what it needs, seal,
// insert, audit append, commit) to a registry of 20,000 devices.
func BenchmarkPGAdd(b *testing.B) {
	reg, _ := benchPG(b, 20_000)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		res, err := reg.Add(ctx, fmt.Sprintf("new-%08d", i), Random())
		if err != nil {
			b.Fatal(err)
		}
		res.Key.Destroy()
	}
}

// BenchmarkPGBatchChunk100 is one batch chunk of 100 devices (AddMany).
func BenchmarkPGBatchChunk100(b *testing.B) {
	reg, master := benchPG(b, 20_000)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var reqs []AddRequest
		for j := range 100 {
			reqs = append(reqs, AddRequest{fmt.Sprintf("chunk-%06d-%03d", i, j), Derived(master, 0)})
		}
		res, err := reg.AddMany(ctx, reqs, AddOptions{Event: EventBatch})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			r.Key.Destroy()
		}
	}
}

// BenchmarkPGExport20k exports 20,000 devices (half derived, half sealed).
func BenchmarkPGExport20k(b *testing.B) {
	reg, master := benchPG(b, 20_000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		ex, err := reg.Export(ctx, master)
		if err != nil {
			b.Fatal(err)
		}
		ex.Destroy()
	}
}
