package nvscrypt

import (
	"crypto/aes"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/crypto/xts"
)

// EntrySize is the size of an NVS entry, which is also the XTS data unit.
const EntrySize = 32

// ErrEntryBounds reports a misuse of the per-entry functions: a length that is
// not a positive multiple of EntrySize, a short destination, or a misaligned
// offset.
var ErrEntryBounds = errors.New("bad entry buffer or offset")

// Cipher encrypts and decrypts NVS entries with one set of [Keys]. Build it
// once with [NewCipher] and reuse it: it holds the expanded AES keys. It is
// safe for concurrent use. Like Keys, it cannot be printed.
type Cipher struct {
	_ [0]func() // not comparable
	s *cipherBox
}

// cipherBox keeps the expanded keys two pointers away, as keysBox does.
type cipherBox struct{ x *xts.Cipher }

// NewCipher builds the XTS-AES-256 cipher of k, with eky as the data key and
// tky as the tweak key (xts.NewCipher(aes.NewCipher, eky‖tky)). The expanded
// AES keys inside the cipher cannot be wiped; that part of R26 is best effort.
func NewCipher(k *Keys) (*Cipher, error) {
	m, err := k.material()
	if err != nil {
		return nil, err
	}
	x, err := xts.NewCipher(aes.NewCipher, m)
	if err != nil {
		// aes.NewCipher only fails on a key size, which is fixed here.
		return nil, errors.New("cannot build the XTS cipher")
	}
	return &Cipher{s: &cipherBox{x: x}}, nil
}

// EncryptEntry encrypts src into dst, where src is one entry or several
// consecutive entries, and offset is the byte offset of src's first entry from
// the start of the partition. Each 32-byte entry is its own XTS data unit whose
// tweak is its own offset, as the device writes them. dst and src may be the
// same slice but must not otherwise overlap. The offset must be a multiple of
// EntrySize and the entries must lie below 4 GiB (the device's tweak is a u32).
func (c *Cipher) EncryptEntry(dst, src []byte, offset uint64) error {
	if err := c.check(dst, src, offset); err != nil {
		return err
	}
	for i := 0; i < len(src); i += EntrySize {
		c.s.x.Encrypt(dst[i:i+EntrySize], src[i:i+EntrySize], offset+uint64(i))
	}
	return nil
}

// DecryptEntry is the inverse of [Cipher.EncryptEntry], with the same rules.
func (c *Cipher) DecryptEntry(dst, src []byte, offset uint64) error {
	if err := c.check(dst, src, offset); err != nil {
		return err
	}
	for i := 0; i < len(src); i += EntrySize {
		c.s.x.Decrypt(dst[i:i+EntrySize], src[i:i+EntrySize], offset+uint64(i))
	}
	return nil
}

func (c *Cipher) check(dst, src []byte, offset uint64) error {
	switch {
	case c == nil || c.s == nil:
		return ErrDestroyed
	case len(src) == 0 || len(src)%EntrySize != 0:
		return fmt.Errorf("%w: length %d is not a positive multiple of %d", ErrEntryBounds, len(src), EntrySize)
	case len(dst) < len(src):
		return fmt.Errorf("%w: destination of %d bytes for %d bytes", ErrEntryBounds, len(dst), len(src))
	case offset%EntrySize != 0:
		return fmt.Errorf("%w: offset %#x is not a multiple of %d", ErrEntryBounds, offset, EntrySize)
	case uint64(len(src)) > 1<<32 || offset > 1<<32-uint64(len(src)):
		return fmt.Errorf("%w: offset %#x is beyond 4 GiB", ErrEntryBounds, offset)
	}
	return nil
}

// Format implements fmt.Formatter with a redaction (the cipher holds the
// expanded keys).
func (Cipher) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "nvscrypt.Cipher(REDACTED)") }

// LogValue implements slog.LogValuer with a redaction.
func (Cipher) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalJSON refuses to serialize key material.
func (Cipher) MarshalJSON() ([]byte, error) { return nil, ErrNotSerialized }
