package nvs

// This file emulates the parts of ESP-IDF's NVS library (components/nvs_flash:
// Page, PageManager, Storage) that decide what a device reads from an image
// and how it writes to it. The reader and the editor both run on it, so that
// "what the device sees" and "what the device writes" come from one model.
//
// The emulation works on a private copy of the image with NOR-flash
// semantics (a write can only clear bits; an erase sets a whole page to
// 0xFF), performs the same repairs the library performs at start-up, and
// keeps the library's in-RAM state (entry-state table, hash list, page and
// free lists, namespace table) the way the library keeps it. Comments name
// the library function each method follows.
//
// Nothing here panics on malformed input: every index into the flash copy is
// bounded by the page geometry, and every loop advances.

import (
	"cmp"
	"encoding/binary"
	"hash/crc32"
	"math"
	"slices"
)

// Library constants that format.go does not carry.
const (
	rdNoEntry    = math.MaxInt32 // INVALID_ENTRY
	rdChunkAny   = 0xFF          // Item::CHUNK_ANY
	rdVer0       = 0x00          // VerOffset::VER_0_OFFSET
	rdVer1       = 0x80          // VerOffset::VER_1_OFFSET
	rdVerAny     = 0xFF          // VerOffset::VER_ANY
	rdNSAny      = 0xFF          // Page::NS_ANY
	rdNVSVersion = 0xFE          // Page::NVS_VERSION
	rdChunkMax   = EntrySize * (EntriesPerPage - 1)
	rdIllegal    = 1 // the 0b01 entry state
	rdMaxIdxSize = (255 / 2) * (EntriesPerPage - 1) * EntrySize
)

// EntryCipher transforms one 32-byte entry in place. offset is the entry's
// byte offset from the start of the partition, which is the XTS tweak that
// NVS encryption uses (nvs-format.md §6). The reader takes a decrypting
// EntryCipher, the editor an encrypting one as well. With the nvscrypt
// package: func(off int, e []byte) error { return c.DecryptEntry(e, e, uint64(off)) }.
type EntryCipher func(offset int, entry []byte) error

// rdIsVar reports whether items of type t carry a variable-length payload.
func rdIsVar(t Type) bool {
	return t == TypeString || t == TypeBlob || t == TypeBlobData
}

// rdItem is one 32-byte entry read as an item header (struct Item).
type rdItem [EntrySize]byte

func (it *rdItem) ns() uint8        { return it[0] }
func (it *rdItem) typ() Type        { return Type(it[1]) }
func (it *rdItem) span() int        { return int(it[2]) }
func (it *rdItem) chunk() uint8     { return it[3] }
func (it *rdItem) crc() uint32      { return binary.LittleEndian.Uint32(it[4:8]) }
func (it *rdItem) keyField() []byte { return it[8:24] }
func (it *rdItem) varSize() int     { return int(binary.LittleEndian.Uint16(it[24:26])) }
func (it *rdItem) varCRC() uint32   { return binary.LittleEndian.Uint32(it[28:32]) }
func (it *rdItem) idxSize() uint32  { return binary.LittleEndian.Uint32(it[24:28]) }
func (it *rdItem) idxCount() int    { return int(it[28]) }
func (it *rdItem) idxStart() uint8  { return it[29] }

// setCRC stores the entry CRC (Item::calculateCrc32).
func (it *rdItem) setCRC() {
	binary.LittleEndian.PutUint32(it[4:8], EntryCRC(it[:]))
}

// consistent is Item::checkHeaderConsistency: the CRC matches, the type is
// known, and span and sizes fit the type and the rest of the page.
func (it *rdItem) consistent(index int) bool {
	if it.crc() != EntryCRC(it[:]) {
		return false
	}
	switch t := it.typ(); t {
	case TypeU8, TypeI8, TypeU16, TypeI16, TypeU32, TypeI32, TypeU64, TypeI64:
		return it.span() == 1
	case TypeBlobIndex:
		return it.span() == 1 && it.chunk() == rdChunkAny && it.idxSize() <= rdMaxIdxSize
	case TypeString, TypeBlob, TypeBlobData:
		if t == TypeBlobData && it.chunk() == rdChunkAny {
			return false
		}
		left := EntriesPerPage - index
		if it.varSize() > (left-1)*EntrySize || it.span() > left {
			return false
		}
		return it.span() == (it.varSize()+EntrySize-1)/EntrySize+1
	}
	return false
}

// hash is the 24-bit HashList hash (Item::calculateCrc32WithoutValue):
// namespace index, the 16 key bytes and the chunk index.
func (it *rdItem) hash() uint32 {
	c := rdCRCUpdate(0xFFFFFFFF, it[0:1])
	c = rdCRCUpdate(c, it[8:24])
	return rdCRCUpdate(c, it[3:4]) & 0xFFFFFF
}

// rdCRCUpdate continues the NVS CRC (see CRC32) over p, byte by byte: for
// the few bytes of a hash this beats crc32.Update and does not allocate.
func rdCRCUpdate(crc uint32, p []byte) uint32 {
	crc = ^crc
	for _, v := range p {
		crc = crc32.IEEETable[byte(crc)^v] ^ crc>>8
	}
	return ^crc
}

// rdKey returns the key as the library's C string functions see a key
// field: the bytes before the first NUL, at most 15.
func rdKey(field []byte) []byte {
	for i, c := range field {
		if c == 0 || i == MaxKeyLen {
			return field[:i]
		}
	}
	return field
}

// rdKeyEq is strncmp(key, field, 15) == 0.
func rdKeyEq(key, field []byte) bool {
	for i := 0; i < MaxKeyLen; i++ {
		var a, b byte
		if i < len(key) {
			a = key[i]
		}
		if i < len(field) {
			b = field[i]
		}
		if a != b {
			return false
		}
		if a == 0 {
			return true
		}
	}
	return true
}

// rdNewItem builds an item header the way the Item constructor does: key
// copied with strncpy (at most 15 bytes, NUL padded), data bytes 0xFF.
func rdNewItem(ns uint8, t Type, span int, key []byte, chunk uint8) rdItem {
	var it rdItem
	it[0], it[1], it[2], it[3] = ns, byte(t), byte(span), chunk
	copy(it[8:23], rdKey(key))
	for i := 24; i < 32; i++ {
		it[i] = 0xFF
	}
	return it
}

// rdHashNode is one HashList node; idx < 0 marks an erased node.
type rdHashNode struct {
	idx  int
	hash uint32
}

// rdPage is the library's Page: the in-RAM view of one flash page.
type rdPage struct {
	e         *rdEngine
	num       int // physical page number
	base      int // byte offset of the page in the partition
	state     uint32
	seq       uint32
	version   byte
	table     [BitmapSize]byte // mEntryTable
	nextFree  int
	firstUsed int
	used      int
	erased    int
	hl        []rdHashNode
}

func (p *rdPage) reset(e *rdEngine, num int) {
	*p = rdPage{
		e: e, num: num, base: num * PageSize,
		state: PageStateInvalid, seq: math.MaxUint32, version: rdNVSVersion,
		nextFree: rdNoEntry, firstUsed: rdNoEntry, hl: p.hl[:0],
	}
	for i := range p.table {
		p.table[i] = 0xFF
	}
}

// get is CompressedEnumTable::get with its bounds check.
func (p *rdPage) get(i int) (uint8, DeviceError) {
	if i < 0 || i >= EntriesPerPage {
		return 0, DeviceFail
	}
	return EntryState(p.table[:], i), devOK
}

func (p *rdPage) hlInsert(it *rdItem, idx int) {
	h := it.hash()
	p.hl = append(p.hl, rdHashNode{idx: idx, hash: h})
	p.e.indexAdd(h, p, 1)
}

func (p *rdPage) hlErase(idx int) {
	for i := range p.hl {
		if p.hl[i].idx == idx {
			p.hl[i].idx = -1
			p.e.indexAdd(p.hl[i].hash, p, -1)
			return
		}
	}
}

// hlClear empties the hash list (HashList::clear).
func (p *rdPage) hlClear() {
	for _, n := range p.hl {
		if n.idx >= 0 {
			p.e.indexAdd(n.hash, p, -1)
		}
	}
	p.hl = p.hl[:0]
}

// hlFind returns the first node (in insertion order) at or after start with
// the hash of it, or rdNoEntry.
func (p *rdPage) hlFind(start int, it *rdItem) int {
	h := it.hash()
	for _, n := range p.hl {
		if n.idx >= 0 && n.idx >= start && n.hash == h {
			return n.idx
		}
	}
	return rdNoEntry
}

func (p *rdPage) entryAddr(i int) int { return p.base + FirstEntryOffset + i*EntrySize }

// readEntry is Page::readEntry (through the decrypting partition read).
func (p *rdPage) readEntry(i int, dst *rdItem) DeviceError {
	if i < 0 || i >= EntriesPerPage {
		return DeviceFail
	}
	return p.e.read(p.entryAddr(i), dst)
}

// load is Page::load.
func (p *rdPage) load() DeviceError {
	p.used, p.erased = 0, 0
	hdr := p.e.flash[p.base : p.base+HeaderSize]
	word := binary.LittleEndian.Uint32(hdr)
	switch {
	case word == PageStateUninit:
		p.state = PageStateUninit
		if !allFF(p.e.flash[p.base : p.base+PageSize]) {
			p.state = PageStateCorrupt
		}
	case HeaderCRC(hdr) != binary.LittleEndian.Uint32(hdr[28:32]):
		// The library sets the state of its local header copy here, not
		// its own: the page keeps its initial INVALID state, which the
		// switch below turns into CORRUPT.
	default:
		p.state = word
		p.seq = binary.LittleEndian.Uint32(hdr[4:8])
		if hdr[8] < rdNVSVersion {
			return DeviceNewVersionFound
		}
		p.version = hdr[8]
	}
	switch p.state {
	case PageStateUninit:
	case PageStateFull, PageStateActive, PageStateFreeing:
		return p.loadEntryTable()
	default:
		p.state = PageStateCorrupt
	}
	return devOK
}

// loadEntryTable is Page::mLoadEntryTable: it counts entries, finds the
// first free entry, and erases half-written, inconsistent and duplicate
// items.
func (p *rdPage) loadEntryTable() DeviceError {
	copy(p.table[:], p.e.flash[p.base+BitmapOffset:p.base+BitmapOffset+BitmapSize])
	p.erased, p.used = 0, 0
	for i := 0; i < EntriesPerPage; i++ {
		switch EntryState(p.table[:], i) {
		case EntryWritten:
			if p.firstUsed == rdNoEntry {
				p.firstUsed = i
			}
			p.used++
		case EntryErased:
			p.erased++
		}
	}
	if p.state == PageStateActive {
		return p.loadActive()
	}
	var item rdItem
	for i := p.firstUsed; i < EntriesPerPage; i++ {
		if EntryState(p.table[:], i) != EntryWritten {
			continue
		}
		if rc := p.readEntry(i, &item); rc != devOK {
			p.state = PageStateInvalid
			return rc
		}
		if !item.consistent(i) {
			if rc := p.eraseEntryAndSpan(i, true); rc != devOK {
				p.state = PageStateInvalid
				return rc
			}
			continue
		}
		p.hlInsert(&item, i)
		span := item.span()
		if rdIsVar(item.typ()) {
			for j := i + 1; j < i+span; j++ {
				s, rc := p.get(j)
				if rc != devOK {
					return rc
				}
				if s != EntryWritten {
					// The library ignores this error (Page::mLoadEntryTable,
					// FULL and FREEING pages).
					_ = p.eraseEntryAndSpan(i, true)
					break
				}
			}
		}
		i += span - 1
	}
	return devOK
}

// loadActive is loadEntryTable for the active page: it finds the first
// free entry, erases entries cut mid-write, and purges damaged and
// duplicate items, as the library does at boot.
func (p *rdPage) loadActive() DeviceError {
	p.findNextFree()
	if rc := p.eraseCutEntries(); rc != devOK {
		p.state = PageStateInvalid
		return rc
	}
	var item rdItem
	last, rc := p.purgeEntries(&item)
	if rc != devOK {
		return rc
	}
	// Check that the last item is not a duplicate of an earlier one.
	if last != rdNoEntry {
		idx := 0
		var dupItem rdItem
		if p.findItem(item.ns(), item.typ(), rdKey(item.keyField()), &idx, &dupItem, rdChunkAny, rdVerAny) == devOK && idx < last {
			if rc := p.eraseEntryAndSpan(idx, true); rc != devOK {
				p.state = PageStateInvalid
				return rc
			}
		}
	}
	return devOK
}

// findNextFree sets nextFree to the first entry the bitmap calls empty.
func (p *rdPage) findNextFree() {
	for i := 0; i < EntriesPerPage; i++ {
		if EntryState(p.table[:], i) == EntryEmpty {
			p.nextFree = i
			break
		}
	}
}

// eraseCutEntries erases the entries that the bitmap calls empty but
// whose first word is not blank: they were cut in the middle of their
// write.
func (p *rdPage) eraseCutEntries() DeviceError {
	for p.nextFree < EntriesPerPage {
		addr := p.entryAddr(p.nextFree)
		if binary.LittleEndian.Uint32(p.e.flash[addr:addr+4]) == 0xFFFFFFFF {
			break
		}
		old := EntryState(p.table[:], p.nextFree)
		if rc := p.alterEntryState(p.nextFree, EntryErased); rc != devOK {
			return rc
		}
		p.nextFree++
		if old == EntryWritten {
			p.used--
		}
		p.erased++
	}
	return devOK
}

// purgeEntries walks the written entries as the library does at boot: it
// erases illegal and inconsistent entries, variable-length items whose
// span is not all written, and the older of two items with one hash. item
// holds the last item read; last is its entry, or rdNoEntry when the walk
// ended on an erased or purged one.
func (p *rdPage) purgeEntries(item *rdItem) (last int, rc DeviceError) {
	last = rdNoEntry
	end := min(p.nextFree, EntriesPerPage)
	span := 1
	for i := 0; i < end; i += span {
		span = 1
		switch EntryState(p.table[:], i) {
		case EntryErased:
			last = rdNoEntry
			continue
		case rdIllegal:
			last = rdNoEntry
			if rc := p.eraseEntryAndSpan(i, true); rc != devOK {
				p.state = PageStateInvalid
				return last, rc
			}
			continue
		}
		last = i
		if rc := p.readEntry(i, item); rc != devOK {
			p.state = PageStateInvalid
			return last, rc
		}
		if !item.consistent(i) {
			if rc := p.eraseEntryAndSpan(i, true); rc != devOK {
				p.state = PageStateInvalid
				return last, rc
			}
			continue
		}
		p.hlInsert(item, i)
		dup := p.hlFind(0, item)
		if rdIsVar(item.typ()) {
			span = item.span()
			written, rc := p.spanWritten(i, span)
			if rc != devOK {
				return last, rc
			}
			if !written {
				last = rdNoEntry
				// The library ignores this error (Page::mLoadEntryTable).
				_ = p.eraseEntryAndSpan(i, true)
				continue
			}
		}
		if dup < i {
			// The library ignores this error too (Page::mLoadEntryTable).
			_ = p.eraseEntryAndSpan(dup, true)
		}
	}
	return last, devOK
}

// spanWritten reports whether the span entries from i are all written.
func (p *rdPage) spanWritten(i, span int) (bool, DeviceError) {
	for j := i; j < i+span; j++ {
		s, rc := p.get(j)
		if rc != devOK {
			return false, rc
		}
		if s != EntryWritten {
			return false, devOK
		}
	}
	return true, devOK
}

// initialize is Page::initialize: write an ACTIVE header.
func (p *rdPage) initialize() DeviceError {
	if p.state != PageStateUninit {
		return DeviceFail
	}
	p.state = PageStateActive
	var hdr [HeaderSize]byte
	for i := range hdr {
		hdr[i] = 0xFF
	}
	binary.LittleEndian.PutUint32(hdr[0:4], p.state)
	binary.LittleEndian.PutUint32(hdr[4:8], p.seq)
	hdr[8] = p.version
	binary.LittleEndian.PutUint32(hdr[28:32], HeaderCRC(hdr[:]))
	if rc := p.e.writeRaw(p.base, hdr[:]); rc != devOK {
		p.state = PageStateInvalid
		return rc
	}
	p.nextFree = 0
	for i := range p.table {
		p.table[i] = 0xFF
	}
	return devOK
}

// alterEntryState is Page::alterEntryState: set the state in RAM, then
// write the 32-bit bitmap word that holds it.
func (p *rdPage) alterEntryState(i int, st uint8) DeviceError {
	if i < 0 || i >= EntriesPerPage {
		return DeviceFail
	}
	SetEntryState(p.table[:], i, st)
	w := i / 16
	if rc := p.e.writeRaw(p.base+BitmapOffset+4*w, p.table[4*w:4*w+4]); rc != devOK {
		p.state = PageStateInvalid
		return rc
	}
	return devOK
}

// alterEntryRangeState is Page::alterEntryRangeState for entries [begin, end).
func (p *rdPage) alterEntryRangeState(begin, end int, st uint8) DeviceError {
	if end > EntriesPerPage || end <= begin || begin < 0 {
		return DeviceFail
	}
	for i := begin; i < end; i++ {
		SetEntryState(p.table[:], i, st)
	}
	for w := (end - 1) / 16; w >= begin/16; w-- {
		if rc := p.e.writeRaw(p.base+BitmapOffset+4*w, p.table[4*w:4*w+4]); rc != devOK {
			return rc
		}
	}
	return devOK
}

// alterPageState is Page::alterPageState: write the state word.
func (p *rdPage) alterPageState(st uint32) DeviceError {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], st)
	if rc := p.e.writeRaw(p.base, b[:]); rc != devOK {
		p.state = PageStateInvalid
		return rc
	}
	p.state = st
	return devOK
}

// writeEntry is Page::writeEntry.
func (p *rdPage) writeEntry(it *rdItem) DeviceError {
	if p.nextFree < 0 || p.nextFree >= EntriesPerPage {
		return DeviceFail
	}
	if rc := p.e.write(p.entryAddr(p.nextFree), it[:]); rc != devOK {
		p.state = PageStateInvalid
		return rc
	}
	if rc := p.alterEntryState(p.nextFree, EntryWritten); rc != devOK {
		return rc
	}
	if p.firstUsed == rdNoEntry {
		p.firstUsed = p.nextFree
	}
	p.used++
	p.nextFree++
	return devOK
}

// writeEntryData is Page::writeEntryData: whole payload entries.
func (p *rdPage) writeEntryData(data []byte) DeviceError {
	count := len(data) / EntrySize
	if len(data)%EntrySize != 0 || p.nextFree == rdNoEntry || p.firstUsed == rdNoEntry ||
		p.nextFree+count > EntriesPerPage {
		return DeviceFail
	}
	if rc := p.e.write(p.entryAddr(p.nextFree), data); rc != devOK {
		p.state = PageStateInvalid
		return rc
	}
	if rc := p.alterEntryRangeState(p.nextFree, p.nextFree+count, EntryWritten); rc != devOK {
		return rc
	}
	p.used += count
	p.nextFree += count
	return devOK
}

// writeItem is Page::writeItem.
func (p *rdPage) writeItem(ns uint8, t Type, key, data []byte, chunk uint8) DeviceError {
	count, rc := p.room(t, key, data)
	if rc != devOK {
		return rc
	}
	item := rdNewItem(ns, t, count, key, chunk)
	p.hlInsert(&item, p.nextFree)
	if !rdIsVar(t) {
		copy(item[24:32], data)
		item.setCRC()
		return p.writeEntry(&item)
	}
	return p.writeVar(&item, data)
}

// room runs Page::writeItem's checks, in its order, and returns how many
// entries the item takes: a page that is not initialized yet is.
func (p *rdPage) room(t Type, key, data []byte) (count int, rc DeviceError) {
	if p.state == PageStateInvalid {
		return 0, DeviceInvalidState
	}
	if p.state == PageStateUninit {
		if rc := p.initialize(); rc != devOK {
			return 0, rc
		}
	}
	switch {
	case p.state == PageStateFull:
		return 0, DevicePageFull
	case len(key) > MaxKeyLen:
		return 0, DeviceKeyTooLong
	case len(data) > rdChunkMax:
		return 0, DeviceValueTooLong
	case !rdIsVar(t) && len(data) > 8:
		return 0, DeviceInvalidArg
	}
	count = 1
	if rdIsVar(t) {
		count += (len(data) + EntrySize - 1) / EntrySize
	}
	if p.nextFree == rdNoEntry || p.nextFree+count > EntriesPerPage {
		return 0, DevicePageFull
	}
	return count, devOK
}

// writeVar writes a variable-length item: its header with the data's size
// and CRC, then the data in whole entries and a last one padded with 0xFF.
func (p *rdPage) writeVar(item *rdItem, data []byte) DeviceError {
	binary.LittleEndian.PutUint16(item[24:26], uint16(len(data)))
	binary.LittleEndian.PutUint16(item[26:28], 0xFFFF)
	binary.LittleEndian.PutUint32(item[28:32], CRC32(data))
	item.setCRC()
	if rc := p.writeEntry(item); rc != devOK {
		return rc
	}
	rest := len(data) % EntrySize
	left := len(data) - rest
	if left > 0 {
		if rc := p.writeEntryData(data[:left]); rc != devOK {
			return rc
		}
	}
	if rest > 0 {
		var tail rdItem
		for i := range tail {
			tail[i] = 0xFF
		}
		copy(tail[:], data[left:])
		return p.writeEntry(&tail)
	}
	return devOK
}

// readVarData reads the payload of the variable-length item at index and
// checks its CRC; on a mismatch the item is erased and the result is
// DeviceNotFound (Page::readItem / readVariableLengthItemData).
func (p *rdPage) readVarData(item *rdItem, index int) ([]byte, DeviceError) {
	n := item.varSize()
	buf := make([]byte, 0, n)
	var d rdItem
	for i := index + 1; i < index+item.span(); i++ {
		if rc := p.readEntry(i, &d); rc != devOK {
			return nil, rc
		}
		w := min(n-len(buf), EntrySize)
		buf = append(buf, d[:w]...)
	}
	if len(buf) != n || CRC32(buf) != item.varCRC() {
		if rc := p.eraseEntryAndSpan(index, true); rc != devOK {
			return nil, rc
		}
		return nil, DeviceNotFound
	}
	return buf, devOK
}

// readItem is Page::readItem. For fixed-size types it returns the value
// bytes, for variable-length types the payload.
func (p *rdPage) readItem(ns uint8, t Type, key []byte, size int, chunk, start uint8) ([]byte, DeviceError) {
	if p.state == PageStateInvalid {
		return nil, DeviceInvalidState
	}
	idx := 0
	var item rdItem
	if rc := p.findItem(ns, t, key, &idx, &item, chunk, start); rc != devOK {
		return nil, rc
	}
	if !rdIsVar(t) {
		if size != int(t&0x0F) {
			return nil, DeviceTypeMismatch
		}
		v := make([]byte, size)
		copy(v, item[24:24+size])
		return v, devOK
	}
	if size < item.varSize() {
		return nil, DeviceInvalidLength
	}
	return p.readVarData(&item, idx)
}

// cmpItem is Page::cmpItem: devOK when the stored value equals data.
func (p *rdPage) cmpItem(ns uint8, t Type, key, data []byte, chunk, start uint8) DeviceError {
	if p.state == PageStateInvalid {
		return DeviceInvalidState
	}
	idx := 0
	var item rdItem
	if rc := p.findItem(ns, t, key, &idx, &item, chunk, start); rc != devOK {
		return rc
	}
	if !rdIsVar(t) {
		n := int(t & 0x0F)
		if len(data) != n || n > 8 {
			return DeviceTypeMismatch
		}
		for i := 0; i < n; i++ {
			if item[24+i] != data[i] {
				return DeviceContentDiffers
			}
		}
		return devOK
	}
	size := item.varSize()
	if len(data) < size {
		return DeviceInvalidLength
	}
	off := 0
	var d rdItem
	for i := idx + 1; i < idx+item.span(); i++ {
		if rc := p.readEntry(i, &d); rc != devOK {
			return rc
		}
		w := min(size-off, EntrySize)
		for k := 0; k < w; k++ {
			if d[k] != data[off+k] {
				return DeviceContentDiffers
			}
		}
		off += w
	}
	if CRC32(data[:size]) != item.varCRC() {
		return DeviceNotFound
	}
	return devOK
}

// eraseItem is Page::eraseItem.
func (p *rdPage) eraseItem(ns uint8, t Type, key []byte, purge bool, chunk, start uint8) DeviceError {
	idx := 0
	var item rdItem
	if rc := p.findItem(ns, t, key, &idx, &item, chunk, start); rc != devOK {
		return rc
	}
	return p.eraseEntryAndSpan(idx, purge)
}

// eraseEntryAndSpan is Page::eraseEntryAndSpan: mark an item (and its
// payload entries, if its header is consistent) erased. With purge, the
// erased entries are also overwritten with zeros, as the library does when
// it erases during start-up repairs and failed reads
// (DEFAULT_PURGE_AFTER_ERASE); nvs_set and nvs_erase_key do not purge.
func (p *rdPage) eraseEntryAndSpan(index int, purge bool) DeviceError {
	s, rc := p.get(index)
	if rc != devOK {
		return rc
	}
	span := 1
	if s == EntryWritten {
		var item rdItem
		if rc := p.readEntry(index, &item); rc != devOK {
			return rc
		}
		p.hlErase(index)
		if !item.consistent(index) {
			rc := p.alterEntryState(index, EntryErased)
			p.used--
			p.erased++
			if rc != devOK {
				return rc
			}
		} else {
			span = item.span()
			for i := index + span - 1; i >= index; i-- {
				if EntryState(p.table[:], i) == EntryWritten {
					p.used--
				}
				p.erased++
			}
			if span == 1 {
				rc = p.alterEntryState(index, EntryErased)
			} else {
				rc = p.alterEntryRangeState(index, index+span, EntryErased)
			}
			if rc != devOK {
				return rc
			}
		}
	} else if rc := p.alterEntryState(index, EntryErased); rc != devOK {
		return rc
	}
	if purge {
		if rc := p.purge(index, span); rc != devOK {
			return rc
		}
	}
	if index == p.firstUsed {
		p.updateFirstUsedEntry(index, span)
	}
	if index+span > p.nextFree {
		p.nextFree = index + span
	}
	return devOK
}

// purge overwrites entries [index, index+span) with zeros.
func (p *rdPage) purge(index, span int) DeviceError {
	var zero [EntrySize]byte
	for i := index; i < index+span && i < EntriesPerPage; i++ {
		if rc := p.e.writeRaw(p.entryAddr(i), zero[:]); rc != devOK {
			return rc
		}
	}
	return devOK
}

// updateFirstUsedEntry is Page::updateFirstUsedEntry.
func (p *rdPage) updateFirstUsedEntry(index, span int) {
	p.firstUsed = rdNoEntry
	end := min(p.nextFree, EntriesPerPage)
	for i := index + span; i < end; i++ {
		if EntryState(p.table[:], i) == EntryWritten {
			p.firstUsed = i
			return
		}
	}
}

// findItem is Page::findItem. key == nil means any key. itemIndex is the
// entry to start from on input and the found entry on output; item holds
// the last entry read, as in the library.
func (p *rdPage) findItem(ns uint8, t Type, key []byte, itemIndex *int, item *rdItem, chunk, start uint8) DeviceError {
	from, end, ok := p.findRange(ns, t, key, *itemIndex, chunk)
	if !ok {
		return DeviceNotFound
	}
	next := 0
	for i := from; i < end; i = next {
		next = i + 1
		if EntryState(p.table[:], i) != EntryWritten {
			continue
		}
		if rc := p.readEntry(i, item); rc != devOK {
			p.state = PageStateInvalid
			return rc
		}
		if !item.consistent(i) {
			if rc := p.eraseEntryAndSpan(i, true); rc != devOK {
				p.state = PageStateInvalid
				return rc
			}
			continue
		}
		if rdIsVar(item.typ()) {
			next = i + item.span()
		}
		switch matchItem(item, ns, t, key, chunk, start) {
		case rdFound:
			*itemIndex = i
			return devOK
		case rdOtherType:
			*itemIndex = i
			return DeviceTypeMismatch
		case rdBlobIndexForBlob:
			return DeviceTypeMismatch
		}
	}
	return DeviceNotFound
}

// findRange is where findItem looks: from the entry asked for, or the
// first used one, or straight from the first entry whose hash matches, to
// the first free entry. ok is false when there is nothing to look at.
func (p *rdPage) findRange(ns uint8, t Type, key []byte, begin int, chunk uint8) (from, end int, ok bool) {
	if p.state == PageStateCorrupt || p.state == PageStateInvalid || p.state == PageStateUninit {
		return 0, 0, false
	}
	if begin < 0 || begin >= EntriesPerPage {
		return 0, 0, false
	}
	from = max(begin, p.firstUsed)
	end = min(p.nextFree, EntriesPerPage)
	if ns != rdNSAny && key != nil && (t != TypeBlobData || chunk != rdChunkAny) {
		probe := rdNewItem(ns, t, 0, key, chunk)
		cached := p.hlFind(from, &probe)
		if cached >= EntriesPerPage {
			return 0, 0, false
		}
		from = cached
	}
	return from, end, true
}

// rdMatch is how an item compares with what findItem looks for.
type rdMatch uint8

const (
	rdSkip             rdMatch = iota // not it: look further
	rdFound                           // it
	rdOtherType                       // its key with another type: a type mismatch here
	rdBlobIndexForBlob                // a version 2 blob looked up as a version 1 blob
)

// matchItem is the comparison of Page::findItem's loop, in its order.
func matchItem(item *rdItem, ns uint8, t Type, key []byte, chunk, start uint8) rdMatch {
	if !matchKey(item, ns, t, key, chunk) {
		return rdSkip
	}
	it := item.typ()
	switch {
	case chunk == rdChunkAny && t == TypeBlob && it == TypeBlobIndex:
		return rdBlobIndexForBlob
	case chunk == rdChunkAny && t == TypeBlob && it == TypeBlobData,
		t == TypeBlobIndex && item.chunk() != rdChunkAny,
		t == TypeBlobIndex && start != rdVerAny && item.idxStart() != start:
		return rdSkip
	case t != TypeAny && it != t:
		if key == nil && ns == rdNSAny && chunk == rdChunkAny {
			return rdSkip
		}
		return rdOtherType
	}
	return rdFound
}

// matchKey is the first tests of findItem's comparison: the namespace,
// the key and, when blob data is looked for, the chunk.
func matchKey(item *rdItem, ns uint8, t Type, key []byte, chunk uint8) bool {
	switch {
	case ns != rdNSAny && item.ns() != ns,
		key != nil && !rdKeyEq(key, item.keyField()),
		chunk != rdChunkAny && t == TypeBlobData && item.chunk() != chunk,
		chunk == rdChunkAny && t == TypeBlobData && item.typ() != TypeBlobData:
		return false
	}
	return true
}

// copyItems is Page::copyItems: copy every written entry to other.
func (p *rdPage) copyItems(other *rdPage) DeviceError {
	if p.firstUsed == rdNoEntry {
		return DeviceNotFound
	}
	if other.state == PageStateUninit {
		if rc := other.initialize(); rc != devOK {
			return rc
		}
	}
	var entry rdItem
	for r := p.firstUsed; r < EntriesPerPage; {
		if EntryState(p.table[:], r) != EntryWritten {
			if r == p.firstUsed {
				return DeviceFail
			}
			r++
			continue
		}
		if rc := p.readEntry(r, &entry); rc != devOK {
			return rc
		}
		other.hlInsert(&entry, other.nextFree)
		if rc := other.writeEntry(&entry); rc != devOK {
			return rc
		}
		end := r + entry.span()
		if end > EntriesPerPage || end <= r {
			return DeviceFail
		}
		for i := r + 1; i < end; i++ {
			if rc := p.readEntry(i, &entry); rc != devOK {
				return rc
			}
			if rc := other.writeEntry(&entry); rc != devOK {
				return rc
			}
		}
		r = end
	}
	return devOK
}

// erase is Page::erase: erase the flash page and forget its contents.
func (p *rdPage) erase() DeviceError {
	if p.e.readOnly {
		p.state = PageStateInvalid
		return DeviceNotAllowed
	}
	p.e.own()
	copy(p.e.flash[p.base:p.base+PageSize], rdBlankPage)
	p.used, p.erased = 0, 0
	p.firstUsed, p.nextFree = rdNoEntry, rdNoEntry
	p.state = PageStateUninit
	p.hlClear()
	return devOK
}

func (p *rdPage) markFreeing() DeviceError {
	if p.state != PageStateFull && p.state != PageStateActive {
		return DeviceInvalidState
	}
	return p.alterPageState(PageStateFreeing)
}

func (p *rdPage) markFull() DeviceError {
	if p.state != PageStateActive {
		return DeviceInvalidState
	}
	return p.alterPageState(PageStateFull)
}

// varDataTailroom is Page::getVarDataTailroom.
func (p *rdPage) varDataTailroom() int {
	switch p.state {
	case PageStateUninit:
		return rdChunkMax
	case PageStateFull:
		return 0
	}
	if p.nextFree < EntriesPerPage-1 {
		return (EntriesPerPage - p.nextFree - 1) * EntrySize
	}
	return 0
}

// seqNumber is Page::getSeqNumber.
func (p *rdPage) seqNumber() (uint32, bool) {
	switch p.state {
	case PageStateUninit, PageStateInvalid, PageStateCorrupt:
		return 0, false
	}
	return p.seq, true
}

// rdNamespace is one entry of the library's namespace table.
type rdNamespace struct {
	name  []byte
	index uint8
}

// rdBlobIndex is Storage::BlobIndexNode.
type rdBlobIndex struct {
	key           []byte
	ns            uint8
	chunkStart    uint8
	chunkCount    int
	dataSize      uint32
	observedSize  uint32
	observedCount int
	gone          bool
}

// rdEngine is the library's PageManager and Storage over a flash copy.
type rdEngine struct {
	flash    []byte
	pages    []rdPage
	list     []*rdPage // mPageList, ordered by sequence number
	free     []*rdPage // mFreePageList
	seq      uint32    // next sequence number
	nss      []rdNamespace
	nsUsed   [256]bool
	readOnly bool
	shared   bool // flash is the caller's buffer, not yet copied
	active   bool
	decrypt  EntryCipher
	encrypt  EntryCipher
	hookErr  error
	scratch  [EntrySize]byte

	// index maps a hash-list hash to the pages whose hash lists hold a
	// live node with it, so that a lookup by key visits only those pages
	// instead of every page (the library's per-page search made reading
	// a large image quadratic). nil for small images. pos is each page's
	// position in list, rebuilt when posDirty.
	index    map[uint32][]rdHashRef
	pos      []int
	posDirty bool
	// indexAll keeps the index whatever the page count (the options'
	// indexAll: tests run every lookup through it).
	indexAll bool
}

// rdHashRef counts the live hash-list nodes of one hash in one page.
type rdHashRef struct {
	page *rdPage
	n    int
}

// rdIndexMinPages is the page count from which the engine keeps its index
// (ReadOptions.indexAll and EditOptions.indexAll keep it for fewer).
const rdIndexMinPages = 16

func (e *rdEngine) indexAdd(h uint32, p *rdPage, d int) {
	if e.index == nil {
		return
	}
	refs := e.index[h]
	for i := range refs {
		if refs[i].page == p {
			refs[i].n += d
			if refs[i].n <= 0 {
				refs = append(refs[:i], refs[i+1:]...)
				if len(refs) == 0 {
					delete(e.index, h)
				} else {
					e.index[h] = refs
				}
			}
			return
		}
	}
	if d > 0 {
		e.index[h] = append(refs, rdHashRef{page: p, n: d})
	}
}

// candidates returns the pages, in list order, that may hold an item with
// the hash of probe; ok is false when the engine keeps no index.
func (e *rdEngine) candidates(probe *rdItem, buf []*rdPage) ([]*rdPage, bool) {
	if e.index == nil {
		return nil, false
	}
	if e.posDirty {
		for i, p := range e.list {
			e.pos[p.num] = i
		}
		e.posDirty = false
	}
	out := buf[:0]
	for _, r := range e.index[probe.hash()] {
		out = append(out, r.page)
	}
	slices.SortFunc(out, func(a, b *rdPage) int { return cmp.Compare(e.pos[a.num], e.pos[b.num]) })
	return out, true
}

// own makes flash a private copy before the first write, when it is the
// caller's buffer (copy on write: reading a clean image writes nothing).
func (e *rdEngine) own() {
	if e.shared {
		e.flash = append([]byte(nil), e.flash...)
		e.shared = false
	}
}

// read is Partition::read: one entry, decrypted when a hook is set.
func (e *rdEngine) read(addr int, dst *rdItem) DeviceError {
	copy(dst[:], e.flash[addr:addr+EntrySize])
	if e.decrypt != nil {
		if err := e.decrypt(addr, dst[:]); err != nil {
			if e.hookErr == nil {
				e.hookErr = err
			}
			return DeviceXTSDecrFailed
		}
	}
	return devOK
}

// write is Partition::write: whole entries, encrypted when a hook is set.
func (e *rdEngine) write(addr int, data []byte) DeviceError {
	if e.encrypt == nil {
		return e.writeRaw(addr, data)
	}
	for off := 0; off < len(data); off += EntrySize {
		buf := e.scratch[:]
		copy(buf, data[off:off+EntrySize])
		if err := e.encrypt(addr+off, buf); err != nil {
			if e.hookErr == nil {
				e.hookErr = err
			}
			return DeviceFail
		}
		if rc := e.writeRaw(addr+off, buf); rc != devOK {
			return rc
		}
	}
	return devOK
}

// writeRaw is Partition::write_raw with NOR semantics: bits only clear.
func (e *rdEngine) writeRaw(addr int, data []byte) DeviceError {
	if e.readOnly {
		return DeviceNotAllowed
	}
	e.own()
	dst := e.flash[addr : addr+len(data)]
	for i, c := range data {
		dst[i] &= c
	}
	return devOK
}

func (e *rdEngine) removeFromList(p *rdPage) {
	e.posDirty = true
	for i, q := range e.list {
		if q == p {
			e.list = append(e.list[:i], e.list[i+1:]...)
			return
		}
	}
}

func (e *rdEngine) current() *rdPage { return e.list[len(e.list)-1] }

// pmLoad is PageManager::load.
func (e *rdEngine) pmLoad() DeviceError {
	if rc := e.loadPages(); rc != devOK {
		return rc
	}
	if len(e.list) == 0 {
		e.seq = 0
		return e.activatePage()
	}
	last := e.current()
	e.seq = last.seq + 1
	if e.readOnly {
		return devOK
	}
	e.eraseDuplicate(last)
	if rc := e.finishFreeing(); rc != devOK {
		return rc
	}
	if len(e.free) == 0 {
		return DeviceNoFreePages
	}
	return devOK
}

// loadPages loads every page and sorts them as PageManager::load does:
// pages with a sequence number into the list, in sequence order, the
// others into the free list. The index is kept from rdIndexMinPages pages.
func (e *rdEngine) loadPages() DeviceError {
	n := len(e.flash) / PageSize
	if cap(e.pages) < n {
		e.pages = make([]rdPage, n)
	}
	e.pages = e.pages[:n]
	e.list, e.free = e.list[:0], e.free[:0]
	e.posDirty = true
	e.index = nil
	if n >= rdIndexMinPages || e.indexAll {
		e.index = map[uint32][]rdHashRef{}
		e.pos = make([]int, n)
	}
	for i := range e.pages {
		p := &e.pages[i]
		p.reset(e, i)
		if rc := p.load(); rc != devOK {
			return rc
		}
		seq, ok := p.seqNumber()
		if !ok {
			e.free = append(e.free, p)
			continue
		}
		pos := len(e.list)
		for k, q := range e.list {
			if qs, ok := q.seqNumber(); ok && qs > seq {
				pos = k
				break
			}
		}
		e.list = append(e.list, nil)
		copy(e.list[pos+1:], e.list[pos:])
		e.list[pos] = p
	}
	return devOK
}

// eraseDuplicate repairs a power loss between writing a new item and
// erasing the old one, which leaves a duplicate: the last item of the
// newest page wins, and its older copy (or, for a blob index, the older
// version's chunk) is erased from the other pages.
func (e *rdEngine) eraseDuplicate(last *rdPage) {
	var item rdItem
	idx, lastIdx := 0, rdNoEntry
	for last.findItem(rdNSAny, TypeAny, nil, &idx, &item, rdChunkAny, rdVerAny) == devOK {
		idx += item.span()
		lastIdx = idx
	}
	if lastIdx == rdNoEntry {
		return
	}
	key := rdKey(item.keyField())
	older := e.list[:len(e.list)-1]
	for _, p := range older {
		if p.state != PageStateFreeing && p.eraseItem(item.ns(), item.typ(), key, true, item.chunk(), rdVerAny) == devOK {
			return
		}
	}
	if item.typ() != TypeBlobIndex {
		return
	}
	for _, p := range older {
		if p.state != PageStateFreeing && p.eraseItem(item.ns(), TypeBlob, key, true, item.chunk(), rdVerAny) == devOK {
			return
		}
	}
}

// finishFreeing repairs a power loss during garbage collection, which
// leaves a FREEING page: its items are moved to a fresh active page and it
// is erased.
func (e *rdEngine) finishFreeing() DeviceError {
	for _, p := range e.list {
		if p.state != PageStateFreeing {
			continue
		}
		if np := e.current(); np.state == PageStateActive {
			if rc := np.erase(); rc != devOK {
				return rc
			}
			e.removeFromList(np)
			e.free = append(e.free, np)
		}
		if rc := e.activatePage(); rc != devOK {
			return rc
		}
		if rc := p.copyItems(e.current()); rc != devOK && rc != DeviceNotFound {
			return rc
		}
		if rc := p.erase(); rc != devOK {
			return rc
		}
		e.removeFromList(p)
		e.free = append(e.free, p)
		break
	}
	return devOK
}

// activatePage is PageManager::activatePage.
func (e *rdEngine) activatePage() DeviceError {
	if len(e.free) == 0 {
		return DeviceNotEnoughSpace
	}
	p := e.free[0]
	if p.state == PageStateCorrupt {
		if rc := p.erase(); rc != devOK {
			return rc
		}
	}
	e.free = append(e.free[:0], e.free[1:]...)
	e.list = append(e.list, p)
	e.posDirty = true
	if p.state == PageStateUninit {
		p.seq = e.seq
	}
	e.seq++
	return devOK
}

// requestNewPage is PageManager::requestNewPage, the garbage collector:
// with only the reserved page left, the page with the most reclaimable
// entries is copied into it and erased.
func (e *rdEngine) requestNewPage() DeviceError {
	if len(e.free) == 0 {
		return DeviceInvalidState
	}
	if len(e.free) >= 2 {
		return e.activatePage()
	}
	var victim *rdPage
	maxUnused := 0
	for _, p := range e.list {
		if unused := EntriesPerPage - p.used; unused > maxUnused {
			victim, maxUnused = p, unused
		}
	}
	if victim == nil {
		return DeviceNotEnoughSpace
	}
	if rc := victim.markFreeing(); rc != devOK {
		return rc
	}
	if rc := e.activatePage(); rc != devOK {
		return rc
	}
	if rc := victim.copyItems(e.current()); rc != devOK && rc != DeviceNotFound {
		return rc
	}
	if rc := victim.erase(); rc != devOK {
		return rc
	}
	e.removeFromList(victim)
	e.free = append(e.free, victim)
	return devOK
}

// init is Storage::init: load the pages, the namespace table, and drop
// inconsistent blob indexes and orphaned blob chunks.
func (e *rdEngine) init() DeviceError {
	e.active = false
	if rc := e.pmLoad(); rc != devOK {
		return rc
	}
	// One item for every walk below: findItem's item goes to the heap.
	item := new(rdItem)
	e.loadNamespaces(item)
	blobs := rdBlobTable{byKey: map[string][]int{}}
	e.readBlobIndexes(&blobs, item)
	e.eraseMismatchedBlobIndexes(&blobs, item)
	e.eraseOrphanDataBlobs(&blobs, item)
	e.active = true
	return devOK
}

// loadNamespaces reads the namespace table: every namespace entry (a u8
// in namespace 0) of every page. Indexes 0 and 255 are never handed out.
func (e *rdEngine) loadNamespaces(item *rdItem) {
	e.nss = e.nss[:0]
	e.nsUsed = [256]bool{}
	for _, p := range e.list {
		idx := 0
		for p.findItem(0, TypeU8, nil, &idx, item, rdChunkAny, rdVerAny) == devOK {
			name := append([]byte(nil), rdKey(item.keyField())...)
			e.nsUsed[item[24]] = true
			e.nss = append(e.nss, rdNamespace{name: name, index: item[24]})
			idx += item.span()
		}
	}
	e.nsUsed[0], e.nsUsed[255] = true, true
}

// rdBlobTable is Storage::init's list of blob indexes, by namespace and
// key.
type rdBlobTable struct {
	blobs []rdBlobIndex
	byKey map[string][]int
}

// lookup returns the first blob index, not yet erased, with the namespace
// and key of it that match accepts; nil when none does.
func (t *rdBlobTable) lookup(it *rdItem, match func(b *rdBlobIndex) bool) *rdBlobIndex {
	for _, i := range t.byKey[string(append([]byte{it.ns()}, rdKey(it.keyField())...))] {
		if b := &t.blobs[i]; !b.gone && match(b) {
			return b
		}
	}
	return nil
}

// readBlobIndexes lists the blob index items of every page in t.
func (e *rdEngine) readBlobIndexes(t *rdBlobTable, item *rdItem) {
	for _, p := range e.list {
		idx := 0
		for p.findItem(rdNSAny, TypeBlobIndex, nil, &idx, item, rdChunkAny, rdVerAny) == devOK {
			b := rdBlobIndex{
				key: append([]byte(nil), rdKey(item.keyField())...), ns: item.ns(),
				chunkStart: item.idxStart(), chunkCount: item.idxCount(), dataSize: item.idxSize(),
			}
			k := string(append([]byte{b.ns}, b.key...))
			t.byKey[k] = append(t.byKey[k], len(t.blobs))
			t.blobs = append(t.blobs, b)
			idx += item.span()
		}
	}
}

// eraseMismatchedBlobIndexes is Storage::eraseMismatchedBlobIndexes: a
// blob index whose chunks do not add up to its size and count is erased.
func (e *rdEngine) eraseMismatchedBlobIndexes(t *rdBlobTable, item *rdItem) {
	for _, p := range e.list {
		idx := 0
		for p.findItem(rdNSAny, TypeBlobData, nil, &idx, item, rdChunkAny, rdVerAny) == devOK {
			c := int(item.chunk())
			b := t.lookup(item, func(b *rdBlobIndex) bool {
				limit := rdVerAny
				if b.chunkStart == rdVer0 {
					limit = rdVer1
				}
				return c >= int(b.chunkStart) && c < limit
			})
			if b != nil {
				b.observedSize += uint32(item.varSize())
				b.observedCount++
			}
			idx += item.span()
		}
	}
	for i := range t.blobs {
		b := &t.blobs[i]
		if b.observedSize == b.dataSize && b.observedCount == b.chunkCount {
			continue
		}
		for _, p := range e.list {
			if p.state == PageStateCorrupt || p.state == PageStateInvalid || p.state == PageStateUninit {
				continue
			}
			if p.eraseItem(b.ns, TypeBlobIndex, b.key, true, rdChunkAny, b.chunkStart) == devOK {
				break
			}
		}
		b.gone = true
	}
}

// eraseOrphanDataBlobs is Storage::eraseOrphanDataBlobs: a blob chunk that
// no remaining blob index claims is erased.
func (e *rdEngine) eraseOrphanDataBlobs(t *rdBlobTable, item *rdItem) {
	for _, p := range e.list {
		idx := 0
		for p.findItem(rdNSAny, TypeBlobData, nil, &idx, item, rdChunkAny, rdVerAny) == devOK {
			c := int(item.chunk())
			b := t.lookup(item, func(b *rdBlobIndex) bool {
				return c >= int(b.chunkStart) && c < int(b.chunkStart)+b.chunkCount
			})
			if b == nil {
				// The library ignores this error
				// (Storage::eraseOrphanDataBlobs returns void).
				_ = p.eraseItem(item.ns(), item.typ(), rdKey(item.keyField()), true, item.chunk(), rdVerAny)
			}
			idx += item.span()
		}
	}
}

// findItem is Storage::findItem: the first page (in sequence order) that
// holds a matching item.
func (e *rdEngine) findItem(ns uint8, t Type, key []byte, chunk, start uint8, item *rdItem) (*rdPage, int, DeviceError) {
	pages := e.list
	if ns != rdNSAny && key != nil && (t != TypeBlobData || chunk != rdChunkAny) {
		// Pages whose hash list lacks the key's hash return NOT_FOUND
		// without reading anything: skip them.
		probe := rdNewItem(ns, t, 0, key, chunk)
		var buf [8]*rdPage
		if c, ok := e.candidates(&probe, buf[:]); ok {
			pages = c
		}
	}
	for _, p := range pages {
		idx := 0
		if p.findItem(ns, t, key, &idx, item, chunk, start) == devOK {
			return p, idx, devOK
		}
	}
	return nil, 0, DeviceNotFound
}

// namespaceIndex is Storage::createOrOpenNamespace.
func (e *rdEngine) namespaceIndex(name []byte, create bool) (uint8, DeviceError) {
	if !e.active {
		return 0, DeviceNotInitialized
	}
	for _, n := range e.nss {
		if rdKeyEq(name, n.name) {
			return n.index, devOK
		}
	}
	if !create {
		return 0, DeviceNotFound
	}
	ns := 1
	for ; ns < 255; ns++ {
		if !e.nsUsed[ns] {
			break
		}
	}
	if ns == 255 {
		return 0, DeviceNotEnoughSpace
	}
	if rc := e.writeItem(0, TypeU8, name, []byte{byte(ns)}, true); rc != devOK {
		return 0, rc
	}
	e.nsUsed[ns] = true
	e.nss = append(e.nss, rdNamespace{name: append([]byte(nil), rdKey(name)...), index: uint8(ns)})
	return uint8(ns), devOK
}

// namespaceName returns the name of the first namespace with index ns, as
// Storage::fillEntryInfo looks it up.
func (e *rdEngine) namespaceName(ns uint8) ([]byte, bool) {
	for _, n := range e.nss {
		if n.index == ns {
			return n.name, true
		}
	}
	return nil, false
}

// writeItem is Storage::writeItem. t == TypeBlob writes a version 2
// (multi-page) blob.
func (e *rdEngine) writeItem(ns uint8, t Type, key, data []byte, purge bool) DeviceError {
	if !e.active {
		return DeviceNotInitialized
	}
	var old rdOldItem
	e.findOld(ns, t, key, &old)
	var same bool
	var rc DeviceError
	if t == TypeBlob {
		same, rc = e.writeNewBlob(ns, key, data, &old, purge)
	} else {
		same, rc = e.writeNewItem(ns, t, key, data, &old)
	}
	if same || rc != devOK {
		return rc
	}
	return e.eraseOld(ns, key, &old, purge)
}

// rdOldItem is the item a write replaces: where it is, the sequence
// number its page had then (garbage collection may move it meanwhile),
// and whether it has the type written (matched) or only the key.
type rdOldItem struct {
	page    *rdPage
	index   int
	seq     uint32
	matched bool
	item    rdItem
}

// findOld finds the item a write of type t replaces: one of that type (a
// blob index for a blob) or, failing that, of any type with the key.
func (e *rdEngine) findOld(ns uint8, t Type, key []byte, old *rdOldItem) {
	old.seq = math.MaxUint32
	lookup := t
	if t == TypeBlob {
		lookup = TypeBlobIndex
	}
	if p, idx, rc := e.findItem(ns, lookup, key, rdChunkAny, rdVerAny, &old.item); rc == devOK {
		old.page, old.index, old.matched = p, idx, true
		if t != TypeBlob {
			old.seq, _ = p.seqNumber()
		}
	}
	if old.page == nil {
		if p, idx, rc := e.findItem(ns, TypeAny, key, rdChunkAny, rdVerAny, &old.item); rc == devOK {
			old.page, old.index = p, idx
			old.seq, _ = p.seqNumber()
		}
	}
}

// writeNewBlob writes a multi-page blob in the version after the old
// one's; same reports an old blob with the same bytes (nothing written).
func (e *rdEngine) writeNewBlob(ns uint8, key, data []byte, old *rdOldItem, purge bool) (same bool, rc DeviceError) {
	next := uint8(rdVer0)
	if old.matched {
		if e.cmpMultiPageBlob(ns, key, data) == devOK {
			return true, devOK
		}
		prev := old.item.idxStart()
		if prev != rdVer0 && prev != rdVer1 {
			return false, DeviceFail
		}
		if prev == rdVer0 {
			next = rdVer1
		}
	}
	rc = e.writeMultiPageBlob(ns, key, data, next, purge)
	if rc == DevicePageFull {
		return false, DeviceNotEnoughSpace
	}
	return false, rc
}

// writeNewItem writes a single-entry or string item into the active page,
// or the next one when it is full; same reports an old item with the same
// value (nothing written).
func (e *rdEngine) writeNewItem(ns uint8, t Type, key, data []byte, old *rdOldItem) (same bool, rc DeviceError) {
	if old.matched && old.page.cmpItem(ns, t, key, data, rdChunkAny, rdVerAny) == devOK {
		return true, devOK
	}
	page := e.current()
	rc = page.writeItem(ns, t, key, data, rdChunkAny)
	if rc != DevicePageFull {
		return false, rc
	}
	if rc := e.nextPage(page); rc != devOK {
		return false, rc
	}
	rc = e.current().writeItem(ns, t, key, data, rdChunkAny)
	if rc == DevicePageFull {
		return false, DeviceNotEnoughSpace
	}
	return false, rc
}

// eraseOld erases the replaced item once the new one is written: a blob
// with all its chunks, anything else where it is now (found again when
// garbage collection moved it).
func (e *rdEngine) eraseOld(ns uint8, key []byte, old *rdOldItem, purge bool) DeviceError {
	if old.page == nil {
		return devOK
	}
	if old.item.typ() == TypeBlobIndex {
		return e.eraseMultiPageBlob(ns, key, old.item.idxStart(), purge)
	}
	relocated := old.page.state != PageStateActive && old.page.state != PageStateFull
	if !relocated {
		s, ok := old.page.seqNumber()
		if !ok {
			return DeviceNotInitialized
		}
		relocated = s != old.seq
	}
	if relocated {
		p, idx, rc := e.findItem(ns, old.item.typ(), key, rdChunkAny, rdVerAny, &old.item)
		if rc != devOK {
			return rc
		}
		old.page, old.index = p, idx
	}
	return old.page.eraseEntryAndSpan(old.index, purge)
}

// writeMultiPageBlob is Storage::writeMultiPageBlob.
func (e *rdEngine) writeMultiPageBlob(ns uint8, key, data []byte, chunkStart uint8, purge bool) DeviceError {
	maxPages := min(len(e.pages)-1, (rdChunkAny-1)/2)
	if len(data) > maxPages*rdChunkMax {
		return DeviceValueTooLong
	}
	w := rdBlobWrite{ns: ns, key: key, data: data, chunkStart: chunkStart}
	rc, rollback := e.writeBlobChunks(&w)
	if rc != devOK && rollback {
		// The library erases chunk indexes 0, 1, 2… here, whatever the
		// version offset, and ignores the errors: rc is what it returns.
		for i, p := range w.used {
			_ = p.eraseItem(ns, TypeBlobData, key, purge, uint8(i), rdVerAny)
		}
	}
	return rc
}

// rdBlobWrite is one writeMultiPageBlob: the blob, and the chunks written
// so far with the pages they went to.
type rdBlobWrite struct {
	ns         uint8
	key, data  []byte
	chunkStart uint8
	chunkCount int
	used       []*rdPage
}

// index is the data of the blob's index item: size, chunk count, first
// chunk.
func (w *rdBlobWrite) index() []byte {
	var idx [8]byte
	binary.LittleEndian.PutUint32(idx[0:4], uint32(len(w.data)))
	idx[4] = byte(w.chunkCount)
	idx[5] = w.chunkStart
	idx[6], idx[7] = 0xFF, 0xFF
	return idx[:]
}

// writeBlobChunks writes the blob's chunks into the tailroom of one page
// after another, then its index, as the library does. rollback says
// whether the chunks written must be erased: on some errors the library
// returns at once and leaves them.
func (e *rdEngine) writeBlobChunks(w *rdBlobWrite) (rc DeviceError, rollback bool) {
	remaining, offset := len(w.data), 0
	for guard := 0; guard <= 4*len(e.pages)+256; guard++ {
		page := e.current()
		tailroom := page.varDataTailroom()
		if w.chunkCount == 0 && (tailroom < len(w.data) || (tailroom == 0 && len(w.data) == 0)) && tailroom < rdChunkMax/10 {
			// The first chunk would be too small: start on a new page.
			if rc := e.nextPage(page); rc != devOK {
				return rc, false
			}
			if e.current().varDataTailroom() == tailroom {
				return DeviceNotEnoughSpace, false
			}
			continue
		}
		if tailroom == 0 {
			return DeviceNotEnoughSpace, true
		}
		size := min(remaining, tailroom)
		remaining -= size
		rc = page.writeItem(w.ns, TypeBlobData, w.key, w.data[offset:offset+size], w.chunkStart+uint8(w.chunkCount))
		w.chunkCount++
		if rc != devOK {
			return rc, rc != DevicePageFull
		}
		w.used = append(w.used, page)
		if remaining > 0 || tailroom-size < EntrySize {
			if rc = e.nextPage(page); rc != devOK {
				return rc, true
			}
		}
		offset += size
		if remaining == 0 {
			rc = e.current().writeItem(w.ns, TypeBlobIndex, w.key, w.index(), rdChunkAny)
			return rc, rc != DevicePageFull
		}
	}
	return DeviceNotEnoughSpace, true
}

// nextPage marks page full, when it is not yet, and makes a new page the
// active one (garbage collecting if need be).
func (e *rdEngine) nextPage(page *rdPage) DeviceError {
	if page.state != PageStateFull {
		if rc := page.markFull(); rc != devOK {
			return rc
		}
	}
	return e.requestNewPage()
}

// cmpMultiPageBlob is Storage::cmpMultiPageBlob: devOK when the stored
// blob equals data. Like the library it checks each chunk's CRC against
// the start of data.
func (e *rdEngine) cmpMultiPageBlob(ns uint8, key, data []byte) DeviceError {
	var item rdItem
	if _, _, rc := e.findItem(ns, TypeBlobIndex, key, rdChunkAny, rdVerAny, &item); rc != devOK {
		return rc
	}
	count, start := item.idxCount(), item.idxStart()
	if uint32(len(data)) != item.idxSize() {
		return DeviceContentDiffers
	}
	off := 0
	rc := devOK
	for n := 0; n < count; n++ {
		var p *rdPage
		p, _, rc = e.findItem(ns, TypeBlobData, key, start+uint8(n), rdVerAny, &item)
		if rc != devOK {
			if rc == DeviceNotFound {
				break
			}
			return rc
		}
		size := item.varSize()
		if size > len(data)-off {
			return DeviceContentDiffers
		}
		if CRC32(data[:size]) != item.varCRC() {
			return DeviceContentDiffers
		}
		if rc = p.cmpItem(ns, TypeBlobData, key, data[off:off+size], start+uint8(n), rdVerAny); rc != devOK {
			return rc
		}
		off += size
	}
	if off != len(data) {
		return DeviceFail
	}
	return rc
}

// readMultiPageBlob is Storage::readMultiPageBlob.
func (e *rdEngine) readMultiPageBlob(ns uint8, key []byte) ([]byte, DeviceError) {
	var item rdItem
	if _, _, rc := e.findItem(ns, TypeBlobIndex, key, rdChunkAny, rdVerAny, &item); rc != devOK {
		return nil, rc
	}
	count, start, size := item.idxCount(), item.idxStart(), int(item.idxSize())
	buf := make([]byte, 0, min(size, rdMaxIdxSize))
	rc := devOK
	for n := 0; n < count; n++ {
		var p *rdPage
		var idx int
		p, idx, rc = e.findItem(ns, TypeBlobData, key, start+uint8(n), rdVerAny, &item)
		if rc != devOK {
			if rc == DeviceNotFound {
				break
			}
			return nil, rc
		}
		if item.varSize() > size-len(buf) {
			rc = DeviceInvalidLength
			break
		}
		var d []byte
		if d, rc = p.readVarData(&item, idx); rc != devOK {
			return nil, rc
		}
		if item.chunk() != start+uint8(n) {
			return nil, DeviceFail
		}
		buf = append(buf, d...)
	}
	if rc == DeviceNotFound || rc == DeviceInvalidLength {
		// A cleanup whose error the library ignores
		// (Storage::readMultiPageBlob): rc is what it returns.
		_ = e.eraseMultiPageBlob(ns, key, rdVerAny, true)
	}
	if len(buf) != size {
		return nil, DeviceFail
	}
	return buf, rc
}

// eraseMultiPageBlob is Storage::eraseMultiPageBlob.
func (e *rdEngine) eraseMultiPageBlob(ns uint8, key []byte, chunkStart uint8, purge bool) DeviceError {
	if !e.active {
		return DeviceNotInitialized
	}
	var item rdItem
	p, idx, rc := e.findItem(ns, TypeBlobIndex, key, rdChunkAny, chunkStart, &item)
	if rc != devOK {
		return rc
	}
	count := item.idxCount()
	if rc := p.eraseEntryAndSpan(idx, purge); rc != devOK {
		return rc
	}
	if chunkStart == rdVerAny {
		if p, idx, rc := e.findItem(ns, TypeBlobIndex, key, rdChunkAny, chunkStart, &item); rc == devOK {
			if rc := p.eraseEntryAndSpan(idx, purge); rc != devOK {
				return rc
			}
		}
		return e.eraseAllChunks(ns, key, purge, &item)
	}
	lo, hi := rdVerAny, rdVerAny
	switch chunkStart {
	case rdVer0:
		lo, hi = rdVer0, int(uint8(rdVer0+count))
	case rdVer1:
		lo, hi = rdVer1, int(uint8(rdVer1+count))
	}
	for c := lo; c < hi; c++ {
		p, idx, rc := e.findItem(ns, TypeBlobData, key, uint8(c), rdVerAny, &item)
		if rc != devOK {
			return rc
		}
		if rc := p.eraseEntryAndSpan(idx, purge); rc != devOK {
			return rc
		}
	}
	return devOK
}

// eraseAllChunks erases every data chunk of the blob in every page, of
// whichever version (eraseMultiPageBlob for any version).
func (e *rdEngine) eraseAllChunks(ns uint8, key []byte, purge bool, item *rdItem) DeviceError {
	for _, p := range e.list {
		idx := 0
		for idx < EntriesPerPage {
			rc := p.findItem(ns, TypeBlobData, key, &idx, item, rdChunkAny, rdVerAny)
			if rc == DeviceNotFound {
				break
			}
			if rc == devOK {
				rc = p.eraseEntryAndSpan(idx, purge)
				idx += item.span()
			}
			if rc != devOK {
				return rc
			}
		}
	}
	return devOK
}

// eraseItem is Storage::eraseItem with datatype ANY (nvs_erase_key).
func (e *rdEngine) eraseItem(ns uint8, key []byte, purge bool) DeviceError {
	if !e.active {
		return DeviceNotInitialized
	}
	var item rdItem
	p, idx, rc := e.findItem(ns, TypeAny, key, rdChunkAny, rdVerAny, &item)
	if rc != devOK {
		return rc
	}
	if item.typ() == TypeBlobIndex {
		return e.eraseMultiPageBlob(ns, key, item.idxStart(), purge)
	}
	return p.eraseEntryAndSpan(idx, purge)
}

// readItem is Storage::readItem preceded by Storage::getItemDataSize, the
// pair of calls nvs_get_str and nvs_get_blob make.
func (e *rdEngine) readItem(ns uint8, t Type, key []byte) ([]byte, DeviceError) {
	if !e.active {
		return nil, DeviceNotInitialized
	}
	var item rdItem
	size := int(t & 0x0F)
	if rdIsVar(t) {
		// getItemDataSize
		found := false
		if t == TypeBlob {
			_, _, rc := e.findItem(ns, TypeBlobIndex, key, rdChunkAny, rdVerAny, &item)
			if rc == devOK {
				size, found = int(item.idxSize()), true
			} else if rc != DeviceNotFound {
				return nil, rc
			}
		}
		if !found {
			if _, _, rc := e.findItem(ns, t, key, rdChunkAny, rdVerAny, &item); rc != devOK {
				return nil, rc
			}
			size = item.varSize()
		}
	}
	if t == TypeBlob {
		data, rc := e.readMultiPageBlob(ns, key)
		if rc != DeviceNotFound {
			return data, rc
		}
	}
	p, _, rc := e.findItem(ns, t, key, rdChunkAny, rdVerAny, &item)
	if rc != devOK {
		return nil, rc
	}
	return p.readItem(ns, t, key, size, rdChunkAny, rdVerAny)
}

// rdIter is the library's entry iterator (nvs_entry_find/nvs_entry_next).
type rdIter struct {
	pos   int // position in the page list
	entry int // entry index to continue from
}

// next is Storage::nextEntry over all namespaces and types. With legacy,
// version 1 blobs (which the library's iterator skips) are returned too.
func (e *rdEngine) next(it *rdIter, legacy bool) (*rdPage, int, rdItem, bool) {
	var item rdItem
	for ; it.pos < len(e.list); it.pos++ {
		p := e.list[it.pos]
		for guard := 0; guard <= 2*EntriesPerPage; guard++ {
			rc := p.findItem(rdNSAny, TypeAny, nil, &it.entry, &item, rdChunkAny, rdVerAny)
			at := it.entry
			it.entry += item.span()
			if rc == devOK && item.ns() != 0 {
				t := item.typ()
				switch {
				case t == TypeBlob && legacy,
					t != TypeBlob && t != TypeBlobIndex &&
						(t != TypeBlobData || item.chunk() == rdVer0 || item.chunk() == rdVer1):
					return p, at, item, true
				}
			}
			if rc == DeviceNotFound {
				break
			}
		}
		it.entry = 0
	}
	return nil, 0, item, false
}
