package psk

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
)

// redacted is what every formatting path of a Secret prints.
const redacted = "[secret redacted]"

// ErrSecretFormat is returned by every marshalling method of Secret.
var ErrSecretFormat = errors.New("refusing to serialize secret key material")

// Secret holds key material. Every fmt verb, slog, JSON, text and gob
// marshalling print or return a redaction instead (R13). Two Secrets cannot
// be compared with == (the slice inside makes that a compile error).
//
// The bytes sit three pointers deep: when a Secret is a field that fmt
// cannot call methods on (an unexported field of another struct), fmt walks
// it by reflection. A pointer below the top level prints as an address, but
// a bad verb (%s of a pointer) prints the value it points to, one level
// down; the extra level keeps that an address too, never the bytes. Pass Secrets by pointer: tracebacks then show
// an address, not key bytes (R12).
type Secret struct {
	p *secretBytes
	_ [0]func() // not comparable, even if the field above changes
}

type secretBytes struct {
	b *[]byte
}

// NewSecret takes ownership of b: the caller must not use b afterwards,
// because Destroy wipes it.
func NewSecret(b []byte) *Secret {
	return &Secret{p: &secretBytes{b: &b}}
}

// CopySecret returns a Secret holding a copy of b.
func CopySecret(b []byte) *Secret {
	c := make([]byte, len(b))
	copy(c, b)
	return NewSecret(c)
}

// Expose returns the key bytes. The name is deliberately loud: every call is a
// place where key material leaves the type and must go only to a 0600 file, a
// pipe, a MAC or a constant-time comparison (R10, R15, R29).
func (s *Secret) Expose() []byte {
	if s == nil || s.p == nil || s.p.b == nil {
		return nil
	}
	return *s.p.b
}

// Len returns the number of key bytes; lengths are safe to print.
func (s *Secret) Len() int {
	return len(s.Expose())
}

// Equal compares two secrets in constant time (R15).
func (s *Secret) Equal(o *Secret) bool {
	return subtle.ConstantTimeCompare(s.Expose(), o.Expose()) == 1
}

// Destroy overwrites the key bytes with zeros. It is best effort: copies made
// by the runtime or by libraries (HMAC pads) are out of reach (R26).
func (s *Secret) Destroy() {
	b := s.Expose()
	if b == nil {
		return
	}
	Wipe(b)
	*s.p.b = b[:0]
}

// Wipe zeroes b in a way the compiler keeps (R26).
func Wipe(b []byte) {
	clear(b)
	runtime.KeepAlive(b)
}

// Format implements fmt.Formatter, so every verb (%v %s %x %d %b …) prints the
// redaction, also when the Secret is nested in other values.
func (s Secret) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, redacted)
}

// String implements fmt.Stringer for printers that look only for it.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON refuses: key material never goes into JSON by accident.
func (s Secret) MarshalJSON() ([]byte, error) { return nil, ErrSecretFormat }

// MarshalText refuses, for encoding/xml, yaml and friends.
func (s Secret) MarshalText() ([]byte, error) { return nil, ErrSecretFormat }

// GobEncode refuses.
func (s Secret) GobEncode() ([]byte, error) { return nil, ErrSecretFormat }
