package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/usmp/usmp-psk/internal/psk"
)

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestParseImport reads both import formats.
func TestParseImport(t *testing.T) {
	k1, k2 := randomHex(t, 32), randomHex(t, 32)
	tests := []struct {
		name string
		text string
	}{
		{"json map", `{"dev-1": "` + k1 + `", "24:6F:28:AA": "` + strings.ToUpper(k2) + `"}`},
		{"export layout", "{\n  \"dev-1\": \"" + k1 + "\",\n  \"24:6F:28:AA\": \"" + k2 + "\"\n}\n"},
		{"csv", "id,psk\ndev-1," + k1 + "\n24:6F:28:AA," + k2 + "\n"},
		{"csv crlf quotes bom blank lines", "\ufeffdevice_id , PSK\r\n\r\n\"dev-1\", \"" + k1 + "\"\r\n24:6F:28:AA," + k2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := ParseImport("in", []byte(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			defer set.Destroy()
			if len(set.Entries) != 2 || len(set.Warnings) != 0 {
				t.Fatalf("%d entries, warnings %q", len(set.Entries), set.Warnings)
			}
			got := map[string]string{}
			for _, e := range set.Entries {
				got[e.ID] = hex.EncodeToString(e.Key.Expose())
			}
			if got["dev-1"] != k1 || got["24:6F:28:AA"] != k2 {
				t.Fatal("wrong keys")
			}
		})
	}
	set, err := ParseImport("in", []byte("id,psk\nshort,00112233\n"))
	if err != nil || len(set.Warnings) != 1 || !strings.Contains(set.Warnings[0], "in:2:") || !strings.Contains(set.Warnings[0], "4 bytes") {
		t.Fatalf("short key: %v %q", err, set.Warnings)
	}
}

// TestParseImportErrors: every bad entry is refused with file and line,
// never the key (R9).
func TestParseImportErrors(t *testing.T) {
	k := randomHex(t, 32)
	const doc = "7f3a1b9e2c4d5f6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a"
	tests := []struct {
		name, text string
		line       int
		msg        string
	}{
		{"empty", "", 0, "no devices"},
		{"only header", "id,psk\n", 0, "no devices"},
		{"empty map", "{}", 0, "no devices"},
		{"no header", "dev," + k + "\n", 1, "header id,psk"},
		{"bad id csv", "id,psk\nok," + k + "\nbad id," + k + "\n", 3, "not a valid device id"},
		{"bad id json", "{\n\"ok\": \"" + k + "\",\n\"-bad\": \"" + k + "\"}", 3, "not a valid device id"},
		{"key as id", "id,psk\n" + k + "x," + k + "\n", 2, "looks like a key"},
		{"too long id", "id,psk\n" + strings.Repeat("z", 65) + "," + k + "\n", 2, "not a valid device id"},
		{"swapped columns", "id,psk\n" + k + ",dev-a\n", 2, "looks like a key: are the columns swapped?"},
		{"swapped columns, a MAC as id", "id,psk\n" + k + ",246F28AABBCC\n", 2, "looks like a key"},
		{"bad hex", "id,psk\ndev," + k[:20] + "g" + k[21:] + "\n", 2, "character 21 is not a hex digit"},
		{"odd hex", "id,psk\ndev," + k[1:] + "\n", 2, "odd number"},
		{"empty key", "id,psk\ndev,\n", 2, "the key is empty"},
		{"doc placeholder hex", "id,psk\ndev," + doc + "\n", 2, "placeholder"},
		{"doc placeholder upper", `{"dev": "` + strings.ToUpper(doc) + `"}`, 1, "placeholder"},
		{"doc placeholder text", "id,psk\ndev,your-generated-psk-here\n", 2, "placeholder"},
		{"doc registry sample", `{"device-1": "unique-psk-for-device-1"}`, 1, "placeholder"},
		{"duplicate csv", "id,psk\ndev," + k + "\nother," + k + "\ndev," + k + "\n", 4, "given twice (also on line 2)"},
		{"duplicate json", `{"dev": "` + k + `",` + "\n" + `"dev": "` + k + `"}`, 2, "given twice (also on line 1)"},
		{"three fields", "id,psk\ndev," + k + ",x\n", 2, "expected 2 fields"},
		{"one field", "id,psk\n" + k + "\n", 2, "expected 2 fields"},
		{"stray quote", "id,psk\ndev,\"" + k + "\n", 2, "stray quote"},
		{"json number", `{"dev": 12}`, 1, "must be a string of hex digits"},
		{"json escape", `{"dev": "\u0030` + k[1:] + `"}`, 1, "no escapes"},
		{"json syntax", `{"dev": "` + k + `" "x": "` + k + `"}`, 1, "not a JSON map"},
		{"json trailing", `{"dev": "` + k + `"} ` + k, 1, "unexpected data after the map"},
		{"json unterminated", `{"dev": "` + k, 1, "not a JSON map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseImport("keys.csv", []byte(tt.text))
			var ie *ImportError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want an ImportError", err)
			}
			if ie.File != "keys.csv" || ie.Line != tt.line || !strings.Contains(ie.Msg, tt.msg) || !isBadInput(err) {
				t.Fatalf("got %q (line %d), want line %d %q", err, ie.Line, tt.line, tt.msg)
			}
			msg := strings.Replace(err.Error(), ie.Device, "", 1)
			assertNoOverlap(t, msg, k)
			assertNoOverlap(t, strings.ReplaceAll(msg, psk.PlaceholderRule, ""), doc)
		})
	}
}

// TestImportAllOrNothing: an import that conflicts with the registry
// changes nothing, neither the registry nor the audit log; a repeated import
// changes nothing either.
func TestImportAllOrNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "sqlite")
	e := f.env
	k1, k2, k3 := randomHex(t, 32), randomHex(t, 32), randomHex(t, 32)
	master := canaryMaster(t)
	d, err := e.reg.Add(ctx, "derived-1", Derived(master, 0))
	if err != nil {
		t.Fatal(err)
	}
	dh := hex.EncodeToString(d.Key.Expose())
	set, err := ParseImport("a.json", []byte(`{"imp-1": "`+k1+`", "imp-2": "`+k2+`", "derived-1": "`+dh+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.reg.Import(ctx, set)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Added) != 2 || res.Unchanged != 1 {
		t.Fatalf("result %+v", res)
	}
	before := f.state(t)

	for _, text := range []string{
		"id,psk\nimp-3," + k3 + "\nimp-1," + k3 + "\n", // imp-1 with another key
		"id,psk\nimp-3," + k3 + "\nderived-1," + k3 + "\n",
	} {
		set, err := ParseImport("b.csv", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.reg.Import(ctx, set)
		var ie *ImportError
		if !errors.As(err, &ie) || ie.Line != 3 || ie.Device == "" || !strings.Contains(ie.Msg, "another key") {
			t.Fatalf("conflict: %v", err)
		}
		assertNoOverlap(t, strings.Replace(err.Error(), ie.Device, "", 1), k3)
		assertNoOverlap(t, strings.Replace(err.Error(), ie.Device, "", 1), k1)
		if f.state(t) != before {
			t.Fatal("a refused import changed the registry")
		}
	}
	// Import of a revoked device is refused too.
	if _, err := e.reg.Revoke(ctx, "imp-2", ""); err != nil {
		t.Fatal(err)
	}
	set, _ = ParseImport("c.csv", []byte("id,psk\nimp-2,"+k2+"\n"))
	if _, err := e.reg.Import(ctx, set); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("import of a revoked device: %v", err)
	}
	// The same import again: nothing added.
	set, _ = ParseImport("a.json", []byte(`{"imp-1": "`+k1+`"}`))
	res, err = e.reg.Import(ctx, set)
	if err != nil || len(res.Added) != 0 || res.Unchanged != 1 {
		t.Fatalf("re-import: %v %+v", err, res)
	}
	// Imported keys are stored (in the 0600 database: SQLite without a
	// registry key).
	if fi, _ := os.Stat(e.path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	k, _, err := e.reg.Key(ctx, "imp-1", nil)
	if err != nil || hex.EncodeToString(k.Expose()) != k1 {
		t.Fatalf("the imported key is not stored: %v", err)
	}
}
