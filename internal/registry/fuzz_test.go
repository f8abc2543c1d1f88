package registry

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usmp/usmp-psk/internal/psk"
)

// hexRuns returns the runs of 8 or more hex digits in data: everything in a
// fuzzed input that could be key material.
func hexRuns(data []byte) []string {
	var out []string
	start := -1
	for i := 0; i <= len(data); i++ {
		if i < len(data) {
			if _, ok := hexNibble(data[i]); ok {
				if start < 0 {
					start = i
				}
				continue
			}
		}
		if start >= 0 && i-start >= 8 {
			out = append(out, string(data[start:i]))
		}
		start = -1
	}
	return out
}

// hexyWords are the words of this package's messages that hold 4 hex
// letters in a row ("header" holds "eade"); they are not echoed input.
var hexyWords = []string{"header", "needed", "replaced"}

// keyWindows returns the 4-character windows (lowercase) of the hex runs of
// the input, leaving out windows of digits only: line numbers and counts
// are digits.
func keyWindows(data []byte) map[string]bool {
	w := map[string]bool{}
	for _, run := range hexRuns(data) {
		run = strings.ToLower(run)
		for i := 0; i+4 <= len(run); i++ {
			if strings.Trim(run[i:i+4], "0123456789") != "" {
				w[run[i:i+4]] = true
			}
		}
	}
	return w
}

// assertNoKeyRun fails when msg holds a 4-character window of a hex run of
// the input (R9, R28), leaving aside the device id, which is a valid id that
// an error may name, and the fixed words of the messages.
func assertNoKeyRun(t *testing.T, msg, device string, windows map[string]bool) {
	t.Helper()
	if device != "" {
		msg = strings.ReplaceAll(msg, device, "")
	}
	msg = strings.ReplaceAll(msg, psk.PlaceholderRule, "")
	for _, w := range hexyWords {
		msg = strings.ReplaceAll(msg, w, "_")
	}
	msg = strings.ToLower(msg)
	for i := 0; i+4 <= len(msg); i++ {
		if windows[msg[i:i+4]] {
			t.Fatalf("error %q holds %q from the input", msg, msg[i:i+4])
		}
	}
}

// seedFiles adds the golden files to a fuzz corpus.
func seedFiles(f *testing.F, names ...string) {
	for _, n := range names {
		if b, err := os.ReadFile(filepath.Join("testdata", n)); err == nil {
			f.Add(b)
		}
	}
}

// FuzzLoadRegistry fuzzes the registry reader (R28): no panic; what it
// accepts encodes and decodes to the same bytes; errors carry no key text.
func FuzzLoadRegistry(f *testing.F) {
	seedFiles(f, "TestGoldenRegistry.golden", "TestGoldenOperations.registry.golden")
	f.Add([]byte(`{"version":1,"devices":[]}`))
	f.Add([]byte(`{"version":1,"devices":[{"id":"a","source":"random","epoch":0,"status":"active","kcv":"00000000","psk":"0f1e2d3c4b5a6978","created":"2025-01-01T00:00:00Z","updated":"2025-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		reg, problems := decodeRegistry("fuzz.json", bytes.Clone(data))
		var windows map[string]bool
		if len(problems) > 0 {
			windows = keyWindows(data)
		}
		for _, p := range problems {
			if p.Device != "" && psk.ValidateDeviceID(p.Device) != nil {
				t.Fatal("a problem names an invalid device id")
			}
			assertNoKeyRun(t, p.Error(), p.Device, windows)
		}
		if reg == nil || len(problems) > 0 {
			return
		}
		enc := encodeRegistry(nil, reg)
		again, problems := decodeRegistry("fuzz.json", bytes.Clone(enc))
		if len(problems) > 0 {
			t.Fatalf("re-decoding the encoding failed: %v", problems[0])
		}
		if enc2 := encodeRegistry(nil, again); !bytes.Equal(enc, enc2) {
			t.Fatal("encode(decode(encode(x))) != encode(x)")
		}
	})
}

// FuzzImport fuzzes the import reader (R28): no panic; entries are valid;
// errors name file and line but carry no key text (R9).
func FuzzImport(f *testing.F) {
	f.Add([]byte("id,psk\ndev-1,82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a\n"))
	f.Add([]byte(`{"dev-1": "82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a", "24:6F:28:AA": "00112233"}`))
	f.Add([]byte("\ufeffdevice_id,psk\r\n\"a\",\"0011\"\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := ParseImport("fuzz", bytes.Clone(data))
		if err != nil {
			var ie *ImportError
			if !errors.As(err, &ie) {
				t.Fatalf("not an ImportError: %T", err)
			}
			if ie.Device != "" && psk.ValidateDeviceID(ie.Device) != nil {
				t.Fatal("an error names an invalid device id")
			}
			assertNoKeyRun(t, err.Error(), ie.Device, keyWindows(data))
			return
		}
		defer set.Destroy()
		seen := map[string]bool{}
		for _, e := range set.Entries {
			if psk.ValidateDeviceID(e.ID) != nil || seen[e.ID] || e.Key.Len() == 0 || psk.IsPlaceholder(e.Key.Expose()) {
				t.Fatal("an invalid entry was accepted")
			}
			seen[e.ID] = true
		}
	})
}
