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
			if c := data[i]; '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' {
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

// FuzzLegacyRegistry fuzzes the reader of JSON registries of earlier
// versions (registry migrate): no panic; what it accepts are valid records;
// errors carry no key text.
func FuzzLegacyRegistry(f *testing.F) {
	seedFiles(f, "legacy-registry.json")
	f.Add([]byte(`{"version":1,"audit":{"seq":0,"hash":""},"devices":[]}`))
	f.Add([]byte(`{"version":1,"audit":{"seq":1,"hash":"x"},"devices":[{"id":"a","source":"random","epoch":0,"status":"active","kcv":"00000000","psk":"0f1e2d3c4b5a6978","created":"2025-01-01T00:00:00Z","updated":"2025-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, _, err := parseLegacy("fuzz.json", bytes.Clone(data))
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("not a CorruptError: %T", err)
			}
			if ce.Device != "" && psk.ValidateDeviceID(ce.Device) != nil {
				t.Fatal("an error names an invalid device id")
			}
			assertNoKeyRun(t, err.Error(), ce.Device, keyWindows(data))
			return
		}
		defer snap.destroy()
		for _, r := range snap.recs {
			if field, msg := r.validate(true); msg != "" {
				t.Fatalf("an invalid record was accepted: %s: %s", field, msg)
			}
		}
	})
}

// FuzzAuditLine fuzzes the audit entry parser: no panic; an accepted line
// is its entry's exact canonical line.
func FuzzAuditLine(f *testing.F) {
	ev := AuditEvent{Time: t0, Event: EventAdd, Device: "dev-1", KCV: "0badc0de", Epoch: 2, Source: SourceRandom, Actor: "tester CI_JOB_ID=7"}
	line, _ := auditLine(3, &ev, zeroHash)
	f.Add(line)
	ev.Source, ev.Device = "", ""
	line, _ = auditLine(1, &ev, zeroHash)
	f.Add(line)
	f.Fuzz(func(t *testing.T, data []byte) {
		e, msg := parseAuditLine(data)
		if msg != "" {
			return
		}
		again, hash := auditLine(e.Seq, &e.AuditEvent, e.Prev)
		if !bytes.Equal(again, data) || hash != e.Hash {
			t.Fatalf("accepted a line that is not canonical:\n%q\n%q", data, again)
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
