package partition

import (
	"bytes"
	"crypto/md5" // the format's checksum, not a security measure
	"encoding/binary"
	"unicode/utf8"
)

// Binary layout of one entry (gen_esp32part STRUCT_FORMAT '<2sBBLL16sL').
var (
	entryMagic = [2]byte{0xaa, 0x50}
	md5Magic   = [2]byte{0xeb, 0xeb}
)

// ParseBinary reads a binary partition table: the 32-byte entries up to
// the end marker (32 bytes of 0xFF), checking the MD5 record when there is
// one, then validates the table with these options (only TableOffset
// matters to a binary table). b may be longer than the table (a whole
// 4 KiB sector read from flash, say); only the first MaxLength bytes are
// read. Errors are *Error.
//
// Like ESP-IDF's bootloader and gen_esp32part, it accepts a table without
// MD5 record. It is stricter than both in two ways: an entry after the MD5
// record (which the checksum would not cover) is refused, and the end
// marker must come within MaxLength bytes, which is all the bootloader reads.
func (o Options) ParseBinary(b []byte) (*Table, error) {
	fail := func(kind error, format string, args ...any) (*Table, error) {
		return nil, newError(kind, format, args...)
	}
	var (
		parts  []Partition
		sum    = md5.New()
		sawMD5 bool
	)
	for off := 0; ; off += EntrySize {
		if off >= MaxLength {
			return fail(ErrMalformed, "no end-of-table marker in the first 0x%x bytes", MaxLength)
		}
		if off >= len(b) {
			if off == 0 {
				return fail(ErrMalformed, "empty input")
			}
			return fail(ErrMalformed, "table ends at byte 0x%x without an end-of-table marker (32 bytes of 0xff)", off)
		}
		if len(b)-off < EntrySize {
			return fail(ErrMalformed, "table is cut short: %d bytes is not a multiple of %d", len(b), EntrySize)
		}
		e := b[off : off+EntrySize]
		if isEndMarker(e) {
			break
		}
		if sawMD5 {
			return fail(ErrMalformed, "entry %d at byte 0x%x follows the md5 record", off/EntrySize, off)
		}
		if e[0] == md5Magic[0] && e[1] == md5Magic[1] {
			computed := sum.Sum(nil)
			if !bytes.Equal(e[16:], computed) {
				return fail(ErrBadMD5, "md5 checksums don't match (computed %x, stored %x)", computed, e[16:])
			}
			sawMD5 = true
			continue
		}
		sum.Write(e)
		if e[0] != entryMagic[0] || e[1] != entryMagic[1] {
			return fail(ErrBadMagic, "entry %d at byte 0x%x: invalid magic bytes %02x %02x (want aa 50)",
				off/EntrySize, off, e[0], e[1])
		}
		name := e[12:28]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if !utf8.Valid(name) {
			return fail(ErrMalformed, "entry %d at byte 0x%x: name %q is not UTF-8", off/EntrySize, off, name)
		}
		parts = append(parts, Partition{
			Name:    string(name),
			Type:    e[2],
			Subtype: e[3],
			Offset:  binary.LittleEndian.Uint32(e[4:8]),
			Size:    binary.LittleEndian.Uint32(e[8:12]),
			Flags:   binary.LittleEndian.Uint32(e[28:32]),
		})
	}
	if err := o.validate(parts, nil, ""); err != nil {
		return nil, err
	}
	return &Table{Partitions: parts}, nil
}

func isEndMarker(e []byte) bool {
	for _, c := range e {
		if c != 0xff {
			return false
		}
	}
	return true
}

// encode returns the table in gen_esp32part's binary form: the entries, the
// MD5 record, and 0xFF padding to MaxLength bytes. It does not validate:
// names longer than 16 bytes are cut, and a table of more than
// MaxPartitions entries comes out longer than MaxLength, unpadded. Nothing
// writes tables; the tests check the reader against it, and it against
// gen_esp32part's output.
func (t Table) encode() []byte {
	out := make([]byte, 0, max(MaxLength, (len(t.Partitions)+1)*EntrySize))
	out = t.appendEntries(out)
	sum := md5.Sum(out)
	out = append(out, md5Magic[0], md5Magic[1])
	out = append(out, bytes.Repeat([]byte{0xff}, 14)...)
	out = append(out, sum[:]...)
	for len(out) < MaxLength {
		out = append(out, 0xff)
	}
	return out
}

func (t Table) appendEntries(out []byte) []byte {
	for _, p := range t.Partitions {
		var e [EntrySize]byte
		e[0], e[1] = entryMagic[0], entryMagic[1]
		e[2], e[3] = p.Type, p.Subtype
		binary.LittleEndian.PutUint32(e[4:8], p.Offset)
		binary.LittleEndian.PutUint32(e[8:12], p.Size)
		copy(e[12:28], p.Name)
		binary.LittleEndian.PutUint32(e[28:32], p.Flags)
		out = append(out, e[:]...)
	}
	return out
}
