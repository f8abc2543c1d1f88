package partition

// This file reads ESP-IDF's CSV dialect the way gen_esp32part.py does:
//
//   - one partition per line: name, type, subtype, offset, size, flags;
//     missing trailing fields are empty and extra fields are ignored;
//   - lines end where Python's str.splitlines ends them (\n, \r, \r\n, and
//     also \v, \f, \x1c-\x1e, U+0085, U+2028, U+2029), so line numbers are
//     the generator's;
//   - fields are split at every comma (no quoting) and trimmed of what
//     Python's str.strip trims (Unicode white space and \x1c-\x1f);
//   - blank lines and lines starting with '#' are skipped;
//   - numbers are Python int(x, 0) literals (decimal, 0x, 0o, 0b, '_'
//     separators) with an optional K (×1024) or M (×1024²) suffix;
//   - type and subtype are names (case-insensitive) or numbers;
//   - an empty offset is computed from the end of the previous partition,
//     aligned to 0x10000 for app partitions and 0x1000 for the others;
//   - a negative size -N means "up to flash address N";
//   - flags are encrypted and readonly, separated by ':' with no spaces.
//
// Where it differs (docs/partitions.md lists it all): a partition line with
// an environment variable ($NAME or ${NAME}) is refused, where the
// generator expands it; a UTF-8 byte order mark is skipped, as newer
// generators do; a number takes one K or M suffix and ASCII digits only; a
// file that is not UTF-8 is refused instead of crashing.

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxCSVSize bounds a CSV table: a real one is a few KiB.
const maxCSVSize = 1 << 20

// Options adapts parsing and validation to a build's settings. The zero
// value gives gen_esp32part's defaults.
type Options struct {
	// TableOffset is the flash offset of the partition table
	// (CONFIG_PARTITION_TABLE_OFFSET, gen_esp32part --offset); 0 means
	// DefaultTableOffset. Computed offsets start after its sector, and
	// partitions must not start below that.
	TableOffset uint32
	// PrimaryBootloaderOffset and RecoveryBootloaderOffset place the rows
	// of type bootloader (gen_esp32part --primary-bootloader-offset and
	// --recovery-bootloader-offset). A CSV with such rows needs them.
	PrimaryBootloaderOffset  *uint32
	RecoveryBootloaderOffset *uint32
}

func (o Options) tableOffset() int64 {
	if o.TableOffset == 0 {
		return DefaultTableOffset
	}
	return int64(o.TableOffset)
}

// csvRow is one partition line, before offsets are filled in.
type csvRow struct {
	line      int
	name      string
	typ, sub  uint8
	offset    int64
	hasOffset bool
	size      int64
	flags     uint32
	// placed rows (primary bootloader, primary partition table) get their
	// offset from the options and take no part in computing offsets.
	placed bool
}

// parseCSV reads a partition table in ESP-IDF's CSV format, fills in
// omitted offsets and validates the result. file is the file name used in
// error messages. Errors are *Error.
func (o Options) parseCSV(data []byte, file string) (*Table, error) {
	data, err := csvText(data, file)
	if err != nil {
		return nil, err
	}
	rows, err := o.parseRows(data, file)
	if err != nil {
		return nil, err
	}
	if err := o.placeRows(rows, file); err != nil {
		return nil, err
	}
	t := &Table{Partitions: make([]Partition, len(rows))}
	lines := make([]int, len(rows))
	for i, r := range rows {
		t.Partitions[i] = Partition{
			Name:    r.name,
			Type:    r.typ,
			Subtype: r.sub,
			Offset:  uint32(r.offset),
			Size:    uint32(r.size),
			Flags:   r.flags,
		}
		lines[i] = r.line
	}
	if err := o.validate(t.Partitions, lines, file); err != nil {
		return nil, err
	}
	return t, nil
}

// csvError is an error at a line (0: the file) and field of a CSV table.
func csvError(file string, line int, field string, kind error, format string, args ...any) error {
	e := newError(kind, format, args...)
	e.File, e.Line, e.Field = file, line, field
	return e
}

// csvText checks that data is a CSV table's text: not too large, UTF-8
// (a byte order mark is dropped).
func csvText(data []byte, file string) ([]byte, error) {
	if len(data) > maxCSVSize {
		return nil, csvError(file, 0, "", ErrSyntax, "larger than %d bytes; not a partition table", maxCSVSize)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if bytes.HasPrefix(data, []byte{0xff, 0xfe}) || bytes.HasPrefix(data, []byte{0xfe, 0xff}) {
		return nil, csvError(file, 0, "", ErrSyntax, "file is UTF-16 or UTF-32 text; save it as UTF-8")
	}
	if !utf8.Valid(data) {
		return nil, csvError(file, 0, "", ErrSyntax, "not UTF-8 text (a binary table must start with the magic bytes aa 50)")
	}
	return data, nil
}

// parseRows parses the lines that are not blank or comments.
func (o Options) parseRows(data []byte, file string) ([]csvRow, error) {
	var rows []csvRow
	for i, line := range splitLines(string(data)) {
		line = trimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(rows) > 4*MaxPartitions {
			return nil, csvError(file, i+1, "", nil, "more than %d partitions; a table holds at most %d", 4*MaxPartitions, MaxPartitions)
		}
		row, err := o.parseRow(line)
		if err != nil {
			err.File, err.Line = file, i+1
			return nil, err
		}
		row.line = i + 1
		rows = append(rows, row)
	}
	return rows, nil
}

// placeRows fills in missing offsets and resolves negative sizes, in file
// order, as gen_esp32part's PartitionTable.from_csv does.
func (o Options) placeRows(rows []csvRow, file string) error {
	tableEnd := o.tableOffset() + TableSize
	lastEnd, prev := tableEnd, ""
	for i := range rows {
		r := &rows[i]
		if r.placed {
			continue
		}
		if r.hasOffset && r.offset < lastEnd {
			if r.offset < tableEnd {
				return csvError(file, r.line, "offset", ErrBelowTable,
					"partition %q: offset 0x%x is below the end of the partition table at 0x%x-0x%x; use 0x%x or higher",
					r.name, r.offset, tableEnd-TableSize, tableEnd-1, tableEnd)
			}
			return csvError(file, r.line, "offset", ErrOverlap,
				"partition %q: offset 0x%x overlaps the partition before it (%q), which ends at 0x%x",
				r.name, r.offset, prev, lastEnd)
		}
		if err := r.place(lastEnd, file); err != nil {
			return err
		}
		lastEnd, prev = r.offset+r.size, r.name
	}
	return nil
}

// place gives a row without an offset the next aligned one after lastEnd,
// turns a negative size (the end address) into a size, and refuses
// partitions beyond 4 GiB.
func (r *csvRow) place(lastEnd int64, file string) error {
	if !r.hasOffset {
		align := int64(offsetAlignment(r.typ))
		if rem := lastEnd % align; rem != 0 {
			lastEnd += align - rem
		}
		r.offset = lastEnd
	}
	if r.size < 0 {
		end := -r.size
		if end < r.offset {
			return csvError(file, r.line, "size", nil,
				"partition %q: size -0x%x means it ends at 0x%x, which is before its offset 0x%x",
				r.name, end, end, r.offset)
		}
		r.size = end - r.offset
	}
	if r.offset > math.MaxUint32 {
		return csvError(file, r.line, "offset", nil, "partition %q: offset 0x%x is beyond 4 GiB", r.name, r.offset)
	}
	if r.size > math.MaxUint32 {
		return csvError(file, r.line, "size", nil, "partition %q: size 0x%x is beyond 4 GiB", r.name, r.size)
	}
	return nil
}

// parseRow reads one non-comment line. Its errors carry the field but not
// the file and line, which the caller adds.
func (o Options) parseRow(line string) (csvRow, *Error) {
	fields, err := rowFields(line)
	if err != nil {
		return csvRow{}, err
	}
	r := csvRow{name: fields[0]}
	if err := parseTypes(&r, fields); err != nil {
		return csvRow{}, err
	}
	if err := o.parseOffset(&r, fields); err != nil {
		return csvRow{}, err
	}
	if err := o.parseSize(&r, fields); err != nil {
		return csvRow{}, err
	}
	if err := parseFlags(&r, fields); err != nil {
		return csvRow{}, err
	}
	return r, nil
}

// syntaxError is a syntax error in one field of a row.
func syntaxError(field string, format string, args ...any) *Error {
	e := newError(ErrSyntax, format, args...)
	e.Field = field
	return e
}

// rowFields splits a line into its six fields, trimmed, refusing one that
// names an environment variable: gen_esp32part expands them in the whole
// line (and refuses an unknown one at its start); this package does not,
// so such a line would mean something else here.
func rowFields(line string) ([]string, *Error) {
	fields := strings.Split(line, ",")
	for len(fields) < 6 {
		fields = append(fields, "")
	}
	for i := range fields {
		fields[i] = trimSpace(fields[i])
	}
	for i, f := range fields[:6] {
		if v := envVariable(f); v != "" {
			return nil, syntaxError(fieldNames[i], "%q: environment variables such as %s are not expanded; write the value itself", f, v)
		}
	}
	return fields, nil
}

// parseTypes reads the type and subtype: keywords or numbers; an app
// partition needs a subtype, a data partition's defaults to undefined.
func parseTypes(r *csvRow, fields []string) *Error {
	if fields[1] == "" {
		return syntaxError("type", "must not be empty (app, data or a number)")
	}
	typ, msg := parseByte(fields[1], typeKeywords, "type")
	if msg != "" {
		return syntaxError("type", "%s", msg)
	}
	r.typ = typ
	switch {
	case fields[2] != "":
		sub, msg := parseByte(fields[2], subtypeKeywords(r.typ), "subtype")
		if msg != "" {
			return syntaxError("subtype", "%s", msg)
		}
		r.sub = sub
	case r.typ == TypeApp:
		return syntaxError("subtype", "an app partition needs a subtype (factory, ota_0, …)")
	default:
		r.sub = SubtypeDataUndefined
	}
	return nil
}

// parseOffset reads the offset, when given: the bootloaders and the
// primary partition table take theirs from the options.
func (o Options) parseOffset(r *csvRow, fields []string) *Error {
	switch {
	case r.typ == TypeBootloader && r.sub == SubtypeBootloaderPrimary:
		if o.PrimaryBootloaderOffset == nil {
			return syntaxError("offset", "a primary bootloader partition needs the bootloader's offset, which was not given")
		}
		r.offset, r.hasOffset, r.placed = int64(*o.PrimaryBootloaderOffset), true, true
	case r.typ == TypeBootloader && r.sub == SubtypeBootloaderRecovery:
		if o.RecoveryBootloaderOffset == nil {
			return syntaxError("offset", "a recovery bootloader partition needs the recovery bootloader's offset, which was not given")
		}
		r.offset, r.hasOffset = int64(*o.RecoveryBootloaderOffset), true
	case r.typ == TypePartitionTable && r.sub == SubtypePartitionTablePrimary:
		r.offset, r.hasOffset, r.placed = o.tableOffset(), true, true
	case fields[3] != "":
		v, msg := parseNumber(fields[3])
		if msg != "" {
			return syntaxError("offset", "%s", msg)
		}
		if v < 0 {
			return syntaxError("offset", "%q is negative", fields[3])
		}
		r.offset, r.hasOffset = v, true
	}
	return nil
}

// parseSize reads the size: a bootloader's is the space up to the
// partition table, the partition table's is fixed.
func (o Options) parseSize(r *csvRow, fields []string) *Error {
	switch {
	case r.typ == TypeBootloader:
		if o.PrimaryBootloaderOffset == nil {
			return syntaxError("size", "a bootloader partition needs the primary bootloader's offset, which was not given")
		}
		tableOffset := o.tableOffset()
		r.size = tableOffset - int64(*o.PrimaryBootloaderOffset)
		if r.size < 0 {
			return syntaxError("size", "the primary bootloader offset 0x%x is above the partition table at 0x%x",
				*o.PrimaryBootloaderOffset, tableOffset)
		}
	case r.typ == TypePartitionTable:
		r.size = TableSize
	case fields[4] == "":
		return syntaxError("size", "must not be empty")
	default:
		v, msg := parseNumber(fields[4])
		if msg != "" {
			return syntaxError("size", "%s", msg)
		}
		r.size = v
	}
	return nil
}

// parseFlags reads the flags. Like gen_esp32part, they are not trimmed one
// by one: "encrypted : readonly" is refused there, so it is here.
func parseFlags(r *csvRow, fields []string) *Error {
	for _, flag := range strings.Split(fields[5], ":") {
		switch flag {
		case "":
		case "encrypted":
			r.flags |= FlagEncrypted
		case "readonly":
			r.flags |= FlagReadonly
		default:
			hint := ""
			if t := trimSpace(flag); t == "encrypted" || t == "readonly" {
				hint = "; write flags without spaces around ':'"
			}
			return syntaxError("flags", "unknown flag %q (known: encrypted, readonly, separated by ':')%s", flag, hint)
		}
	}
	return nil
}

// parseByte reads a type or subtype: a name from kw (ignoring ASCII case) or
// a number from 0 to 255. what names the field in messages.
func parseByte(s string, kw []keyword, what string) (uint8, string) {
	// Names are matched ignoring ASCII case only: Python's str.lower also
	// folds a few other letters onto ASCII ones (KELVIN SIGN to k), which
	// no real table relies on.
	if v, ok := valueOf(kw, asciiLower(s)); ok {
		return v, ""
	}
	v, msg := parseNumber(s)
	if msg != "" {
		if len(kw) == 0 {
			return 0, fmt.Sprintf("%s; this type has no named subtypes", msg)
		}
		hint := ""
		if n := len(s); n > 1 && strings.ContainsRune("kKmM", rune(s[n-1])) {
			if _, ok := valueOf(kw, asciiLower(s[:n-1])); ok {
				hint = "; a K or M suffix does not apply to names"
			}
		}
		return 0, fmt.Sprintf("unknown %s %q (known: %s, or a number)%s", what, s, keywordNames(kw), hint)
	}
	if v < 0 || v > 0xff {
		return 0, fmt.Sprintf("%s %s is out of range 0-255", what, s)
	}
	return uint8(v), ""
}

// parseNumber reads an offset or size as gen_esp32part's parse_int does:
// a Python integer literal with an optional K or M suffix. It returns a
// message instead of an error so that callers can add the field.
func parseNumber(s string) (int64, string) {
	orig := s
	mult := int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult, s = 1<<10, s[:n-1]
		case 'm', 'M':
			mult, s = 1<<20, s[:n-1]
		}
	}
	s = strings.TrimSpace(s)
	if n := len(s); n > 0 && mult > 1 && strings.ContainsRune("kKmM", rune(s[n-1])) {
		// gen_esp32part applies suffixes again and again ("1KK" is 1M to
		// it); a doubled suffix is far more likely a typo.
		return 0, fmt.Sprintf("%q has more than one K or M suffix; write the value with one", orig)
	}
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "+"), "-")
	if len(digits) > 1 && digits[0] == '0' && (isDigit(digits[1]) || digits[1] == '_') && strings.Trim(digits, "0_") != "" {
		return 0, fmt.Sprintf("%q has leading zeros (write 0x… for hex, 0o… for octal)", orig)
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		hint := ""
		if strings.Contains(orig, "$") {
			hint = "; environment variables are not expanded"
		} else if strings.ContainsFunc(orig, func(r rune) bool { return r > unicode.MaxASCII && unicode.IsDigit(r) }) {
			hint = "; use ASCII digits"
		}
		return 0, fmt.Sprintf("invalid number %q (want decimal, 0x hex, 0o octal or 0b binary, optionally with a K or M suffix)%s", orig, hint)
	}
	if v > math.MaxInt64/mult || v < math.MinInt64/mult {
		return 0, fmt.Sprintf("number %q is too large", orig)
	}
	return v * mult, ""
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// asciiLower lower-cases the ASCII letters of s and nothing else.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// fieldNames names the CSV fields in messages, in column order.
var fieldNames = [...]string{"name", "type", "subtype", "offset", "size", "flags"}

// splitLines splits s into lines as Python's str.splitlines does, which is
// how gen_esp32part reads and numbers them: at \n, \r, \r\n, \v, \f,
// \x1c, \x1d, \x1e, U+0085, U+2028 and U+2029. A final line break does
// not start another line.
func splitLines(s string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(s); {
		c, n := utf8.DecodeRuneInString(s[i:])
		switch c {
		case '\r':
			if strings.HasPrefix(s[i+1:], "\n") {
				n = 2
			}
		case '\n', '\v', '\f', '\x1c', '\x1d', '\x1e', '\u0085', '\u2028', '\u2029':
		default:
			i += n
			continue
		}
		lines = append(lines, s[start:i])
		i += n
		start = i
	}
	if start < len(s) {
		lines = append(lines, s[start:])
	}
	return lines
}

// trimSpace trims what Python's str.strip trims: Unicode white space, as
// strings.TrimSpace does, and also the separators \x1c-\x1f.
func trimSpace(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || ('\x1c' <= r && r <= '\x1f')
	})
}

// envVariable returns the first environment variable reference in s that
// gen_esp32part would expand (Python's os.path.expandvars: $ followed by a
// word character, or ${…}), or "".
func envVariable(s string) string {
	for i := 0; i+1 < len(s); i++ {
		if s[i] != '$' {
			continue
		}
		switch c := s[i+1]; {
		case c == '{':
			if j := strings.IndexByte(s[i:], '}'); j > 0 {
				return s[i : i+j+1]
			}
		case c == '_' || isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			j := i + 1
			for j < len(s) && (s[j] == '_' || isDigit(s[j]) || 'a' <= s[j]|0x20 && s[j]|0x20 <= 'z') {
				j++
			}
			return s[i:j]
		}
	}
	return ""
}

// offsetAlignment is the alignment ESP-IDF requires of a partition's offset.
func offsetAlignment(t uint8) uint32 {
	if t == TypeApp {
		return 0x10000
	}
	return 0x1000
}
