package psk

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKCVGolden checks the golden vector of design §3 (R14).
func TestKCVGolden(t *testing.T) {
	t.Parallel()
	psk := CopySecret(mustHex(t, "82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a"))
	if got := KCV(psk); got != "73b52cac" {
		t.Fatalf("KCV = %s, want 73b52cac", got)
	}
	// R14: the KCV is not a substring of the key's hex or base64.
	h := hex.EncodeToString(psk.Expose())
	b := base64.StdEncoding.EncodeToString(psk.Expose())
	if strings.Contains(h, KCV(psk)) || strings.Contains(b, KCV(psk)) {
		t.Fatal("KCV appears inside the key encoding")
	}
}

// TestRFC4231 runs the HMAC-SHA256 known-answer vectors of RFC 4231 through
// Derive's MAC (R25): Derive(master=key, id=data) at epoch 0 is exactly
// HMAC-SHA256(key, data). Cases with non-id data use the same MAC directly.
func TestRFC4231(t *testing.T) {
	t.Parallel()
	rep := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
	tests := []struct {
		name      string
		key, data []byte
		want      string
		truncate  int
	}{
		{"case1", rep(0x0b, 20), []byte("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", 0},
		{"case2", []byte("Jefe"), []byte("what do ya want for nothing?"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", 0},
		{"case3", rep(0xaa, 20), rep(0xdd, 50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", 0},
		{"case4", mustHex(t, "0102030405060708090a0b0c0d0e0f10111213141516171819"), rep(0xcd, 50), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b", 0},
		{"case5", rep(0x0c, 20), []byte("Test With Truncation"), "a3b6167473100ee06e0c796c2955552b", 16},
		{"case6", rep(0xaa, 131), []byte("Test Using Larger Than Block-Size Key - Hash Key First"), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", 0},
		{"case7", rep(0xaa, 131), []byte("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."), "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Derive(CopySecret(tt.key), string(tt.data), 0).Expose()
			if tt.truncate > 0 {
				got = got[:tt.truncate]
			}
			if hex.EncodeToString(got) != tt.want {
				t.Fatalf("HMAC mismatch for %s", tt.name)
			}
		})
	}
}

// TestDeriveEpochs pins the epoch rule of design §3 (R25) with golden vectors.
func TestDeriveEpochs(t *testing.T) {
	t.Parallel()
	master := CopySecret([]byte("correct horse battery staple, 32+ bytes long"))
	ref := func(msg []byte) string {
		m := hmac.New(sha256.New, master.Expose())
		m.Write(msg)
		return hex.EncodeToString(m.Sum(nil))
	}
	tests := []struct {
		id    string
		epoch uint32
		msg   []byte
	}{
		{"device-id-1", 0, []byte("device-id-1")},
		{"device-id-1", 1, []byte("device-id-1\x00\x00\x00\x00\x01")},
		{"24:6F:28:AA", 7, []byte("24:6F:28:AA\x00\x00\x00\x00\x07")},
		{"d", 0xdeadbeef, []byte("d\x00\xde\xad\xbe\xef")},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s@%d", tt.id, tt.epoch), func(t *testing.T) {
			if got := hex.EncodeToString(Derive(master, tt.id, tt.epoch).Expose()); got != ref(tt.msg) {
				t.Fatal("derivation differs from the design's formula")
			}
		})
	}
	// Fixed golden vector, independent of the formula above.
	got := hex.EncodeToString(Derive(CopySecret([]byte("test-master")), "device-id-1", 0).Expose())
	if got != ref2("test-master", "device-id-1") {
		t.Fatal("golden mismatch")
	}
}

func ref2(k, m string) string {
	h := hmac.New(sha256.New, []byte(k))
	h.Write([]byte(m))
	return hex.EncodeToString(h.Sum(nil))
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	a, err := Generate(bytes.NewReader(bytes.Repeat([]byte{1}, 64)), 32)
	if err != nil || a.Len() != 32 {
		t.Fatalf("Generate: %v len %d", err, a.Len())
	}
	for _, n := range []int{0, 16, 31, 2 << 20} {
		if _, err := Generate(bytes.NewReader(nil), n); err == nil {
			t.Errorf("Generate(%d) accepted", n)
		}
	}
	if _, err := Generate(bytes.NewReader(make([]byte, 10)), 32); err == nil {
		t.Error("short random source accepted")
	}
}

func TestEncodings(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 7)
	}
	s := CopySecret(key)
	h := hex.EncodeToString(key)
	b := base64.StdEncoding.EncodeToString(key)
	tests := []struct {
		enc  Encoding
		want string
	}{
		{Hex, h + "\n"},
		{Base64, b + "\n"},
		{Raw, string(key)},
		{C, "/* The USMP pre-shared key, written by usmp-psk. Secret: keep this file 0600\n" +
			" * and out of version control. */\n" +
			"#ifndef USMP_PSK_H\n#define USMP_PSK_H\n\n#include <stdint.h>\n\n" +
			"static const uint8_t usmp_psk[32] = {\n" +
			"    0x00, 0x07, 0x0e, 0x15, 0x1c, 0x23, 0x2a, 0x31,\n" +
			"    0x38, 0x3f, 0x46, 0x4d, 0x54, 0x5b, 0x62, 0x69,\n" +
			"    0x70, 0x77, 0x7e, 0x85, 0x8c, 0x93, 0x9a, 0xa1,\n" +
			"    0xa8, 0xaf, 0xb6, 0xbd, 0xc4, 0xcb, 0xd2, 0xd9,\n" +
			"};\n\n#endif /* USMP_PSK_H */\n"},
	}
	for _, tt := range tests {
		t.Run(string(tt.enc), func(t *testing.T) {
			got := Encode(s, tt.enc)
			if string(got) != tt.want {
				t.Fatalf("Encode(%s) wrong", tt.enc)
			}
			back, err := Decode("test", got, tt.enc)
			if err != nil || !back.Equal(s) {
				t.Fatalf("Decode(Encode) failed: %v", err)
			}
		})
	}
}

func TestDecodeVariants(t *testing.T) {
	t.Parallel()
	key := mustHex(t, "82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a")
	tests := []struct {
		name string
		in   string
		enc  Encoding
		ok   bool
	}{
		{"hex upper", strings.ToUpper(hex.EncodeToString(key)), Hex, true},
		{"hex crlf", hex.EncodeToString(key) + "\r\n", Hex, true},
		{"hex odd", hex.EncodeToString(key)[1:], Hex, false},
		{"hex bad digit", "zz" + hex.EncodeToString(key)[2:], Hex, false},
		{"hex empty", "\n", Hex, false},
		{"b64 std", base64.StdEncoding.EncodeToString(key), Base64, true},
		{"b64 raw", base64.RawStdEncoding.EncodeToString(key), Base64, true},
		{"b64 url", base64.URLEncoding.EncodeToString(key), Base64, true},
		{"b64 bad char", "*" + base64.StdEncoding.EncodeToString(key)[1:], Base64, false},
		{"b64 bad pad", base64.StdEncoding.EncodeToString(key) + "==", Base64, false},
		{"raw empty", "", Raw, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Decode("key.txt", []byte(tt.in), tt.enc)
			if tt.ok {
				if err != nil || !bytes.Equal(s.Expose(), key) {
					t.Fatalf("Decode failed: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("bad input accepted")
			}
			var ie *InputError
			if !errors.As(err, &ie) || !strings.HasPrefix(err.Error(), "key.txt: ") {
				t.Fatalf("error does not name its source: %v", err)
			}
			assertNoOverlap(t, err.Error(), tt.in)
		})
	}
}

// messageVocabulary is the fixed text of this package's messages: a window
// of input that also occurs here is the message's own wording, not a leak.
const messageVocabulary = "not a hex key: odd number of hex digits character is not a hex digit " +
	"not a base64 key: bad padding wrong length is not base64 non-canonical final character the key is empty " +
	"device id empty too long: bytes the first character must be a letter or digit device ids are 1-64 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit first character is not allowed " +
	"0123456789()"

// assertNoOverlap fails when msg shares a substring of 4 or more characters
// with secret input (R9).
func assertNoOverlap(t testing.TB, msg, secret string) {
	t.Helper()
	for i := 0; i+4 <= len(secret); i++ {
		w := secret[i : i+4]
		if strings.TrimSpace(w) != w || strings.Contains(messageVocabulary, w) {
			continue
		}
		if strings.Contains(msg, w) {
			t.Fatalf("error message shares %d+ characters with the secret input (R9)", 4)
		}
	}
}

func TestValidateDeviceID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id string
		ok bool
	}{
		{"device-id-1", true},
		{"24:6F:28:AA", true},
		{"a", true},
		{"A.b_c:d-e", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
		{"", false},
		{"has space", false},
		{"a/b", false},
		{"a%3A", false},
		{"nul\x00", false},
		{".hidden", false},
		{"-flag", false},
		{"_x", false},
		{":x", false},
		{"caf\u00e9", false},
		{"tab\t", false},
		// Ids that look like keys are refused (issue 13 item 2).
		{"82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a", false},
		{"gvE3OuRJq2PKncFFVpNN3N1-w2HB2AAw0xbpynNVpAo", false},
		{"550e8400-e29b-41d4-a716-446655440000", true},
		{"dev-82f1373ae449ab63ca9dc1455693", true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.id), func(t *testing.T) {
			err := ValidateDeviceID(tt.id)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateDeviceID = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestLooksLikeKey pins the shapes taken for key material, and the ids
// people use that must stay valid (issue 13 item 2).
func TestLooksLikeKey(t *testing.T) {
	t.Parallel()
	const hex64 = "82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a"
	tests := []struct {
		name string
		s    string
		key  bool
	}{
		{"hex key", hex64, true},
		{"upper-case hex key", strings.ToUpper(hex64), true},
		{"16-byte hex key", hex64[:32], true},
		{"hex key after a prefix", "dev-" + hex64[:40], true},
		{"hex key before a suffix", hex64[:32] + ":x", true},
		{"64-byte hex key", hex64 + hex64, true},
		{"colon-separated hex bytes", "82:f1:37:3a:e4:49:ab:63:ca:9d:c1:45:56:93:4d:dc", true},
		{"padded base64 key", "gvE3OuRJq2PKncFFVpNN3N1+w2HB2AAw0xbpynNVpAo=", true},
		{"padded URL-safe base64 key", "gvE3OuRJq2PKncFFVpNN3N1-w2HB2AAw0xbpynNVpAo=", true},
		{"unpadded URL-safe base64 key", "gvE3OuRJq2PKncFFVpNN3N1-w2HB2AAw0xbpynNVpAo", true},
		{"unpadded base64 key", "gvE3OuRJq2PKncFFVpNN3N1+w2HB2AAw0xbpynNVpAo", true},
		{"31 hex digits", hex64[:31], false},
		{"MAC address", "24:6F:28:AA:BB:CC", false},
		{"EUI-64", "24:6F:28:FF:FE:AA:BB:CC", false},
		{"15 colon-separated hex bytes", "82:f1:37:3a:e4:49:ab:63:ca:9d:c1:45:56:93:4d", false},
		{"UUID", "550e8400-e29b-41d4-a716-446655440000", false},
		{"name", "device-id-1", false},
		{"43 lower-case characters", strings.Repeat("factory-line-", 3) + "0004", false},
		{"base64 of 31 bytes", "gvE3OuRJq2PKncFFVpNN3N1+w2HB2AAw0xbpynNVpA==", false},
		{"non-canonical base64", "gvE3OuRJq2PKncFFVpNN3N1+w2HB2AAw0xbpynNVpAp=", false},
		{"mixed base64 alphabets", "gvE3OuRJq2PKncFFVpNN3N1+w2HB2AAw0xbpynNV-Ao=", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LooksLikeKey(tt.s); got != tt.key {
				t.Fatalf("LooksLikeKey = %v, want %v", got, tt.key)
			}
			err := ValidateDeviceID(tt.s)
			if tt.key && (err == nil || !strings.Contains(err.Error(), "looks like a key")) {
				t.Fatalf("ValidateDeviceID = %v, want the looks-like-a-key refusal", err)
			}
			// The refusal never repeats the id, nor any part of it (R9).
			if err != nil && tt.s != "" && sharesRun(err.Error(), tt.s, 6) {
				t.Fatalf("the error repeats part of the id: %v", err)
			}
		})
	}
}

// sharesRun reports whether a and b share a substring of n bytes.
func sharesRun(a, b string, n int) bool {
	for i := 0; i+n <= len(b); i++ {
		if strings.Contains(a, b[i:i+n]) {
			return true
		}
	}
	return false
}

func TestDeviceFileName(t *testing.T) {
	t.Parallel()
	if got := DeviceFileName("24:6F:28:AA"); got != "24%3A6F%3A28%3AAA" {
		t.Fatal(got)
	}
	if got := DeviceFileName("plain-id"); got != "plain-id" {
		t.Fatal(got)
	}
}

func TestPlaceholders(t *testing.T) {
	t.Parallel()
	for _, k := range [][]byte{
		[]byte("7f3a1b9e2c4d5f6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a"),
		[]byte("7F3A1B9E2C4D5F6A8B9C0D1E2F3A4B5C6D7E8F9A0B1C2D3E4F5A6B7C8D9E0F1A\n"),
		mustHex(t, "7f3a1b9e2c4d5f6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a"),
		[]byte("your-generated-psk-here"),
		[]byte("unique-psk-for-device-1"),
		[]byte("unique-psk-for-device-2\n"),
	} {
		if !IsPlaceholder(k) {
			t.Errorf("placeholder %d not recognised", len(k))
		}
	}
	if IsPlaceholder(mustHex(t, "82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a")) {
		t.Error("real key taken for a placeholder")
	}
}

// TestSecretFormatting is R13: every verb, nested values, JSON, slog, errors.
func TestSecretFormatting(t *testing.T) {
	t.Parallel()
	key := []byte("CANARY-0123456789abcdef-CANARY!!")
	s := CopySecret(key)
	type wrapper struct {
		Name string
		Key  *Secret
		Val  Secret
	}
	// fmt cannot call methods on unexported fields: it walks them by
	// reflection, which must never reach the bytes.
	type hidden struct {
		name string
		key  *Secret
		val  Secret
		vals []Secret
	}
	values := map[string]any{
		"value":      *s,
		"pointer":    s,
		"struct":     wrapper{Name: "x", Key: s, Val: *s},
		"slice":      []*Secret{s, s},
		"map":        map[string]Secret{"k": *s},
		"ptr2":       &wrapper{Key: s},
		"unexported": hidden{name: "x", key: s, val: *s, vals: []Secret{*s}},
		"unexp ptr":  &hidden{key: s, val: *s},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b", "%c", "%U"}
	for name, v := range values {
		for _, verb := range verbs {
			out := fmt.Sprintf(verb, v)
			assertNoLeak(t, name+" "+verb, []byte(out), key)
		}
		out := fmt.Sprint(v)
		assertNoLeak(t, name+" Sprint", []byte(out), key)
		assertNoLeak(t, name+" errors.New", []byte(errors.New(fmt.Sprint(v)).Error()), key)
	}
	if _, err := json.Marshal(s); err == nil {
		t.Error("json.Marshal of a secret succeeded")
	}
	if _, err := json.Marshal(wrapper{Key: s}); err == nil {
		t.Error("json.Marshal of a struct holding a secret succeeded")
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("msg", "key", s, "val", *s, "w", wrapper{Key: s})
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("msg", "key", s, "val", *s)
	assertNoLeak(t, "slog", buf.Bytes(), key)
}

func assertNoLeak(t testing.TB, what string, out, key []byte) {
	t.Helper()
	forms := [][]byte{key, []byte(hex.EncodeToString(key)), []byte(strings.ToUpper(hex.EncodeToString(key))),
		[]byte(base64.StdEncoding.EncodeToString(key)), []byte(fmt.Sprint(key)), []byte(fmt.Sprintf("%#v", key))}
	for _, f := range forms {
		if bytes.Contains(out, f[:8]) {
			t.Fatalf("%s: secret leaked in output", what)
		}
	}
}

// TestDestroy is R26's white-box test: the backing array is zeroed.
func TestDestroy(t *testing.T) {
	t.Parallel()
	b := []byte("0123456789abcdef0123456789abcdef")
	s := NewSecret(b)
	s.Destroy()
	if !bytes.Equal(b, make([]byte, len(b))) {
		t.Fatal("Destroy left key bytes behind")
	}
	if s.Len() != 0 {
		t.Fatal("destroyed secret still has a length")
	}
}

func TestSecretEqual(t *testing.T) {
	t.Parallel()
	a, b := CopySecret([]byte("abc")), CopySecret([]byte("abc"))
	if !a.Equal(b) || a.Equal(CopySecret([]byte("abd"))) {
		t.Fatal("Equal wrong")
	}
}

// TestLoadMaster is the R2 table: sources, trimming, bounds, and messages
// that name the source, never the value.
func TestLoadMaster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hex64 := strings.Repeat("ab", 32)
	long := strings.Repeat("M", 40)
	tests := []struct {
		name     string
		src      MasterSources
		want     string
		errHas   string
		warnHas  string
		badInput bool
	}{
		{name: "env as is", src: MasterSources{Env: " " + long + " \n", HasEnv: true}, want: " " + long + " \n"},
		{name: "env hex not decoded", src: MasterSources{Env: hex64, HasEnv: true}, want: hex64},
		{name: "env short warns", src: MasterSources{Env: "0123456789", HasEnv: true}, want: "0123456789", warnHas: "$USMP_MASTER_SECRET is shorter than 32 bytes (10)"},
		{name: "env empty", src: MasterSources{Env: "", HasEnv: true}, errHas: "empty", badInput: true},
		{name: "file crlf", src: MasterSources{File: write("crlf", long+"\r\n", 0o600)}, want: long},
		{name: "file lf once", src: MasterSources{File: write("lf", long+"\n\n", 0o600)}, want: long + "\n"},
		{name: "file readable warns", src: MasterSources{File: write("r", long, 0o644)}, want: long, warnHas: "0644"},
		{name: "file writable refused", src: MasterSources{File: write("w", long, 0o666)}, errHas: "0666", badInput: true},
		{name: "both", src: MasterSources{File: write("b", long, 0o600), Env: long, HasEnv: true}, errHas: "both", badInput: true},
		{name: "empty env with file", src: MasterSources{File: write("e", long, 0o600), Env: "", HasEnv: true}, want: long},
		{name: "prompt", src: MasterSources{Prompt: func() ([]byte, error) { return []byte(long), nil }}, want: long},
		{name: "none", src: MasterSources{}, errHas: "USMP_MASTER_SECRET"},
		{name: "file too big", src: MasterSources{File: write("big", strings.Repeat("x", MaxMasterBytes+1), 0o600)}, errHas: "1 MiB", badInput: true},
		// Issue 13 item 8: bad input, named by its source, is exit 2.
		{name: "env only spaces", src: MasterSources{Env: " \t ", HasEnv: true}, errHas: "$USMP_MASTER_SECRET: the master secret is only white space", badInput: true},
		{name: "env one newline", src: MasterSources{Env: "\n", HasEnv: true}, errHas: "only white space", badInput: true},
		{name: "file only blank lines", src: MasterSources{File: write("blank", "\n\n", 0o600)}, errHas: "only white space", badInput: true},
		{name: "file only spaces and crlf", src: MasterSources{File: write("sp", "   \r\n", 0o600)}, errHas: "only white space", badInput: true},
		{name: "prompt only spaces", src: MasterSources{Prompt: func() ([]byte, error) { return []byte("  "), nil }}, errHas: "terminal prompt: the master secret is only white space", badInput: true},
		{name: "file is a directory", src: MasterSources{File: dir}, errHas: "is a directory, not a key file", badInput: true},
		{name: "file missing", src: MasterSources{File: filepath.Join(dir, "missing")}, errHas: "--master-file: " + filepath.Join(dir, "missing") + ": no such file", badInput: true},
		// Issue 13 item 1: the message names what gave the file.
		{name: "both, file from the environment", src: MasterSources{File: write("b2", long, 0o600), FileBy: "master-file from $USMP_PSK_MASTER_FILE", Env: long, HasEnv: true}, errHas: "both master-file from $USMP_PSK_MASTER_FILE and $USMP_MASTER_SECRET are set", badInput: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var warns []string
			tt.src.Warn = func(m string) { warns = append(warns, m) }
			s, err := LoadMaster(tt.src)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want %q", err, tt.errHas)
				}
				var ie *InputError
				if errors.As(err, &ie) != tt.badInput {
					t.Fatalf("bad-input classification wrong for %v", err)
				}
				assertNoOverlap(t, err.Error(), long)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(s.Expose()) != tt.want {
				t.Fatal("master bytes differ")
			}
			joined := strings.Join(warns, "\n")
			if tt.warnHas != "" && !strings.Contains(joined, tt.warnHas) {
				t.Fatalf("warnings %q lack %q", joined, tt.warnHas)
			}
			assertNoOverlap(t, joined, tt.want)
		})
	}
}

func TestParseEncoding(t *testing.T) {
	t.Parallel()
	if e, err := ParseEncoding("--encoding", "HEX", false); err != nil || e != Hex {
		t.Fatal(e, err)
	}
	// Every encoding generate writes can be read back, and detected
	// (issue 14 item 10); "auto" only where a key is read.
	if e, err := ParseEncoding("--encoding", "c", true); err != nil || e != C {
		t.Fatal("c refused for decoding", err)
	}
	if e, err := ParseEncoding("--encoding", "auto", true); err != nil || e != Auto {
		t.Fatal("auto refused for decoding", err)
	}
	if _, err := ParseEncoding("--encoding", "auto", false); err == nil {
		t.Fatal("auto accepted for writing")
	}
	if _, err := ParseEncoding("--encoding", "pem", false); err == nil {
		t.Fatal("pem accepted")
	}
}

// TestDetect: fingerprint reads what generate writes in every encoding,
// telling which (issue 14 item 10), and says so when it cannot.
func TestDetect(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i*37 + 11)
	}
	s := CopySecret(key)
	for _, enc := range Encodings {
		t.Run(string(enc), func(t *testing.T) {
			data := Encode(s, enc)
			got, ok := Detect(data)
			if !ok || got != enc {
				t.Fatalf("Detect = %q, %v; want %q", got, ok, enc)
			}
			back, err := Decode("test", data, Auto)
			if err != nil || !back.Equal(s) {
				t.Fatalf("Decode(auto): %v", err)
			}
		})
	}
	for _, tt := range []struct {
		name string
		data string
		want Encoding
		ok   bool
	}{
		{"hex upper case", "0A1B2C3D", Hex, true},
		{"hex with a damaged character", "82f1x73ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a", Hex, true},
		{"base64 url unpadded", "gvE3OuRJq2PKncFFVpNN3N1-w2HB2AAw0xbpynNVpAo", Base64, true},
		{"C decimal", "{ 1, 2, 255 }", C, false},
		{"text that is none", "not a key at all!", "", false},
		{"a word is no base64 key", "sentinel", "", false},
		{"empty", "\n", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Detect([]byte(tt.data))
			if ok != tt.ok || (ok && got != tt.want) {
				t.Fatalf("Detect(%q) = %q, %v", tt.data, got, ok)
			}
		})
	}
	if _, err := Decode("k.txt", []byte("not a key at all!"), Auto); err == nil || !strings.Contains(err.Error(), "pass --encoding hex, base64, raw or c") {
		t.Fatalf("undetectable: %v", err)
	}
}
