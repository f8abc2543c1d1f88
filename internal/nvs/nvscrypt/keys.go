package nvscrypt

// This file holds key material. Rules (security.md R9, R12, R13, R26): key
// bytes live behind a pointer in an unexported field, are never converted to
// string, never formatted, never part of an error, and are wiped by Destroy.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"runtime"

	"github.com/usmp/usmp-psk/internal/psk"
)

// Sizes of the key material and of the nvs_keys partition.
const (
	// XTSKeySize is the size of the XTS-AES-256 key eky‖tky.
	XTSKeySize = 64
	// KeysPartitionSize is the size of an nvs_keys partition image.
	KeysPartitionSize = 4096
	// HMACKeySize is the size of the HMAC key of the HMAC scheme (an eFuse key block).
	HMACKeySize = 32

	keysCRCOffset = XTSKeySize
)

// Errors of the key functions. They are wrapped with sizes or offsets, never
// with content.
var (
	ErrKeysSize      = errors.New("keys partition has the wrong size")
	ErrKeysCRC       = errors.New("keys partition CRC mismatch")
	ErrKeysEmpty     = errors.New("keys partition is empty (all 0xFF)")
	ErrHMACKeySize   = errors.New("HMAC key has the wrong size")
	ErrDestroyed     = errors.New("key material was destroyed")
	ErrNotSerialized = errors.New("key material cannot be serialized this way")
)

// Seed elements of the HMAC scheme; each is repeated 8 times to make the
// 32-byte HMAC message (nvs-format.md §6).
var (
	hmacEKeySeed = [4]byte{0x5A, 0x5A, 0xBE, 0xAE}
	hmacTKeySeed = [4]byte{0xA5, 0xA5, 0xDE, 0xCE}
)

// nvsCRC is the NVS CRC32 (nvs-format.md §4): zlib.crc32(data, 0xFFFFFFFF).
func nvsCRC(data []byte) uint32 {
	return crc32.Update(0xFFFFFFFF, crc32.IEEETable, data)
}

// wipe zeroes b as a best effort against dead-store elimination (R26).
func wipe(b []byte) {
	clear(b)
	runtime.KeepAlive(b)
}

// Keys is the XTS-AES-256 key of NVS encryption: eky (the data key) followed by
// tky (the tweak key), 64 bytes. The zero value and a destroyed Keys hold no
// key; functions given one return [ErrDestroyed]. A Keys cannot be printed,
// logged or marshaled: every such path yields a redaction or an error.
//
// The bytes sit two pointers away from the struct: fmt cannot call Format on
// a Keys stored in an unexported field, and for a verb that does not fit a
// pointer (%s, %q, %c, %U) it prints the pointed-to value, so a single
// pointer to the array would show the key. Behind two pointers it only shows
// an address (TestFormattingRedacts).
type Keys struct {
	_ [0]func() // not comparable
	s *keysBox
}

// keysBox is the storage shared by copies of a Keys, so that Destroy reaches
// all of them.
type keysBox struct{ k *[XTSKeySize]byte }

// newKeys copies b (XTSKeySize bytes) into fresh key storage.
func newKeys(b []byte) *Keys {
	k := &Keys{s: &keysBox{k: new([XTSKeySize]byte)}}
	copy(k.s.k[:], b)
	return k
}

func (k *Keys) material() ([]byte, error) {
	if k == nil || k.s == nil || k.s.k == nil {
		return nil, ErrDestroyed
	}
	return k.s.k[:], nil
}

// ParseKeysPartition parses an nvs_keys partition file strictly, the way the
// device reads it: exactly KeysPartitionSize bytes, and the CRC at offset 64
// must match the first 64 bytes. The 0xFF padding is not checked (the device
// ignores it). Use it for our own commands (--keys).
func ParseKeysPartition(b []byte) (*Keys, error) {
	if len(b) != KeysPartitionSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrKeysSize, len(b), KeysPartitionSize)
	}
	if allFF(b[:keysCRCOffset+4]) {
		return nil, ErrKeysEmpty
	}
	want := binary.LittleEndian.Uint32(b[keysCRCOffset:])
	if nvsCRC(b[:XTSKeySize]) != want {
		return nil, fmt.Errorf("%w (CRC32 at offset %d does not match bytes 0..%d)", ErrKeysCRC, keysCRCOffset, XTSKeySize-1)
	}
	return newKeys(b[:XTSKeySize]), nil
}

// ParseKeysPartitionLenient reads the key the way the reference's
// "encrypt --inputkey" and "decrypt" do: the first 64 bytes of b, with no CRC
// or size check beyond needing 64 bytes. It is for the drop-in commands; a
// caller can try [ParseKeysPartition] first to warn about a bad CRC.
func ParseKeysPartitionLenient(b []byte) (*Keys, error) {
	if len(b) < XTSKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want at least %d", ErrKeysSize, len(b), XTSKeySize)
	}
	return newKeys(b[:XTSKeySize]), nil
}

// GenerateKeys returns new random Keys read from r. A nil r means
// crypto/rand.Reader, which is what production code must use; tests may pass
// another reader.
func GenerateKeys(r io.Reader) (*Keys, error) {
	if r == nil {
		r = rand.Reader
	}
	k := newKeys(nil)
	if _, err := io.ReadFull(r, k.s.k[:]); err != nil {
		k.Destroy()
		return nil, fmt.Errorf("read random keys: %w", err)
	}
	return k, nil
}

// Partition returns the nvs_keys partition image of k: eky, tky, the NVS CRC32
// of those 64 bytes (little-endian), then 0xFF up to KeysPartitionSize bytes.
// The result is key material: write it only to a secret file and wipe it
// after use. It returns nil if k was destroyed.
func (k *Keys) Partition() []byte {
	m, err := k.material()
	if err != nil {
		return nil
	}
	b := make([]byte, KeysPartitionSize)
	copy(b, m)
	binary.LittleEndian.PutUint32(b[keysCRCOffset:], nvsCRC(m))
	for i := keysCRCOffset + 4; i < len(b); i++ {
		b[i] = 0xFF
	}
	return b
}

// KCV returns the key check value of k: the first 4 bytes, as 8 lowercase hex
// digits, of HMAC-SHA256(key=eky‖tky, msg="usmp-psk kcv v1"), the same
// construction as the PSK's KCV (design.md §3). It identifies a key without
// revealing it. It returns "" if k was destroyed.
func (k *Keys) KCV() string {
	m, err := k.material()
	if err != nil {
		return ""
	}
	return psk.KeyCheckValue(m)
}

// Destroy zeroes the key bytes and detaches them from k and from every copy
// of k. Destroying twice is harmless.
func (k *Keys) Destroy() {
	if k == nil || k.s == nil || k.s.k == nil {
		return
	}
	wipe(k.s.k[:])
	k.s.k = nil
}

// Format implements fmt.Formatter: every verb prints a redaction (R13).
func (Keys) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "nvscrypt.Keys(REDACTED)") }

// String returns a redaction.
func (Keys) String() string { return "nvscrypt.Keys(REDACTED)" }

// GoString returns a redaction.
func (Keys) GoString() string { return "nvscrypt.Keys(REDACTED)" }

// LogValue implements slog.LogValuer with a redaction.
func (Keys) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalJSON refuses to serialize key material.
func (Keys) MarshalJSON() ([]byte, error) { return nil, ErrNotSerialized }

// MarshalText refuses to serialize key material.
func (Keys) MarshalText() ([]byte, error) { return nil, ErrNotSerialized }

// GobEncode refuses to serialize key material.
func (Keys) GobEncode() ([]byte, error) { return nil, ErrNotSerialized }

// HMACKey is the 32-byte key of the HMAC scheme (on the device it lives in an
// eFuse key block). Like [Keys] it cannot be printed or marshaled, and keeps
// its bytes two pointers away for the same reason.
type HMACKey struct {
	_ [0]func() // not comparable
	s *hmacKeyBox
}

type hmacKeyBox struct{ k *[HMACKeySize]byte }

func newHMACKey(b []byte) *HMACKey {
	h := &HMACKey{s: &hmacKeyBox{k: new([HMACKeySize]byte)}}
	copy(h.s.k[:], b)
	return h
}

func (h *HMACKey) material() ([]byte, error) {
	if h == nil || h.s == nil || h.s.k == nil {
		return nil, ErrDestroyed
	}
	return h.s.k[:], nil
}

// ParseHMACKey takes the contents of an HMAC key file: exactly HMACKeySize raw
// bytes. (The reference accepts a file of any length as the HMAC key, but
// only a 32-byte key can match an eFuse key, so other sizes are refused.)
func ParseHMACKey(b []byte) (*HMACKey, error) {
	if len(b) != HMACKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrHMACKeySize, len(b), HMACKeySize)
	}
	return newHMACKey(b), nil
}

// GenerateHMACKey returns a new random HMAC key read from r (nil means
// crypto/rand.Reader, which production code must use).
func GenerateHMACKey(r io.Reader) (*HMACKey, error) {
	if r == nil {
		r = rand.Reader
	}
	h := newHMACKey(nil)
	if _, err := io.ReadFull(r, h.s.k[:]); err != nil {
		h.Destroy()
		return nil, fmt.Errorf("read random HMAC key: %w", err)
	}
	return h, nil
}

// DeriveKeys derives the XTS keys of the HMAC scheme:
// eky = HMAC-SHA256(K, 5A5ABEAE×8), tky = HMAC-SHA256(K, A5A5DECE×8).
func (h *HMACKey) DeriveKeys() (*Keys, error) {
	m, err := h.material()
	if err != nil {
		return nil, err
	}
	k := newKeys(nil)
	hmacSeeded(k.s.k[:0], m, hmacEKeySeed)
	hmacSeeded(k.s.k[32:32], m, hmacTKeySeed)
	return k, nil
}

// hmacSeeded appends HMAC-SHA256(key, seed×8) to dst, which has room for it.
func hmacSeeded(dst, key []byte, seed [4]byte) {
	var msg [32]byte
	for i := 0; i < len(msg); i += len(seed) {
		copy(msg[i:], seed[:])
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(msg[:])
	mac.Sum(dst)
}

// File returns the HMAC key file contents: the 32 raw bytes, as the reference
// writes them. The result is key material: write it only to a secret file and
// wipe it after use. It returns nil if h was destroyed.
func (h *HMACKey) File() []byte {
	m, err := h.material()
	if err != nil {
		return nil
	}
	return append([]byte(nil), m...)
}

// KCV returns the key check value of h (see [Keys.KCV]), or "" if h was
// destroyed.
func (h *HMACKey) KCV() string {
	m, err := h.material()
	if err != nil {
		return ""
	}
	return psk.KeyCheckValue(m)
}

// Destroy zeroes the key bytes and detaches them from h and its copies.
func (h *HMACKey) Destroy() {
	if h == nil || h.s == nil || h.s.k == nil {
		return
	}
	wipe(h.s.k[:])
	h.s.k = nil
}

// Format implements fmt.Formatter: every verb prints a redaction (R13).
func (HMACKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "nvscrypt.HMACKey(REDACTED)") }

// String returns a redaction.
func (HMACKey) String() string { return "nvscrypt.HMACKey(REDACTED)" }

// GoString returns a redaction.
func (HMACKey) GoString() string { return "nvscrypt.HMACKey(REDACTED)" }

// LogValue implements slog.LogValuer with a redaction.
func (HMACKey) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalJSON refuses to serialize key material.
func (HMACKey) MarshalJSON() ([]byte, error) { return nil, ErrNotSerialized }

// MarshalText refuses to serialize key material.
func (HMACKey) MarshalText() ([]byte, error) { return nil, ErrNotSerialized }

// GobEncode refuses to serialize key material.
func (HMACKey) GobEncode() ([]byte, error) { return nil, ErrNotSerialized }

// allFF reports whether every byte of b is 0xFF.
func allFF(b []byte) bool {
	for _, c := range b {
		if c != 0xFF {
			return false
		}
	}
	return true
}
