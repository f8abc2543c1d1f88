package registry

// A small JSON scanner for the registry, the import map and the audit log.
//
// It exists for three reasons: key hex is decoded from the file's bytes
// straight into a psk.Secret, never through a Go string (R26); error
// messages are ours and never quote input (R9: encoding/json and
// encoding/hex errors can echo characters); and it is fast enough for a
// registry of 100,000 devices (design §8). It accepts any valid JSON
// layout (hand edits, jq), not only what the encoder writes.

import (
	"strings"
	"unicode/utf8"

	"github.com/usmp/usmp-psk/internal/psk"
)

// maxDepth bounds nesting in skipped values (fuzzed input must not blow
// the stack).
const maxDepth = 32

// scanError is a syntax error at a byte offset. msg never holds input.
type scanError struct {
	off int
	msg string
}

type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) errAt(off int, msg string) *scanError { return &scanError{off: off, msg: msg} }

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// expect skips white space and consumes c.
func (s *scanner) expect(c byte, what string) *scanError {
	if s.peek() != c {
		if s.pos >= len(s.data) {
			return s.errAt(s.pos, "unexpected end of file, expected "+what)
		}
		return s.errAt(s.pos, "syntax error, expected "+what)
	}
	s.pos++
	return nil
}

// str reads a string and returns its raw content (between the quotes, still
// escaped), whether it holds escapes, and its offset. Escapes are checked
// here, so unquote cannot fail.
func (s *scanner) str() (raw []byte, esc bool, off int, err *scanError) {
	if s.peek() != '"' {
		return nil, false, s.pos, s.errAt(s.pos, "syntax error, expected a string")
	}
	off = s.pos
	s.pos++
	start := s.pos
	d := s.data
	for s.pos < len(d) {
		c := d[s.pos]
		switch {
		case c == '"':
			raw = d[start:s.pos]
			s.pos++
			return raw, esc, off, nil
		case c == '\\':
			esc = true
			if s.pos+1 >= len(d) {
				return nil, false, off, s.errAt(s.pos, "unexpected end of file in a string")
			}
			switch d[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if s.pos+6 > len(d) {
					return nil, false, off, s.errAt(s.pos, "unexpected end of file in a string")
				}
				for i := s.pos + 2; i < s.pos+6; i++ {
					if _, ok := hexNibble(d[i]); !ok {
						return nil, false, off, s.errAt(s.pos, "bad \\u escape in a string")
					}
				}
				s.pos += 6
			default:
				return nil, false, off, s.errAt(s.pos, "bad escape in a string")
			}
		case c < 0x20:
			return nil, false, off, s.errAt(s.pos, "control character in a string")
		default:
			s.pos++
		}
	}
	return nil, false, off, s.errAt(off, "unexpected end of file in a string")
}

func hexNibble(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unquote turns a raw string checked by str into a Go string. Invalid UTF-8
// becomes U+FFFD. Only for non-secret fields.
func unquote(raw []byte, esc bool) string {
	if !esc {
		if utf8.Valid(raw) {
			return string(raw)
		}
		return strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r := rune(hex4(raw[i+2 : i+6]))
			i += 6
			if 0xD800 <= r && r < 0xDC00 && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
				if r2 := rune(hex4(raw[i+2 : i+6])); 0xDC00 <= r2 && r2 < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
					i += 6
				}
			}
			if 0xD800 <= r && r < 0xE000 {
				r = utf8.RuneError
			}
			b.WriteRune(r)
			continue
		default: // '"', '\\', '/'
			b.WriteByte(raw[i+1])
		}
		i += 2
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

func hex4(b []byte) uint32 {
	var v uint32
	for _, c := range b {
		n, _ := hexNibble(c)
		v = v<<4 | uint32(n)
	}
	return v
}

// uint reads a non-negative whole number no larger than limit. Errors never
// quote the number.
func (s *scanner) uint(limit uint64) (v uint64, off int, err *scanError) {
	c := s.peek()
	off = s.pos
	d := s.data
	if c == '-' {
		s.skipNumber()
		return 0, off, s.errAt(off, "must not be negative")
	}
	if c < '0' || c > '9' {
		return 0, off, s.errAt(off, "syntax error, expected a number")
	}
	start := s.pos
	overflow := false
	for s.pos < len(d) && '0' <= d[s.pos] && d[s.pos] <= '9' {
		n := uint64(d[s.pos] - '0')
		if v > (limit-n)/10 {
			overflow = true
		}
		v = v*10 + n
		s.pos++
	}
	if s.pos < len(d) && (d[s.pos] == '.' || d[s.pos] == 'e' || d[s.pos] == 'E') {
		s.skipNumber()
		return 0, off, s.errAt(off, "not a whole number")
	}
	if d[start] == '0' && s.pos-start > 1 {
		return 0, off, s.errAt(off, "a number must not have leading zeros")
	}
	if overflow {
		return 0, off, s.errAt(off, "number out of range")
	}
	return v, off, nil
}

func (s *scanner) skipNumber() {
	d := s.data
	for s.pos < len(d) {
		switch c := d[s.pos]; {
		case '0' <= c && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			s.pos++
		default:
			return
		}
	}
}

// skip skips any JSON value.
func (s *scanner) skip(depth int) *scanError {
	if depth > maxDepth {
		return s.errAt(s.pos, "nested too deeply")
	}
	switch c := s.peek(); {
	case c == '"':
		_, _, _, err := s.str()
		return err
	case c == '{':
		s.pos++
		if s.peek() == '}' {
			s.pos++
			return nil
		}
		for {
			if _, _, _, err := s.str(); err != nil {
				return err
			}
			if err := s.expect(':', "':'"); err != nil {
				return err
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.pos++
			case '}':
				s.pos++
				return nil
			default:
				return s.errAt(s.pos, "syntax error, expected ',' or '}'")
			}
		}
	case c == '[':
		s.pos++
		if s.peek() == ']' {
			s.pos++
			return nil
		}
		for {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.pos++
			case ']':
				s.pos++
				return nil
			default:
				return s.errAt(s.pos, "syntax error, expected ',' or ']'")
			}
		}
	case c == '-' || '0' <= c && c <= '9':
		start := s.pos
		s.skipNumber()
		if !validNumber(s.data[start:s.pos]) {
			return s.errAt(start, "syntax error in a number")
		}
		return nil
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == 0 && s.pos >= len(s.data):
		return s.errAt(s.pos, "unexpected end of file, expected a value")
	}
	return s.errAt(s.pos, "syntax error, expected a value")
}

func (s *scanner) literal(lit string) *scanError {
	if len(s.data)-s.pos >= len(lit) && string(s.data[s.pos:s.pos+len(lit)]) == lit {
		s.pos += len(lit)
		return nil
	}
	return s.errAt(s.pos, "syntax error, expected a value")
}

// validNumber checks the JSON number grammar.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	start := i
	n := digits()
	if n == 0 || (n > 1 && b[start] == '0') {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

// object iterates over the members of an object: for each it reads the
// name and calls fn with the scanner positioned at the value, which fn
// must consume. Member names are not secret.
func (s *scanner) object(fn func(name string, nameOff int) *scanError) *scanError {
	return s.objectRaw(func(raw []byte, esc bool, off int) *scanError {
		return fn(unquote(raw, esc), off)
	})
}

// objectRaw is object with the raw name (still escaped when esc), so hot
// paths compare names without allocating.
func (s *scanner) objectRaw(fn func(name []byte, esc bool, nameOff int) *scanError) *scanError {
	if err := s.expect('{', "'{'"); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		raw, esc, off, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':', "':'"); err != nil {
			return err
		}
		if err := fn(raw, esc, off); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			if s.pos >= len(s.data) {
				return s.errAt(s.pos, "unexpected end of file, expected ',' or '}'")
			}
			return s.errAt(s.pos, "syntax error, expected ',' or '}'")
		}
	}
}

// array iterates over the elements of an array; fn consumes each.
func (s *scanner) array(fn func(i int) *scanError) *scanError {
	if err := s.expect('[', "'['"); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.pos++
		return nil
	}
	for i := 0; ; i++ {
		if err := fn(i); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			if s.pos >= len(s.data) {
				return s.errAt(s.pos, "unexpected end of file, expected ',' or ']'")
			}
			return s.errAt(s.pos, "syntax error, expected ',' or ']'")
		}
	}
}

// lineIndex maps byte offsets to 1-based line numbers.
type lineIndex struct {
	data []byte
	nl   []int // offsets of '\n', built on first use
	done bool
}

func (l *lineIndex) line(off int) int {
	if !l.done {
		for i, c := range l.data {
			if c == '\n' {
				l.nl = append(l.nl, i)
			}
		}
		l.done = true
	}
	lo, hi := 0, len(l.nl)
	for lo < hi {
		m := (lo + hi) / 2
		if l.nl[m] < off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo + 1
}

// decodeHexSecret decodes raw hex (no white space, either case) straight
// into a new Secret. The message names the position, never a character.
func decodeHexSecret(raw []byte) (*psk.Secret, string) {
	if len(raw) == 0 {
		return nil, "empty key"
	}
	if len(raw)%2 != 0 {
		return nil, "not a hex key: odd number of hex digits"
	}
	if len(raw) > 2*psk.MaxMasterBytes {
		return nil, "key too long"
	}
	out := make([]byte, len(raw)/2)
	for i := range out {
		hi, ok1 := hexNibble(raw[2*i])
		lo, ok2 := hexNibble(raw[2*i+1])
		if !ok1 || !ok2 {
			psk.Wipe(out)
			pos := 2*i + 1
			if ok1 {
				pos++
			}
			return nil, "not a hex key: character " + itoa(pos) + " is not a hex digit"
		}
		out[i] = hi<<4 | lo
	}
	return psk.NewSecret(out), ""
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
