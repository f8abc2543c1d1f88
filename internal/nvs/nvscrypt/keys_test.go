package nvscrypt

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"testing"
)

// equal reports in constant time whether k and o hold the same key (R15).
// Destroyed or nil keys are equal to nothing.
func (k *Keys) equal(o *Keys) bool {
	a, err1 := k.material()
	b, err2 := o.material()
	if err1 != nil || err2 != nil {
		return false
	}
	return subtle.ConstantTimeCompare(a, b) == 1
}

// deriveFromHMACKey derives the XTS keys from the raw bytes of an HMAC key
// file: ParseHMACKey, then HMACKey.DeriveKeys, as the CLI does.
func deriveFromHMACKey(hmacKey []byte) (*Keys, error) {
	h, err := ParseHMACKey(hmacKey)
	if err != nil {
		return nil, err
	}
	defer h.Destroy()
	return h.DeriveKeys()
}

// keyVectors are the keys files of the golden vectors, with the XTS key the
// manifest records for them (internal/nvs/testdata/gen/manifest.json, xts_key_hex).
var keyVectors = []struct {
	file   string
	xtsHex string
}{
	{"enc_usmp.keys.bin", "45ab271b0ad85470272840fe30edabe98086176b787fbbf591c3c43937ccff0daa44763d4ccd21cc6c901371e3a0202ed7eb8a5abbf56309464dd6fad69a479e"},      // gitleaks:allow (a golden test vector, not a secret)
	{"enc_multipage.keys.bin", "0cb34193d8842a3f8ea6f82a947fdf245742fdaef254f702a96b47ec302e7bb3e29aff2cb4581dabbd8bbe151011e80502af02d5cfa7bbe36a9649ab770a2ad1"}, // gitleaks:allow (a golden test vector, not a secret)
	{"enc_v1.keys.bin", "1f4dc8218400388e3abe2b4714a1325fd76a80aeb92cc5b29a17a876cfdabaabaa37bacc38e4d48222f8320c84ea3784c5b030355d172ce18829f9dec04d9197"},        // gitleaks:allow (a golden test vector, not a secret)
	{"enc_hmac.keys.bin", "27da91179405f1aa7fa0b3352bbb3125923560fc46ec999ba13888bdfcac029eb7b73f0e693efe67f1a1a1942181bdd69917745ae6e5e0f4bae7737dff8541ca"},      // gitleaks:allow (a golden test vector, not a secret)
	{"enc_device.keys.bin", ""},
}

// TestKeysPartitionGolden: every reference keys file parses strictly, holds
// the manifest's XTS key, and serializes back byte for byte.
func TestKeysPartitionGolden(t *testing.T) {
	t.Parallel()
	for _, tt := range keyVectors {
		t.Run(tt.file, func(t *testing.T) {
			file := readTestdata(t, tt.file)
			k, err := ParseKeysPartition(file)
			if err != nil {
				t.Fatalf("ParseKeysPartition: %v", err)
			}
			if tt.xtsHex != "" {
				want, _ := hex.DecodeString(tt.xtsHex)
				sameBytes(t, "key bytes", k.s.k[:], want)
			}
			sameBytes(t, "Partition()", k.Partition(), file)
			lenient, err := ParseKeysPartitionLenient(file)
			if err != nil {
				t.Fatalf("ParseKeysPartitionLenient: %v", err)
			}
			if !lenient.equal(k) {
				t.Fatal("lenient and strict parse differ")
			}
		})
	}
}

// TestParseKeysPartitionErrors covers the CRC check (good and corrupted) and
// sizes, for the strict and the lenient parser.
func TestParseKeysPartitionErrors(t *testing.T) {
	t.Parallel()
	good := readTestdata(t, "enc_usmp.keys.bin")
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name        string
		in          []byte
		wantStrict  error
		wantLenient error
	}{
		{"good", good, nil, nil},
		{"key bit flipped", mutate(func(b []byte) []byte { b[5] ^= 0x10; return b }), ErrKeysCRC, nil},
		{"tweak key bit flipped", mutate(func(b []byte) []byte { b[63] ^= 0x01; return b }), ErrKeysCRC, nil},
		{"crc bit flipped", mutate(func(b []byte) []byte { b[66] ^= 0x80; return b }), ErrKeysCRC, nil},
		{"padding changed (not checked, like the device)", mutate(func(b []byte) []byte { b[100] = 0; return b }), nil, nil},
		{"all 0xFF (blank nvs_keys partition)", bytes.Repeat([]byte{0xFF}, KeysPartitionSize), ErrKeysEmpty, nil},
		{"all zero", make([]byte, KeysPartitionSize), ErrKeysCRC, nil},
		{"64 bytes only", good[:64], ErrKeysSize, nil},
		{"68 bytes", good[:68], ErrKeysSize, nil},
		{"63 bytes", good[:63], ErrKeysSize, ErrKeysSize},
		{"empty", nil, ErrKeysSize, ErrKeysSize},
		{"too long", append(bytes.Clone(good), 0xFF), ErrKeysSize, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeysPartition(tt.in)
			if !errors.Is(err, tt.wantStrict) || (tt.wantStrict == nil) != (err == nil) {
				t.Errorf("ParseKeysPartition error = %v, want %v", err, tt.wantStrict)
			}
			k, err := ParseKeysPartitionLenient(tt.in)
			if !errors.Is(err, tt.wantLenient) || (tt.wantLenient == nil) != (err == nil) {
				t.Errorf("ParseKeysPartitionLenient error = %v, want %v", err, tt.wantLenient)
			}
			if err == nil && !bytes.Equal(k.s.k[:], tt.in[:XTSKeySize]) {
				t.Error("lenient parse did not take the first 64 bytes")
			}
		})
	}
}

// TestDeriveFromHMACKeyGolden: the keys file derived from the vector's HMAC key
// equals the keys file the reference wrote for it.
func TestDeriveFromHMACKeyGolden(t *testing.T) {
	t.Parallel()
	hk := readTestdata(t, "enc_hmac.hmac_key.bin")
	k, err := deriveFromHMACKey(hk)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "derived keys file", k.Partition(), readTestdata(t, "enc_hmac.keys.bin"))

	h, err := ParseHMACKey(hk)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := h.DeriveKeys()
	if err != nil {
		t.Fatal(err)
	}
	if !k2.equal(k) {
		t.Fatal("HMACKey.DeriveKeys differs from deriveFromHMACKey")
	}
	sameBytes(t, "HMAC key file", h.File(), hk)
}

// TestHMACDerivationVectors checks the scheme independently of the
// implementation's helper: eky = HMAC-SHA256(K, 5A5ABEAE×8),
// tky = HMAC-SHA256(K, A5A5DECE×8), for several keys.
func TestHMACDerivationVectors(t *testing.T) {
	t.Parallel()
	ref := func(key []byte, seed string) []byte {
		msg, _ := hex.DecodeString(strings.Repeat(seed, 8))
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		return m.Sum(nil)
	}
	keys := [][]byte{
		make([]byte, 32),
		bytes.Repeat([]byte{0xFF}, 32),
		canaryBytes("hmac-a", 32),
		canaryBytes("hmac-b", 32),
	}
	for i, hk := range keys {
		k, err := deriveFromHMACKey(hk)
		if err != nil {
			t.Fatal(err)
		}
		want := append(ref(hk, "5a5abeae"), ref(hk, "a5a5dece")...)
		sameBytes(t, "derived key "+string(rune('0'+i)), k.s.k[:], want)
	}
	// A known answer, so that a change of both helper and reference is caught:
	// the all-zero HMAC key.
	k, _ := deriveFromHMACKey(make([]byte, 32))
	if got := k.KCV(); got != zeroHMACDerivedKCV {
		t.Errorf("KCV of keys derived from the zero HMAC key = %s, want %s", got, zeroHMACDerivedKCV)
	}
}

// zeroHMACDerivedKCV was computed independently with Python's hmac module.
const zeroHMACDerivedKCV = "0205a694"

func TestParseHMACKeySizes(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 31, 33, 64} {
		if _, err := ParseHMACKey(make([]byte, n)); !errors.Is(err, ErrHMACKeySize) {
			t.Errorf("ParseHMACKey(%d bytes) error = %v, want ErrHMACKeySize", n, err)
		}
		if _, err := deriveFromHMACKey(make([]byte, n)); !errors.Is(err, ErrHMACKeySize) {
			t.Errorf("deriveFromHMACKey(%d bytes) error = %v, want ErrHMACKeySize", n, err)
		}
	}
}

// TestGenerateKeys: generated keys are random (two differ) and well-formed
// (CRC ok, 0xFF padding), from crypto/rand when no reader is given.
func TestGenerateKeys(t *testing.T) {
	t.Parallel()
	a, err := GenerateKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.equal(b) {
		t.Fatal("two generated keys are equal")
	}
	if bytes.Equal(a.s.k[:32], a.s.k[32:]) {
		t.Fatal("eky equals tky")
	}
	for _, k := range []*Keys{a, b} {
		p := k.Partition()
		if len(p) != KeysPartitionSize {
			t.Fatalf("partition is %d bytes", len(p))
		}
		if got, want := binary.LittleEndian.Uint32(p[64:]), crc32.Update(0xFFFFFFFF, crc32.IEEETable, p[:64]); got != want {
			t.Fatal("keys partition CRC mismatch")
		}
		if !allFF(p[68:]) {
			t.Fatal("keys partition padding is not 0xFF")
		}
		back, err := ParseKeysPartition(p)
		if err != nil {
			t.Fatalf("ParseKeysPartition(generated): %v", err)
		}
		if !back.equal(k) {
			t.Fatal("round trip changed the key")
		}
	}
}

func TestGenerateHMACKey(t *testing.T) {
	t.Parallel()
	a, err := GenerateHMACKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateHMACKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.File(), b.File()) {
		t.Fatal("two generated HMAC keys are equal")
	}
	if len(a.File()) != HMACKeySize {
		t.Fatalf("HMAC key file is %d bytes", len(a.File()))
	}
	k, err := a.DeriveKeys()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseKeysPartition(k.Partition()); err != nil {
		t.Fatalf("derived keys partition does not parse: %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestGenerateReaderError(t *testing.T) {
	t.Parallel()
	if _, err := GenerateKeys(failingReader{}); err == nil {
		t.Error("GenerateKeys with a failing reader succeeded")
	}
	if _, err := GenerateKeys(bytes.NewReader(make([]byte, 63))); err == nil {
		t.Error("GenerateKeys with a short reader succeeded")
	}
	if _, err := GenerateHMACKey(failingReader{}); err == nil {
		t.Error("GenerateHMACKey with a failing reader succeeded")
	}
}

// TestDestroy is the white-box zeroization test of R26: Destroy leaves an
// all-zero backing array and disables the keys.
func TestDestroy(t *testing.T) {
	t.Parallel()
	k, _ := canaryKeys(t, "destroy")
	backing := k.s.k
	copyOfK := *k
	k.Destroy()
	if *backing != [XTSKeySize]byte{} {
		t.Fatal("Destroy left key bytes behind")
	}
	k.Destroy() // twice is harmless
	if k.Partition() != nil || k.KCV() != "" || k.equal(k) {
		t.Fatal("destroyed keys still usable")
	}
	if _, err := NewCipher(k); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("NewCipher(destroyed) error = %v", err)
	}
	if _, err := EncryptImage(make([]byte, PageSize), k); !errors.Is(err, ErrDestroyed) {
		t.Fatalf("EncryptImage(destroyed) error = %v", err)
	}
	if copyOfK.Partition() != nil {
		t.Fatal("a copy of destroyed keys is still usable")
	}
	var zero Keys
	if _, err := NewCipher(&zero); !errors.Is(err, ErrDestroyed) {
		t.Fatal("zero Keys usable")
	}
	if _, err := NewCipher(nil); !errors.Is(err, ErrDestroyed) {
		t.Fatal("nil Keys usable")
	}

	h, _ := GenerateHMACKey(bytes.NewReader(canaryBytes("destroy-hmac", 32)))
	hb := h.s.k
	h.Destroy()
	if *hb != [HMACKeySize]byte{} {
		t.Fatal("HMACKey.Destroy left key bytes behind")
	}
	if h.File() != nil || h.KCV() != "" {
		t.Fatal("destroyed HMAC key still usable")
	}
	if _, err := h.DeriveKeys(); !errors.Is(err, ErrDestroyed) {
		t.Fatal("destroyed HMAC key derives")
	}
}

// TestKCV: the KCV is stable, 8 hex digits, and not part of the key's hex
// (R14).
func TestKCV(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, "enc_usmp.keys.bin")
	got := k.KCV()
	if got != encUSMPKCV {
		t.Errorf("KCV = %s, want %s", got, encUSMPKCV)
	}
	if strings.Contains(hex.EncodeToString(k.s.k[:]), got) {
		t.Error("KCV is a substring of the key")
	}
	h, _ := ParseHMACKey(readTestdata(t, "enc_hmac.hmac_key.bin"))
	if len(h.KCV()) != 8 || h.KCV() == got {
		t.Errorf("HMAC key KCV %q", h.KCV())
	}
}

// encUSMPKCV was computed independently with Python's hmac module.
const encUSMPKCV = "29b0ca69"
