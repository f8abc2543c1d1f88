package registry

// Key bytes at rest: stored keys sealed with AES-256-GCM under a key
// derived from $USMP_REGISTRY_KEY, bound to their device id. The scheme
// (labels, blob layout, key id) and why the registry key is not derived
// from the master secret: docs/registry.md, "The sealing scheme".

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/usmp/usmp-psk/internal/psk"
)

// RegistryKeyEnv is the environment variable of the registry key.
const RegistryKeyEnv = "USMP_REGISTRY_KEY"

// RegistryKeyBytes is the length of the registry key.
const RegistryKeyBytes = 32

const (
	sealVersion    = 0x01
	sealKeyIDLen   = 4
	sealNonceLen   = 12
	sealHeaderLen  = 1 + sealKeyIDLen + sealNonceLen
	sealOverhead   = sealHeaderLen + 16
	labelEncrypt   = "usmp-psk registry psk encryption v1"
	labelKeyID     = "usmp-psk registry key id v1"
	labelSealedPSK = "usmp-psk registry psk v1"
)

// ErrRegistryKey means the registry key is missing, malformed or not the one
// the registry's keys are sealed with.
var ErrRegistryKey = errors.New("registry key problem")

// KeyError reports a problem with $USMP_REGISTRY_KEY: missing when the
// registry holds sealed keys, not this registry's key. It never shows the
// key, only key ids. It is the user's to fix (exit code 2).
type KeyError struct {
	Location string
	Msg      string
	Hint     string
}

func (e *KeyError) Error() string {
	s := e.Msg
	if e.Location != "" {
		s = e.Location + ": " + s
	}
	if e.Hint != "" {
		s += "\nhint: " + e.Hint
	}
	return s
}

// Unwrap returns ErrRegistryKey.
func (e *KeyError) Unwrap() error { return ErrRegistryKey }

// BadInput marks the error as the user's input to fix (exit code 2).
func (e *KeyError) BadInput() bool { return true }

// ParseRegistryKey decodes a registry key: exactly 64 hex digits (either
// case), with surrounding white space (a trailing newline) ignored. source
// names where it came from ("$USMP_REGISTRY_KEY"); the error never quotes
// the value. The caller destroys the key.
func ParseRegistryKey(source, value string) (*psk.Secret, error) {
	v := strings.TrimSpace(value)
	if len(v) != 2*RegistryKeyBytes {
		return nil, &psk.InputError{Source: source, Msg: fmt.Sprintf("%d characters, want exactly 64 hex digits (a 256-bit key, e.g. from 'usmp-psk generate --bytes 32')", len(v))}
	}
	k, err := psk.Decode(source, []byte(v), psk.Hex)
	if err != nil {
		return nil, &psk.InputError{Source: source, Msg: "not hex: want exactly 64 hex digits (a 256-bit key)"}
	}
	return k, nil
}

// sealer seals and opens stored keys under one registry key.
type sealer struct {
	id    string // key id, 8 hex digits
	rawID [sealKeyIDLen]byte
	aead  cipher.AEAD
	rand  io.Reader
}

// newSealer derives the encryption key and key id from key (which the
// caller keeps and destroys).
func newSealer(key *psk.Secret) (*sealer, error) {
	if key.Len() != RegistryKeyBytes {
		return nil, &psk.InputError{Source: RegistryKeyEnv, Msg: "a registry key has 32 bytes"}
	}
	rnd := rand.Reader // nonces: never a test's reader
	ek := labelMAC(key, labelEncrypt)
	defer psk.Wipe(ek)
	block, err := aes.NewCipher(ek)
	if err != nil {
		return nil, fmt.Errorf("registry key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("registry key: %w", err)
	}
	s := &sealer{aead: aead, rand: rnd}
	idm := labelMAC(key, labelKeyID)
	copy(s.rawID[:], idm)
	s.id = hex.EncodeToString(s.rawID[:])
	return s, nil
}

func labelMAC(key *psk.Secret, label string) []byte {
	m := hmac.New(sha256.New, key.Expose())
	m.Write([]byte(label))
	return m.Sum(nil)
}

func sealAD(header []byte, id string) []byte {
	ad := make([]byte, 0, len(labelSealedPSK)+1+len(header)+len(id))
	ad = append(ad, labelSealedPSK...)
	ad = append(ad, 0)
	ad = append(ad, header...)
	return append(ad, id...)
}

// seal encrypts the key of device id.
func (s *sealer) seal(id string, key *psk.Secret) ([]byte, error) {
	out := make([]byte, sealHeaderLen, sealOverhead+key.Len())
	out[0] = sealVersion
	copy(out[1:], s.rawID[:])
	if _, err := io.ReadFull(s.rand, out[1+sealKeyIDLen:sealHeaderLen]); err != nil {
		return nil, fmt.Errorf("registry: random nonce: %w", err)
	}
	header := out[:sealHeaderLen]
	return s.aead.Seal(out, header[1+sealKeyIDLen:], key.Expose(), sealAD(header, id)), nil
}

// sealedKeyID returns the key id in a sealed blob ("" when the blob is not
// one).
func sealedKeyID(blob []byte) string {
	if len(blob) < sealOverhead || blob[0] != sealVersion {
		return ""
	}
	return hex.EncodeToString(blob[1 : 1+sealKeyIDLen])
}

// open decrypts the key of device id. The message says what is wrong,
// never anything of the content.
func (s *sealer) open(id string, blob []byte) (*psk.Secret, string) {
	switch {
	case len(blob) < sealOverhead+1:
		return nil, "damaged: too short to be a sealed key"
	case blob[0] != sealVersion:
		return nil, "damaged: unknown sealing version"
	}
	if kid := sealedKeyID(blob); kid != s.id {
		return nil, "sealed with registry key " + kid + ", not with $" + RegistryKeyEnv + " (key " + s.id + ")"
	}
	header := blob[:sealHeaderLen]
	pt, err := s.aead.Open(nil, header[1+sealKeyIDLen:], blob[sealHeaderLen:], sealAD(header, id))
	if err != nil {
		return nil, "cannot be decrypted: damaged, or moved from another device's row"
	}
	return psk.NewSecret(pt), ""
}
