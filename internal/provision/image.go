package provision

import (
	"errors"
	"fmt"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/nvs/nvscrypt"
	"github.com/usmp/usmp-psk/internal/psk"
)

// Defaults of design §6: ESP-IDF's default partition tables put a 0x6000
// byte partition named nvs at 0x9000.
const (
	DefaultPartition = "nvs"
	DefaultSize      = 0x6000
	DefaultOffset    = 0x9000
	DefaultVersion   = 2
)

// Layout is where the USMP entries live in NVS (design §6; config
// nvs.namespace, nvs.id_key, nvs.psk_key): nvs's, under this package's name.
type Layout = nvs.USMPLayout

// DefaultLayout is namespace usmp, string device_id, blob psk
// (nvs.DefaultUSMPLayout, where the defaults are written).
func DefaultLayout() Layout { return nvs.DefaultUSMPLayout() }

// ImageOptions says how a device image is built or read.
type ImageOptions struct {
	Layout
	// Size of a fresh image (DefaultSize when 0). Ignored with Base.
	Size int
	// Version of the NVS format of a fresh image (DefaultVersion when 0).
	Version int
	// Base is an image read off the device: every other entry is kept and
	// the id and key are written the way the device's library writes.
	Base []byte
	// BaseName names the base in errors (its file); "" for none.
	BaseName string
	// Keys encrypts the image (NVS encryption, XTS-AES); with Base, the
	// base is encrypted with the same keys.
	Keys *nvscrypt.Keys
	// ReadOnly reads an image the way the device mounts a partition
	// flagged readonly (ReadImage only): the partition sizes 0x1000 and
	// 0x2000, which have no free page.
	ReadOnly bool
}

func (o ImageOptions) size() int {
	if o.Size == 0 {
		return DefaultSize
	}
	return o.Size
}

func (o ImageOptions) version() int {
	if o.Version == 0 {
		return DefaultVersion
	}
	return o.Version
}

// ErrWrongKeys reports an encrypted image that the given keys do not
// decrypt (its entry CRCs fail), or an image that is not encrypted.
var ErrWrongKeys = errors.New("the NVS keys do not decrypt this image (wrong keys, or the image is not encrypted)")

// EntryHooks returns the per-entry decrypt and encrypt hooks of the NVS
// reader and editor for keys k (XTS-AES with the entry's offset as tweak),
// or nils for a plaintext image.
func EntryHooks(k *nvscrypt.Keys) (dec, enc nvs.EntryCipher, err error) { return hooks(k) }

// hooks returns the entry cipher hooks for k, or nils.
func hooks(k *nvscrypt.Keys) (dec, enc nvs.EntryCipher, err error) {
	if k == nil {
		return nil, nil, nil
	}
	c, err := nvscrypt.NewCipher(k)
	if err != nil {
		return nil, nil, err
	}
	dec = func(off int, e []byte) error { return c.DecryptEntry(e, e, uint64(off)) }
	enc = func(off int, e []byte) error { return c.EncryptEntry(e, e, uint64(off)) }
	return dec, enc, nil
}

// BuildImage writes the NVS image of a device: a fresh one (namespace,
// device id string, psk blob), or the base image with the id and key set
// the way the device's library writes them. With Keys the result is
// encrypted. A base that CheckBase refuses is not edited: one that looks
// encrypted without Keys would lose every entry. The result holds the key:
// it is a secret (R21).
func BuildImage(id string, key *psk.Secret, o ImageOptions) ([]byte, error) {
	if o.Base == nil {
		img, err := nvs.BuildUSMP(nvs.USMPImage{USMPLayout: o.Layout, DeviceID: id, PSK: key.Expose(), Size: o.size(), Version: o.version()})
		if err != nil {
			return nil, err
		}
		if o.Keys == nil {
			return img, nil
		}
		out, err := nvscrypt.EncryptImage(img, o.Keys)
		psk.Wipe(img)
		return out, err
	}
	name := "base image"
	if o.BaseName != "" {
		name += " " + o.BaseName
	}
	if err := CheckBase(o.Base, o.Keys); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	dec, enc, err := hooks(o.Keys)
	if err != nil {
		return nil, err
	}
	ed, err := nvs.OpenEditor(o.Base, nvs.EditOptions{Decrypt: dec, Encrypt: enc})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := ed.SetString(o.Namespace, o.IDKey, id); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := ed.SetBlob(o.Namespace, o.PSKKey, key.Expose()); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return ed.Bytes(), nil
}

// checkKeys refuses keys that do not decrypt an image holding entries.
func checkKeys(img []byte, k *nvscrypt.Keys) error {
	plain, err := nvscrypt.DecryptDeviceImage(img, k)
	if err != nil {
		return err
	}
	defer psk.Wipe(plain)
	if valid, checked := nvscrypt.EntryCRCStats(plain); checked > 0 && valid == 0 {
		return ErrWrongKeys
	}
	return nil
}

// ErrNoDevice reports an image that holds no device to verify: the device
// cannot mount it, or it has no id entry (a blank image, another
// partition). A verification of it fails.
var ErrNoDevice = errors.New("the image holds no device")

// noDeviceError is an error that matches ErrNoDevice (and its cause) but
// reads as its cause alone.
type noDeviceError struct{ err error }

func (e noDeviceError) Error() string   { return e.err.Error() }
func (e noDeviceError) Unwrap() []error { return []error{ErrNoDevice, e.err} }

// DeviceImage is what an image says about its device.
type DeviceImage struct {
	ID  string
	Key *psk.Secret // nil when the image has no key entry
}

// ReadImage reads the device id and key of an image the way the device's
// library reads them, decrypting with Keys when given. Missing entries are
// reported, never guessed.
func ReadImage(img []byte, o ImageOptions) (*DeviceImage, error) {
	if o.Keys != nil {
		if err := checkKeys(img, o.Keys); err != nil {
			return nil, err
		}
	}
	dec, _, err := hooks(o.Keys)
	if err != nil {
		return nil, err
	}
	parsed, err := nvs.ReadImage(img, nvs.ReadOptions{Decrypt: dec, ReadOnly: o.ReadOnly})
	if err != nil {
		return nil, err
	}
	if parsed.MountErr != nil && len(parsed.Entries) == 0 {
		return nil, noDeviceError{fmt.Errorf("the device could not mount this image: %w", parsed.MountErr)}
	}
	idEntry := parsed.Lookup(o.Namespace, o.IDKey)
	if idEntry == nil || idEntry.Type != nvs.TypeString || idEntry.Err != nil {
		if o.Keys == nil && LooksEncrypted(img) {
			return nil, &EncryptedNoKeysError{Namespace: o.Namespace, IDKey: o.IDKey}
		}
		return nil, noDeviceError{fmt.Errorf("no %s/%s string in the image", o.Namespace, o.IDKey)}
	}
	out := &DeviceImage{ID: string(idEntry.Bytes())}
	if k := parsed.Lookup(o.Namespace, o.PSKKey); k != nil && k.Type == nvs.TypeBlob && k.Err == nil {
		out.Key = psk.CopySecret(k.Bytes())
	}
	for i := range parsed.Entries {
		psk.Wipe(parsed.Entries[i].Bytes())
	}
	return out, nil
}
