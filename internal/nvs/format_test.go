package nvs

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestCRC32(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data []byte
		want uint32
	}{
		// An empty payload (the zero-length blob chunk) has CRC 0xFFFFFFFF.
		{"empty", nil, 0xFFFFFFFF},
		// nvs-format.md §4: header bytes 4..27 of page 0 of usmp_psk.
		{"usmp_psk header", append([]byte{0, 0, 0, 0, 0xFE}, bytes.Repeat([]byte{0xFF}, 19)...), 0xB9BA2D84},
		// §7: the device_id payload.
		{"device_id", []byte("usmp-0001-a1b2c3\x00"), 0xd302beeb},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CRC32(tt.data); got != tt.want {
				t.Errorf("CRC32 = %#08x, want %#08x", got, tt.want)
			}
		})
	}
}

func TestEntryAndHeaderCRC(t *testing.T) {
	t.Parallel()
	// nvs-format.md §7 entry 0: namespace "usmp", index 1.
	e := []byte{0x00, 0x01, 0x01, 0xff, 0x91, 0xd8, 0xa0, 0x63,
		'u', 's', 'm', 'p', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if got, want := EntryCRC(e), binary.LittleEndian.Uint32(e[4:]); got != want {
		t.Errorf("EntryCRC = %#08x, want %#08x", got, want)
	}
	hdr := make([]byte, 32)
	for i := range hdr {
		hdr[i] = 0xFF
	}
	binary.LittleEndian.PutUint32(hdr[0:], PageStateActive)
	binary.LittleEndian.PutUint32(hdr[4:], 0)
	hdr[8] = VersionByte2
	if got := HeaderCRC(hdr); got != 0xB9BA2D84 {
		t.Errorf("HeaderCRC = %#08x, want 0xb9ba2d84", got)
	}
}

func TestEntryStateBitmap(t *testing.T) {
	t.Parallel()
	bm := bytes.Repeat([]byte{0xFF}, BitmapSize)
	for i := range 6 {
		SetEntryState(bm, i, EntryWritten)
	}
	if bm[0] != 0xaa || bm[1] != 0xfa || bm[2] != 0xff {
		t.Errorf("bitmap = % x, want aa fa ff", bm[:3])
	}
	for i := range EntriesPerPage {
		want := EntryEmpty
		if i < 6 {
			want = EntryWritten
		}
		if got := EntryState(bm, i); got != want {
			t.Errorf("EntryState(%d) = %d, want %d", i, got, want)
		}
	}
	SetEntryState(bm, 5, EntryErased)
	if EntryState(bm, 5) != EntryErased || EntryState(bm, 4) != EntryWritten || EntryState(bm, 6) != EntryEmpty {
		t.Errorf("SetEntryState(5, erased) disturbed neighbours: % x", bm[:2])
	}
}

func TestTypeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		t    Type
		want string
	}{
		{TypeU8, "u8"}, {TypeI8, "i8"}, {TypeU16, "u16"}, {TypeI16, "i16"},
		{TypeU32, "u32"}, {TypeI32, "i32"}, {TypeU64, "u64"}, {TypeI64, "i64"},
		{TypeString, "string"}, {TypeBlob, "blob"}, {TypeBlobData, "blob_data"},
		{TypeBlobIndex, "blob_index"}, {Type(0x07), "type(0x07)"},
	}
	for _, tt := range tests {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("Type(%#x).String() = %q, want %q", uint8(tt.t), got, tt.want)
		}
	}
	if TypeI32.IntSize() != 4 || !TypeI32.Signed() || TypeU64.Signed() || TypeString.IntSize() != 0 {
		t.Error("IntSize/Signed wrong")
	}
}
