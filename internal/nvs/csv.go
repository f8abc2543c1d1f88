package nvs

// This file parses the CSV dialect of Espressif's nvs_partition_gen.py
// 0.2.0. Every value in a CSV may be secret (a PSK, a password): errors name
// the file, line, column and field, never the value (security R9), and no
// error from strconv, encoding/hex or encoding/base64 is wrapped, because
// those echo their input.
//
// Where the reference accepts bad input or crashes on it (recorded in
// testdata/gen/errors/errors.json), this parser does the following instead:
//
//   - A `type` other than namespace, data or file is refused (the reference
//     silently takes it as data, so a typo stores a file name as a value).
//   - Integers out of range for their type are refused (the reference
//     crashes with a traceback and leaves an empty output file).
//   - Bad hex digits, bad base64 padding, invalid UTF-8, missing files and a
//     missing header are refused with a CSVError (the reference crashes).
//   - Keys and namespace names are limited to 15 bytes, not 15 characters:
//     the device's key field holds 15 bytes and a NUL. An empty key, or a key
//     with a NUL byte, is refused.
//   - A string value with a NUL byte is refused: the device would cut it.
//   - An unterminated quoted field is refused (the reference quietly takes
//     the rest of the file as the value).
//   - A row with more fields than the header is refused unless the extra
//     fields are empty (the reference drops them, so an unquoted comma in a
//     value silently cuts it).
//   - Encodings are matched without regard to case, as the reference does
//     for integers; `STRING`, `HEX2BIN` and `BASE64` are decoded like their
//     lower-case forms (the reference stores them undecoded).
//   - The `binary` encoding stores the UTF-8 bytes of the value (the
//     reference counts characters, which corrupts non-ASCII values).
//   - A UTF-8 byte order mark at the start of the file is skipped.
//   - blob_fill/blob_sz_fill must match exactly, and also work on file rows
//     (with the file's bytes).
//
// Rules that need more than one row (namespaces, duplicate keys, sizes) are
// checked by Generate.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/usmp/usmp-psk/internal/psk"
)

// Limits of the CSV parser. They bound memory on hostile input (R28).
const (
	// MaxCSVSize is the largest CSV input ParseCSV accepts, in bytes.
	MaxCSVSize = 16 << 20
	// MaxCSVFieldLen is the longest CSV field in characters, the default
	// field_size_limit of Python's csv module used by the reference.
	MaxCSVFieldLen = 128 << 10
	// MaxValueFileSize is the largest file a `file` row may name.
	MaxValueFileSize = 4 << 20
	// maxFillLen bounds N in blob_fill(N;0xPP).
	maxFillLen = 1 << 20
)

// RowKind tells a namespace row from a data row.
type RowKind uint8

const (
	// RowData is a key-value row (CSV type `data` or `file`).
	RowData RowKind = iota
	// RowNamespace opens a namespace (CSV type `namespace`): the data rows
	// that follow belong to it, up to the next namespace row.
	RowNamespace
)

// Row is one parsed CSV row, ready for Generate.
//
// For a namespace row only Key (the namespace name) matters. For a data row,
// Type says how the value is stored and which value field holds it:
//
//   - TypeU8, TypeU16, TypeU32, TypeU64: Uint;
//   - TypeI8, TypeI16, TypeI32, TypeI64: Int;
//   - TypeString: Data, the UTF-8 bytes without the terminating NUL, which
//     Generate adds;
//   - TypeBlob: Data, the raw bytes (stored as a single 0x41 item in
//     version 1 images and as blob_data chunks plus a blob_index in version
//     2 images).
//
// File and Line locate the row in its CSV for error messages; rows built in
// code may leave them empty.
type Row struct {
	File string
	Line int
	Kind RowKind
	Key  string
	Type Type
	Int  int64
	Uint uint64
	Data []byte

	// keyCol and valueCol are the 1-based CSV columns of the key and value
	// fields, for Generate's errors; 0 when unknown.
	keyCol, valueCol int
}

// CSVOptions controls how ParseCSV resolves `file` rows.
type CSVOptions struct {
	// BaseDir is the directory that relative paths in `file` rows are
	// resolved against. The reference resolves them against its working
	// directory (not the CSV's directory); an empty BaseDir does the same.
	BaseDir string
	// ReadFile reads the file a `file` row names. Nil reads it from the
	// operating system, refusing files over MaxValueFileSize.
	ReadFile func(name string) ([]byte, error)
}

// CSVError reports a bad CSV row or a row that cannot be stored. It names
// where the problem is, never the value (R9).
type CSVError struct {
	File   string // CSV name given to ParseCSV
	Line   int    // 1-based line where the row starts; 0 if unknown
	Row    int    // 1-based index of a row given to Generate without a Line
	Column int    // 1-based CSV column (field number); 0 if unknown
	Field  string // header name of the column: key, type, encoding or value
	Msg    string // what is wrong, without the value
	Err    error  // underlying cause, if any (never one that holds input)
}

// Error formats the error as "file:line:column: field: message".
func (e *CSVError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	} else {
		b.WriteString("csv")
	}
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Column))
		}
	} else if e.Row > 0 {
		b.WriteString(": row ")
		b.WriteString(strconv.Itoa(e.Row))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *CSVError) Unwrap() error { return e.Err }

// csvRecord is one CSV record with the line it starts on.
type csvRecord struct {
	line   int
	fields [][]byte
}

// ParseCSV parses one CSV file in the reference's dialect and returns its
// rows in order. name is used in errors only.
//
// The dialect: lines whose first character is '#' are dropped before CSV
// parsing (even inside a quoted value, like the reference); the first
// record is the header and must name the columns key, type, encoding and
// value (in any order; other columns are ignored); blank lines are skipped;
// fields follow Python's csv module (excel dialect). An empty input yields no
// rows. Types are namespace, data and file; encodings are u8 i8 u16 i16 u32
// i32 u64 i64 string hex2bin base64 binary blob_fill(N;0xPP)
// blob_sz_fill(N;0xPP). A `file` row's value is a path, read in binary and
// then decoded by its encoding.
//
// To build one image from several CSV files (as the reference's generate
// accepts), append their rows in order: namespaces carry over from one file
// to the next.
func ParseCSV(r io.Reader, name string, opts CSVOptions) ([]Row, error) {
	all, err := readAllWiping(r, MaxCSVSize)
	if errors.Is(err, errTooLarge) {
		return nil, &CSVError{File: name, Msg: "CSV larger than " + strconv.Itoa(MaxCSVSize>>20) + " MiB"}
	}
	if err != nil {
		return nil, &CSVError{File: name, Msg: "cannot read the CSV", Err: err}
	}
	// The CSV may hold secrets: wipe our copies once the rows hold theirs.
	defer wipe(all)
	src := bytes.TrimPrefix(all, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(src) {
		return nil, &CSVError{File: name, Line: badUTF8Line(src), Msg: "invalid UTF-8"}
	}
	recs, scratch, err := splitCSV(src, name)
	defer func() {
		for _, b := range scratch {
			wipe(b)
		}
	}()
	if err != nil {
		return nil, err
	}
	for len(recs) > 0 && len(recs[0].fields) == 0 {
		recs = recs[1:] // blank lines before the header
	}
	if len(recs) == 0 {
		return nil, nil
	}
	p := rowParser{name: name, opts: opts}
	if err := p.header(recs[0]); err != nil {
		return nil, err
	}
	rows := make([]Row, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		if len(rec.fields) == 0 {
			continue // blank line: csv.DictReader skips it
		}
		row, err := p.row(rec)
		if err != nil {
			WipeRows(rows)
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// WipeRows clears the values (Data) of rows, which may hold secrets, once
// the caller is done with them. This is best effort (security R26): copies
// the runtime made are out of reach.
func WipeRows(rows []Row) {
	for i := range rows {
		wipe(rows[i].Data)
	}
}

// wipe clears b in a way the compiler keeps.
func wipe(b []byte) {
	clear(b)
	runtime.KeepAlive(b)
}

var errTooLarge = errors.New("input too large")

// readAllWiping reads r to its end like io.ReadAll, but wipes each buffer
// it outgrows, so no stray copy of a secret stays behind. It fails with
// errTooLarge past limit bytes.
func readAllWiping(r io.Reader, limit int) ([]byte, error) {
	b := make([]byte, 0, 4096)
	for {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), 2*cap(b))
			copy(nb, b)
			wipe(b)
			b = nb
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b) > limit {
			wipe(b)
			return nil, errTooLarge
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			wipe(b)
			return nil, err
		}
	}
}

// badUTF8Line returns the 1-based line of the first invalid UTF-8 sequence.
func badUTF8Line(src []byte) int {
	line := 1
	for len(src) > 0 {
		r, n := utf8.DecodeRune(src)
		if r == utf8.RuneError && n <= 1 {
			return line
		}
		if src[0] == '\n' || (src[0] == '\r' && (len(src) == 1 || src[1] != '\n')) {
			line++
		}
		src = src[n:]
	}
	return line
}

// CSV parser states, after Python's _csv.c (excel dialect, strict=False).
const (
	stStartRecord = iota
	stStartField
	stInField
	stInQuoted
	stQuoteInQuoted
)

// splitCSV splits src into records the way the reference reads its CSV:
// the file is read in text mode (universal newlines: \r\n and \r become \n),
// lines starting with '#' are dropped, and the rest goes through Python's
// csv reader. Empty records (blank lines) are kept as records with no
// fields. src must be valid UTF-8; the special characters are all ASCII, so
// it is scanned byte by byte. Plain fields are slices of src; quoted fields
// are copies, also returned in scratch for the caller to wipe.
func splitCSV(src []byte, name string) (recs []csvRecord, scratch [][]byte, err error) {
	s := csvSplitter{name: name, state: stStartRecord}
	defer func() { wipe(s.buf) }()
	lineNo := 0
	for len(src) > 0 {
		var line []byte
		var nl bool
		line, src, nl = cutLine(src)
		lineNo++
		if len(line) > 0 && line[0] == '#' || len(line) == 0 && !nl {
			continue
		}
		if s.state == stStartRecord {
			s.recLine = lineNo
		}
		if err := s.scan(line); err != nil {
			return nil, s.scratch, err
		}
		rec, done, err := s.endLine(line, nl)
		if err != nil {
			return nil, s.scratch, err
		}
		if done {
			recs = append(recs, rec)
		}
	}
	if s.state == stInQuoted {
		return nil, s.scratch, s.errAt("quoted field not terminated")
	}
	return recs, s.scratch, nil
}

// cutLine cuts one physical line off src; nl reports a terminator (\n, \r
// or \r\n, all read as "\n").
func cutLine(src []byte) (line, rest []byte, nl bool) {
	i := bytes.IndexAny(src, "\r\n")
	if i < 0 {
		return src, nil, false
	}
	line = src[:i]
	if src[i] == '\r' && i+1 < len(src) && src[i+1] == '\n' {
		i++
	}
	return line, src[i+1:], true
}

// csvSplitter is the state of splitCSV's reader between bytes and lines:
// a quoted field can span lines.
type csvSplitter struct {
	name     string
	fields   [][]byte
	buf      []byte // the current field, when it is not a plain substring
	inBuf    bool   // the current field is in buf
	start    int    // start of a plain field in the line
	fieldLen int    // characters in the current field
	state    int
	recLine  int
	scratch  [][]byte
}

// errAt is an error at the current field of the record being read.
func (s *csvSplitter) errAt(msg string) error {
	return &CSVError{File: s.name, Line: s.recLine, Column: len(s.fields) + 1, Msg: msg}
}

// count counts one more character of the current field, refusing a field
// longer than Python's csv module reads.
func (s *csvSplitter) count() error {
	if s.fieldLen >= MaxCSVFieldLen {
		return s.errAt("field longer than " + strconv.Itoa(MaxCSVFieldLen) + " characters")
	}
	s.fieldLen++
	return nil
}

// save ends the current field at line[:end].
func (s *csvSplitter) save(line []byte, end int) {
	if s.inBuf {
		s.buf = append(s.buf, line[s.start:end]...)
		f := bytes.Clone(s.buf)
		s.scratch = append(s.scratch, f)
		s.fields = append(s.fields, f)
		clear(s.buf)
		s.buf, s.inBuf = s.buf[:0], false
	} else {
		s.fields = append(s.fields, line[s.start:end])
	}
	s.fieldLen = 0
}

// scan runs the reader's state machine over the bytes of one line (the
// per-character states of _csv.c's parse_process_char).
func (s *csvSplitter) scan(line []byte) error {
	for j := 0; j < len(line); j++ {
		if s.step(line, j) {
			continue
		}
		if line[j]&0xC0 != 0x80 { // not a UTF-8 continuation byte
			if err := s.count(); err != nil {
				return err
			}
		}
	}
	return nil
}

// step handles line[j]. It reports whether the byte was a delimiter or a
// quote that is not part of the field's characters.
func (s *csvSplitter) step(line []byte, j int) (consumed bool) {
	c := line[j]
	switch s.state {
	case stStartRecord, stStartField:
		switch c {
		case '"':
			s.state, s.inBuf, s.start = stInQuoted, true, j+1
			return true
		case ',':
			s.start = j
			s.save(line, j)
			s.state = stStartField
			return true
		}
		s.state, s.start = stInField, j
	case stInField:
		if c == ',' {
			s.save(line, j)
			s.state = stStartField
			return true
		}
	case stInQuoted:
		if c == '"' {
			s.buf = append(s.buf, line[s.start:j]...)
			s.state, s.start = stQuoteInQuoted, j+1
			return true
		}
	case stQuoteInQuoted:
		switch c {
		case '"':
			s.state, s.start = stInQuoted, j // keep one quote
		case ',':
			s.start = j
			s.save(line, j)
			s.state = stStartField
			return true
		default:
			s.state, s.start = stInField, j // not strict: `"ab"cd` is abcd
		}
	}
	return false
}

// endLine handles the newline, then the end of the line (EOL in _csv.c):
// it ends the record (done), or, inside a quoted field, keeps the newline
// in the field and goes on with the next line.
func (s *csvSplitter) endLine(line []byte, nl bool) (rec csvRecord, done bool, err error) {
	switch s.state {
	case stStartRecord:
		// blank line: a record with no fields
	case stStartField:
		s.start = len(line)
		s.save(line, len(line))
	case stInField, stQuoteInQuoted:
		s.save(line, len(line))
	case stInQuoted:
		s.buf = append(s.buf, line[s.start:]...)
		if nl {
			if err := s.count(); err != nil {
				return csvRecord{}, false, err
			}
			s.buf = append(s.buf, '\n')
		}
		s.start = 0
		return csvRecord{}, false, nil
	}
	s.state = stStartRecord
	rec = csvRecord{line: s.recLine, fields: s.fields}
	s.fields = nil
	return rec, true, nil
}

// rowParser turns CSV records into rows.
type rowParser struct {
	name string
	opts CSVOptions
	// Column indexes (0-based) of the four known columns, and the number
	// of header fields.
	key, typ, enc, val int
	ncols              int
}

// Header column names.
const (
	fieldKey      = "key"
	fieldType     = "type"
	fieldEncoding = "encoding"
	fieldValue    = "value"
)

func (p *rowParser) header(rec csvRecord) error {
	p.key, p.typ, p.enc, p.val = -1, -1, -1, -1
	p.ncols = len(rec.fields)
	for i, fb := range rec.fields {
		f := string(fb) // a header name, not a value
		var dst *int
		switch f {
		case fieldKey:
			dst = &p.key
		case fieldType:
			dst = &p.typ
		case fieldEncoding:
			dst = &p.enc
		case fieldValue:
			dst = &p.val
		default:
			continue
		}
		if *dst >= 0 {
			return &CSVError{File: p.name, Line: rec.line, Column: i + 1, Msg: "header names column " + f + " twice"}
		}
		*dst = i
	}
	if p.key < 0 || p.typ < 0 || p.enc < 0 || p.val < 0 {
		return &CSVError{File: p.name, Line: rec.line,
			Msg: "missing header line: the first line must be key,type,encoding,value"}
	}
	return nil
}

func (p *rowParser) errf(rec csvRecord, col int, field, msg string) *CSVError {
	c := 0
	if col >= 0 {
		c = col + 1
	}
	return &CSVError{File: p.name, Line: rec.line, Column: c, Field: field, Msg: msg}
}

// get returns field i of rec and whether the record has it.
func get(rec csvRecord, i int) ([]byte, bool) {
	if i < len(rec.fields) {
		return rec.fields[i], true
	}
	return nil, false
}

// row turns one record after the header into a Row: the key and the type,
// then, for a data or file row, the value decoded by its encoding.
func (p *rowParser) row(rec csvRecord) (Row, error) {
	if err := p.extraFields(rec); err != nil {
		return Row{}, err
	}
	row := Row{File: p.name, Line: rec.line, keyCol: p.key + 1, valueCol: p.val + 1}
	keyb, _ := get(rec, p.key)
	key := string(keyb) // key names are not secret
	if msg := keyProblem(key); msg != "" {
		return Row{}, p.errf(rec, p.key, fieldKey, msg)
	}
	row.Key = key
	typb, _ := get(rec, p.typ)
	switch string(typb) {
	case "namespace":
		row.Kind = RowNamespace
		return row, nil
	case "data", "file":
	default:
		return Row{}, p.errf(rec, p.typ, fieldType, "unknown type (want namespace, data or file)")
	}
	v, err := p.value(rec, string(typb) == "file")
	if err != nil {
		return Row{}, err
	}
	return p.decode(rec, row, v)
}

// extraFields refuses fields beyond the header's that are not empty: the
// reference drops them, so an unquoted comma would silently cut a value.
func (p *rowParser) extraFields(rec csvRecord) error {
	for i := p.ncols; i < len(rec.fields); i++ {
		if len(rec.fields[i]) != 0 {
			return p.errf(rec, i, "", "more fields than the header has (quote values that contain commas)")
		}
	}
	return nil
}

// rowValue is a data row's value before decoding: its encoding, the value
// field and, for a file row, the bytes of the file it names.
type rowValue struct {
	enc    string
	field  []byte // the value field: the value, or a file row's path
	raw    []byte // a file row's bytes
	isFile bool
}

// text is what the encoding decodes: the file's bytes or the field.
func (v rowValue) text() []byte {
	if v.isFile {
		return v.raw
	}
	return v.field
}

// value reads the encoding and value fields of a data row, and the file a
// file row names.
func (p *rowParser) value(rec csvRecord, isFile bool) (rowValue, error) {
	encb, ok := get(rec, p.enc)
	v := rowValue{enc: string(encb), isFile: isFile}
	if !ok || v.enc == "" {
		return v, p.errf(rec, p.enc, fieldEncoding, "missing encoding")
	}
	if v.field, ok = get(rec, p.val); !ok {
		return v, p.errf(rec, p.val, fieldValue, "missing value")
	}
	if isFile {
		b, err := p.readFile(string(v.field)) // a path, not a secret
		if err != nil {
			return v, &CSVError{File: p.name, Line: rec.line, Column: p.val + 1, Field: fieldValue,
				Msg: "cannot read the file", Err: err}
		}
		v.raw = b
	}
	return v, nil
}

// decode stores the value in row by its encoding. The decoders return
// what is wrong with the value ("" when nothing is); a file's bytes that
// they do not keep as the row's data are wiped (R26).
func (p *rowParser) decode(rec csvRecord, row Row, v rowValue) (Row, error) {
	var msg string
	switch enc := strings.ToLower(v.enc); {
	case strings.HasPrefix(v.enc, "blob_fill") || strings.HasPrefix(v.enc, "blob_sz_fill"):
		n, pad, sz, ok := parseFill(v.enc)
		if !ok {
			return Row{}, p.errf(rec, p.enc, fieldEncoding, "invalid encoding format (want blob_fill(N;0xPP) or blob_sz_fill(N;0xPP))")
		}
		msg = v.decodeFill(&row, n, pad, sz)
	case intTypes[enc] != 0:
		msg = v.decodeInt(&row, intTypes[enc])
	case enc == "string":
		msg = v.decodeString(&row)
	case enc == "hex2bin":
		msg = v.decodeHex2bin(&row)
	case enc == "base64":
		msg = v.decodeBase64(&row)
	case enc == "binary":
		row.Type, row.Data = TypeBlob, v.raw
		if !v.isFile {
			row.Data = bytes.Clone(v.field)
		}
	default:
		return Row{}, p.errf(rec, p.enc, fieldEncoding, "unsupported encoding")
	}
	if msg != "" {
		return Row{}, p.errf(rec, p.val, fieldValue, msg)
	}
	return row, nil
}

// decodeFill is blob_fill(N;0xPP) and blob_sz_fill(N;0xPP): the value
// padded to N bytes, after its length as a u32 for the sz form.
func (v rowValue) decodeFill(row *Row, n int, pad byte, sz bool) string {
	defer wipe(v.raw)
	val := v.text()
	if len(val) > n {
		return "value longer than the fill length"
	}
	var data []byte
	if sz {
		data = binary.LittleEndian.AppendUint32(make([]byte, 0, 4+n), uint32(len(val)))
	} else {
		data = make([]byte, 0, n)
	}
	data = append(data, val...)
	for len(data) < cap(data) {
		data = append(data, pad)
	}
	row.Type, row.Data = TypeBlob, data
	return ""
}

// decodeInt is u8 … i64: a base-10 integer as Python's int() reads it, in
// range for t.
func (v rowValue) decodeInt(row *Row, t Type) string {
	if v.isFile {
		if !utf8.Valid(v.raw) {
			return "file is not a valid integer"
		}
		defer wipe(v.raw)
	}
	neg, mag, status := parsePyInt(v.text(), v.isFile)
	switch status {
	case intSyntax:
		return "not a base-10 integer"
	case intRange:
		return "integer out of range for " + t.String()
	}
	if t.Signed() {
		n, ok := signedInRange(neg, mag, t.IntSize())
		if !ok {
			return "integer out of range for " + t.String()
		}
		row.Int = n
	} else {
		if neg && mag != 0 || t.IntSize() < 8 && mag>>(8*t.IntSize()) != 0 {
			return "integer out of range for " + t.String()
		}
		row.Uint = mag
	}
	row.Type = t
	return ""
}

// decodeString is string: valid UTF-8 without a NUL byte.
func (v rowValue) decodeString(row *Row) string {
	s := v.raw
	if !v.isFile {
		s = bytes.Clone(v.field)
	} else if !utf8.Valid(s) {
		return "file is not valid UTF-8"
	}
	if bytes.IndexByte(s, 0) >= 0 {
		return "string contains a NUL byte"
	}
	row.Type, row.Data = TypeString, s
	return ""
}

// decodeHex2bin is hex2bin: an even number of hex digits, with the white
// space Python's strip removes around them.
func (v rowValue) decodeHex2bin(row *Row) string {
	var s []byte
	if v.isFile {
		s = bytes.TrimFunc(v.raw, isASCIISpace)
		defer wipe(v.raw)
	} else {
		s = bytes.TrimFunc(v.field, isPyStripSpace)
	}
	if len(s)%2 != 0 {
		return "odd number of hex digits"
	}
	data, ok := decodeHex(s)
	if !ok {
		return "invalid hex digit"
	}
	row.Type, row.Data = TypeBlob, data
	return ""
}

// decodeBase64 is base64, decoded as Python's binascii.a2b_base64 does.
func (v rowValue) decodeBase64(row *Row) string {
	if v.isFile {
		defer wipe(v.raw)
	} else {
		for _, c := range v.field {
			if c >= utf8.RuneSelf {
				return "base64 value contains non-ASCII characters"
			}
		}
	}
	data, msg := decodePyBase64(v.text())
	if msg != "" {
		return msg
	}
	row.Type, row.Data = TypeBlob, data
	return ""
}

var intTypes = map[string]Type{
	"u8": TypeU8, "i8": TypeI8, "u16": TypeU16, "i16": TypeI16,
	"u32": TypeU32, "i32": TypeI32, "u64": TypeU64, "i64": TypeI64,
}

// keyProblem returns why key cannot be an NVS key or namespace name, or "".
func keyProblem(key string) string {
	switch {
	case key == "":
		return "empty key"
	case len(key) > MaxKeyLen:
		return "key longer than 15 bytes"
	case strings.IndexByte(key, 0) >= 0:
		return "key contains a NUL byte"
	}
	return ""
}

// readFile reads the file a `file` row names, resolved like the reference:
// absolute paths as they are, relative ones against BaseDir.
func (p *rowParser) readFile(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("empty file name")
	}
	if !filepath.IsAbs(path) && p.opts.BaseDir != "" {
		path = filepath.Join(p.opts.BaseDir, path)
	}
	var (
		b   []byte
		err error
	)
	if p.opts.ReadFile != nil {
		b, err = p.opts.ReadFile(path)
	} else {
		b, err = readFileLimited(path)
	}
	if err != nil {
		// A *fs.PathError names the path, which comes from the CSV: keep
		// only its cause.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, err
	}
	if len(b) > MaxValueFileSize {
		wipe(b)
		return nil, errFileTooLarge
	}
	return b, nil
}

var errFileTooLarge = errors.New("file larger than " + strconv.Itoa(MaxValueFileSize>>20) + " MiB")

func readFileLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := readAllWiping(f, MaxValueFileSize)
	if errors.Is(err, errTooLarge) {
		return nil, errFileTooLarge
	}
	return b, err
}

// parseFill parses "blob_fill(N;0xPP)" or "blob_sz_fill(N;0xPP)": N is a
// decimal length, PP the padding byte in hex. sz reports the blob_sz_fill
// form, whose data starts with the value's length as a u32.
func parseFill(enc string) (n int, pad byte, sz bool, ok bool) {
	var rest string
	if r, found := strings.CutPrefix(enc, "blob_fill("); found {
		rest = r
	} else if r, found := strings.CutPrefix(enc, "blob_sz_fill("); found {
		rest, sz = r, true
	} else {
		return 0, 0, false, false
	}
	num, rest, found := strings.Cut(rest, ";")
	if !found || num == "" || len(rest) != 5 || rest[4] != ')' || rest[0] != '0' || rest[1] != 'x' {
		return 0, 0, false, false
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return 0, 0, false, false
		}
		n = n*10 + int(num[i]-'0')
		if n > maxFillLen {
			return 0, 0, false, false
		}
	}
	hi, ok1 := psk.HexNibble(rest[2])
	lo, ok2 := psk.HexNibble(rest[3])
	if !ok1 || !ok2 {
		return 0, 0, false, false
	}
	return n, hi<<4 | lo, sz, true
}

// decodeHex decodes an even-length string of hex digits (either case), like
// Python's binascii.a2b_hex.
func decodeHex(s []byte) ([]byte, bool) {
	out := make([]byte, len(s)/2)
	for i := range out {
		hi, ok1 := psk.HexNibble(s[2*i])
		lo, ok2 := psk.HexNibble(s[2*i+1])
		if !ok1 || !ok2 {
			wipe(out)
			return nil, false
		}
		out[i] = hi<<4 | lo
	}
	return out, true
}

// decodePyBase64 decodes like Python's binascii.a2b_base64 in its default,
// non-strict mode: characters outside the alphabet are skipped, and a
// complete pad sequence ends the data. It returns a message on error.
func decodePyBase64(in []byte) ([]byte, string) {
	out := make([]byte, 0, len(in)*3/4+3)
	var (
		quad     int
		left     byte
		pads     int
		finished bool
	)
	for _, c := range in {
		if c == '=' {
			if quad >= 2 {
				pads++
				if quad+pads >= 4 {
					finished = true
					break
				}
			}
			continue
		}
		v, ok := b64Value(c)
		if !ok {
			continue
		}
		pads = 0
		switch quad {
		case 0:
			quad, left = 1, v
		case 1:
			out = append(out, left<<2|v>>4)
			quad, left = 2, v&0x0f
		case 2:
			out = append(out, left<<4|v>>2)
			quad, left = 3, v&0x03
		case 3:
			out = append(out, left<<6|v)
			quad, left = 0, 0
		}
	}
	if !finished && quad != 0 {
		if quad == 1 {
			return nil, "invalid base64: the number of data characters is 1 more than a multiple of 4"
		}
		return nil, "invalid base64: incorrect padding"
	}
	return out, ""
}

func b64Value(c byte) (byte, bool) {
	switch {
	case 'A' <= c && c <= 'Z':
		return c - 'A', true
	case 'a' <= c && c <= 'z':
		return c - 'a' + 26, true
	case '0' <= c && c <= '9':
		return c - '0' + 52, true
	case c == '+':
		return 62, true
	case c == '/':
		return 63, true
	}
	return 0, false
}

// isASCIISpace is the whitespace that Python's bytes.strip removes.
func isASCIISpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

// isPyStripSpace is the whitespace that Python's str.strip removes: Go's
// unicode.IsSpace plus the separators U+001C..U+001F.
func isPyStripSpace(r rune) bool {
	return unicode.IsSpace(r) || 0x1c <= r && r <= 0x1f
}

// Results of parsePyInt.
const (
	intOK = iota
	intSyntax
	intRange
)

// parsePyInt parses s like Python's int(s) (base 10): surrounding
// whitespace, an optional sign, decimal digits with single underscores
// between them, and leading zeros are allowed. Unless asciiOnly, Unicode
// whitespace and Unicode decimal digits are accepted too, as Python does for
// str (asciiOnly mirrors int() of bytes). It returns the sign and magnitude;
// intRange means the magnitude does not fit 64 bits.
func parsePyInt(s []byte, asciiOnly bool) (neg bool, mag uint64, status int) {
	space := unicode.IsSpace
	if asciiOnly {
		space = isASCIISpace
	}
	s = bytes.TrimFunc(s, space)
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 {
		return false, 0, intSyntax
	}
	overflow := false
	prevDigit := false
	for len(s) > 0 {
		r, n := utf8.DecodeRune(s)
		s = s[n:]
		if r == '_' {
			if !prevDigit {
				return false, 0, intSyntax
			}
			prevDigit = false
			continue
		}
		d := digitValue(r, asciiOnly)
		if d < 0 {
			return false, 0, intSyntax
		}
		prevDigit = true
		if mag > (1<<64-1-uint64(d))/10 {
			overflow = true
		}
		mag = mag*10 + uint64(d)
	}
	if !prevDigit {
		return false, 0, intSyntax // trailing underscore
	}
	if overflow {
		return neg, 0, intRange
	}
	return neg, mag, intOK
}

// digitValue returns the value of a decimal digit (a Unicode Nd character
// unless asciiOnly), or -1.
func digitValue(r rune, asciiOnly bool) int {
	if '0' <= r && r <= '9' {
		return int(r - '0')
	}
	if asciiOnly || r < utf8.RuneSelf || !unicode.Is(unicode.Nd, r) {
		return -1
	}
	// Nd characters come in runs of ten, each starting at a zero.
	for _, rg := range unicode.Nd.R16 {
		if rune(rg.Lo) <= r && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if rune(rg.Lo) <= r && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	return -1
}

// signedInRange returns the signed value of sign and magnitude if it fits
// a signed integer of size bytes.
func signedInRange(neg bool, mag uint64, size int) (int64, bool) {
	limit := uint64(1) << (8*size - 1) // |min|
	if neg {
		if mag > limit {
			return 0, false
		}
		return int64(-mag), true
	}
	if mag >= limit {
		return 0, false
	}
	return int64(mag), true
}
