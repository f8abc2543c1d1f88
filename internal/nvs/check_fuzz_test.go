package nvs

import (
	"bytes"
	"testing"
)

// FuzzCheck: CheckImage never panics, never modifies its input, and its report
// is bounded by the size of the image (R28).
func FuzzCheck(f *testing.F) {
	addImageSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		b := fuzzImage(in)
		before := bytes.Clone(b)
		fs := CheckImage(b, CheckOptions{})
		pages := len(b) / PageSize
		// At most a few findings per entry slot, plus per-page and
		// whole-image ones.
		if limit := pages*(3*EntriesPerPage+4) + 8; len(fs) > limit {
			t.Fatalf("%d findings for %d pages", len(fs), pages)
		}
		for _, f := range fs {
			if f.Page >= pages || f.Entry >= EntriesPerPage || f.Detail == "" {
				t.Fatalf("bad finding %v", f)
			}
		}
		if !bytes.Equal(b, before) {
			t.Fatal("input modified")
		}
	})
}
