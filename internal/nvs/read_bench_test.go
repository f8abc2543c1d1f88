package nvs

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkParseImage reads a 0x6000 USMP image (namespace, device_id
// string, 32-byte psk blob; generator-made) the way the device does:
// start-up emulation, iteration and one getter per entry.
func BenchmarkParseImage(b *testing.B) {
	img, err := os.ReadFile(filepath.Join(vectorDir, "usmp_psk.bin"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(img)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := ReadImage(img, ReadOptions{})
		if err != nil || len(r.Entries) != 2 {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseDeviceImage reads a device-written 0x6000 image with
// garbage-collected pages and hundreds of erased entries.
func BenchmarkParseDeviceImage(b *testing.B) {
	img, err := os.ReadFile(filepath.Join(deviceDir, "gen_gc.bin"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(img)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadImage(img, ReadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
