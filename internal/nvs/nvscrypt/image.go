package nvscrypt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Page layout (nvs-format.md §1, §2).
const (
	// PageSize is the size of an NVS page.
	PageSize = 4096
	// EntriesPerPage is the number of entry slots of a page.
	EntriesPerPage = 126

	bitmapOffset     = 32
	firstEntryOffset = 64
	pageStateErased  = 0xFFFFFFFF
)

// Entry states of the bitmap (2 bits per entry).
const (
	stateEmpty   = 0b11
	stateWritten = 0b10
)

// Errors of the image functions.
var (
	// ErrImageSize reports an image whose length the function cannot take.
	ErrImageSize = errors.New("bad image size")
	// ErrWrongKey reports that an image has written entries and none of them
	// has a valid entry CRC: it was decrypted with the wrong keys, or it was
	// not encrypted in the first place. Callers map it to exit code 3.
	ErrWrongKey = errors.New("wrong key, or the image is not encrypted: no written entry has a valid CRC")
)

// maxImageSize keeps every offset inside the device's 32-bit tweak.
const maxImageSize = 1 << 32

// entryState returns the 2-bit bitmap state of entry i of page.
func entryState(page []byte, i int) byte {
	return page[bitmapOffset+i/4] >> (2 * (i % 4)) & 0b11
}

// EncryptImage encrypts a plaintext NVS partition image the way the reference
// generator and the device do. plain must be whole pages. For every page,
// every entry slot whose bitmap state is not "empty" is encrypted in place of
// its plaintext with its own offset as tweak, whatever its content (a written
// payload slot of 0xFF bytes is encrypted too, as the reference does).
// Headers, bitmaps and empty slots are copied unchanged. plain is not modified.
func EncryptImage(plain []byte, k *Keys) ([]byte, error) {
	if err := checkPages(plain); err != nil {
		return nil, err
	}
	c, err := NewCipher(k)
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(plain)
	c.crypt(out, true)
	return out, nil
}

// DecryptDeviceImage decrypts an encrypted NVS image the way the device reads
// it: every entry slot whose bitmap state is not "empty" (written, erased or
// the illegal 01) is decrypted with its own offset as tweak, whatever its
// content; headers, bitmaps and empty slots are copied. It is the exact
// inverse of [EncryptImage]. Trailing bytes after the last whole page, which
// the device ignores, are copied unchanged. enc is not modified.
func DecryptDeviceImage(enc []byte, k *Keys) ([]byte, error) {
	if len(enc) > maxImageSize {
		return nil, fmt.Errorf("%w: %d bytes is more than 4 GiB", ErrImageSize, len(enc))
	}
	c, err := NewCipher(k)
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(enc)
	if out == nil {
		out = []byte{}
	}
	c.crypt(out[:len(out)/PageSize*PageSize], false)
	return out, nil
}

// crypt encrypts or decrypts in place the non-empty entry slots of img, which
// is whole pages.
func (c *Cipher) crypt(img []byte, encrypt bool) {
	for base := 0; base < len(img); base += PageSize {
		page := img[base : base+PageSize]
		for i := range EntriesPerPage {
			if entryState(page, i) == stateEmpty {
				continue
			}
			off := firstEntryOffset + i*EntrySize
			slot := page[off : off+EntrySize]
			if encrypt {
				c.s.x.Encrypt(slot, slot, uint64(base+off))
			} else {
				c.s.x.Decrypt(slot, slot, uint64(base+off))
			}
		}
	}
}

// DecryptImage decrypts an encrypted NVS image exactly as the reference's
// "decrypt" command does, so its output is byte-identical to the reference's.
// The image is taken as 4096-byte pages (the last one may be partial); in each,
// the first two 32-byte slots (header and bitmap) are copied, and every other
// slot that is not 32 bytes of 0xFF is decrypted with the tweak
// page·4096 + 64 + 32·n, where n counts the slots decrypted so far in that
// page. The bitmap is not consulted. enc must be a positive multiple of 32
// bytes (the reference writes a single 0xFF byte for an empty input and
// mishandles a partial last slot; both are refused here). enc is not modified.
func DecryptImage(enc []byte, k *Keys) ([]byte, error) {
	if len(enc) == 0 || len(enc)%EntrySize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a positive multiple of %d", ErrImageSize, len(enc), EntrySize)
	}
	if len(enc) > maxImageSize {
		return nil, fmt.Errorf("%w: %d bytes is more than 4 GiB", ErrImageSize, len(enc))
	}
	c, err := NewCipher(k)
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(enc)
	for base := 0; base < len(out); base += PageSize {
		page := out[base:min(base+PageSize, len(out))]
		n := 0
		for off := firstEntryOffset; off+EntrySize <= len(page); off += EntrySize {
			slot := page[off : off+EntrySize]
			if allFF(slot) {
				continue
			}
			c.s.x.Decrypt(slot, slot, uint64(base+firstEntryOffset+n*EntrySize))
			n++
		}
	}
	return out, nil
}

// checkPages checks that img is a non-empty sequence of whole pages that fits
// the device's 32-bit tweak.
func checkPages(img []byte) error {
	switch {
	case len(img) == 0 || len(img)%PageSize != 0:
		return fmt.Errorf("%w: %d bytes is not a positive multiple of %d", ErrImageSize, len(img), PageSize)
	case len(img) > maxImageSize:
		return fmt.Errorf("%w: %d bytes is more than 4 GiB", ErrImageSize, len(img))
	}
	return nil
}

// EntryCRCStats walks the written entries of the whole pages of a plaintext
// image (pages whose state word is 0xFFFFFFFF are skipped) and counts the
// item-header entries it checks and how many of them have a valid entry CRC.
// An entry with a valid CRC is followed past its span; any other written slot
// is counted as one checked entry. With the right keys, or on a plaintext
// image, checked entries are valid unless the image is damaged; after
// decryption with wrong keys, practically none is (each passes with
// probability 2^-32).
func EntryCRCStats(img []byte) (valid, checked int) {
	for base := 0; base+PageSize <= len(img); base += PageSize {
		page := img[base : base+PageSize]
		if binary.LittleEndian.Uint32(page) == pageStateErased {
			continue
		}
		for i := 0; i < EntriesPerPage; {
			if entryState(page, i) != stateWritten {
				i++
				continue
			}
			checked++
			off := firstEntryOffset + i*EntrySize
			e := page[off : off+EntrySize]
			if !entryCRCValid(e) {
				i++
				continue
			}
			valid++
			if span := int(e[2]); span >= 1 && i+span <= EntriesPerPage {
				i += span
			} else {
				i++
			}
		}
	}
	return valid, checked
}

// VerifyDecrypted reports [ErrWrongKey] (wrapped with the count) when plain has
// written entries and none of them has a valid entry CRC: the keys used to
// decrypt it were wrong, or it was not encrypted. It returns nil when at least
// one entry is valid (damaged single entries are the reader's business) or
// when nothing is written.
func VerifyDecrypted(plain []byte) error {
	valid, checked := EntryCRCStats(plain)
	if checked > 0 && valid == 0 {
		return fmt.Errorf("%w (%d written entries checked)", ErrWrongKey, checked)
	}
	return nil
}

// entryCRCValid reports whether the CRC at bytes 4..7 of entry e matches the
// NVS CRC32 of bytes 0..3 followed by 8..31.
func entryCRCValid(e []byte) bool {
	crc := crc32.Update(0xFFFFFFFF, crc32.IEEETable, e[0:4])
	crc = crc32.Update(crc, crc32.IEEETable, e[8:EntrySize])
	return crc == binary.LittleEndian.Uint32(e[4:8])
}
