package psk

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// FuzzDecode covers the key decoders (R28): no panic, round trip, and errors
// that share no 4-character run with the input (R9).
func FuzzDecode(f *testing.F) {
	f.Add([]byte("82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a\n"), uint8(0))
	f.Add([]byte("gvE3OuRJq2PKncFFVpNN3N1+w2HB2AAw0xbpynNVpAo=\n"), uint8(1))
	f.Add([]byte("zz"), uint8(0))
	f.Add([]byte("===="), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		enc := []Encoding{Hex, Base64, Raw}[int(which)%3]
		s, err := Decode("fuzz", data, enc)
		if err != nil {
			assertNoOverlap(t, strings.TrimPrefix(err.Error(), "fuzz: "), string(data))
			return
		}
		// Round trip: what we decode we can encode and decode again.
		back, err := Decode("fuzz", Encode(s, enc), enc)
		if err != nil || !back.Equal(s) {
			t.Fatal("round trip failed")
		}
		// Cross-check with the standard library where it is strict.
		switch enc {
		case Hex:
			if want, err := hex.DecodeString(strings.TrimSpace(string(data))); err == nil && string(want) != string(s.Expose()) {
				t.Fatal("hex differs from encoding/hex")
			}
		case Base64:
			if want, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(string(data))); err == nil && string(want) != string(s.Expose()) {
				t.Fatal("base64 differs from encoding/base64")
			}
		}
	})
}

// FuzzValidateDeviceID covers the device-id parser (R28): accepted ids match
// the rule of design §3; errors never echo the id (R9).
func FuzzValidateDeviceID(f *testing.F) {
	for _, s := range []string{"device-id-1", "24:6F:28:AA", "", ".x", "a b", strings.Repeat("z", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidateDeviceID(id)
		ok := len(id) >= 1 && len(id) <= 64
		for i := 0; ok && i < len(id); i++ {
			c := id[i]
			alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
			ok = alnum || (i > 0 && strings.IndexByte("._:-", c) >= 0)
		}
		if (err == nil) != ok {
			t.Fatalf("ValidateDeviceID disagrees with the rule: err=%v", err)
		}
		if err != nil {
			assertNoOverlap(t, strings.TrimPrefix(err.Error(), "device id: "), id)
		}
	})
}
