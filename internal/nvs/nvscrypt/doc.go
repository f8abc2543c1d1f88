// Package nvscrypt implements ESP-IDF NVS encryption: the nvs_keys partition
// format, the HMAC-based key scheme, and XTS-AES-256 encryption of NVS
// partition images, byte for byte as Espressif's nvs_partition_gen.py 0.2.0
// and the device's nvs_flash library do it (docs/nvs-format.md §6).
//
// # Keys
//
// [Keys] holds the 64-byte XTS key eky‖tky; [HMACKey] holds the 32-byte key of
// the HMAC scheme, from which [Keys] are derived. Both keep their bytes behind
// a pointer and implement [fmt.Formatter], [slog.LogValuer],
// [encoding/json.Marshaler], [encoding.TextMarshaler] and
// [encoding/gob.GobEncoder] so that no formatting path can print them
// (security.md R13). Keys only ever leave the package as the bytes of a file
// ([Keys.Partition], [HMACKey.File]). New keys come from crypto/rand; the
// reference generator uses Python's non-cryptographic random module instead.
//
// # What is encrypted
//
// A page is a 32-byte header, a 32-byte entry-state bitmap and 126 entries of
// 32 bytes. Header and bitmap stay plaintext. Every entry slot that is in use
// (item headers and payload slots alike) is its own XTS data unit, encrypted
// with the tweak set to the entry's byte offset from the start of the
// partition (page·4096 + 64 + 32·entry). Unused slots stay 0xFF.
//
// # Two ways to decrypt
//
// [DecryptImage] does what the reference's "decrypt" command does: it decides
// by content, decrypting every slot except the header and bitmap whose 32
// bytes are not all 0xFF, and its tweak is a counter of the slots it has
// decrypted so far in the page, not the slot's position. This equals the
// device's result when the used slots of each page are contiguous from slot 0
// (always true for generator output, and for what the device writes, since it
// fills a page in order and erases by bitmap only). It gives a different,
// wrong result when an unused slot sits between used ones, and it decrypts
// slots the bitmap calls empty.
//
// [DecryptDeviceImage] does what the device does: it trusts the bitmap and
// decrypts every slot whose state is not "empty" (written, erased, or the
// illegal 01) with that slot's own offset as tweak, whatever its content;
// this is the exact inverse of [EncryptImage], which decides by the bitmap in
// the same way. Use it for images read from a device, and for the team's
// reader and editor. The per-entry [Cipher] methods are the building blocks.
//
// # Wrong keys
//
// Decrypting with the wrong keys gives random entries whose CRCs fail.
// [VerifyDecrypted] reports [ErrWrongKey] when an image has written entries
// and none of them has a valid CRC, so callers can say "wrong key" instead of
// showing garbage. Errors of this package never contain key bytes or image
// content, only sizes, offsets and counts (security.md R9).
package nvscrypt
