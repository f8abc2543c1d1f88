package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usmp/usmp-psk/internal/psk"
)

// TestCorruption: every kind of damage is detected and reported with file,
// line and field, never echoing key bytes (R9); nothing is repaired: a
// writer refuses the file and leaves it as it is.
func TestCorruption(t *testing.T) {
	// A fixed key: the test compares 4-character runs of its hex with the
	// messages, and with a random key a run now and then matched a digit
	// run of the temporary directory's name (a false alarm, not a leak).
	sum := sha256.Sum256([]byte("TestCorruption canary"))
	kb := sum[:]
	key := psk.CopySecret(kb)
	kh := hex.EncodeToString(kb)
	kcv := psk.KCV(key)
	const times = `"created":"2025-01-01T00:00:00Z","updated":"2025-01-01T00:00:00Z"`
	good := `{"id":"good","source":"random","epoch":0,"status":"active","kcv":"` + kcv + `","psk":"` + kh + `",` + times + `}`
	rnd := func(id, kcvv, pskField string) string {
		return `{"id":"` + id + `","source":"random","epoch":0,"status":"active","kcv":"` + kcvv + `",` + pskField + times + `}`
	}
	derived := func(extra string) string {
		return `{"id":"d","source":"derived","epoch":0,"status":"active","kcv":"00000000",` + extra + times + `}`
	}
	// file puts the device under test on line 4.
	file := func(dev string) string {
		return "{\n\"version\": 1,\n\"devices\": [" + good + ",\n" + dev + "\n]}\n"
	}
	tests := []struct {
		name   string
		text   string
		line   int
		field  string
		device string
		msg    string
	}{
		{"empty", "", 1, "", "", "unexpected end of file"},
		{"not json", `{"version": 1, "devices": [` + good[:70] + kh, 1, "", "", "unexpected end of file in a string"},
		{"not json 2", `{"version": 1 "devices": [` + good + `]}`, 1, "", "", "syntax error, expected ',' or '}'"},
		{"truncated", file(good)[:200], 3, "", "", "unexpected end of file"},
		{"not an object", `["` + kh + `"]`, 1, "", "", "expected '{'"},
		{"no version", `{"devices": []}`, 1, "version", "", "not a usmp-psk registry"},
		{"unknown version", `{"version": 2, "devices": [{"psk": "` + kh + `"}]}`, 1, "version", "", "unsupported registry version"},
		{"version not a number", `{"version": "1", "devices": []}`, 1, "version", "", "must be a number"},
		{"no devices", `{"version": 1}`, 1, "devices", "", "missing"},
		{"trailing data", file(good) + kh, 6, "", "", "unexpected data"},
		{"duplicate id", file(strings.Replace(good, `"id":"good"`, `"id":"good"`, 1)), 4, "id", "good", "duplicate device id (also on line 3)"},
		{"invalid id", file(rnd("bad id", kcv, `"psk":"`+kh+`",`)), 4, "id", "", "not a valid device id"},
		{"id holding the key", file(rnd(kh+"x", kcv, `"psk":"`+kh+`",`)), 4, "id", "", "not a valid device id"},
		{"kcv does not match key", file(rnd("r", "00000000", `"psk":"`+kh+`",`)), 4, "kcv", "r", "does not match the stored key"},
		{"kcv malformed", file(rnd("r", kh[:8]+"X", `"psk":"`+kh+`",`)), 4, "kcv", "r", "not a KCV"},
		{"bad hex", file(rnd("r", kcv, `"psk":"`+kh[:10]+"z"+kh[11:]+`",`)), 4, "psk", "r", "character 11 is not a hex digit"},
		{"odd hex", file(rnd("r", kcv, `"psk":"`+kh[1:]+`",`)), 4, "psk", "r", "odd number"},
		{"escaped hex", file(rnd("r", kcv, `"psk":"\u00`+kh[2:]+`",`)), 4, "psk", "r", "escapes are not allowed"},
		{"psk not a string", file(rnd("r", kcv, `"psk":[1],`)), 4, "psk", "r", "must be a string"},
		{"active random without key", file(rnd("r", kcv, "")), 4, "psk", "r", "missing"},
		{"derived with key", file(derived(`"psk":"` + kh + `",`)), 4, "psk", "d", "must not hold key bytes"},
		{"missing field", file(`{"id":"m","source":"derived","epoch":0,"status":"active",` + times + `}`), 4, "kcv", "m", "missing"},
		{"unknown field", file(derived(`"key":"` + kh + `",`)), 4, "", "d", "unknown field"},
		{"duplicate field", file(derived(`"epoch":1,`)), 4, "epoch", "d", "duplicate field"},
		{"negative epoch", file(strings.Replace(derived(""), `"epoch":0`, `"epoch":-1`, 1)), 4, "epoch", "d", "negative"},
		{"epoch too big", file(strings.Replace(derived(""), `"epoch":0`, `"epoch":4294967296`, 1)), 4, "epoch", "d", "out of range"},
		{"fractional epoch", file(strings.Replace(derived(""), `"epoch":0`, `"epoch":1.5`, 1)), 4, "epoch", "d", "whole number"},
		{"bad source", file(strings.Replace(derived(""), `"derived"`, `"magic"`, 1)), 4, "source", "d", "not one of"},
		{"bad status", file(strings.Replace(derived(""), `"active"`, `"lost"`, 1)), 4, "status", "d", "not one of"},
		{"bad time", file(strings.Replace(derived(""), `2025-01-01T00:00:00Z","updated`, `2025-02-30T00:00:00Z","updated`, 1)), 4, "created", "d", "RFC 3339"},
		{"revoked without time", file(strings.Replace(derived(""), `"active"`, `"revoked"`, 1)), 4, "revoked", "d", "missing"},
		{"revoked time on active", file(derived(`"revoked":"2025-01-01T00:00:00Z",`)), 4, "revoked", "d", "active"},
		{"bad history", file(derived(`"history":[{"kcv":"00000000","epoch":0}],`)), 4, "history", "d", "needs kcv"},
		{"control character", file(derived("\"revoke_reason\":\"a\x01\",")), 4, "", "", "control character"},
		{"deep nesting", file(derived(`"history":[` + strings.Repeat("[", 100))), 4, "history", "d", "an entry must be an object (and 1 more problems"},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "usmp-registry.json")
			if err := os.WriteFile(path, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			reg, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = reg.List(ctx)
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want a CorruptError", err)
			}
			if ce.Path != path || ce.Line != tt.line || ce.Field != tt.field || ce.Device != tt.device || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %q (line %d field %q device %q), want line %d field %q device %q msg %q",
					err, ce.Line, ce.Field, ce.Device, tt.line, tt.field, tt.device, tt.msg)
			}
			// R9: no run of the key in the message (the device id is a
			// valid id, never key text).
			msg := strings.ReplaceAll(err.Error(), ce.Path, "")
			assertNoOverlap(t, strings.Replace(msg, ce.Device, "", 1), kh)

			// Never repaired: a writer refuses, the file stays as it was.
			if _, err := reg.Add(ctx, "new", Random()); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("a writer accepted a damaged registry: %v", err)
			}
			if !bytes.Equal(readFile(t, path), []byte(tt.text)) {
				t.Fatal("the damaged registry was changed")
			}
			// registry check lists it as a finding.
			rep, err := reg.Check(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Findings) == 0 {
				t.Fatal("check has no findings")
			}
			for _, f := range rep.Findings {
				assertNoOverlap(t, strings.ReplaceAll(strings.Replace(f.String(), f.Device, "", 1), path, ""), kh)
			}
		})
	}
}

// TestCheckListsEveryProblem: check reports each damaged record and still
// reads the sound ones; Load reports the first and counts the rest.
func TestCheckListsEveryProblem(t *testing.T) {
	const times = `"created":"2025-01-01T00:00:00Z","updated":"2025-01-01T00:00:00Z"`
	text := "{\"version\":1,\"devices\":[\n" +
		`{"id":"a","source":"derived","epoch":0,"status":"active","kcv":"0000000g",` + times + "},\n" +
		`{"id":"b","source":"derived","epoch":0,"status":"active","kcv":"00000000",` + times + "},\n" +
		`{"id":"c","source":"derived","epoch":0,"status":"active","kcv":"00000000",` + times + `,"x":1},` + "\n" +
		`{"id":"b","source":"derived","epoch":0,"status":"active","kcv":"00000000",` + times + "}\n]}"
	path := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	reg, _ := Open(path, Options{})
	rep, err := reg.Check(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range rep.Findings {
		got = append(got, f.String())
	}
	want := []string{
		`line 2: device "a": kcv: not a KCV (8 lowercase hex digits)`,
		`line 4: device "c": unknown field`,
		`line 5: device "b": id: duplicate device id (also on line 3)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.Devices != 1 {
		t.Fatalf("%d sound devices, want 1 (b)", rep.Devices)
	}
	_, err = reg.List(context.Background())
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.More != 2 || !strings.Contains(err.Error(), "and 2 more problems") {
		t.Fatalf("load: %v", err)
	}
}
