//go:build ignore

// Fixture: the constant-time comparisons R15 asks for, and checks of a
// key's presence and length.

package registry

import (
	"bytes"
	"crypto/hmac"
	"crypto/subtle"

	"github.com/usmp/usmp-psk/internal/psk"
)

func compareOK(key, other *psk.Secret, want, id1, id2 []byte) bool {
	b := key.Expose()
	if b == nil || len(b) != 32 || len(key.Expose()) == 0 {
		return false
	}
	if subtle.ConstantTimeCompare(b, want) == 1 {
		return true
	}
	if hmac.Equal(key.Expose(), other.Expose()) || key.Equal(other) {
		return true
	}
	return bytes.Equal(id1, id2)
}
