package nvscrypt

import "testing"

// BenchmarkEncryptUSMPImage encrypts the 0x6000 USMP image of the enc_usmp
// vector (6 entries written on page 0), keys already parsed.
func BenchmarkEncryptUSMPImage(b *testing.B) {
	plain := readTestdata(b, "enc_usmp.decrypted.bin")
	k := mustKeys(b, "enc_usmp.keys.bin")
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncryptImage(plain, k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncryptMultipageImage encrypts the 0x10000 image of enc_multipage,
// whose multi-page blob fills 167 entry slots (126 + 41): the per-entry XTS
// cost.
func BenchmarkEncryptMultipageImage(b *testing.B) {
	plain := readTestdata(b, "enc_multipage.decrypted.bin")
	k := mustKeys(b, "enc_multipage.keys.bin")
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncryptImage(plain, k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecryptDeviceImage decrypts and verifies the device-written
// enc_device image (0x6000, 545 non-empty slots: written and erased).
func BenchmarkDecryptDeviceImage(b *testing.B) {
	enc := readTestdata(b, "enc_device.bin")
	k := mustKeys(b, "enc_device.keys.bin")
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		dec, err := DecryptDeviceImage(enc, k)
		if err != nil {
			b.Fatal(err)
		}
		if err := VerifyDecrypted(dec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeriveFromHMACKey derives the XTS keys of the HMAC scheme.
func BenchmarkDeriveFromHMACKey(b *testing.B) {
	hk := readTestdata(b, "enc_hmac.hmac_key.bin")
	b.ReportAllocs()
	for b.Loop() {
		k, err := deriveFromHMACKey(hk)
		if err != nil {
			b.Fatal(err)
		}
		k.Destroy()
	}
}
