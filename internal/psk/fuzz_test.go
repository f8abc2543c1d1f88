package psk

import (
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

// The fuzzers check R9 by shape rather than by overlap: every error must be
// one of the parser's fixed messages once its numbers (positions, lengths)
// are replaced by "#". A message that echoed any byte of the input would not
// match, whatever the input, and unlike a search for shared 4-character runs
// the check cannot fail by chance when a random input happens to contain a
// word of the message (a fuzz run in CI found "ters" in "characters").
var (
	decodeMessages = []string{
		"the key is empty",
		"not a hex key: odd number of hex digits (0)",
		"not a hex key: character 0 is not a hex digit",
		"not a base64 key: bad padding",
		"not a base64 key: wrong length",
		"not a base64 key: character 0 is not base64",
		"not a base64 key: non-canonical final character",
		"not a C array: no '{'",
		"not a C array: no closing '}'",
		"not a C array of bytes: element 0 is above 255",
		"not a C array of bytes: element 0 is not a byte literal",
		"cannot tell how the key is encoded: pass --encoding hex, base64, raw or c",
	}
	deviceIDMessages = []string{
		"empty (" + deviceIDRule + ")",
		"too long: 0 bytes (" + deviceIDRule + ")",
		"the first character must be a letter or digit (" + deviceIDRule + ")",
		"character 0 is not allowed (" + deviceIDRule + ")",
		keyLikeID,
	}
	digitRun = regexp.MustCompile(`[0-9]+`)
)

// deviceIDRule is the rule ValidateDeviceID quotes.
const deviceIDRule = "device ids are 1-64 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit"

// assertFixedMessage fails unless err, without its source prefix, is one of
// the allowed messages once digit runs in both are replaced by "#" (R9).
func assertFixedMessage(t *testing.T, err error, prefix string, allowed []string) {
	t.Helper()
	msg, ok := strings.CutPrefix(err.Error(), prefix)
	if !ok {
		t.Fatalf("error lacks its source %q", prefix)
	}
	shape := digitRun.ReplaceAllString(msg, "#")
	for _, a := range allowed {
		if digitRun.ReplaceAllString(a, "#") == shape {
			return
		}
	}
	t.Fatalf("error is not one of the fixed messages (R9); its shape: %q", shape)
}

// FuzzDecode covers the key decoders (R28): no panic, round trip, and errors
// that share no 4-character run with the input (R9).
func FuzzDecode(f *testing.F) {
	f.Add([]byte("82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a\n"), uint8(0))
	f.Add([]byte("gvE3OuRJq2PKncFFVpNN3N1+w2HB2AAw0xbpynNVpAo=\n"), uint8(1))
	f.Add([]byte("zz"), uint8(0))
	f.Add([]byte("===="), uint8(1))
	f.Add([]byte("static const uint8_t usmp_psk[2] = {\n    0x01, 255,\n};\n"), uint8(3))
	f.Add([]byte("{ 0x1ff }"), uint8(4))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		enc := []Encoding{Hex, Base64, Raw, C, Auto}[int(which)%5]
		s, err := Decode("fuzz", data, enc)
		if err != nil {
			assertFixedMessage(t, err, "fuzz: ", decodeMessages)
			return
		}
		if enc == Auto {
			enc, _ = Detect(data)
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

// keyShaped is the fuzz oracle for LooksLikeKey, written independently of
// it with regular expressions and encoding/base64.
func keyShaped(s string) bool {
	if hexRun32.MatchString(s) || colonHex16.MatchString(s) {
		return true
	}
	if len(s) == 44 && strings.HasSuffix(s, "=") {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			if b, err := enc.Strict().DecodeString(s); err == nil && len(b) == 32 {
				return true
			}
		}
	}
	if len(s) == 43 && mixedCase.MatchString(s) && hasDigit.MatchString(s) {
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			if b, err := enc.Strict().DecodeString(s); err == nil && len(b) == 32 {
				return true
			}
		}
	}
	return false
}

var (
	hexRun32   = regexp.MustCompile(`[0-9a-fA-F]{32}`)
	colonHex16 = regexp.MustCompile(`^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){15,}$`)
	mixedCase  = regexp.MustCompile(`^(?:.*[A-Z].*[a-z]|.*[a-z].*[A-Z]).*$`)
	hasDigit   = regexp.MustCompile(`[0-9]`)
)

// FuzzValidateDeviceID covers the device-id parser (R28): accepted ids match
// the rule of design §3; errors never echo the id (R9).
func FuzzValidateDeviceID(f *testing.F) {
	// "x characters of A-Z" shares words with the rule the error quotes:
	// the case that once failed the old overlap check by chance.
	for _, s := range []string{"device-id-1", "24:6F:28:AA", "", ".x", "a b", strings.Repeat("z", 65), "x characters of A-Z",
		"82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a", "gvE3OuRJq2PKncFFVpNN3N1+w2HB2AAw0xbpynNVpAo="} {
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
		ok = ok && !keyShaped(id)
		if (err == nil) != ok {
			t.Fatalf("ValidateDeviceID disagrees with the rule: err=%v", err)
		}
		if err != nil {
			assertFixedMessage(t, err, "device id: ", deviceIDMessages)
		}
	})
}
