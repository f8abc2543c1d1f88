package nvscrypt

import (
	"bytes"
	"errors"
	"regexp"
	"testing"
)

var digits = regexp.MustCompile(`[0-9]+`)

// allowedErrors are the only error texts the parsers and image functions may
// return, with every run of digits replaced by "#". Matching one of them
// proves that an error holds no content of its input, only numbers (sizes,
// offsets, counts): R9 and R28.
var allowedErrors = map[string]bool{
	"keys partition has the wrong size: # bytes, want #":                                                     true,
	"keys partition has the wrong size: # bytes, want at least #":                                            true,
	"keys partition is empty (all #xFF)":                                                                     true,
	"keys partition CRC mismatch (CRC# at offset # does not match bytes #..#)":                               true,
	"HMAC key has the wrong size: # bytes, want #":                                                           true,
	"bad image size: # bytes is not a positive multiple of #":                                                true,
	"bad image size: # bytes is more than # GiB":                                                             true,
	"wrong key, or the image is not encrypted: no written entry has a valid CRC (# written entries checked)": true,
}

func checkErrorText(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if msg := digits.ReplaceAllString(err.Error(), "#"); !allowedErrors[msg] {
		t.Fatalf("unexpected error text %q", msg)
	}
}

// FuzzParseKeysPartition: the key-file parsers never panic, accept only
// well-formed input, round-trip what they accept, and return only
// content-free errors (R9, R28).
func FuzzParseKeysPartition(f *testing.F) {
	for _, name := range []string{"enc_usmp.keys.bin", "enc_hmac.keys.bin", "enc_hmac.hmac_key.bin"} {
		f.Add(readTestdata(f, name))
	}
	good := readTestdata(f, "enc_v1.keys.bin")
	f.Add(good[:64])
	f.Add(good[:68])
	f.Add(bytes.Repeat([]byte{0xFF}, KeysPartitionSize))
	f.Add(make([]byte, KeysPartitionSize))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKeysPartition(b)
		checkErrorText(t, err)
		if err == nil {
			if len(b) != KeysPartitionSize {
				t.Fatalf("accepted %d bytes", len(b))
			}
			p := k.Partition()
			if !bytes.Equal(p[:68], b[:68]) {
				t.Fatal("Partition() does not reproduce key and CRC")
			}
			back, err := ParseKeysPartition(p)
			if err != nil || !back.equal(k) {
				t.Fatal("Partition() does not parse back to the same key")
			}
		}
		lk, lerr := ParseKeysPartitionLenient(b)
		checkErrorText(t, lerr)
		if (lerr == nil) != (len(b) >= XTSKeySize) {
			t.Fatalf("lenient parse of %d bytes: %v", len(b), lerr)
		}
		if err == nil && !lk.equal(k) {
			t.Fatal("lenient and strict parse disagree")
		}
		h, herr := ParseHMACKey(b)
		checkErrorText(t, herr)
		if herr == nil {
			if !bytes.Equal(h.File(), b) {
				t.Fatal("HMAC key file does not round-trip")
			}
			if _, err := h.DeriveKeys(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzDecryptImage: the decryptors and the verifier never panic on any
// input, keep the length, return only content-free errors, and
// EncryptImage(DecryptDeviceImage(x)) == x for every image of whole pages.
func FuzzDecryptImage(f *testing.F) {
	enc := readTestdata(f, "enc_usmp.bin")
	f.Add(enc)
	f.Add(enc[:PageSize])
	f.Add(readTestdata(f, "enc_device.bin")[:2*PageSize])
	f.Add(readTestdata(f, "enc_usmp.decrypted.bin")[:PageSize])
	f.Add(enc[:32])
	f.Add(enc[:100])
	f.Add([]byte{})
	k := mustKeys(f, "enc_usmp.keys.bin")
	f.Fuzz(func(t *testing.T, b []byte) {
		// Mutated lengths are rarely whole slots or pages, so each input is
		// also tried cut down to whole slots and to whole pages.
		for _, in := range [][]byte{b, b[:len(b)/EntrySize*EntrySize], b[:len(b)/PageSize*PageSize]} {
			fuzzImage(t, in, k)
		}
	})
}

func fuzzImage(t *testing.T, b []byte, k *Keys) {
	ref, err := DecryptImage(b, k)
	checkErrorText(t, err)
	if (err != nil) != (len(b) == 0 || len(b)%EntrySize != 0) {
		t.Fatalf("DecryptImage of %d bytes: %v", len(b), err)
	}
	if err == nil && len(ref) != len(b) {
		t.Fatalf("DecryptImage returned %d bytes for %d", len(ref), len(b))
	}
	dev, err := DecryptDeviceImage(b, k)
	if err != nil {
		t.Fatalf("DecryptDeviceImage: %v", err)
	}
	if len(dev) != len(b) {
		t.Fatalf("DecryptDeviceImage returned %d bytes for %d", len(dev), len(b))
	}
	valid, checked := EntryCRCStats(dev)
	if valid > checked {
		t.Fatalf("%d valid of %d checked", valid, checked)
	}
	verr := VerifyDecrypted(dev)
	checkErrorText(t, verr)
	if (verr != nil) != (checked > 0 && valid == 0) || (verr != nil && !errors.Is(verr, ErrWrongKey)) {
		t.Fatalf("VerifyDecrypted = %v with %d/%d", verr, valid, checked)
	}
	back, err := EncryptImage(dev, k)
	checkErrorText(t, err)
	if len(b) > 0 && len(b)%PageSize == 0 {
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, b) {
			t.Fatal("EncryptImage(DecryptDeviceImage(x)) != x")
		}
	} else if err == nil {
		t.Fatalf("EncryptImage accepted %d bytes", len(b))
	}
}
