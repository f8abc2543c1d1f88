package nvscrypt

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
)

// readTestdata reads a golden file of testdata/ (made with Espressif's
// generator; see internal/nvs/testdata/device/generator/README.md).
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	return b
}

// mustKeys parses a keys partition vector strictly.
func mustKeys(t testing.TB, name string) *Keys {
	t.Helper()
	k, err := ParseKeysPartition(readTestdata(t, name))
	if err != nil {
		t.Fatalf("ParseKeysPartition(%s): %v", name, err)
	}
	return k
}

// canaryKeys returns Keys whose bytes are a fresh-looking canary derived from
// label, and the canary bytes themselves (R22 style).
func canaryKeys(t testing.TB, label string) (*Keys, []byte) {
	t.Helper()
	canary := canaryBytes(label, XTSKeySize)
	k, err := GenerateKeys(bytes.NewReader(canary))
	if err != nil {
		t.Fatal(err)
	}
	return k, canary
}

// canaryBytes returns n deterministic, random-looking bytes for label.
func canaryBytes(label string, n int) []byte {
	var out []byte
	for i := byte(0); len(out) < n; i++ {
		s := sha256.Sum256(append([]byte(label), i))
		out = append(out, s[:]...)
	}
	return out[:n]
}

// sameBytes compares two byte slices and reports only where they differ,
// never their content (R13 pitfall 13: test output must not dump secrets).
func sameBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: first difference at offset %#x", what, i)
		}
	}
}
