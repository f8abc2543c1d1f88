//go:build ignore

// Fixture for secret-compare: variable-time comparisons of key material.

package registry

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"slices"

	"github.com/usmp/usmp-psk/internal/psk"
)

func compare(key, other *psk.Secret, want []byte, wantHex string) bool {
	if bytes.Equal(key.Expose(), want) { // want "secret-compare"
		return true
	}
	b := key.Expose()
	if reflect.DeepEqual(b, other.Expose()) { // want "secret-compare"
		return true
	}
	if slices.Equal(want, b[:4]) { // want "secret-compare"
		return true
	}
	if b[0] == 0 { // want "secret-compare"
		return false
	}
	m := hmac.New(sha256.New, b)
	if bytes.Equal(m.Sum(nil), want) {
		// Not tracked: a MAC keyed with b is not the key itself.
		return true
	}
	return hex.EncodeToString(b) == wantHex || string(b) != "" // want "secret-compare" "secret-string"
}
