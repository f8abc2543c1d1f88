package nvs

import (
	"hash/crc32"
	"strconv"
)

// Sizes of the NVS on-flash layout (nvs-format.md §1).
const (
	// PageSize is the size of one NVS page in bytes.
	PageSize = 4096
	// EntrySize is the size of one entry slot in bytes.
	EntrySize = 32
	// EntriesPerPage is the number of entry slots in a page.
	EntriesPerPage = 126
	// HeaderSize is the size of the page header at the start of each page.
	HeaderSize = 32
	// BitmapOffset is the page offset of the entry-state bitmap.
	BitmapOffset = 32
	// BitmapSize is the size of the entry-state bitmap in bytes.
	BitmapSize = 32
	// FirstEntryOffset is the page offset of entry 0.
	FirstEntryOffset = 64
	// MaxKeyLen is the longest key or namespace name in bytes (the key field
	// holds 16 bytes including a NUL terminator).
	MaxKeyLen = 15
	// MaxStringSize is the device limit for a string payload, NUL included
	// (125 payload entries of 32 bytes). A blob_data chunk holds at most as
	// much (the library's CHUNK_MAX_SIZE: rdChunkMax in the read engine).
	MaxStringSize = 4000
	// MaxBlobSizeV1 is the largest blob a version 1 image can store.
	MaxBlobSizeV1 = 1984
	// MaxNamespaces is the number of user namespace indexes (1..254).
	MaxNamespaces = 254
)

// Page states: the 32-bit word at page offset 0. Each later state clears one
// more low bit, because flash can only turn 1s into 0s.
const (
	PageStateUninit  uint32 = 0xFFFFFFFF
	PageStateActive  uint32 = 0xFFFFFFFE
	PageStateFull    uint32 = 0xFFFFFFFC
	PageStateFreeing uint32 = 0xFFFFFFF8
	PageStateCorrupt uint32 = 0xFFFFFFF0
	PageStateInvalid uint32 = 0
)

// Format version bytes at page header offset 8.
const (
	// VersionByte1 marks a version 1 page (legacy single-entry blobs).
	VersionByte1 byte = 0xFF
	// VersionByte2 marks a version 2 page (multi-page blobs).
	VersionByte2 byte = 0xFE
)

// Entry states in the page bitmap, two bits per entry.
const (
	EntryEmpty   uint8 = 3
	EntryWritten uint8 = 2
	EntryErased  uint8 = 0
)

// Entry field offsets and special values (nvs-format.md §3).
const (
	// NamespaceIndexDef is the namespace index of namespace-definition
	// entries. User namespaces are 1..254 (MaxNamespaces); 255 is reserved
	// (the library's NS_ANY: rdNSAny in the read engine).
	NamespaceIndexDef = 0
	// ChunkIndexNone is the chunk index of every entry but blob_data.
	ChunkIndexNone = 0xFF
)

// Type is the item type byte of an entry.
type Type uint8

// Item type codes. The low nibble of an integer type is its byte size; 0x10
// marks signed integers.
const (
	TypeU8        Type = 0x01
	TypeI8        Type = 0x11
	TypeU16       Type = 0x02
	TypeI16       Type = 0x12
	TypeU32       Type = 0x04
	TypeI32       Type = 0x14
	TypeU64       Type = 0x08
	TypeI64       Type = 0x18
	TypeString    Type = 0x21
	TypeBlob      Type = 0x41 // version 1 blob
	TypeBlobData  Type = 0x42 // version 2 blob chunk
	TypeBlobIndex Type = 0x48 // version 2 blob index
	TypeAny       Type = 0xFF
)

// String returns the type's name as nvs_tool spells it: u8 i8 u16 i16 u32
// i32 u64 i64 string blob blob_data blob_index, or "type(0xNN)" otherwise.
func (t Type) String() string {
	switch t {
	case TypeU8:
		return "u8"
	case TypeI8:
		return "i8"
	case TypeU16:
		return "u16"
	case TypeI16:
		return "i16"
	case TypeU32:
		return "u32"
	case TypeI32:
		return "i32"
	case TypeU64:
		return "u64"
	case TypeI64:
		return "i64"
	case TypeString:
		return "string"
	case TypeBlob:
		return "blob"
	case TypeBlobData:
		return "blob_data"
	case TypeBlobIndex:
		return "blob_index"
	}
	return "type(0x" + strconv.FormatUint(uint64(t)|0x100, 16)[1:] + ")"
}

// IsInt reports whether t is one of the integer types.
func (t Type) IsInt() bool {
	switch t {
	case TypeU8, TypeI8, TypeU16, TypeI16, TypeU32, TypeI32, TypeU64, TypeI64:
		return true
	}
	return false
}

// IntSize returns the byte size of an integer type (1, 2, 4 or 8), or 0 if t
// is not an integer type.
func (t Type) IntSize() int {
	if !t.IsInt() {
		return 0
	}
	return int(t & 0x0F)
}

// Signed reports whether t is a signed integer type.
func (t Type) Signed() bool {
	return t.IsInt() && t&0x10 != 0
}

// CRC32 returns the NVS CRC of data: reflected CRC-32 (poly 0xEDB88320) with
// an initial register of 0 and a final XOR of 0xFFFFFFFF, which is
// zlib.crc32(data, 0xFFFFFFFF) and the device's esp_rom_crc32_le(0xFFFFFFFF, …)
// (nvs-format.md §4). It is not the standard CRC-32.
func CRC32(data []byte) uint32 {
	return crc32.Update(0xFFFFFFFF, crc32.IEEETable, data)
}

// EntryCRC returns the CRC of a 32-byte entry: the NVS CRC over bytes 0..3
// followed by bytes 8..31 (the CRC field at 4..7 is skipped).
func EntryCRC(e []byte) uint32 {
	_ = e[31]
	c := crc32.Update(0xFFFFFFFF, crc32.IEEETable, e[0:4])
	return crc32.Update(c, crc32.IEEETable, e[8:32])
}

// HeaderCRC returns the CRC of a 32-byte page header: the NVS CRC over bytes
// 4..27 (sequence number, version, reserved). The state word is not covered.
func HeaderCRC(hdr []byte) uint32 {
	return CRC32(hdr[4:28])
}

// EntryState returns the 2-bit state of entry i in a page's 32-byte bitmap:
// EntryEmpty, EntryWritten, EntryErased, or 1 (illegal).
func EntryState(bitmap []byte, i int) uint8 {
	return (bitmap[i/4] >> (2 * uint(i%4))) & 3
}

// SetEntryState sets the 2-bit state of entry i in a page's bitmap to st.
func SetEntryState(bitmap []byte, i int, st uint8) {
	shift := 2 * uint(i%4)
	bitmap[i/4] = bitmap[i/4]&^(3<<shift) | (st&3)<<shift
}
