package nvs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

var benchPSK = []byte{
	0x82, 0xf1, 0x37, 0x3a, 0xe4, 0x49, 0xab, 0x63, 0xca, 0x9d, 0xc1, 0x45, 0x56, 0x93, 0x4d, 0xdc,
	0xdd, 0x7e, 0xc3, 0x61, 0xc1, 0xd8, 0x00, 0x30, 0xd3, 0x16, 0xe9, 0xca, 0x73, 0x55, 0xa4, 0x0a,
}

// BenchmarkBuildUSMPImage builds one USMP image (namespace, device_id
// string, 32-byte psk blob; 0x6000, v2) in memory. Design §8 wants it well
// under 3 µs/op.
func BenchmarkBuildUSMPImage(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildUSMP(USMPImage{USMPLayout: DefaultUSMPLayout(), DeviceID: "usmp-0001-a1b2c3", PSK: benchPSK, Size: 0x6000, Version: 2}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAllocImageFloor is the floor of BenchmarkBuildUSMPImage: only
// allocating a 0x6000 image and erasing it to 0xFF, nothing encoded. On a
// busy machine the allocation and its garbage collection dominate.
func BenchmarkAllocImageFloor(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		img := make([]byte, 0x6000)
		fillFF(img)
		benchSink = img
	}
}

var benchSink []byte

// BenchmarkAppendUSMPImage is BenchmarkBuildUSMPImage reusing one buffer,
// as a batch does: no allocation, so it measures the encoder itself.
func BenchmarkAppendUSMPImage(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 0x6000)
	for b.Loop() {
		var err error
		if buf, err = AppendUSMP(buf[:0], USMPImage{USMPLayout: DefaultUSMPLayout(), DeviceID: "usmp-0001-a1b2c3", PSK: benchPSK, Size: 0x6000, Version: 2}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGenerateCSV parses and generates a typical CSV (many_entries:
// 100 rows of every kind in 0x10000).
func BenchmarkGenerateCSV(b *testing.B) {
	csv, err := os.ReadFile(filepath.Join(genDir, "many_entries.csv"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(csv)))
	for b.Loop() {
		rows, err := ParseCSV(bytes.NewReader(csv), "many_entries.csv", CSVOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Generate(rows, 0x10000, 2); err != nil {
			b.Fatal(err)
		}
	}
}
