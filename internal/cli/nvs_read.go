package cli

// What nvs dump and nvs check share: reading an image, plain or encrypted
// (--keys KEYS.bin or --hmac-key FILE), the way the device reads it. Key
// files get the R7 mode check; a wrong key is reported (exit 3), never
// shown as garbage. Errors name files, sizes and KCVs, never key bytes or
// stored values (R9, R10).

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/nvs/nvscrypt"
	"github.com/usmp/usmp-psk/internal/psk"
)

// nvsKeySource is --keys or --hmac-key: the keys of an encrypted image.
type nvsKeySource struct {
	keys    string // --keys: an nvs_keys partition file
	hmacKey string // --hmac-key: the 32-byte HMAC key of the HMAC scheme
}

func addKeySourceFlags(cmd *cobra.Command, o *nvsKeySource) {
	cmd.Flags().StringVar(&o.keys, "keys", "", "decrypt with the nvs_keys partition `FILE` (NVS encryption)")
	cmd.Flags().StringVar(&o.hmacKey, "hmac-key", "", "decrypt with the XTS keys derived from the 32-byte HMAC key in `FILE` (HMAC scheme)")
}

// validate refuses both sources at once and empty paths.
func (o *nvsKeySource) validate(cmd *cobra.Command) error {
	keys, hmac := cmd.Flags().Changed("keys"), cmd.Flags().Changed("hmac-key")
	switch {
	case keys && hmac:
		return flagErrorf("--keys and --hmac-key exclude each other\nhint: --keys takes the nvs_keys partition file; --hmac-key the HMAC key the keys are derived from")
	case keys && o.keys == "":
		return flagErrorf("--keys needs a FILE")
	case hmac && o.hmacKey == "":
		return flagErrorf("--hmac-key needs a FILE")
	}
	return nil
}

// load reads the keys, or returns nil when none were given. --keys is read
// strictly, as the device reads its nvs_keys partition (size and CRC).
func (o *nvsKeySource) load(readKeyFile keyFileReader) (*nvscrypt.Keys, error) {
	switch {
	case o.keys != "":
		data, err := readKeyFile("--keys", o.keys)
		if err != nil {
			return nil, err
		}
		defer psk.Wipe(data)
		k, err := nvscrypt.ParseKeysPartition(data)
		if err != nil {
			hint := "--keys takes the 4096-byte nvs_keys partition file (from 'nvs generate-key' or 'nvs encrypt --keygen')"
			if len(data) == nvscrypt.HMACKeySize {
				hint = "a 32-byte file is an HMAC key: use --hmac-key"
			}
			return nil, badInputf("--keys %s: %w\nhint: %s", o.keys, err, hint)
		}
		return k, nil
	case o.hmacKey != "":
		data, err := readKeyFile("--hmac-key", o.hmacKey)
		if err != nil {
			return nil, err
		}
		defer psk.Wipe(data)
		hk, err := nvscrypt.ParseHMACKey(data)
		if err != nil {
			hint := "--hmac-key takes the 32-byte HMAC key of the HMAC scheme"
			if len(data) == nvscrypt.KeysPartitionSize {
				hint = "a 4096-byte file is an nvs_keys partition: use --keys"
			}
			return nil, badInputf("--hmac-key %s: %w\nhint: %s", o.hmacKey, err, hint)
		}
		defer hk.Destroy()
		return hk.DeriveKeys()
	}
	return nil, nil
}

// wrongKeyError reports an image that does not decrypt with the keys given
// (exit 3).
type wrongKeyError struct {
	image, keysFile, kcv string
	err                  error
}

func (e *wrongKeyError) Error() string {
	return fmt.Sprintf("%s: %v (keys kcv %s)\nhint: check that %s holds the keys this image was encrypted with", e.image, e.err, e.kcv, e.keysFile)
}
func (e *wrongKeyError) Unwrap() error  { return e.err }
func (e *wrongKeyError) Mismatch() bool { return true }

// nvsLoaded is an image ready to read: plaintext, with what was used.
type nvsLoaded struct {
	path     string
	plain    []byte
	kcv      string // KCV of the XTS keys, "" for a plaintext image
	readOnly bool   // mounted as a read-only partition
}

// loadNVSImage reads an image and decrypts it the way the device does
// (bitmap-faithful) when keys are given. With the wrong keys it returns a
// *wrongKeyError and no image.
func loadNVSImage(ctx context.Context, readKeyFile keyFileReader, path string, src *nvsKeySource) (*nvsLoaded, error) {
	keys, err := src.load(readKeyFile)
	if err != nil {
		return nil, err
	}
	raw, err := readImageFile(ctx, path)
	if err != nil {
		return nil, err
	}
	l := &nvsLoaded{path: path, plain: raw}
	if keys != nil {
		defer keys.Destroy()
		l.kcv = keys.KCV()
		plain, err := nvscrypt.DecryptDeviceImage(raw, keys)
		psk.Wipe(raw)
		if err != nil {
			return nil, badInputf("%s: %w", path, err)
		}
		if err := nvscrypt.VerifyDecrypted(plain); err != nil {
			psk.Wipe(plain)
			if errors.Is(err, nvscrypt.ErrWrongKey) {
				keysFile := src.keys
				if keysFile == "" {
					keysFile = src.hmacKey
				}
				return nil, &wrongKeyError{image: path, keysFile: keysFile, kcv: l.kcv, err: err}
			}
			return nil, err
		}
		l.plain = plain
	}
	// The generator writes only the used pages for the read-only sizes
	// 0x1000 and 0x2000: such an image is read the way the device mounts a
	// partition flagged readonly. A truncated image (not whole pages)
	// stays a read/write mount, which fails as on the device.
	n := len(l.plain)
	l.readOnly = n > 0 && n < nvs.MinReadWriteSize && n%nvs.PageSize == 0
	return l, nil
}

// wipe clears the plaintext image.
func (l *nvsLoaded) wipe() { psk.Wipe(l.plain) }

// looksEncrypted reports a plaintext read of an image where no written
// entry has a valid CRC: most likely an encrypted image read without keys.
func (l *nvsLoaded) looksEncrypted() bool {
	return l.kcv == "" && errors.Is(nvscrypt.VerifyDecrypted(l.plain), nvscrypt.ErrWrongKey)
}

// encryptedHint is the warning for looksEncrypted.
func encryptedHint(path string) string {
	return path + ": no written entry has a valid CRC; if the image is encrypted, give --keys KEYS.bin or --hmac-key FILE"
}
