package nvs

// This file is the integrity checker, in the spirit of nvs_tool.py -i: it
// inspects an image as stored (not as the device repairs it) and reports
// every structural problem with its page and entry. Findings never quote
// values from the image (security R9).

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
)

// Severity ranks a Finding.
type Severity int

// Severities, from least to most serious.
const (
	// SeverityInfo is worth knowing but harmless.
	SeverityInfo Severity = iota
	// SeverityWarning is a state the device handles (it repairs or
	// ignores it at start-up) but that a freshly made image never has.
	SeverityWarning
	// SeverityError is damage: the device loses or cannot read data, or
	// cannot mount the partition.
	SeverityError
)

// String returns "info", "warning" or "error".
func (s Severity) String() string {
	switch s {
	case SeverityInfo:
		return "info"
	case SeverityWarning:
		return "warning"
	}
	return "error"
}

// FindingKind names the kind of a Finding. The values are stable strings
// for JSON output and scripts.
type FindingKind string

// Kinds of findings.
const (
	KindSize               FindingKind = "size"                // empty, not whole 4096-byte pages, or not its partition's size (error)
	KindTooFewPages        FindingKind = "too-few-pages"       // fewer than 3 pages: cut short (error), or a read-only partition (warning)
	KindNoFreePage         FindingKind = "no-free-page"        // no blank page: the device cannot mount it read-write (error; warning for a read-only partition)
	KindHeaderCRC          FindingKind = "header-crc"          // page header CRC mismatch: the device ignores the page (error)
	KindPageState          FindingKind = "page-state"          // unknown page state word (error)
	KindPageNotBlank       FindingKind = "page-not-blank"      // page state says empty but the page holds data (error)
	KindPageVersion        FindingKind = "page-version"        // format version the device refuses (error)
	KindPageFreeing        FindingKind = "page-freeing"        // garbage collection was interrupted (warning)
	KindPageCorrupt        FindingKind = "page-corrupt"        // page marked CORRUPT (warning)
	KindSequence           FindingKind = "sequence"            // two pages share a sequence number, or several are ACTIVE
	KindBitmapIllegal      FindingKind = "bitmap-illegal"      // entry state 0b01 (error)
	KindWrittenEmpty       FindingKind = "written-empty"       // bitmap says written but the slot is blank (error)
	KindEntryCRC           FindingKind = "entry-crc"           // entry header CRC mismatch (error)
	KindEntryHeader        FindingKind = "entry-header"        // CRC is right but type, span or size are impossible (error)
	KindSpanState          FindingKind = "span-state"          // payload entries of a string or blob not all written (error)
	KindDataCRC            FindingKind = "data-crc"            // string or blob payload CRC mismatch (error)
	KindHalfWritten        FindingKind = "half-written"        // a free slot holds data: a write was cut by a power loss (warning)
	KindWrittenAfterFree   FindingKind = "written-after-free"  // written entries after the first free slot of the active page (error)
	KindDuplicateKey       FindingKind = "duplicate-key"       // a key is stored more than once (error)
	KindDuplicatePowerLoss FindingKind = "duplicate-powerloss" // a key stored twice by an update a power loss cut; repaired at start-up (warning)
	KindBlobOrphan         FindingKind = "blob-orphan-chunk"   // blob chunk that no blob index claims (warning)
	KindBlobMissing        FindingKind = "blob-missing-chunk"  // blob index names a chunk that is not there (error)
	KindBlobSize           FindingKind = "blob-size"           // chunk sizes do not add up to the index's size (error)
	KindBlobIndex          FindingKind = "blob-index"          // impossible blob index (version offset, chunk count) (error)
	KindNamespaceEntry     FindingKind = "namespace-entry"     // namespace-table entry that is not a u8 definition (error)
	KindNamespaceDuplicate FindingKind = "namespace-duplicate" // a namespace name or index is defined twice (error)
	KindNamespaceUndefined FindingKind = "namespace-undefined" // entries use a namespace index that is not defined (error)
	KindNamespaceUnused    FindingKind = "namespace-unused"    // namespace defined but holding no keys (info)
)

// Finding is one problem found in an image.
type Finding struct {
	Kind     FindingKind
	Severity Severity
	// Page is the physical page number, or -1 for the whole image.
	Page int
	// Entry is the entry index within the page, or -1 for the whole page.
	Entry int
	// Detail explains the finding in words. It names namespaces, keys
	// and counts, never stored values.
	Detail string
}

// String formats the finding as "error page 1 entry 17: data-crc: …".
func (f Finding) String() string {
	loc := "image"
	switch {
	case f.Page >= 0 && f.Entry >= 0:
		loc = fmt.Sprintf("page %d entry %d", f.Page, f.Entry)
	case f.Page >= 0:
		loc = fmt.Sprintf("page %d", f.Page)
	}
	return fmt.Sprintf("%s %s: %s: %s", f.Severity, loc, f.Kind, f.Detail)
}

// CheckOptions configures CheckImage.
type CheckOptions struct {
	// Decrypt decrypts each 32-byte entry in place, for encrypted images
	// (see ReadOptions.Decrypt).
	Decrypt EntryCipher

	// PartitionSize is the size of the partition the image is for (from a
	// partition table, a batch manifest or the user), 0 when unknown. An
	// image of another size is an error; a size below MinReadWriteSize is
	// a read-only partition, for which fewer than 3 pages and no free page
	// are only warnings (see CheckSize).
	PartitionSize int
}

// chkItem is one consistent item header found while checking.
type chkItem struct {
	page, entry int
	seq         uint32
	it          rdItem
}

type checker struct {
	b        []byte
	opts     CheckOptions
	findings []Finding
	items    []chkItem
	// state is the state word of each page whose entries were checked
	// (ACTIVE, FULL, FREEING; 0 for the others), and newest the one of
	// them with the highest sequence number (-1 for none): what the
	// device's start-up repairs depends on both.
	state     []uint32
	newest    int
	newestSeq uint32
}

func (c *checker) add(kind FindingKind, sev Severity, page, entry int, format string, args ...any) {
	c.findings = append(c.findings, Finding{Kind: kind, Severity: sev, Page: page, Entry: entry, Detail: fmt.Sprintf(format, args...)})
}

// CheckImage reports the integrity problems of an NVS image: size, page
// headers and states, entry states, entry and data CRCs, impossible
// headers, duplicate keys, blob chunks and indexes, and namespaces. Each
// finding carries its page and entry. A generator-made image has no
// findings (a read-only size has warnings only). The findings are sorted by
// page and entry. CheckImage never panics.
func CheckImage(b []byte, opts CheckOptions) []Finding {
	if len(b) > MaxImageSize {
		return []Finding{{Kind: KindSize, Severity: SeverityError, Page: -1, Entry: -1, Detail: "image larger than 16 MiB"}}
	}
	c := &checker{b: b, opts: opts, findings: CheckSize(len(b), opts.PartitionSize), newest: -1}
	n := len(b) / PageSize
	if n == 0 {
		return c.findings
	}
	c.state = make([]uint32, n)
	free := 0
	for p := 0; p < n; p++ {
		if c.checkPage(p) {
			free++
		}
	}
	if free == 0 {
		sev := SeverityError
		if readOnlyPartition(opts.PartitionSize) {
			sev = SeverityWarning
		}
		c.add(KindNoFreePage, sev, -1, -1, "no blank page: the device fails to mount the partition read-write (ESP_ERR_NVS_NO_FREE_PAGES)")
	}
	c.checkSequences(n)
	c.checkItems()
	slices.SortStableFunc(c.findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Page, b.Page), cmp.Compare(a.Entry, b.Entry))
	})
	return c.findings
}

// readOnlyPartition reports a partition size the device can only mount
// read-only: the generator's sizes 0x1000 and 0x2000.
func readOnlyPartition(size int) bool { return size > 0 && size < MinReadWriteSize }

// CheckSize judges the length of an image alone, against the size of the
// partition it is for (0 when unknown), and returns its findings (none for
// a possible length). An image is an error when it is empty, not a whole
// number of pages, longer than its partition, or shorter than it — cut
// short, as a batch killed mid-write or a full disk leaves it — except
// that a read-only partition (below MinReadWriteSize) may hold only its
// used pages, as the generator writes it. Without a partition size, fewer
// than 3 pages is an error too: a read-write partition has at least 3, and
// a truncated image is far likelier than a read-only one (issue 13).
func CheckSize(length, partition int) []Finding {
	var out []Finding
	add := func(kind FindingKind, sev Severity, format string, args ...any) {
		out = append(out, Finding{Kind: kind, Severity: sev, Page: -1, Entry: -1, Detail: fmt.Sprintf(format, args...)})
	}
	n := length / PageSize
	switch {
	case length == 0:
		add(KindSize, SeverityError, "the image is empty (0 bytes)")
		return out
	case length%PageSize != 0:
		add(KindSize, SeverityError, "size %d is not a multiple of 4096; the device uses the first %d whole pages", length, n)
	}
	switch {
	case partition > 0 && length > partition:
		add(KindSize, SeverityError, "the image is %d bytes, more than its %d-byte partition", length, partition)
	case partition > 0 && length < partition && !readOnlyPartition(partition):
		add(KindSize, SeverityError, "the image is %d bytes but its partition is %d bytes: it was cut short", length, partition)
	}
	switch {
	case n == 0 || n >= 3:
	case readOnlyPartition(partition):
		add(KindTooFewPages, SeverityWarning, "%s: a partition of fewer than 3 pages can only be mounted read-only", pages(n))
	case partition == 0:
		add(KindTooFewPages, SeverityError, "%s: a read-write partition has at least 3; the image was cut short, or is for a read-only partition", pages(n))
	}
	return out
}

func pages(n int) string {
	if n == 1 {
		return "1 page"
	}
	return fmt.Sprintf("%d pages", n)
}

// checkPage checks one page and collects its items; it reports whether the
// page is blank (free).
func (c *checker) checkPage(p int) bool {
	pg := c.b[p*PageSize : (p+1)*PageSize]
	state := binary.LittleEndian.Uint32(pg[0:4])
	if state == PageStateUninit {
		if allFF(pg) {
			return true
		}
		c.add(KindPageNotBlank, SeverityError, p, -1, "page state is EMPTY but the page holds data; the device treats it as corrupt")
		return false
	}
	if HeaderCRC(pg[:HeaderSize]) != binary.LittleEndian.Uint32(pg[28:32]) {
		c.add(KindHeaderCRC, SeverityError, p, -1, "header CRC mismatch: the device ignores this page and its entries")
		return false
	}
	if pg[8] < rdNVSVersion {
		c.add(KindPageVersion, SeverityError, p, -1, "format version byte 0x%02x: the device refuses the partition (ESP_ERR_NVS_NEW_VERSION_FOUND)", pg[8])
	}
	switch state {
	case PageStateActive, PageStateFull:
	case PageStateFreeing:
		c.add(KindPageFreeing, SeverityWarning, p, -1, "page is FREEING: garbage collection was interrupted; the device finishes it at start-up")
	case PageStateCorrupt:
		c.add(KindPageCorrupt, SeverityWarning, p, -1, "page is marked CORRUPT; the device erases it when it needs space")
		return false
	default:
		c.add(KindPageState, SeverityError, p, -1, "unknown page state 0x%08x; the device treats the page as corrupt", state)
		return false
	}
	seq := binary.LittleEndian.Uint32(pg[4:8])
	c.state[p] = state
	if c.newest < 0 || seq > c.newestSeq {
		c.newest, c.newestSeq = p, seq
	}
	c.checkEntries(p, pg, state, seq)
	return false
}

// readEntry returns entry i of page p, decrypted when a hook is set.
func (c *checker) readEntry(p, i int) (rdItem, bool) {
	var it rdItem
	off := p*PageSize + FirstEntryOffset + i*EntrySize
	copy(it[:], c.b[off:off+EntrySize])
	if c.opts.Decrypt != nil {
		if err := c.opts.Decrypt(off, it[:]); err != nil {
			return it, false
		}
	}
	return it, true
}

func (c *checker) rawEntry(p, i int) []byte {
	off := p*PageSize + FirstEntryOffset + i*EntrySize
	return c.b[off : off+EntrySize]
}

// checkEntries walks the entries of a valid page as the library's loader
// does, following the span of each consistent item.
func (c *checker) checkEntries(p int, pg []byte, state, seq uint32) {
	bm := pg[BitmapOffset : BitmapOffset+BitmapSize]
	firstFree := -1
	for i := 0; i < EntriesPerPage; {
		switch EntryState(bm, i) {
		case rdIllegal:
			c.add(KindBitmapIllegal, SeverityError, p, i, "entry state bits 01 are illegal; the device erases the entry")
		case EntryErased:
		case EntryEmpty:
			c.checkFree(p, i, firstFree < 0, state == PageStateActive)
			if firstFree < 0 {
				firstFree = i
			}
		default:
			if state == PageStateActive && firstFree >= 0 {
				c.add(KindWrittenAfterFree, SeverityError, p, i, "written entry after the first free slot of the active page: the device never reads it")
			}
			i += c.checkWritten(p, i, bm, seq)
			continue
		}
		i++
	}
}

// checkFree checks a slot the bitmap calls free: it must be blank, but the
// first free slot of the active page may hold a write cut short (the
// device erases it).
func (c *checker) checkFree(p, i int, first, active bool) {
	if allFF(c.rawEntry(p, i)) {
		return
	}
	switch {
	case first && active:
		c.add(KindHalfWritten, SeverityWarning, p, i, "free slot holds data: a write was cut short; the device erases the slot")
	case !first:
		c.add(KindHalfWritten, SeverityError, p, i, "free slot holds data")
	}
}

// checkWritten checks a written entry and records a consistent item; it
// returns how many entries to move on: the item's span, or 1 for an entry
// the device erases.
func (c *checker) checkWritten(p, i int, bm []byte, seq uint32) int {
	if allFF(c.rawEntry(p, i)) {
		c.add(KindWrittenEmpty, SeverityError, p, i, "bitmap says written but the slot is blank; the device erases it")
		return 1
	}
	it, ok := c.readEntry(p, i)
	if !ok || it.crc() != EntryCRC(it[:]) {
		c.add(KindEntryCRC, SeverityError, p, i, "entry CRC mismatch; the device erases the entry")
		return 1
	}
	if !it.consistent(i) {
		c.add(KindEntryHeader, SeverityError, p, i, "impossible header (%s, span %d); the device erases the entry", it.typ(), it.span())
		return 1
	}
	span := 1
	if rdIsVar(it.typ()) {
		span = it.span()
		c.checkSpan(p, i, bm, &it)
	}
	c.items = append(c.items, chkItem{page: p, entry: i, seq: seq, it: it})
	return span
}

// checkSpan checks the payload of a variable-length item: every entry of
// its span marked written, and its data CRC.
func (c *checker) checkSpan(p, i int, bm []byte, it *rdItem) {
	for j := i + 1; j < i+it.span(); j++ {
		if EntryState(bm, j) != EntryWritten {
			c.add(KindSpanState, SeverityError, p, i, "%s %s: payload entry %d is not marked written; the device erases the item",
				it.typ(), c.name(it), j)
			return
		}
	}
	if !c.dataCRCOK(p, i, it) {
		c.add(KindDataCRC, SeverityError, p, i, "%s %s: data CRC mismatch; the device cannot read the value", it.typ(), c.name(it))
	}
}

// name renders an item's key for details: "ns#1/key".
func (c *checker) name(it *rdItem) string {
	return fmt.Sprintf("ns#%d/%q", it.ns(), rdKey(it.keyField()))
}

func (c *checker) dataCRCOK(p, i int, it *rdItem) bool {
	n := it.varSize()
	buf := make([]byte, 0, n)
	for j := i + 1; j < i+it.span(); j++ {
		d, ok := c.readEntry(p, j)
		if !ok {
			return false
		}
		buf = append(buf, d[:min(n-len(buf), EntrySize)]...)
	}
	return len(buf) == n && CRC32(buf) == it.varCRC()
}

// checkSequences reports pages that share a sequence number and several
// ACTIVE pages.
func (c *checker) checkSequences(n int) {
	seen := map[uint32]int{}
	active := 0
	for p := 0; p < n; p++ {
		pg := c.b[p*PageSize : (p+1)*PageSize]
		state := binary.LittleEndian.Uint32(pg[0:4])
		if state != PageStateActive && state != PageStateFull && state != PageStateFreeing {
			continue
		}
		if HeaderCRC(pg[:HeaderSize]) != binary.LittleEndian.Uint32(pg[28:32]) {
			continue
		}
		seq := binary.LittleEndian.Uint32(pg[4:8])
		if q, ok := seen[seq]; ok {
			c.add(KindSequence, SeverityError, p, -1, "sequence number %d is also used by page %d", seq, q)
		} else {
			seen[seq] = p
		}
		if state == PageStateActive {
			active++
			if active > 1 {
				c.add(KindSequence, SeverityWarning, p, -1, "more than one ACTIVE page; the device writes to the one with the highest sequence number")
			}
		}
	}
}

// itemKey identifies what the device stores once: a namespace, a key and,
// for blob chunks, the chunk index (the library's hash list uses the same).
type itemKey struct {
	ns    uint8
	key   string
	chunk int // -1 for anything but blob chunks
}

// chkBlob is a blob index with the chunks that belong to it.
type chkBlob struct {
	index  chkItem
	chunks map[uint8]chkItem
}

// nsDef is a namespace definition entry.
type nsDef struct {
	name []byte
	item chkItem
}

// itemScan is what checkItems gathers in one pass over the items, in the
// device's order.
type itemScan struct {
	defs       []nsDef
	byName     map[string]chkItem
	byIndex    map[uint8]chkItem
	used       map[uint8]chkItem
	copies     map[itemKey][]chkItem // every stored copy of a key
	keyOrder   []itemKey
	indexes    map[itemKey]*chkBlob
	indexOrder []itemKey
	chunks     []chkItem
}

// checkItems checks keys, blobs and namespaces across pages.
func (c *checker) checkItems() {
	// Pages in the device's order: by sequence number, then page number.
	slices.SortStableFunc(c.items, func(a, b chkItem) int {
		return cmp.Or(cmp.Compare(a.seq, b.seq), cmp.Compare(a.page, b.page), cmp.Compare(a.entry, b.entry))
	})
	s := &itemScan{byName: map[string]chkItem{}, byIndex: map[uint8]chkItem{}, used: map[uint8]chkItem{},
		copies: map[itemKey][]chkItem{}, indexes: map[itemKey]*chkBlob{}}
	for _, ci := range c.items {
		if ci.it.ns() == 0 {
			c.namespaceDef(s, ci)
		} else {
			c.keyItem(s, ci)
		}
	}
	c.checkDuplicates(s)
	c.checkBlobs(s)
	c.checkNamespaces(s)
}

// namespaceDef checks one namespace-table entry and records it.
func (c *checker) namespaceDef(s *itemScan, ci chkItem) {
	it := &ci.it
	if it.typ() != TypeU8 {
		c.add(KindNamespaceEntry, SeverityError, ci.page, ci.entry,
			"namespace-table entry of type %s; the device stops loading namespaces on this page", it.typ())
		return
	}
	name := rdKey(it.keyField())
	if prev, ok := s.byName[string(name)]; ok && c.gcCopy(prev, ci) {
		c.add(KindDuplicatePowerLoss, SeverityWarning, prev.page, prev.entry,
			"namespace %q is copied to page %d entry %d: %s", name, ci.page, ci.entry, gcRepair)
		return
	} else if ok {
		c.add(KindNamespaceDuplicate, SeverityError, ci.page, ci.entry,
			"namespace %q is also defined at page %d entry %d", name, prev.page, prev.entry)
	} else {
		s.byName[string(name)] = ci
	}
	if prev, ok := s.byIndex[it[24]]; ok {
		c.add(KindNamespaceDuplicate, SeverityError, ci.page, ci.entry,
			"namespace index %d is also defined at page %d entry %d", it[24], prev.page, prev.entry)
	} else {
		s.byIndex[it[24]] = ci
	}
	if it[24] == 0 || it[24] == 0xFF {
		c.add(KindNamespaceEntry, SeverityError, ci.page, ci.entry, "namespace %q has the reserved index %d", name, it[24])
	}
	s.defs = append(s.defs, nsDef{name, ci})
}

// keyItem records one key's item: its copies, and blob indexes and chunks.
func (c *checker) keyItem(s *itemScan, ci chkItem) {
	it := &ci.it
	if _, ok := s.used[it.ns()]; !ok {
		s.used[it.ns()] = ci
	}
	k := itemKey{it.ns(), string(rdKey(it.keyField())), -1}
	if it.typ() == TypeBlobData {
		k.chunk = int(it.chunk())
		s.chunks = append(s.chunks, ci)
	}
	if _, ok := s.copies[k]; !ok {
		s.keyOrder = append(s.keyOrder, k)
	}
	s.copies[k] = append(s.copies[k], ci)
	if it.typ() == TypeBlobIndex {
		k.chunk = -2
		if _, ok := s.indexes[k]; !ok {
			s.indexOrder = append(s.indexOrder, k)
		}
		s.indexes[k] = &chkBlob{index: ci, chunks: map[uint8]chkItem{}}
		if st := it.idxStart(); st != rdVer0 && st != rdVer1 {
			c.add(KindBlobIndex, SeverityError, ci.page, ci.entry, "%s: blob index version offset 0x%02x is neither 0x00 nor 0x80", c.name(it), st)
		}
	}
}

// checkDuplicates reports every key stored more than once, each copy with
// the next. Two copies that the device's start-up repairs are a power-loss
// leftover (a warning, like a FREEING page); anything else is damage.
func (c *checker) checkDuplicates(s *itemScan) {
	for _, k := range s.keyOrder {
		cs := s.copies[k]
		for i := 1; i < len(cs); i++ {
			prev, ci := cs[i-1], cs[i]
			if why := c.repairedDuplicate(cs); why != "" {
				c.add(KindDuplicatePowerLoss, SeverityWarning, prev.page, prev.entry,
					"%s is stored again at page %d entry %d: %s", c.name(&ci.it), ci.page, ci.entry, why)
				continue
			}
			c.add(KindDuplicateKey, SeverityError, prev.page, prev.entry,
				"%s is stored again at page %d entry %d; the device keeps only one", c.name(&ci.it), ci.page, ci.entry)
		}
	}
}

// repairedDuplicate says how the device's start-up repairs the two copies
// of a key in cs, or "" when it does not (or when there are more: no single
// power loss leaves three). It follows the library's load as the reader
// emulates it (read_engine.go): an update writes the new item, then erases
// the old one, so a power loss in between leaves both; Page::load erases
// the older of two copies on the ACTIVE page (any types: its hash list
// ignores them); PageManager::load erases the older copy, of the same type,
// on an earlier page that is not FREEING when the newer is the last item of
// the newest page; and an interrupted garbage collection has its copies on
// the newest (ACTIVE) page erased and made again from the FREEING page.
func (c *checker) repairedDuplicate(cs []chkItem) string {
	if len(cs) != 2 {
		return ""
	}
	old, cur := cs[0], cs[1]
	const update = "a power loss cut an update before the old copy was erased; the device keeps the newer copy and erases this one at start-up"
	switch {
	case old.page == cur.page && c.state[old.page] == PageStateActive:
		return update
	case old.page == cur.page:
		return ""
	case c.state[old.page] == PageStateFreeing:
		if c.gcCopy(old, cur) {
			return gcRepair
		}
		return ""
	}
	last := c.items[len(c.items)-1]
	sameType := old.it.typ() == cur.it.typ() || (cur.it.typ() == TypeBlobIndex && old.it.typ() == TypeBlob)
	if cur.page == c.newest && last.page == cur.page && last.entry == cur.entry && sameType {
		return update
	}
	return ""
}

// gcRepair says how the device repairs a copy of an interrupted garbage
// collection.
const gcRepair = "a power loss interrupted the garbage collection that was copying this FREEING page; the device erases the copies and copies the page again at start-up"

// gcCopy reports whether cur is a copy of old made by a garbage collection
// that a power loss interrupted: old is on a FREEING page, cur is the same
// item on the newest page, which is ACTIVE. PageManager::load erases that
// page and copies the FREEING page again.
func (c *checker) gcCopy(old, cur chkItem) bool {
	return c.state[old.page] == PageStateFreeing && cur.page == c.newest &&
		c.state[cur.page] == PageStateActive && old.it == cur.it
}

// checkBlobs matches blob chunks with their indexes.
func (c *checker) checkBlobs(s *itemScan) {
	// Chunks belong to the blob index of their key whose range holds them.
	for _, ci := range s.chunks {
		it := &ci.it
		b := s.indexes[itemKey{it.ns(), string(rdKey(it.keyField())), -2}]
		if b == nil || int(it.chunk()) < int(b.index.it.idxStart()) ||
			int(it.chunk()) >= int(b.index.it.idxStart())+b.index.it.idxCount() {
			c.add(KindBlobOrphan, SeverityWarning, ci.page, ci.entry,
				"%s: blob chunk %d has no blob index; the device erases it at start-up", c.name(it), it.chunk())
			continue
		}
		b.chunks[it.chunk()] = ci
	}
	for _, k := range s.indexOrder {
		b := s.indexes[k]
		it := &b.index.it
		total := 0
		for n := 0; n < it.idxCount(); n++ {
			ch, ok := b.chunks[it.idxStart()+uint8(n)]
			if !ok {
				c.add(KindBlobMissing, SeverityError, b.index.page, b.index.entry,
					"%s: blob chunk %d of %d is missing; the device drops the blob", c.name(it), n, it.idxCount())
				continue
			}
			total += ch.it.varSize()
		}
		if len(b.chunks) == it.idxCount() && uint32(total) != it.idxSize() {
			c.add(KindBlobSize, SeverityError, b.index.page, b.index.entry,
				"%s: chunks hold %d bytes, the blob index says %d; the device drops the blob", c.name(it), total, it.idxSize())
		}
	}
}

// checkNamespaces reports namespaces used but not defined, and defined but
// unused.
func (c *checker) checkNamespaces(s *itemScan) {
	for _, ns := range slices.Sorted(maps.Keys(s.used)) {
		if _, ok := s.byIndex[ns]; !ok {
			ci := s.used[ns]
			c.add(KindNamespaceUndefined, SeverityError, ci.page, ci.entry,
				"namespace index %d is used but not defined; the device cannot read its keys", ns)
		}
	}
	for _, d := range s.defs {
		if _, ok := s.used[d.item.it[24]]; !ok && s.byIndex[d.item.it[24]] == d.item {
			c.add(KindNamespaceUnused, SeverityInfo, d.item.page, d.item.entry, "namespace %q (index %d) holds no keys", d.name, d.item.it[24])
		}
	}
}
