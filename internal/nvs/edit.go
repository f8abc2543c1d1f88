package nvs

// This file is the editor: it sets and erases keys in an existing image the
// way ESP-IDF's NVS library writes them on a device (nvs_open + nvs_set_* or
// nvs_erase_key + nvs_commit), on the same emulation the reader uses. Values
// may be secrets: errors name the namespace, key and operation, never the
// value (security R9).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// EditOptions configures OpenEditor.
type EditOptions struct {
	// Decrypt and Encrypt, when set, transform each 32-byte entry in place
	// as it is read from or written to the image (NVS encryption: XTS-AES
	// with the entry's partition offset as tweak). Both must be set for an
	// encrypted image; page headers and bitmaps stay in clear.
	Decrypt EntryCipher
	Encrypt EntryCipher

	// indexAll is ReadOptions.indexAll.
	indexAll bool
}

// ErrInvalidName is returned for a namespace or key that is empty, longer
// than 15 bytes or contains a NUL byte.
var ErrInvalidName = errors.New("nvs: namespace and key names must be 1 to 15 bytes without NUL")

// ErrStringNUL is returned by SetString for a value with a NUL byte, which
// the device's nvs_set_str would silently cut short.
var ErrStringNUL = errors.New("nvs: string value contains a NUL byte")

// Editor changes an NVS image the way the device's library does. Each
// method is one nvs_open / nvs_set_* or nvs_erase_key / nvs_commit /
// nvs_close session; several calls on one Editor behave like one boot of the
// device (no restart between them).
type Editor struct {
	e        *rdEngine
	trailing []byte
}

// OpenEditor mounts a copy of the image b the way the device's library
// does at boot, including its start-up repairs (duplicates left by a power
// loss, an interrupted garbage collection, damaged entries), so Bytes
// reflects those repairs even before any edit. It fails, with a wrapped
// DeviceError, when the device could not mount the image (for example
// DeviceNoFreePages for a full or truncated partition).
//
// b is not modified. Bytes beyond the last whole page are kept as they are.
func OpenEditor(b []byte, opts EditOptions) (*Editor, error) {
	if len(b) > MaxImageSize {
		return nil, ErrImageTooLarge
	}
	if (opts.Decrypt == nil) != (opts.Encrypt == nil) {
		return nil, errors.New("nvs: an encrypted image needs both EditOptions.Decrypt and Encrypt")
	}
	n := len(b) / PageSize * PageSize
	e := &rdEngine{
		flash:    append([]byte(nil), b[:n]...),
		decrypt:  opts.Decrypt,
		encrypt:  opts.Encrypt,
		indexAll: opts.indexAll,
	}
	if rc := e.init(); rc != devOK {
		if e.hookErr != nil {
			return nil, fmt.Errorf("nvs: open image: %w", e.hookErr)
		}
		return nil, fmt.Errorf("nvs: the device cannot mount this image: %w", rc)
	}
	return &Editor{e: e, trailing: append([]byte(nil), b[n:]...)}, nil
}

// Bytes returns a copy of the image as it stands.
func (ed *Editor) Bytes() []byte {
	out := make([]byte, 0, len(ed.e.flash)+len(ed.trailing))
	out = append(out, ed.e.flash...)
	return append(out, ed.trailing...)
}

// checkName validates a namespace or key name.
func checkName(s string) error {
	if len(s) == 0 || len(s) > MaxKeyLen || bytes.IndexByte([]byte(s), 0) >= 0 {
		return ErrInvalidName
	}
	return nil
}

// set opens (creating if needed) the namespace and writes one item.
func (ed *Editor) set(ns, key string, t Type, data []byte) error {
	if err := checkName(ns); err != nil {
		return err
	}
	if err := checkName(key); err != nil {
		return err
	}
	idx, rc := ed.e.namespaceIndex([]byte(ns), true)
	if rc == devOK {
		rc = ed.e.writeItem(idx, t, []byte(key), data, false)
	}
	return ed.result("set", ns, key, rc)
}

func (ed *Editor) result(op, ns, key string, rc DeviceError) error {
	if ed.e.hookErr != nil {
		err := ed.e.hookErr
		ed.e.hookErr = nil
		return fmt.Errorf("nvs: %s %s/%s: %w", op, ns, key, err)
	}
	if rc != devOK {
		return fmt.Errorf("nvs: %s %s/%s: %w", op, ns, key, rc)
	}
	return nil
}

// SetString stores v as a string (nvs_set_str): on one page, with its NUL
// terminator, at most 4000 bytes including the NUL. Setting the value a key
// already has writes nothing, as on the device.
func (ed *Editor) SetString(ns, key, v string) error {
	if bytes.IndexByte([]byte(v), 0) >= 0 {
		return ErrStringNUL
	}
	data := make([]byte, len(v)+1)
	copy(data, v)
	return ed.set(ns, key, TypeString, data)
}

// SetBlob stores v as a version 2 blob (nvs_set_blob): data chunks filling
// the active page and the following ones, then the blob index. Rewriting a
// blob writes the new chunks with the other version offset (0x00 / 0x80)
// before erasing the old ones.
func (ed *Editor) SetBlob(ns, key string, v []byte) error {
	return ed.set(ns, key, TypeBlob, v)
}

// SetInt stores a signed or unsigned integer of type t (TypeU8 … TypeI64)
// with nvs_set_<t>. v must fit the type.
func (ed *Editor) SetInt(ns, key string, t Type, v int64) error {
	if !t.IsInt() {
		return fmt.Errorf("nvs: set %s/%s: %s is not an integer type", ns, key, t)
	}
	if !t.Signed() {
		if v < 0 {
			return fmt.Errorf("nvs: set %s/%s: value out of range for %s", ns, key, t)
		}
		return ed.SetUint(ns, key, t, uint64(v))
	}
	bits := 8 * uint(t.IntSize())
	if bits < 64 && (v < -(1<<(bits-1)) || v >= 1<<(bits-1)) {
		return fmt.Errorf("nvs: set %s/%s: value out of range for %s", ns, key, t)
	}
	return ed.setInt(ns, key, t, uint64(v))
}

// SetUint stores an unsigned (or non-negative signed) integer of type t.
func (ed *Editor) SetUint(ns, key string, t Type, v uint64) error {
	if !t.IsInt() {
		return fmt.Errorf("nvs: set %s/%s: %s is not an integer type", ns, key, t)
	}
	bits := 8 * uint(t.IntSize())
	if t.Signed() {
		bits--
	}
	if bits < 64 && v >= 1<<bits {
		return fmt.Errorf("nvs: set %s/%s: value out of range for %s", ns, key, t)
	}
	return ed.setInt(ns, key, t, v)
}

func (ed *Editor) setInt(ns, key string, t Type, v uint64) error {
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], v)
	return ed.set(ns, key, t, buf[:t.IntSize()])
}

// Erase removes a key of any type (nvs_erase_key): its entries are marked
// erased in the bitmap; their bytes stay, as on the device. A missing key
// gives an error wrapping DeviceNotFound. Unlike a device, which creates
// the namespace when it opens it for writing, Erase leaves an image whose
// namespace does not exist unchanged.
func (ed *Editor) Erase(ns, key string) error {
	if err := checkName(ns); err != nil {
		return err
	}
	if err := checkName(key); err != nil {
		return err
	}
	idx, rc := ed.e.namespaceIndex([]byte(ns), false)
	if rc == devOK {
		rc = ed.e.eraseItem(idx, []byte(key), false)
	}
	return ed.result("erase", ns, key, rc)
}
