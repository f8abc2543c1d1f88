package provision

// Checks of a base image (an image read off a device) before it is edited.
// NVS encryption encrypts the 32-byte entries only: page headers and entry
// state bitmaps stay in clear. Read without its keys, an encrypted image
// therefore has valid pages whose written entries all fail their CRC, and
// the device's library — which the editor follows — drops every entry with
// a bad CRC. Editing such an image without its keys would erase all of it,
// so it is refused before anything is recorded or written.

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/nvs/nvscrypt"
)

// ErrLooksEncrypted reports an image read without keys that looks
// encrypted (see LooksEncrypted).
var ErrLooksEncrypted = errors.New("it looks encrypted: its page headers are valid but none of its written entries has a valid CRC")

// LooksEncrypted reports whether img, read without keys, looks like an
// encrypted NVS image: it has pages the library reads (state active, full
// or freeing, with a valid header CRC — headers are never encrypted), those
// pages have written entries, and none of these entries has a valid CRC.
// A blank image (nothing written) does not look encrypted, and neither
// does one with at least one valid entry: damaged single entries are the
// reader's business. Pages with a bad header are skipped, as the library
// skips them, so random bytes do not look encrypted either.
func LooksEncrypted(img []byte) bool {
	checked := 0
	for base := 0; base+nvs.PageSize <= len(img); base += nvs.PageSize {
		page := img[base : base+nvs.PageSize]
		switch binary.LittleEndian.Uint32(page) {
		case nvs.PageStateActive, nvs.PageStateFull, nvs.PageStateFreeing:
		default:
			continue
		}
		if nvs.HeaderCRC(page[:nvs.HeaderSize]) != binary.LittleEndian.Uint32(page[28:32]) {
			continue
		}
		bitmap := page[nvs.BitmapOffset : nvs.BitmapOffset+nvs.BitmapSize]
		for i := range nvs.EntriesPerPage {
			if nvs.EntryState(bitmap, i) != nvs.EntryWritten {
				continue
			}
			checked++
			e := page[nvs.FirstEntryOffset+i*nvs.EntrySize:][:nvs.EntrySize]
			if nvs.EntryCRC(e) == binary.LittleEndian.Uint32(e[4:8]) {
				return false
			}
		}
	}
	return checked > 0
}

// ErrNotNVS reports an image that is no NVS partition at all: empty,
// shorter than a page, or with no page that is blank or carries a valid
// NVS page header (zeros, random bytes, another partition, a read_flash at
// the wrong offset). The device's library would erase every page of it.
var ErrNotNVS = errors.New("not an NVS partition image")

// CheckNVS returns an error wrapping ErrNotNVS, with the reason, when img
// is not an NVS partition image. Page headers are never encrypted, so an
// encrypted image is judged the same way without its keys.
func CheckNVS(img []byte) error {
	switch {
	case len(img) == 0:
		return fmt.Errorf("%w: it is empty (0 bytes)", ErrNotNVS)
	case len(img) < nvs.PageSize:
		return fmt.Errorf("%w: it is %d bytes, less than one 4096-byte page", ErrNotNVS, len(img))
	}
	for base := 0; base+nvs.PageSize <= len(img); base += nvs.PageSize {
		page := img[base : base+nvs.PageSize]
		switch binary.LittleEndian.Uint32(page) {
		case nvs.PageStateUninit:
			if allFF(page) {
				return nil
			}
		case nvs.PageStateActive, nvs.PageStateFull, nvs.PageStateFreeing, nvs.PageStateCorrupt:
			if nvs.HeaderCRC(page[:nvs.HeaderSize]) == binary.LittleEndian.Uint32(page[28:32]) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no page is blank or has a valid NVS page header", ErrNotNVS)
}

func allFF(b []byte) bool {
	for _, c := range b {
		if c != 0xFF {
			return false
		}
	}
	return true
}

// CheckBase reports whether a base image can be edited with keys k (nil
// for a plaintext image): ErrNotNVS (wrapped) when it is no NVS image at
// all, ErrLooksEncrypted when k is nil and the image looks encrypted,
// ErrWrongKeys when k does not decrypt it (wrong keys, or a plaintext image
// given keys). Nothing is changed.
func CheckBase(img []byte, k *nvscrypt.Keys) error {
	if err := CheckNVS(img); err != nil {
		return err
	}
	if k != nil {
		return checkKeys(img, k)
	}
	if LooksEncrypted(img) {
		return ErrLooksEncrypted
	}
	return nil
}

// EncryptedNoKeysError reports an image read without keys that holds no
// device id and looks encrypted. It is bad input (exit 2), as a --base that
// looks encrypted is for provision and rotate: the keys are missing from
// the command line, nothing was compared (issue 14).
type EncryptedNoKeysError struct {
	Namespace, IDKey string
}

func (e *EncryptedNoKeysError) Error() string {
	return fmt.Sprintf("%v; read without its keys it has no %s/%s string to compare, so nothing was compared\nhint: give its keys with --keys KEYS.bin (its nvs_keys partition) or --hmac-key FILE", ErrLooksEncrypted, e.Namespace, e.IDKey)
}

// Unwrap makes errors.Is(err, ErrLooksEncrypted) hold.
func (e *EncryptedNoKeysError) Unwrap() error { return ErrLooksEncrypted }

// BadInput marks the error as the user's to fix (exit code 2).
func (e *EncryptedNoKeysError) BadInput() bool { return true }
