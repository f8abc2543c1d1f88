package psk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
)

// DefaultBytes is the length of generated and derived PSKs.
const DefaultBytes = 32

// MinGeneratedBytes is the smallest length Generate accepts (design §3).
const MinGeneratedBytes = 32

// Generate returns n random bytes from r, which must be crypto/rand.Reader in
// production (R26).
func Generate(r io.Reader, n int) (*Secret, error) {
	if n < MinGeneratedBytes {
		return nil, &InputError{Source: "--bytes", Msg: "a generated key needs at least 32 bytes"}
	}
	if n > 1<<20 {
		return nil, &InputError{Source: "--bytes", Msg: "a generated key may have at most 1048576 bytes"}
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return NewSecret(b), nil
}

// Derive computes the PSK of a device exactly as the gateway does (design
// §2.1): epoch 0 is HMAC-SHA256(master, device_id); epoch n ≥ 1 is
// HMAC-SHA256(master, device_id || 0x00 || uint32_be(n)) (design §3, R25).
// The id must already be valid (ValidateDeviceID): valid ids hold no NUL, so
// the two forms cannot collide.
func Derive(master *Secret, deviceID string, epoch uint32) *Secret {
	m := hmac.New(sha256.New, master.Expose())
	_, _ = io.WriteString(m, deviceID)
	if epoch > 0 {
		var suffix [5]byte
		binary.BigEndian.PutUint32(suffix[1:], epoch)
		m.Write(suffix[:])
	}
	return NewSecret(m.Sum(nil))
}

// kcvMessage is the domain-separation string of the key check value.
const kcvMessage = "usmp-psk kcv v1"

// KCV returns the key check value of a PSK: the first 4 bytes of
// HMAC-SHA256(key=psk, msg="usmp-psk kcv v1") as 8 lowercase hex digits
// (design §3, R14). It is the only form in which a key may be shown. Never
// call it on the master secret.
func KCV(s *Secret) string { return KeyCheckValue(s.Expose()) }

// KeyCheckValue is KCV of raw key bytes, for keys that live in their own
// types (the NVS encryption keys of nvscrypt): one construction for every
// KCV the tool shows.
func KeyCheckValue(key []byte) string {
	m := hmac.New(sha256.New, key)
	_, _ = io.WriteString(m, kcvMessage)
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0])[:4])
}
