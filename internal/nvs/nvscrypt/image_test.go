package nvscrypt

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// encVectors are the encrypted reference vectors: NAME.bin is the reference's
// encrypt output, NAME.decrypted.bin its decrypt output (equal to generate of
// the same CSV). enc_hmac is the HMAC scheme, its keys file derived by the
// reference.
var encVectors = []string{"enc_usmp", "enc_multipage", "enc_v1", "enc_hmac"}

// TestImageGolden: encrypt(decrypted) == enc and decrypt(enc) == decrypted,
// for the reference decrypt and the device decrypt, in both schemes.
func TestImageGolden(t *testing.T) {
	t.Parallel()
	for _, name := range encVectors {
		t.Run(name, func(t *testing.T) {
			enc := readTestdata(t, name+".bin")
			plain := readTestdata(t, name+".decrypted.bin")
			keysSources := map[string]*Keys{"keys file": mustKeys(t, name+".keys.bin")}
			if name == "enc_hmac" {
				k, err := deriveFromHMACKey(readTestdata(t, name+".hmac_key.bin"))
				if err != nil {
					t.Fatal(err)
				}
				keysSources["HMAC key"] = k
			}
			for src, k := range keysSources {
				got, err := EncryptImage(plain, k)
				if err != nil {
					t.Fatalf("%s: EncryptImage: %v", src, err)
				}
				sameBytes(t, src+": EncryptImage", got, enc)

				got, err = DecryptImage(enc, k)
				if err != nil {
					t.Fatalf("%s: DecryptImage: %v", src, err)
				}
				sameBytes(t, src+": DecryptImage", got, plain)

				got, err = DecryptDeviceImage(enc, k)
				if err != nil {
					t.Fatalf("%s: DecryptDeviceImage: %v", src, err)
				}
				sameBytes(t, src+": DecryptDeviceImage", got, plain)

				if err := VerifyDecrypted(got); err != nil {
					t.Fatalf("%s: VerifyDecrypted: %v", src, err)
				}
			}
		})
	}
}

// TestDeviceImages: images written by the real nvs_flash library with
// encryption (erased slots, garbage collection, FULL pages with free slots).
// The device decrypt is the exact inverse of EncryptImage, every written
// entry's CRC is valid, and for these images the reference decrypt agrees.
func TestDeviceImages(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"enc_device", "enc_gen_edit", "base_usmp_enc"} {
		t.Run(name, func(t *testing.T) {
			enc := readTestdata(t, name+".bin")
			k := mustKeys(t, name+".keys.bin")
			dev, err := DecryptDeviceImage(enc, k)
			if err != nil {
				t.Fatal(err)
			}
			valid, checked := EntryCRCStats(dev)
			if checked == 0 || valid != checked {
				t.Fatalf("%d of %d written entries have a valid CRC", valid, checked)
			}
			back, err := EncryptImage(dev, k)
			if err != nil {
				t.Fatal(err)
			}
			sameBytes(t, "EncryptImage(DecryptDeviceImage)", back, enc)
			ref, err := DecryptImage(enc, k)
			if err != nil {
				t.Fatal(err)
			}
			sameBytes(t, "DecryptImage vs DecryptDeviceImage", ref, dev)
		})
	}
	// base_usmp_enc is the reference's encrypt of base_usmp.csv, whose plain
	// generate output is base_usmp.bin.
	dec, err := DecryptImage(readTestdata(t, "base_usmp_enc.bin"), mustKeys(t, "base_usmp_enc.keys.bin"))
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "decrypt(base_usmp_enc)", dec, readTestdata(t, "base_usmp.bin"))
}

// TestWrongKey: decrypting with any wrong key gives entries whose CRCs fail,
// and VerifyDecrypted reports ErrWrongKey; so does an image that was never
// encrypted when it is "decrypted".
func TestWrongKey(t *testing.T) {
	t.Parallel()
	enc := readTestdata(t, "enc_usmp.bin")
	random, canary := canaryKeys(t, "wrong-key")
	flipped := bytes.Clone(readTestdata(t, "enc_usmp.keys.bin"))
	flipped[40] ^= 0x01 // one bit of the tweak key
	oneBit, err := ParseKeysPartitionLenient(flipped)
	if err != nil {
		t.Fatal(err)
	}
	wrong := map[string]*Keys{
		"other vector's keys": mustKeys(t, "enc_multipage.keys.bin"),
		"random keys":         random,
		"one tweak-key bit":   oneBit,
	}
	for name, k := range wrong {
		for mode, decrypt := range map[string]func([]byte, *Keys) ([]byte, error){
			"reference": DecryptImage, "device": DecryptDeviceImage,
		} {
			t.Run(name+"/"+mode, func(t *testing.T) {
				dec, err := decrypt(enc, k)
				if err != nil {
					t.Fatal(err)
				}
				err = VerifyDecrypted(dec)
				if !errors.Is(err, ErrWrongKey) {
					t.Fatalf("VerifyDecrypted = %v, want ErrWrongKey", err)
				}
				assertNoLeak(t, err.Error(), canary)
			})
		}
	}
	// The encrypted image itself looks like a wrong-key result: it is not a
	// plaintext image.
	if err := VerifyDecrypted(enc); !errors.Is(err, ErrWrongKey) {
		t.Errorf("VerifyDecrypted(encrypted image) = %v, want ErrWrongKey", err)
	}
	// Decrypting a plaintext image is caught the same way.
	plain := readTestdata(t, "enc_usmp.decrypted.bin")
	dec, err := DecryptDeviceImage(plain, mustKeys(t, "enc_usmp.keys.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyDecrypted(dec); !errors.Is(err, ErrWrongKey) {
		t.Errorf("VerifyDecrypted(decrypted plaintext) = %v, want ErrWrongKey", err)
	}
}

// TestVerifyDecrypted covers the cases that are not wrong keys.
func TestVerifyDecrypted(t *testing.T) {
	t.Parallel()
	plain := readTestdata(t, "enc_multipage.decrypted.bin")
	damaged := bytes.Clone(plain)
	damaged[64+8] ^= 0xFF // key of the first entry: its CRC fails, the others hold
	tests := []struct {
		name string
		img  []byte
		want error
	}{
		{"plaintext image", plain, nil},
		{"one damaged entry", damaged, nil},
		{"blank image", bytes.Repeat([]byte{0xFF}, 3*PageSize), nil},
		{"empty", nil, nil},
		{"partial page only", plain[:100], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := VerifyDecrypted(tt.img); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("VerifyDecrypted = %v, want %v", err, tt.want)
			}
		})
	}
	valid, checked := EntryCRCStats(damaged)
	if valid != checked-1 {
		t.Errorf("damaged image: %d valid of %d checked, want exactly one invalid", valid, checked)
	}
}

// writeEntry marks entry i of page p of img as written (bitmap 10) and stores e.
func writeEntry(img []byte, p, i int, e []byte) {
	page := img[p*PageSize:]
	shift := 2 * (i % 4)
	page[bitmapOffset+i/4] = page[bitmapOffset+i/4]&^(0b11<<shift) | stateWritten<<shift
	copy(page[firstEntryOffset+i*EntrySize:], e)
}

// TestEncryptByBitmap: the reference encrypts every slot it writes, so a
// written payload slot of 32 × 0xFF is encrypted too (the generator writes such
// slots, e.g. for its hidden sta.apinfo blob); the decision is the bitmap's,
// not the content's.
func TestEncryptByBitmap(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, "enc_usmp.keys.bin")
	plain := bytes.Clone(readTestdata(t, "enc_usmp.decrypted.bin"))
	payload := firstEntryOffset + 4*EntrySize // entry 4: the 32 psk bytes
	copy(plain[payload:payload+EntrySize], bytes.Repeat([]byte{0xFF}, EntrySize))
	enc, err := EncryptImage(plain, k)
	if err != nil {
		t.Fatal(err)
	}
	if allFF(enc[payload : payload+EntrySize]) {
		t.Fatal("written all-0xFF slot left unencrypted")
	}
	if !allFF(enc[firstEntryOffset+6*EntrySize : PageSize]) {
		t.Fatal("empty slots changed")
	}
	sameBytes(t, "header and bitmap", enc[:firstEntryOffset], plain[:firstEntryOffset])
	for name, decrypt := range map[string]func([]byte, *Keys) ([]byte, error){"reference": DecryptImage, "device": DecryptDeviceImage} {
		dec, err := decrypt(enc, k)
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, name+" decrypt", dec, plain)
	}
}

// TestDecryptModesDiffer documents where the reference's decrypt is not what
// the device reads: a used slot after an unused one gets the tweak of the gap
// (the reference counts decrypted slots), and a slot the bitmap calls empty
// is decrypted when it is not all 0xFF.
func TestDecryptModesDiffer(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, "enc_usmp.keys.bin")
	plain := bytes.Clone(readTestdata(t, "enc_usmp.decrypted.bin"))
	// Entries 0..5 are written; put a copy of entry 0 at 7, leaving 6 empty.
	writeEntry(plain, 0, 7, plain[firstEntryOffset:firstEntryOffset+EntrySize])
	enc, err := EncryptImage(plain, k)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := DecryptDeviceImage(enc, k)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "device decrypt with a gap", dev, plain)
	ref, err := DecryptImage(enc, k)
	if err != nil {
		t.Fatal(err)
	}
	slot7 := firstEntryOffset + 7*EntrySize
	sameBytes(t, "reference decrypt before the gap", ref[:slot7], plain[:slot7])
	if bytes.Equal(ref[slot7:slot7+EntrySize], plain[slot7:slot7+EntrySize]) {
		t.Fatal("reference decrypt used the slot's own offset after a gap")
	}

	// Garbage in a slot the bitmap calls empty: the device leaves it, the
	// reference decrypts it.
	junk := bytes.Clone(enc)
	slot9 := firstEntryOffset + 9*EntrySize
	junk[slot9] = 0
	dev, _ = DecryptDeviceImage(junk, k)
	ref, _ = DecryptImage(junk, k)
	if !bytes.Equal(dev[slot9:slot9+EntrySize], junk[slot9:slot9+EntrySize]) {
		t.Fatal("device decrypt touched an empty slot")
	}
	if bytes.Equal(ref[slot9:slot9+EntrySize], junk[slot9:slot9+EntrySize]) {
		t.Fatal("reference decrypt skipped a non-0xFF slot")
	}
}

func TestImageSizes(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, "enc_usmp.keys.bin")
	enc := readTestdata(t, "enc_usmp.bin")
	tests := []struct {
		name           string
		in             []byte
		encryptErr     bool
		decryptErr     bool
		deviceErr      bool
		deviceSameTail bool
	}{
		{"empty", nil, true, true, false, false},
		{"one slot", enc[:32], true, false, false, true},
		{"not a slot multiple", enc[:100], true, true, false, true},
		{"page and a half", enc[:PageSize+PageSize/2], true, false, false, true},
		{"one page", enc[:PageSize], false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := EncryptImage(tt.in, k); (err != nil) != tt.encryptErr || (err != nil && !errors.Is(err, ErrImageSize)) {
				t.Errorf("EncryptImage error = %v", err)
			}
			if _, err := DecryptImage(tt.in, k); (err != nil) != tt.decryptErr || (err != nil && !errors.Is(err, ErrImageSize)) {
				t.Errorf("DecryptImage error = %v", err)
			}
			out, err := DecryptDeviceImage(tt.in, k)
			if (err != nil) != tt.deviceErr {
				t.Errorf("DecryptDeviceImage error = %v", err)
			}
			if len(out) != len(tt.in) {
				t.Errorf("DecryptDeviceImage returned %d bytes for %d", len(out), len(tt.in))
			}
			if tt.deviceSameTail {
				whole := len(tt.in) / PageSize * PageSize
				sameBytes(t, "trailing partial page", out[whole:], tt.in[whole:])
			}
		})
	}
}

// TestInputsUnchanged: the image functions never modify their input.
func TestInputsUnchanged(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, "enc_usmp.keys.bin")
	enc := readTestdata(t, "enc_usmp.bin")
	plain := readTestdata(t, "enc_usmp.decrypted.bin")
	encCopy, plainCopy := bytes.Clone(enc), bytes.Clone(plain)
	_, _ = EncryptImage(plain, k)
	_, _ = DecryptImage(enc, k)
	_, _ = DecryptDeviceImage(enc, k)
	sameBytes(t, "plain input", plain, plainCopy)
	sameBytes(t, "encrypted input", enc, encCopy)
}

// TestCipherEntries: the per-entry API gives the same bytes as the image
// functions, in place and into another buffer, one entry or a whole span.
func TestCipherEntries(t *testing.T) {
	t.Parallel()
	k := mustKeys(t, "enc_multipage.keys.bin")
	enc := readTestdata(t, "enc_multipage.bin")
	plain := readTestdata(t, "enc_multipage.decrypted.bin")
	c, err := NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	// Page 1 holds blob data: a run of written entries from entry 0.
	n := 0
	for n < EntriesPerPage && entryState(plain[PageSize:], n) == stateWritten {
		n++
	}
	if n < 2 {
		t.Fatalf("page 1 has %d written entries", n)
	}
	base := PageSize + firstEntryOffset
	span := plain[base : base+n*EntrySize]
	got := make([]byte, len(span))
	if err := c.EncryptEntry(got, span, uint64(base)); err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "EncryptEntry span", got, enc[base:base+len(span)])
	if err := c.DecryptEntry(got, got, uint64(base)); err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "DecryptEntry in place", got, span)
	for i := range n {
		off := base + i*EntrySize
		one := make([]byte, EntrySize)
		if err := c.DecryptEntry(one, enc[off:off+EntrySize], uint64(off)); err != nil {
			t.Fatal(err)
		}
		sameBytes(t, fmt.Sprintf("DecryptEntry %d", i), one, plain[off:off+EntrySize])
	}

	bad := []struct {
		name     string
		dst, src []byte
		offset   uint64
	}{
		{"empty", nil, nil, 64},
		{"16 bytes", make([]byte, 16), make([]byte, 16), 64},
		{"33 bytes", make([]byte, 64), make([]byte, 33), 64},
		{"short dst", make([]byte, 32), make([]byte, 64), 64},
		{"misaligned offset", make([]byte, 32), make([]byte, 32), 65},
		{"beyond 4 GiB", make([]byte, 32), make([]byte, 32), 1 << 32},
		{"wraps around", make([]byte, 64), make([]byte, 64), ^uint64(31)},
	}
	for _, tt := range bad {
		if err := c.EncryptEntry(tt.dst, tt.src, tt.offset); !errors.Is(err, ErrEntryBounds) {
			t.Errorf("%s: EncryptEntry error = %v", tt.name, err)
		}
		if err := c.DecryptEntry(tt.dst, tt.src, tt.offset); !errors.Is(err, ErrEntryBounds) {
			t.Errorf("%s: DecryptEntry error = %v", tt.name, err)
		}
	}
	var nilCipher *Cipher
	if err := nilCipher.EncryptEntry(make([]byte, 32), make([]byte, 32), 64); !errors.Is(err, ErrDestroyed) {
		t.Errorf("nil cipher: %v", err)
	}
	// The last entry below 4 GiB is allowed.
	if err := c.EncryptEntry(make([]byte, 32), make([]byte, 32), 1<<32-32); err != nil {
		t.Errorf("last entry below 4 GiB: %v", err)
	}
}
