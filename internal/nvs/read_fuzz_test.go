package nvs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fuzzChunk is how many bytes of a page a compact fuzz input describes:
// header, bitmap and the first 30 entries.
const fuzzChunk = 1024

// fuzzImage expands a compact fuzz input into an image. Go's fuzzer
// minimises every new interesting input, which stalls it for a minute on
// inputs of many KiB, so the inputs stay small: the first byte holds
// flags; with bit 0 set the rest is the image as is (odd sizes,
// truncation), otherwise every fuzzChunk bytes become the start of a page,
// padded with 0xFF, and bits 1-2 add that many blank pages.
func fuzzImage(in []byte) []byte {
	if len(in) == 0 {
		return nil
	}
	flags, body := in[0], in[1:]
	if flags&1 != 0 {
		return body
	}
	var img []byte
	for len(body) > 0 {
		n := min(len(body), fuzzChunk)
		img = append(img, body[:n]...)
		img = append(img, rdBlankPage[:PageSize-n]...)
		body = body[n:]
	}
	for i := 0; i < int(flags>>1&3); i++ {
		img = append(img, rdBlankPage...)
	}
	return img
}

// compactImage is the inverse of fuzzImage for seeds: the first fuzzChunk
// bytes of each page (blank pages are counted into the flags, up to 3).
func compactImage(img []byte) []byte {
	out := []byte{0}
	blank := 0
	for p := 0; p+PageSize <= len(img); p += PageSize {
		pg := img[p : p+PageSize]
		if allFF(pg) && blank < 3 {
			blank++
			continue
		}
		out = append(out, pg[:fuzzChunk]...)
	}
	out[0] = byte(blank << 1)
	return out
}

// addImageSeeds adds the reference images, compacted, to a fuzz corpus
// (R28; more seeds live in testdata/fuzz).
func addImageSeeds(f *testing.F) {
	for _, dir := range []string{deviceDir, vectorDir} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(compactImage(b))
		}
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0xFF, 0xFF})
	f.Add([]byte{6})
}

// FuzzReadImage: ReadImage never panics, never modifies its input, and
// yields a bounded result for any input (R28). Run it with
// go test -run '^$' -fuzz FuzzReadImage -fuzztime 20s ./internal/nvs.
func FuzzReadImage(f *testing.F) {
	addImageSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		b := fuzzImage(in)
		before := bytes.Clone(b)
		for _, ro := range []bool{false, true} {
			img, err := ReadImage(b, ReadOptions{ReadOnly: ro})
			if err != nil {
				t.Fatalf("error for an image within the size limit: %v", err)
			}
			pages := len(b) / PageSize
			if len(img.Pages) != pages {
				t.Fatalf("%d pages for %d bytes", len(img.Pages), len(b))
			}
			if len(img.Entries) > pages*EntriesPerPage {
				t.Fatalf("%d entries from %d pages", len(img.Entries), pages)
			}
			total := 0
			for i := range img.Entries {
				total += len(img.Entries[i].Bytes())
			}
			if total > len(b) {
				t.Fatalf("values hold %d bytes, more than the %d-byte image", total, len(b))
			}
			if img.MountErr != nil && len(img.Entries) != 0 {
				t.Fatal("entries from an image that does not mount")
			}
		}
		if !bytes.Equal(b, before) {
			t.Fatal("input modified")
		}
	})
}

// TestFuzzImageCompaction: seeds expand back to the images they came from
// (for images whose pages hold data only in their first fuzzChunk bytes).
func TestFuzzImageCompaction(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(vectorDir, "usmp_psk.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fuzzImage(compactImage(b)); !bytes.Equal(got, b) {
		t.Errorf("round trip: %s", firstDiff(got, b))
	}
	if got := fuzzImage(append([]byte{1}, b[:100]...)); !bytes.Equal(got, b[:100]) {
		t.Error("raw mode changed the input")
	}
}

func TestReadImageTooLarge(t *testing.T) {
	t.Parallel()
	if _, err := ReadImage(make([]byte, MaxImageSize+1), ReadOptions{}); !errors.Is(err, ErrImageTooLarge) {
		t.Errorf("err = %v, want ErrImageTooLarge", err)
	}
}
