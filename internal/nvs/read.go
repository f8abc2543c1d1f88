package nvs

// This file is the reader's public API. Values read from an image are
// secrets (the PSK is a blob): Entry never prints them (see Entry.Format),
// and errors name pages and entries, never contents (security R9).

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// MaxImageSize is the largest image ReadImage, CheckImage and OpenEditor accept
// (16 MiB, the largest ESP32 flash chip). Larger inputs are refused with
// ErrImageTooLarge so that memory stays bounded.
const MaxImageSize = 16 << 20

// ErrImageTooLarge is returned for inputs larger than MaxImageSize.
var ErrImageTooLarge = errors.New("nvs: image larger than 16 MiB")

// ReadOptions configures ReadImage.
type ReadOptions struct {
	// Decrypt, when set, decrypts each 32-byte entry in place before it is
	// parsed (NVS encryption: XTS-AES with the entry's partition offset as
	// tweak). Page headers and state bitmaps are never encrypted. Without
	// it, an encrypted image reads as if every entry were damaged.
	Decrypt EntryCipher

	// ReadOnly mounts the image the way the library mounts a partition
	// flagged read-only: no free page is required (so the 1-page images
	// the generator makes for sizes 0x1000 and 0x2000 can be read), and the
	// power-loss repairs that need a write are not made. As on the device,
	// an image that needs an in-page repair then fails to mount.
	ReadOnly bool

	// indexAll keeps the page index however small the image: this
	// package's tests run the device suites through it too.
	indexAll bool
}

// Image is what ESP-IDF's NVS library reads from a partition image.
type Image struct {
	// Size is the length of the input in bytes. Only whole pages count:
	// Pages has Size/4096 elements, and Size%4096 trailing bytes are
	// ignored, as the device ignores them.
	Size int

	// Pages describes every whole page as stored in the input (before the
	// library's start-up repairs), in physical order: the page map.
	Pages []PageInfo

	// MountErr is non-nil when the library would fail to initialise the
	// partition (nvs_flash_init_partition): DeviceNoFreePages for a full
	// or truncated partition, DeviceNewVersionFound for a page written by
	// an older, incompatible format, and the like. Entries and Namespaces
	// are then empty: the device reads nothing.
	MountErr error

	// Namespaces is the library's namespace table after start-up, in the
	// order the namespace entries are found (page sequence, entry index).
	Namespaces []Namespace

	// Entries lists every entry the device's iterator (nvs_entry_find /
	// nvs_entry_next) yields, in its order, each with the value the typed
	// getter (nvs_get_*) returns. Version 1 blobs, which the iterator
	// skips but which can be read by name, are included with Legacy set.
	Entries []Entry
}

// Namespace is one namespace definition entry.
type Namespace struct {
	Name  string
	Index uint8
}

// PageInfo describes one 4096-byte page of an image for a page map.
type PageInfo struct {
	Index int // physical page number

	// State is the page's state word. PageEmpty is an unwritten page.
	State PageState

	// Seq and Version are the header's sequence number and format
	// version byte (0xFE = version 2, 0xFF = version 1). They mean
	// something only when HeaderOK is true.
	Seq     uint32
	Version byte

	// HeaderOK reports a header whose CRC matches. The library ignores a
	// written page whose header CRC is wrong (its entries vanish).
	HeaderOK bool

	// Blank reports a page that is 0xFF throughout.
	Blank bool

	// Counts of entry slots by bitmap state; Illegal counts the invalid
	// 0b01 state. They always add up to 126.
	Written, Erased, Empty, Illegal int
}

// PageState is the 32-bit state word at the start of a page.
type PageState uint32

// Page states as stored in the header's state word.
const (
	PageEmpty   = PageState(PageStateUninit)
	PageActive  = PageState(PageStateActive)
	PageFull    = PageState(PageStateFull)
	PageFreeing = PageState(PageStateFreeing)
	PageCorrupt = PageState(PageStateCorrupt)
)

// String returns EMPTY, ACTIVE, FULL, FREEING or CORRUPT, or INVALID(0x…)
// for any other state word.
func (s PageState) String() string {
	switch s {
	case PageEmpty:
		return "EMPTY"
	case PageActive:
		return "ACTIVE"
	case PageFull:
		return "FULL"
	case PageFreeing:
		return "FREEING"
	case PageCorrupt:
		return "CORRUPT"
	}
	return "INVALID(0x" + strconv.FormatUint(uint64(s), 16) + ")"
}

// Entry is one key as the device reads it.
//
// Entry deliberately has no exported value fields and formats without its
// value (see Format): strings and blobs may be secrets such as the PSK. Use
// Int, Uint and Bytes to get the value.
type Entry struct {
	Namespace      string // "" when the namespace's definition entry is lost
	NamespaceIndex uint8
	Key            string
	Type           Type // TypeU8 … TypeI64, TypeString or TypeBlob

	// Page and Index locate the item: the physical page and entry index
	// of its header (of the first chunk for a version 2 blob), in the
	// image after the library's start-up repairs.
	Page, Index int

	// Legacy marks a version 1 blob (type 0x41): the device's iterator
	// skips it, but nvs_get_blob reads it by name.
	Legacy bool

	// NoNamespace marks an entry whose namespace index has no definition
	// (for example because the page that held it has a bad header CRC).
	// The device's iterator then reports the namespace name of the entry
	// it listed before (its entry_info is never cleared), or "" for the
	// first one, and the getter looks the key up in that namespace.
	// Namespace holds that name, NamespaceIndex the entry's own index.
	NoNamespace bool

	// Err is non-nil when the device lists the entry but its getter
	// fails: a DeviceError such as DeviceNotFound for a string or blob
	// whose data CRC is wrong. The value is then empty.
	Err error

	i int64
	u uint64
	b []byte
}

// Int returns the value of a signed integer entry (zero otherwise).
func (e *Entry) Int() int64 { return e.i }

// Uint returns the value of an unsigned integer entry (zero otherwise).
func (e *Entry) Uint() uint64 { return e.u }

// Bytes returns the value of a string entry (without its NUL terminator) or
// of a blob entry. It returns nil for integer entries. The slice is the
// entry's own: callers must not print it when it may be secret.
func (e *Entry) Bytes() []byte { return e.b }

// Len returns the length in bytes of a string (without NUL) or blob value,
// or the size of an integer type.
func (e *Entry) Len() int {
	if e.Type.IsInt() {
		return e.Type.IntSize()
	}
	return len(e.b)
}

// Format prints the entry's location and type but never its value, so
// that logging an Entry (or a slice of them) cannot leak a secret:
// "usmp/psk blob (32 bytes)".
func (e Entry) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "%s/%s %s (%d bytes)", e.Namespace, e.Key, e.Type, e.Len())
}

// ReadImage parses an NVS partition image the way ESP-IDF's NVS library
// reads it on a device: it runs the library's start-up logic (pages in
// sequence-number order, power-loss duplicate and garbage-collection
// repair, erasing of inconsistent entries, orphaned blob chunks and
// mismatched blob indexes) on a private copy of b, then lists the entries
// the library's iterator yields and reads each with the library's getter.
//
// b is not modified. ReadImage never panics; its memory use is linear in
// len(b). The error is non-nil only for unusable input (ErrImageTooLarge)
// or a failing Decrypt hook; a partition the device cannot mount is
// reported in Image.MountErr.
func ReadImage(b []byte, opts ReadOptions) (*Image, error) {
	img, _, err := readImage(b, opts)
	return img, err
}

// readImage is ReadImage; it also returns the engine, whose flash copy holds
// the image as the library leaves it after start-up and the reads.
func readImage(b []byte, opts ReadOptions) (*Image, *rdEngine, error) {
	if len(b) > MaxImageSize {
		return nil, nil, ErrImageTooLarge
	}
	img := &Image{Size: len(b), Pages: pageMap(b)}
	e := &rdEngine{
		flash:    b[:len(b)/PageSize*PageSize],
		shared:   true,
		readOnly: opts.ReadOnly,
		decrypt:  opts.Decrypt,
		indexAll: opts.indexAll,
	}
	if rc := e.init(); rc != devOK {
		if e.hookErr != nil {
			return nil, nil, fmt.Errorf("nvs: decrypt entry: %w", e.hookErr)
		}
		img.MountErr = rc
		return img, e, nil
	}
	for _, n := range e.nss {
		img.Namespaces = append(img.Namespaces, Namespace{Name: string(n.name), Index: n.index})
	}
	var it rdIter
	var name []byte // the iterator's entry_info.namespace_name
	for guard := 0; guard <= len(e.flash)/EntrySize; guard++ {
		p, idx, item, ok := e.next(&it, true)
		if !ok {
			break
		}
		ent := e.readEntry(p, idx, &item, &name)
		img.Entries = append(img.Entries, ent)
	}
	if e.hookErr != nil {
		return nil, nil, fmt.Errorf("nvs: decrypt entry: %w", e.hookErr)
	}
	return img, e, nil
}

// readEntry builds the Entry for an item the iterator yielded, reading its
// value the way nvs_open + nvs_get_* would. name is the iterator's
// namespace name, which only changes when the item's namespace is known.
func (e *rdEngine) readEntry(p *rdPage, idx int, item *rdItem, name *[]byte) Entry {
	key := rdKey(item.keyField())
	ent := Entry{
		NamespaceIndex: item.ns(),
		Key:            string(key),
		Type:           item.typ(),
		Page:           p.num,
		Index:          idx,
	}
	if ent.Type == TypeBlobData || ent.Type == TypeBlob {
		ent.Legacy = ent.Type == TypeBlob
		ent.Type = TypeBlob
	}
	if n, ok := e.namespaceName(item.ns()); ok {
		*name = n
	} else {
		ent.NoNamespace = true
	}
	ent.Namespace = string(*name)
	ns, rc := e.namespaceIndex(*name, false)
	if rc != devOK {
		ent.Err = rc
		return ent
	}
	ent.Err = e.readValue(&ent, ns, key)
	return ent
}

// readValue reads an entry's value with the getter of its type
// (nvs_get_u8 … nvs_get_blob) and returns the getter's error, or nil.
func (e *rdEngine) readValue(ent *Entry, ns uint8, key []byte) error {
	switch {
	case ent.Type.IsInt():
		v, rc := e.readItem(ns, ent.Type, key)
		if rc != devOK {
			return rc
		}
		var buf [8]byte
		copy(buf[:], v)
		ent.setInt(binary.LittleEndian.Uint64(buf[:]))
	case ent.Type == TypeString:
		v, rc := e.readItem(ns, TypeString, key)
		if rc != devOK {
			return rc
		}
		ent.b = bytes.TrimSuffix(v, []byte{0})
	case ent.Type == TypeBlob:
		v, rc := e.readItem(ns, TypeBlob, key)
		if rc != devOK {
			return rc
		}
		ent.b = v
		if ent.b == nil {
			ent.b = []byte{}
		}
	default:
		// A consistent header always has a known type; keep the code
		// total anyway.
		return DeviceTypeMismatch
	}
	return nil
}

// setInt stores the little-endian bits of an integer entry, sign-extended
// for the signed types.
func (e *Entry) setInt(u uint64) {
	switch e.Type {
	case TypeU8, TypeU16, TypeU32, TypeU64:
		e.u = u
	case TypeI8:
		e.i = int64(int8(u))
	case TypeI16:
		e.i = int64(int16(u))
	case TypeI32:
		e.i = int64(int32(u))
	case TypeI64:
		e.i = int64(u)
	}
}

// Lookup returns the first entry with the given namespace and key, or nil.
func (img *Image) Lookup(namespace, key string) *Entry {
	for i := range img.Entries {
		if img.Entries[i].Namespace == namespace && img.Entries[i].Key == key {
			return &img.Entries[i]
		}
	}
	return nil
}

// SortEntries sorts entries by namespace, then key, then type, keeping the
// iterator order among equal ones.
func SortEntries(entries []Entry) {
	slices.SortStableFunc(entries, func(a, b Entry) int {
		return cmp.Or(
			cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Key, b.Key),
			cmp.Compare(a.Type, b.Type),
		)
	})
}

// pageMap describes every whole page of b as stored.
func pageMap(b []byte) []PageInfo {
	n := len(b) / PageSize
	pages := make([]PageInfo, n)
	for i := range pages {
		pg := b[i*PageSize : (i+1)*PageSize]
		info := PageInfo{
			Index:   i,
			State:   PageState(binary.LittleEndian.Uint32(pg[0:4])),
			Seq:     binary.LittleEndian.Uint32(pg[4:8]),
			Version: pg[8],
			Blank:   allFF(pg),
		}
		info.HeaderOK = !info.Blank && HeaderCRC(pg[:HeaderSize]) == binary.LittleEndian.Uint32(pg[28:32])
		bm := pg[BitmapOffset : BitmapOffset+BitmapSize]
		for k := 0; k < EntriesPerPage; k++ {
			switch EntryState(bm, k) {
			case EntryWritten:
				info.Written++
			case EntryErased:
				info.Erased++
			case EntryEmpty:
				info.Empty++
			default:
				info.Illegal++
			}
		}
		pages[i] = info
	}
	return pages
}

// rdBlankPage is an erased page.
var rdBlankPage = bytes.Repeat([]byte{0xFF}, PageSize)

// allFF reports whether b is all 0xFF.
func allFF(b []byte) bool {
	for len(b) > PageSize {
		if !bytes.Equal(b[:PageSize], rdBlankPage) {
			return false
		}
		b = b[PageSize:]
	}
	return bytes.Equal(b, rdBlankPage[:len(b)])
}
