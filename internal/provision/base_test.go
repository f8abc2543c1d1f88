package provision

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/nvs/nvscrypt"
	"github.com/usmp/usmp-psk/internal/psk"
)

// damage flips a bit in every written entry of the pages with a valid
// header, so no entry CRC holds: what a plaintext image whose entries are
// all damaged looks like.
func damage(img []byte) []byte {
	out := bytes.Clone(img)
	for base := 0; base+nvs.PageSize <= len(out); base += nvs.PageSize {
		page := out[base : base+nvs.PageSize]
		bitmap := page[nvs.BitmapOffset : nvs.BitmapOffset+nvs.BitmapSize]
		for i := range nvs.EntriesPerPage {
			if nvs.EntryState(bitmap, i) == nvs.EntryWritten {
				page[nvs.FirstEntryOffset+i*nvs.EntrySize+10] ^= 1
			}
		}
	}
	return out
}

// breakHeaders spoils the header CRC of every page.
func breakHeaders(img []byte) []byte {
	out := bytes.Clone(img)
	for base := 0; base+nvs.PageSize <= len(out); base += nvs.PageSize {
		c := binary.LittleEndian.Uint32(out[base+28:])
		binary.LittleEndian.PutUint32(out[base+28:], c^1)
	}
	return out
}

func TestLooksEncrypted(t *testing.T) {
	t.Parallel()
	key := psk.Derive(master, "device-id-1", 0)
	keys := keysFile(t, "base_usmp_enc.keys.bin")
	fresh, err := BuildImage("device-id-1", key, ImageOptions{Layout: DefaultLayout()})
	if err != nil {
		t.Fatal(err)
	}
	freshEnc, err := BuildImage("device-id-1", key, ImageOptions{Layout: DefaultLayout(), Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	// One valid plaintext entry among encrypted ones (what the old nvs set
	// left): not "encrypted" any more; the reader's business.
	mixed := bytes.Clone(readFile(t, "base_usmp_enc.bin"))
	plain := readFile(t, "base_usmp.bin")
	copy(mixed[nvs.FirstEntryOffset:nvs.FirstEntryOffset+nvs.EntrySize], plain[nvs.FirstEntryOffset:])
	random := make([]byte, 3*nvs.PageSize)
	for i := range random {
		random[i] = byte(i*7919 + i>>8)
	}
	tests := []struct {
		name string
		img  []byte
		want bool
	}{
		{"generator image", readFile(t, "base_usmp.bin"), false},
		{"device image", readFile(t, "gen_add_erase.bin"), false},
		{"fresh image", fresh, false},
		{"encrypted generator image", readFile(t, "base_usmp_enc.bin"), true},
		{"encrypted device image", readFile(t, "enc_gen_edit.bin"), true},
		{"fresh encrypted image", freshEnc, true},
		{"blank", bytes.Repeat([]byte{0xff}, DefaultSize), false},
		{"all zero", make([]byte, nvs.PageSize), false},
		{"empty input", nil, false},
		{"random bytes", random, false},
		{"encrypted, page headers spoilt", breakHeaders(readFile(t, "base_usmp_enc.bin")), false},
		{"plaintext, every entry damaged", damage(readFile(t, "base_usmp.bin")), true},
		{"one valid entry among encrypted ones", mixed, false},
		{"encrypted, truncated to its first page", readFile(t, "base_usmp_enc.bin")[:nvs.PageSize], true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LooksEncrypted(tt.img); got != tt.want {
				t.Fatalf("LooksEncrypted = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckBase(t *testing.T) {
	t.Parallel()
	keys := keysFile(t, "base_usmp_enc.keys.bin")
	other, err := nvscrypt.GenerateKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, enc := readFile(t, "base_usmp.bin"), readFile(t, "base_usmp_enc.bin")
	blank := bytes.Repeat([]byte{0xff}, DefaultSize)
	zeros := make([]byte, DefaultSize)
	random := make([]byte, DefaultSize)
	for i := range random {
		random[i] = byte(i*7919 + i>>8)
	}
	// One page of the device's image left among garbage: damaged, but NVS
	// (the device keeps that page and erases the others).
	onePage := bytes.Clone(zeros)
	copy(onePage, plain[:nvs.PageSize])
	tests := []struct {
		name string
		img  []byte
		keys *nvscrypt.Keys
		want error
	}{
		{"plaintext, no keys", plain, nil, nil},
		{"encrypted, its keys", enc, keys, nil},
		{"encrypted, no keys", enc, nil, ErrLooksEncrypted},
		{"encrypted, wrong keys", enc, other, ErrWrongKeys},
		{"plaintext, keys", plain, keys, ErrWrongKeys},
		{"blank, no keys", blank, nil, nil},
		{"blank, keys", blank, keys, nil},
		// Issue 13 item 8: these were edited into fresh images.
		{"all zero, no keys", zeros, nil, ErrNotNVS},
		{"all zero, keys", zeros, keys, ErrNotNVS},
		{"random bytes, no keys", random, nil, ErrNotNVS},
		{"random bytes, keys", random, keys, ErrNotNVS},
		{"empty", nil, nil, ErrNotNVS},
		{"less than a page", blank[:100], nil, ErrNotNVS},
		{"encrypted, page headers spoilt", breakHeaders(enc), keys, ErrNotNVS},
		{"one valid page among zeros", onePage, nil, nil},
		{"one blank page among zeros", append(bytes.Clone(zeros), blank[:nvs.PageSize]...), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := bytes.Clone(tt.img)
			err := CheckBase(tt.img, tt.keys)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("CheckBase = %v, want %v", err, tt.want)
			}
			if !bytes.Equal(before, tt.img) {
				t.Fatal("CheckBase changed the image")
			}
		})
	}
}

// TestBuildImageRefusesBase: BuildImage never edits a base CheckBase
// refuses (editing an encrypted image without keys erased every entry).
func TestBuildImageRefusesBase(t *testing.T) {
	t.Parallel()
	key := psk.Derive(master, "device-id-1", 0)
	other, err := nvscrypt.GenerateKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    ImageOptions
		want error
	}{
		{"encrypted without keys", ImageOptions{Layout: DefaultLayout(), Base: readFile(t, "base_usmp_enc.bin")}, ErrLooksEncrypted},
		{"encrypted, wrong keys", ImageOptions{Layout: DefaultLayout(), Base: readFile(t, "base_usmp_enc.bin"), Keys: other}, ErrWrongKeys},
		{"plaintext with keys", ImageOptions{Layout: DefaultLayout(), Base: readFile(t, "base_usmp.bin"), Keys: other}, ErrWrongKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := bytes.Clone(tt.o.Base)
			img, err := BuildImage("device-id-1", key, tt.o)
			if !errors.Is(err, tt.want) || img != nil {
				t.Fatalf("BuildImage = %d bytes, %v; want %v", len(img), err, tt.want)
			}
			if !bytes.Equal(before, tt.o.Base) {
				t.Fatal("the base changed")
			}
		})
	}
}
