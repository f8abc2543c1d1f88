//go:build ignore

// Fixture for secret-string: key material converted to a string.

package cli

import (
	"errors"

	"github.com/usmp/usmp-psk/internal/psk"
)

type label string

func toString(key *psk.Secret) (string, error) {
	s := string(key.Expose()) // want "secret-string"
	b := key.Expose()
	c := append([]byte(nil), b...)
	_ = label(c[:8])                         // want "secret-string"
	return s, errors.New("key " + string(b)) // want "secret-string"
}

func toStringOK(key *psk.Secret, raw []byte) string {
	id := string(raw)
	return id + psk.KCV(key) + string([]byte("usmp"))
}
