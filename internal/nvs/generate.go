package nvs

// This file lays rows out in NVS pages exactly like Espressif's
// nvs_partition_gen.py 0.2.0 (nvs-format.md §5), except where the reference
// is wrong (testdata/gen/errors/errors.json records what it did). There Generate does
// the following:
//
//   - Namespace re-entry: a namespace row naming an earlier namespace writes
//     no entry (like the reference) and switches back to that namespace's
//     index (the reference keeps the index of the latest new namespace, so
//     the keys land in the wrong namespace).
//   - A data row before any namespace row is refused (the reference writes
//     it with namespace index 0, where it reads as a namespace definition).
//   - A second row with the same key in the same namespace is refused (the
//     reference writes both; the device would keep only one).
//   - More than 254 namespaces are refused: index 255 is reserved on the
//     device (the reference writes it, then crashes at 256).
//   - A string needing all 126 entries of a page (3968..3999 characters plus
//     the NUL) is written on a fresh page, as the device can (the reference
//     crashes). Strings that fit exactly in the rest of a page still move to
//     the next page, as in the reference, so that images stay byte-equal.
//   - A v2 blob needing a chunk index of 0x80 or more is refused: the device
//     reads such chunks as another version of the blob.
//   - Data that does not fit the partition is an error (ErrNoSpace), not a
//     traceback.
//   - Rows are written as given: keys named sta.* or ap.* do not make hidden
//     WiFi entries appear (the reference adds sta.apinfo, sta.pmk, sta.apsw
//     and ap.pmk_info).
//
// The zero-length blob chunk quirk (a v2 blob starting in the last entry of
// a page) is kept: the device reads it, and images stay byte-equal.

import (
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/usmp/usmp-psk/internal/psk"
)

// Partition size limits, in bytes.
const (
	// MinSize is the smallest partition: one page, read-only.
	MinSize = PageSize
	// MinReadWriteSize is the smallest partition the device can write to.
	// Smaller sizes (0x1000, 0x2000) give read-only images: the reference
	// keeps no reserved page for them and outputs only the used pages,
	// so the image may be shorter than the size; the partition must then
	// be flagged readonly in the partition table.
	MinReadWriteSize = 3 * PageSize
	// MaxSize is the largest partition Generate builds (64 MiB), a bound on
	// memory.
	MaxSize = 64 << 20
	// MaxBlobChunks is the number of chunks a v2 blob may have: chunk
	// indexes from 0x80 belong to the device's second blob version.
	MaxBlobChunks = 0x80
)

var (
	// ErrNoSpace means the rows do not fit in the partition. Generate wraps
	// it in a *CSVError naming the first row that did not fit.
	ErrNoSpace = errors.New("data does not fit in the partition")
	// ErrInvalidSize means a partition size that is not a number, not a
	// multiple of 4096, or out of range.
	ErrInvalidSize = errors.New("invalid partition size")
	// ErrInvalidVersion means a format version other than 1 or 2.
	ErrInvalidVersion = errors.New("invalid NVS format version (want 1 or 2)")
)

// ParseSize parses a partition size like the reference: as Python's
// int(s, 0), so decimal, 0x hex, 0o octal and 0b binary are accepted, with
// surrounding whitespace, a sign and underscores between digits. The size
// must be a multiple of 4096, at least MinSize and at most MaxSize.
// Errors are *SizeError and wrap ErrInvalidSize.
func ParseSize(s string) (int, error) {
	n, ok := parsePyIntBase0(s)
	if !ok {
		return 0, &SizeError{Value: s, Reason: "not an integer (use decimal, 0x, 0o or 0b)"}
	}
	return n, checkSize(n)
}

// SizeError is a partition size ParseSize refuses.
type SizeError struct {
	// Value is the size as given when it is not a number, quoted in the
	// message; "" when the message does not repeat it.
	Value  string
	Reason string
}

func (e *SizeError) Error() string {
	if e.Value == "" {
		return ErrInvalidSize.Error() + ": " + e.Reason
	}
	return ErrInvalidSize.Error() + " " + strconv.Quote(e.Value) + ": " + e.Reason
}

func (e *SizeError) Unwrap() error { return ErrInvalidSize }

func checkSize(n int) error {
	switch {
	case n%PageSize != 0:
		return &SizeError{Reason: "must be a multiple of 4096"}
	case n < MinSize:
		return &SizeError{Reason: "must be at least 0x1000 (0x3000 for a read/write partition)"}
	case n > MaxSize:
		return &SizeError{Reason: "must be at most 64 MiB"}
	}
	return nil
}

// parsePyIntBase0 parses s like Python's int(s, 0), into an int. It fails
// on syntax errors and on values that do not fit an int64.
func parsePyIntBase0(s string) (int, bool) {
	t, ok := pyIntASCII(s)
	if !ok {
		return 0, false
	}
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	base, t := pyIntBase(t)
	if t == "" {
		return 0, false
	}
	v, allZero, ok := pyIntDigits(t, base)
	if !ok {
		return 0, false
	}
	// In base 0, a decimal literal may not start with 0 unless it is 0.
	if base == 10 && t[0] == '0' && !allZero {
		return 0, false
	}
	if neg {
		return -int(v), true
	}
	return int(v), true
}

// pyIntASCII trims s and writes its Unicode decimal digits as ASCII ones,
// as Python does before it parses an int; other non-ASCII characters are
// refused.
func pyIntASCII(s string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.TrimFunc(s, unicode.IsSpace) {
		if r >= 0x80 {
			d := digitValue(r, false)
			if d < 0 {
				return "", false
			}
			r = rune('0' + d)
		}
		b.WriteRune(r)
	}
	return b.String(), true
}

// pyIntBase reads the base prefix of int(s, 0) — 0x, 0o, 0b, else 10 —
// and returns the digits after it (and after one '_': 0x_1000 is valid).
func pyIntBase(t string) (int, string) {
	if len(t) < 2 || t[0] != '0' {
		return 10, t
	}
	base := 10
	switch t[1] {
	case 'x', 'X':
		base = 16
	case 'o', 'O':
		base = 8
	case 'b', 'B':
		base = 2
	}
	if base == 10 {
		return 10, t
	}
	return base, strings.TrimPrefix(t[2:], "_")
}

// pyIntDigits reads digits of base with single underscores between them,
// refusing values past int64; allZero reports that every digit is 0.
func pyIntDigits(t string, base int) (v uint64, allZero, ok bool) {
	prevDigit := false
	allZero = true
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c == '_' {
			if !prevDigit {
				return 0, false, false
			}
			prevDigit = false
			continue
		}
		d, ok := psk.HexNibble(c)
		if !ok || int(d) >= base {
			return 0, false, false
		}
		if d != 0 {
			allZero = false
		}
		prevDigit = true
		if v > (1<<63-1-uint64(d))/uint64(base) {
			return 0, false, false
		}
		v = v*uint64(base) + uint64(d)
	}
	return v, allZero, prevDigit
}

// layout returns the version byte, the number of pages that may hold data
// and whether the image is read-only (no reserved page, only used pages
// output).
func layout(size, version int) (ver byte, usable int, readOnly bool, err error) {
	switch version {
	case 1:
		ver = VersionByte1
	case 2:
		ver = VersionByte2
	default:
		return 0, 0, false, ErrInvalidVersion
	}
	if err := checkSize(size); err != nil {
		return 0, 0, false, err
	}
	pages := size / PageSize
	if size < MinReadWriteSize {
		return ver, pages, true, nil
	}
	return ver, pages - 1, false, nil
}

// Generate builds an NVS partition image of size bytes (see ParseSize) in
// format version 1 or 2 from rows, which are usually the output of
// ParseCSV. The image is byte-identical to what nvs_partition_gen.py 0.2.0
// makes from the same CSV, except for the cases listed at the top of this
// file, which it fixes or refuses. The result is size bytes long, except for
// read-only sizes (below MinReadWriteSize), where it holds only the pages
// used.
//
// Errors about a row are *CSVError values naming its file and line; they
// wrap ErrNoSpace when the partition is too small. Size and version errors
// wrap ErrInvalidSize and ErrInvalidVersion.
func Generate(rows []Row, size, version int) ([]byte, error) {
	img, err := AppendPartition(nil, rows, size, version)
	if err != nil {
		return nil, err
	}
	return img, nil
}

// AppendPartition is Generate appending the image to dst, so a caller can
// reuse a buffer. On error it returns dst unchanged (any bytes written past
// its length are cleared).
func AppendPartition(dst []byte, rows []Row, size, version int) ([]byte, error) {
	ver, usable, readOnly, err := layout(size, version)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	dst = growFF(dst, size)
	e := encoder{img: dst[start:], ver: ver, usable: usable, page: -1}
	if err := e.generate(rows); err != nil {
		clear(dst[start:])
		return dst[:start], err
	}
	if readOnly {
		dst = dst[:start+(e.page+1)*PageSize]
	}
	return dst, nil
}

// growFF extends b by n bytes of 0xFF (erased flash).
func growFF(b []byte, n int) []byte {
	start := len(b)
	b = slices.Grow(b, n)[:start+n]
	fillFF(b[start:])
	return b
}

func fillFF(b []byte) {
	if len(b) == 0 {
		return
	}
	b[0] = 0xFF
	for i := 1; i < len(b); i *= 2 {
		copy(b[i:], b[:i])
	}
}

type dupKey struct {
	ns  uint8
	key string
}

// generate writes all rows, checking the rules that span rows.
func (e *encoder) generate(rows []Row) error {
	if err := e.openPage(); err != nil {
		return err
	}
	g := genRows{e: e, rows: rows}
	for i := range rows {
		if err := g.row(i); err != nil {
			return err
		}
	}
	return nil
}

// genRows is generate's state from one row to the next.
type genRows struct {
	e     *encoder
	rows  []Row
	names []string       // namespace names; index i is namespace i+1
	cur   uint8          // current namespace index, 0 before the first
	seen  map[dupKey]int // data keys already written, to their row index
}

// errAt is an error about row i: at its CSV line, or its index when it
// was built in code.
func (g *genRows) errAt(i, col int, field, msg string, err error) error {
	r := &g.rows[i]
	ce := &CSVError{File: r.File, Line: r.Line, Column: col, Field: field, Msg: msg, Err: err}
	if r.Line == 0 {
		ce.Row = i + 1
	}
	return ce
}

// row writes row i.
func (g *genRows) row(i int) error {
	r := &g.rows[i]
	if msg := keyProblem(r.Key); msg != "" {
		return g.errAt(i, r.keyCol, fieldKey, msg, nil)
	}
	switch r.Kind {
	case RowNamespace:
		return g.namespace(i)
	case RowData:
		return g.data(i)
	}
	return g.errAt(i, 0, "", "unknown row kind", nil)
}

// namespace makes row i's namespace the current one, writing its entry
// the first time it is named.
func (g *genRows) namespace(i int) error {
	r := &g.rows[i]
	if j := slices.Index(g.names, r.Key); j >= 0 {
		g.cur = uint8(j + 1)
		return nil
	}
	if len(g.names) == MaxNamespaces {
		return g.errAt(i, r.keyCol, fieldKey, "more than 254 namespaces", nil)
	}
	g.names = append(g.names, r.Key)
	g.cur = uint8(len(g.names))
	if err := g.e.putInt(NamespaceIndexDef, r.Key, TypeU8, uint64(g.cur)); err != nil {
		return g.errAt(i, 0, "", g.e.noSpaceMsg(), err)
	}
	return nil
}

// data writes row i's value in the current namespace, refusing a key
// written there before.
func (g *genRows) data(i int) error {
	r := &g.rows[i]
	if g.cur == 0 {
		return g.errAt(i, r.keyCol, fieldKey, "data row before any namespace row", nil)
	}
	if g.seen == nil {
		g.seen = make(map[dupKey]int)
	}
	k := dupKey{g.cur, r.Key}
	if j, dup := g.seen[k]; dup {
		first := "row " + strconv.Itoa(j+1)
		if g.rows[j].Line > 0 {
			first = "line " + strconv.Itoa(g.rows[j].Line)
		}
		return g.errAt(i, r.keyCol, fieldKey, "duplicate key in this namespace (first at "+first+")", nil)
	}
	g.seen[k] = i
	if msg := g.e.valueProblem(r); msg != "" {
		return g.errAt(i, r.valueCol, fieldValue, msg, nil)
	}
	err := g.e.putValue(g.cur, r)
	if errors.Is(err, errTooManyChunks) {
		return g.errAt(i, r.valueCol, fieldValue, "blob needs more than 128 chunks", nil)
	}
	if err != nil {
		return g.errAt(i, 0, "", g.e.noSpaceMsg(), err)
	}
	return nil
}

// putValue writes a data row's value in namespace ns by its type: an
// integer entry, a string, or a blob (one item in version 1 images, data
// chunks and an index in version 2).
func (e *encoder) putValue(ns uint8, r *Row) error {
	switch {
	case r.Type.IsInt():
		bits := r.Uint
		if r.Type.Signed() {
			bits = uint64(r.Int)
		}
		return e.putInt(ns, r.Key, r.Type, bits)
	case r.Type == TypeString:
		return putSingle(e, ns, r.Key, TypeString, r.Data, true)
	case e.ver == VersionByte1:
		return putSingle(e, ns, r.Key, TypeBlob, r.Data, false)
	}
	return e.putBlobV2(ns, r.Key, r.Data)
}

func (e *encoder) noSpaceMsg() string {
	return "no room left in the partition (" + strconv.Itoa(e.usable) + " pages hold data)"
}

// valueProblem checks a data row's type and value against the limits of the
// format and returns what is wrong, or "".
func (e *encoder) valueProblem(r *Row) string {
	switch {
	case r.Type.IsInt():
		bits := 8 * uint(r.Type.IntSize())
		if bits == 64 {
			return ""
		}
		if r.Type.Signed() {
			if r.Int < -(1<<(bits-1)) || r.Int >= 1<<(bits-1) {
				return "integer out of range for " + r.Type.String()
			}
		} else if r.Uint>>bits != 0 {
			return "integer out of range for " + r.Type.String()
		}
	case r.Type == TypeString:
		limit := MaxStringSize
		if e.ver == VersionByte1 {
			limit = MaxBlobSizeV1 // the reference's v1 limit for strings too
		}
		if len(r.Data)+1 > limit {
			msg := "string longer than " + strconv.Itoa(limit-1) + " bytes"
			if e.ver == VersionByte1 {
				msg += " (the version 1 limit)"
			}
			return msg
		}
		if slices.Contains(r.Data, 0) {
			return "string contains a NUL byte"
		}
	case r.Type == TypeBlob:
		if e.ver == VersionByte1 && len(r.Data) > MaxBlobSizeV1 {
			return "blob longer than 1984 bytes (the version 1 limit; use version 2)"
		}
	default:
		return "unsupported item type " + r.Type.String()
	}
	return ""
}

var errTooManyChunks = errors.New("blob needs too many chunks")

// encoder writes entries into a 0xFF-filled image the way the reference
// does: appending to the current page, moving to a new page when an item
// does not fit.
type encoder struct {
	img    []byte // the whole image, pre-filled with 0xFF
	ver    byte   // VersionByte1 or VersionByte2
	usable int    // pages that may hold data
	page   int    // current page, -1 before the first
	n      int    // next free entry slot in the current page
}

// openPage marks the current page FULL and starts the next one.
func (e *encoder) openPage() error {
	if e.page >= 0 {
		binary.LittleEndian.PutUint32(e.img[e.page*PageSize:], PageStateFull)
	}
	if e.page+1 >= e.usable {
		return ErrNoSpace
	}
	e.page++
	e.n = 0
	h := e.img[e.page*PageSize:][:HeaderSize]
	binary.LittleEndian.PutUint32(h[0:], PageStateActive)
	binary.LittleEndian.PutUint32(h[4:], uint32(e.page))
	h[8] = e.ver
	binary.LittleEndian.PutUint32(h[28:], HeaderCRC(h))
	return nil
}

// slotOff returns the image offset of entry slot i of the current page.
func (e *encoder) slotOff(i int) int {
	return e.page*PageSize + FirstEntryOffset + i*EntrySize
}

// item starts an item header in the next free slot and returns it; the
// caller fills bytes 24..31 and calls seal.
func (e *encoder) item(ns uint8, t Type, span, chunk uint8, key string) []byte {
	s := e.img[e.slotOff(e.n):][:EntrySize]
	s[0], s[1], s[2], s[3] = ns, byte(t), span, chunk
	k := s[8:24]
	clear(k)
	copy(k, key)
	return s
}

// seal sets the entry CRC of s and marks count slots, from the item's,
// written.
func (e *encoder) seal(s []byte, count int) {
	binary.LittleEndian.PutUint32(s[4:], EntryCRC(s))
	bm := e.img[e.page*PageSize+BitmapOffset:][:BitmapSize]
	for i := range count {
		SetEntryState(bm, e.n+i, EntryWritten)
	}
	e.n += count
}

// putInt writes a one-entry item: an integer, or a namespace definition.
func (e *encoder) putInt(ns uint8, key string, t Type, bits uint64) error {
	if e.n >= EntriesPerPage {
		if err := e.openPage(); err != nil {
			return err
		}
	}
	s := e.item(ns, t, 1, ChunkIndexNone, key)
	for i := range t.IntSize() {
		s[24+i] = byte(bits >> (8 * i))
	}
	e.seal(s, 1)
	return nil
}

// putSingle writes a string (nul set: a NUL is appended) or a version 1
// blob as one item followed by its payload, all on one page.
func putSingle[T string | []byte](e *encoder, ns uint8, key string, t Type, data T, nul bool) error {
	size := len(data)
	if nul {
		size++
	}
	total := 1 + (size+EntrySize-1)/EntrySize
	// The reference's fit test is ">= 126", so an item that would end
	// exactly at the last slot moves to the next page. An item needing a
	// whole page is allowed on a fresh page (the reference crashes).
	if e.n+total >= EntriesPerPage && !(e.n == 0 && total == EntriesPerPage) {
		if err := e.openPage(); err != nil {
			return err
		}
	}
	s := e.item(ns, t, uint8(total), ChunkIndexNone, key)
	p := e.slotOff(e.n + 1)
	copy(e.img[p:], data)
	if nul {
		e.img[p+len(data)] = 0
	}
	binary.LittleEndian.PutUint16(s[24:], uint16(size))
	binary.LittleEndian.PutUint32(s[28:], CRC32(e.img[p:p+size]))
	e.seal(s, total)
	return nil
}

// putBlobV2 writes a version 2 blob: blob_data chunks that each fill the
// rest of a page, then a blob_index entry.
func (e *encoder) putBlobV2(ns uint8, key string, data []byte) error {
	if e.n >= EntriesPerPage {
		if err := e.openPage(); err != nil {
			return err
		}
	}
	size := len(data)
	count := 0
	for {
		if count >= MaxBlobChunks {
			return errTooManyChunks
		}
		tail := (EntriesPerPage - e.n - 1) * EntrySize
		chunk := min(len(data), tail)
		entries := (chunk + EntrySize - 1) / EntrySize
		s := e.item(ns, TypeBlobData, uint8(1+entries), uint8(count), key)
		p := e.slotOff(e.n + 1)
		copy(e.img[p:], data[:chunk])
		binary.LittleEndian.PutUint16(s[24:], uint16(chunk))
		binary.LittleEndian.PutUint32(s[28:], CRC32(data[:chunk]))
		e.seal(s, 1+entries)
		count++
		data = data[chunk:]
		// A new page when data remains, or when this one has no free slot
		// left for the index.
		if len(data) > 0 || tail-chunk < EntrySize {
			if err := e.openPage(); err != nil {
				return err
			}
		}
		if len(data) == 0 {
			break
		}
	}
	s := e.item(ns, TypeBlobIndex, 1, ChunkIndexNone, key)
	binary.LittleEndian.PutUint32(s[24:], uint32(size))
	s[28] = uint8(count)
	s[29] = 0 // chunk start: version 0
	e.seal(s, 1)
	return nil
}

// USMPLayout names the entries of a USMP image: the namespace, the key of
// the device ID string and the key of the PSK blob (design §6).
type USMPLayout struct {
	Namespace string
	IDKey     string
	PSKKey    string
}

// DefaultUSMPLayout is the layout of design §6 — namespace usmp, string
// device_id, blob psk — and the one place these defaults are written: the
// configuration (nvs.namespace, nvs.id_key, nvs.psk_key) and provision
// start from it.
func DefaultUSMPLayout() USMPLayout {
	return USMPLayout{Namespace: "usmp", IDKey: "device_id", PSKKey: "psk"}
}

// USMPImage is the image BuildUSMP and AppendUSMP write: where the entries
// go, the device ID and its PSK, and the partition's size and NVS format
// version (as for Generate).
type USMPImage struct {
	USMPLayout
	DeviceID string
	PSK      []byte
	Size     int
	Version  int
}

// BuildUSMP builds the image of a USMP device in memory: the namespace, the
// device ID as a string under IDKey, and the PSK as a blob under PSKKey.
// It gives the same bytes as Generate for the CSV
//
//	key,type,encoding,value
//	<Namespace>,namespace,,
//	<IDKey>,data,string,<DeviceID>
//	<PSKKey>,data,hex2bin,<PSK in hex>
//
// without parsing or allocating more than the image. Errors never contain
// the device ID or the PSK.
func BuildUSMP(u USMPImage) ([]byte, error) {
	img, err := AppendUSMP(nil, u)
	if err != nil {
		return nil, err
	}
	return img, nil
}

// AppendUSMP is BuildUSMP appending the image to dst, so that a caller
// building many images can reuse one buffer. On error it returns dst
// unchanged (any bytes written past its length are cleared).
func AppendUSMP(dst []byte, u USMPImage) ([]byte, error) {
	if err := u.problem(); err != nil {
		return dst, err
	}
	ver, usable, readOnly, err := layout(u.Size, u.Version)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	dst = growFF(dst, u.Size)
	e := encoder{img: dst[start:], ver: ver, usable: usable, page: -1}
	if err = e.openPage(); err == nil {
		err = e.putInt(NamespaceIndexDef, u.Namespace, TypeU8, 1)
	}
	if err == nil {
		err = putSingle(&e, 1, u.IDKey, TypeString, u.DeviceID, true)
	}
	if err == nil {
		if ver == VersionByte1 {
			err = putSingle(&e, 1, u.PSKKey, TypeBlob, u.PSK, false)
		} else {
			err = e.putBlobV2(1, u.PSKKey, u.PSK)
		}
	}
	if err != nil {
		clear(dst[start:])
		if errors.Is(err, errTooManyChunks) {
			err = errors.New("nvs: PSK too long for one blob")
		}
		return dst[:start], err
	}
	if readOnly {
		dst = dst[:start+(e.page+1)*PageSize]
	}
	return dst, nil
}

// problem checks the inputs of AppendUSMP.
func (u *USMPImage) problem() error {
	for _, k := range [...]struct{ what, key string }{
		{"namespace", u.Namespace}, {"device ID key", u.IDKey}, {"PSK key", u.PSKKey},
	} {
		if msg := keyProblem(k.key); msg != "" {
			return errors.New("nvs: " + k.what + ": " + msg)
		}
	}
	if u.IDKey == u.PSKKey {
		return errors.New("nvs: the device ID and the PSK need different keys")
	}
	limit := MaxStringSize
	if u.Version == 1 {
		limit = MaxBlobSizeV1
	}
	if len(u.DeviceID)+1 > limit {
		return errors.New("nvs: device ID longer than " + strconv.Itoa(limit-1) + " bytes")
	}
	if strings.IndexByte(u.DeviceID, 0) >= 0 {
		return errors.New("nvs: device ID contains a NUL byte")
	}
	if len(u.PSK) == 0 {
		return errors.New("nvs: empty PSK")
	}
	if u.Version == 1 && len(u.PSK) > MaxBlobSizeV1 {
		return errors.New("nvs: PSK longer than 1984 bytes (the version 1 limit)")
	}
	return nil
}
