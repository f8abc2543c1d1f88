package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/usmp/usmp-psk/internal/psk"
)

// benchDevices is the registry size of design §8.
const benchDevices = 100_000

// benchFile writes a registry of n devices (every other one random when
// stored) and returns its path and the master.
func benchFile(b *testing.B, n int, stored bool) (string, *psk.Secret) {
	b.Helper()
	master := psk.NewSecret([]byte("benchmark master secret"))
	reg := &regData{recs: make([]*Record, 0, n)}
	rnd := &counterReader{}
	for i := range n {
		id := fmt.Sprintf("dev-%06d", i)
		rec := &Record{Device: Device{ID: id, Source: SourceDerived, Status: StatusActive, Created: t0, Updated: t0}}
		var key *psk.Secret
		if stored && i%2 == 1 {
			key, _ = psk.Generate(rnd, 32)
			rec.Source, rec.Key = SourceRandom, key
		} else {
			key = psk.Derive(master, id, 0)
		}
		rec.KCV = psk.KCV(key)
		reg.recs = append(reg.recs, rec)
	}
	path := filepath.Join(b.TempDir(), "usmp-registry.json")
	if err := os.WriteFile(path, encodeRegistry(nil, reg), 0o600); err != nil {
		b.Fatal(err)
	}
	return path, master
}

func benchOpen(b *testing.B, path string) *Registry {
	reg, err := Open(path, Options{User: func() string { return "bench" }, Getenv: func(string) string { return "" }})
	if err != nil {
		b.Fatal(err)
	}
	return reg
}

// BenchmarkAdd100k is one add to a registry of 100,000 devices (design §8:
// well under a second): lock, read and check, insert, encode, write, fsync,
// rename, fsync of the directory, audit append.
func BenchmarkAdd100k(b *testing.B) {
	for _, stored := range []bool{false, true} {
		name := "derived"
		if stored {
			name = "half-random"
		}
		b.Run(name, func(b *testing.B) {
			path, master := benchFile(b, benchDevices, stored)
			reg := benchOpen(b, path)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				res, err := reg.Add(ctx, fmt.Sprintf("new-%06d", i), Derived(master, 0))
				if err != nil {
					b.Fatal(err)
				}
				res.Key.Destroy()
			}
		})
	}
}

// BenchmarkList100k lists 100,000 devices (registry list).
func BenchmarkList100k(b *testing.B) {
	path, _ := benchFile(b, benchDevices, true)
	reg := benchOpen(b, path)
	ctx := context.Background()
	for b.Loop() {
		list, err := reg.List(ctx)
		if err != nil || len(list) != benchDevices {
			b.Fatal(err)
		}
	}
}

// BenchmarkExport100k exports 100,000 devices, half derived (each derived
// and checked against its KCV), half stored, and writes the JSON map.
func BenchmarkExport100k(b *testing.B) {
	path, master := benchFile(b, benchDevices, true)
	reg := benchOpen(b, path)
	ctx := context.Background()
	for b.Loop() {
		ex, err := reg.Export(ctx, master)
		if err != nil {
			b.Fatal(err)
		}
		if err := ex.WriteJSON(io.Discard); err != nil {
			b.Fatal(err)
		}
		ex.Destroy()
	}
}

// BenchmarkDecode100k and BenchmarkEncode100k isolate the codec.
func BenchmarkDecode100k(b *testing.B) {
	path, _ := benchFile(b, benchDevices, true)
	data := readFile(b, path)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		reg, problems := decodeRegistry(path, data)
		if len(problems) > 0 {
			b.Fatal(problems[0])
		}
		reg.destroy()
	}
}

func BenchmarkEncode100k(b *testing.B) {
	path, _ := benchFile(b, benchDevices, true)
	data := readFile(b, path)
	reg, _ := decodeRegistry(path, bytes.Clone(data))
	buf := make([]byte, 0, len(data)+1024)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		buf = encodeRegistry(buf[:0], reg)
	}
}
