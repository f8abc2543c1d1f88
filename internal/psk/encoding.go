package psk

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
)

// Encoding is a way of writing key bytes to a file or a pipe (design §3).
type Encoding string

// The encodings of design §3.
const (
	Hex    Encoding = "hex"    // lowercase hex and a newline (default)
	Base64 Encoding = "base64" // standard padded base64 and a newline
	Raw    Encoding = "raw"    // the bytes as they are
	C      Encoding = "c"      // a C array for firmware that compiles the key in
)

// Encodings lists the accepted names, for validation (ParseEncoding) and
// completion.
var Encodings = []Encoding{Hex, Base64, Raw, C}

// Auto is not an encoding but the choice to detect it (Detect) when a key
// is read: fingerprint's default.
const Auto Encoding = "auto"

// ParseEncoding validates an encoding name given in source (a flag name).
// decodable says the key is read, not written: every encoding can be read
// back (issue 14 item 10), and "auto" detects it.
func ParseEncoding(source, name string, decodable bool) (Encoding, error) {
	e := Encoding(strings.ToLower(name))
	if slices.Contains(Encodings, e) || (decodable && e == Auto) {
		return e, nil
	}
	names := make([]string, 0, len(Encodings)+1)
	if decodable {
		names = append(names, string(Auto))
	}
	for _, n := range Encodings {
		names = append(names, string(n))
	}
	allowed := strings.Join(names, ", ")
	// The name is not repeated: whatever was typed after the flag, it may
	// be a key pasted in the wrong place (R9).
	return "", &InputError{Source: source, Msg: "unknown encoding (want one of " + allowed + ")"}
}

const hexDigits = "0123456789abcdef"

// emptyKey is the error of a key file or input with no key in it.
const emptyKey = "the key is empty"

// Encode returns the key written in e. The result is key material: write it
// only to a 0600 file or a pipe, then Wipe it.
func Encode(s *Secret, e Encoding) []byte {
	b := s.Expose()
	switch e {
	case Base64:
		out := make([]byte, base64.StdEncoding.EncodedLen(len(b))+1)
		base64.StdEncoding.Encode(out, b)
		out[len(out)-1] = '\n'
		return out
	case Raw:
		out := make([]byte, len(b))
		copy(out, b)
		return out
	case C:
		return encodeC(b)
	default:
		out := make([]byte, 2*len(b)+1)
		for i, c := range b {
			out[2*i] = hexDigits[c>>4]
			out[2*i+1] = hexDigits[c&0x0f]
		}
		out[len(out)-1] = '\n'
		return out
	}
}

// cHeader and cFooter make the C array of design §3 a header that compiles
// on its own (issue 14 item 10): uint8_t needs <stdint.h>, and the guard
// lets it be included twice.
const (
	cHeader = "/* The USMP pre-shared key, written by usmp-psk. Secret: keep this file 0600\n" +
		" * and out of version control. */\n" +
		"#ifndef USMP_PSK_H\n#define USMP_PSK_H\n\n#include <stdint.h>\n\n"
	cFooter = "\n#endif /* USMP_PSK_H */\n"
)

// encodeC writes the C array form of design §3, 8 bytes per line, as a
// header that compiles on its own.
func encodeC(b []byte) []byte {
	head := fmt.Sprintf("static const uint8_t usmp_psk[%d] = {\n", len(b))
	out := make([]byte, 0, len(cHeader)+len(head)+len(b)*6+len(b)/8*6+8+len(cFooter))
	out = append(out, cHeader...)
	out = append(out, head...)
	for i, c := range b {
		if i%8 == 0 {
			out = append(out, "    "...)
		}
		out = append(out, '0', 'x', hexDigits[c>>4], hexDigits[c&0x0f], ',')
		if i%8 == 7 || i == len(b)-1 {
			out = append(out, '\n')
		} else {
			out = append(out, ' ')
		}
	}
	out = append(out, "};\n"...)
	out = append(out, cFooter...)
	return out
}

// Decode reads a key written in e (hex, base64 or raw). Surrounding white
// space is ignored for hex and base64; hex may be upper or lower case; base64
// may be standard or URL-safe, padded or not. Errors name source and the
// position of a problem, never a character of the input (R9): the standard
// library's decoders quote what they choke on, so they are not used on
// secret input.
func Decode(source string, data []byte, e Encoding) (*Secret, error) {
	switch e {
	case Raw:
		if len(data) == 0 {
			return nil, &InputError{Source: source, Msg: emptyKey}
		}
		return CopySecret(data), nil
	case Base64:
		return decodeBase64(source, trimSpace(data))
	case Hex, "":
		return decodeHex(source, trimSpace(data))
	case C:
		return decodeC(source, data)
	case Auto:
		e, ok := Detect(data)
		if !ok {
			return nil, &InputError{Source: source, Msg: "cannot tell how the key is encoded: pass --encoding hex, base64, raw or c"}
		}
		return Decode(source, data, e)
	}
	return nil, &InputError{Source: source, Msg: "unknown encoding (use hex, base64, raw or c)"}
}

// Detect tells which of the encodings generate writes data is in: c when
// it holds a C array initializer, hex when it is (almost) only hex digits,
// base64 when it is only base64 characters with canonical
// padding, raw when it holds bytes that no text encoding has (control
// characters or bytes above 0x7e). Anything else is not told (false), and
// the caller asks for --encoding. Surrounding white space is ignored.
func Detect(data []byte) (Encoding, bool) {
	s := trimSpace(data)
	if len(s) == 0 {
		return "", false
	}
	text := true
	for _, c := range s {
		if c > 0x7e || (c < 0x20 && !isSpace(c)) {
			text = false
			break
		}
	}
	switch {
	case !text:
		return Raw, true
	case strings.Contains(string(s), "{") && strings.Contains(string(s), "0x"):
		return C, true
	}
	body := s
	for len(body) > 0 && body[len(body)-1] == '=' {
		body = body[:len(body)-1]
	}
	nonHex, allB64 := 0, true
	for _, c := range body {
		if _, ok := HexNibble(c); !ok {
			nonHex++
		}
		if _, ok := b64Val(c); !ok {
			allB64 = false
		}
	}
	switch {
	case len(body) == len(s) && 4*nonHex < len(s):
		// Hex, or a hex key with a few damaged characters, which Decode
		// then names: random base64 has about two non-hex characters in
		// three, never one in four.
		return Hex, true
	case allB64 && len(body) >= minDetectedBase64 && (len(body) == len(s) || len(s)%4 == 0):
		return Base64, true
	}
	return "", false
}

// minDetectedBase64 is the shortest base64 Detect takes for a key: 16
// bytes. Shorter runs of letters are words ("sentinel"), not keys.
const minDetectedBase64 = 22

// decodeC reads the bytes of the first C array initializer in data (what
// Encode writes for C: "… = { 0x01, 0x02, … };"): hex (0x..) or decimal
// byte literals separated by commas, with comments and white space. Errors
// name the literal's position, never its text (R9).
func decodeC(source string, data []byte) (*Secret, error) {
	open := -1
	for i, c := range data {
		if c == '{' {
			open = i
			break
		}
	}
	if open < 0 {
		return nil, &InputError{Source: source, Msg: "not a C array: no '{'"}
	}
	out := make([]byte, 0, 64)
	fail := func(msg string) (*Secret, error) {
		Wipe(out)
		return nil, &InputError{Source: source, Msg: msg}
	}
	i, n := open+1, 0
	for {
		for i < len(data) && (isSpace(data[i]) || data[i] == ',') {
			i++
		}
		if i >= len(data) {
			return fail("not a C array: no closing '}'")
		}
		if data[i] == '}' {
			break
		}
		n++
		v, next, msg := cByteLiteral(data, i, n)
		if msg != "" {
			return fail(msg)
		}
		i = next
		out = append(out, byte(v))
	}
	if len(out) == 0 {
		return fail("the key is empty")
	}
	return NewSecret(out), nil
}

// cByteLiteral reads the n-th element of a C array, at data[i:]: a hex
// (0x..) or decimal byte literal. It returns the byte, where the element
// ends and, when it is no byte literal, why (never its text).
func cByteLiteral(data []byte, i, n int) (v, next int, msg string) {
	base, start := 10, i
	if i+1 < len(data) && data[i] == '0' && (data[i+1] == 'x' || data[i+1] == 'X') {
		base, i, start = 16, i+2, i+2
	}
	for ; i < len(data); i++ {
		d, ok := HexNibble(data[i])
		if !ok || (base == 10 && d > 9) {
			break
		}
		if v = v*base + int(d); v > 255 {
			return 0, i, fmt.Sprintf("not a C array of bytes: element %d is above 255", n)
		}
	}
	if i == start || (i < len(data) && !isSpace(data[i]) && data[i] != ',' && data[i] != '}') {
		return 0, i, fmt.Sprintf("not a C array of bytes: element %d is not a byte literal", n)
	}
	return v, i, ""
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// HexNibble returns the value of one hex digit, either case. It is the
// module's one hex-digit decoder: key files here, the CSV's hex2bin values,
// fill bytes and integers in internal/nvs.
func HexNibble(c byte) (byte, bool) {
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

func decodeHex(source string, s []byte) (*Secret, error) {
	if len(s) == 0 {
		return nil, &InputError{Source: source, Msg: emptyKey}
	}
	if len(s)%2 != 0 {
		return nil, &InputError{Source: source, Msg: fmt.Sprintf("not a hex key: odd number of hex digits (%d)", len(s))}
	}
	out := make([]byte, len(s)/2)
	for i := 0; i < len(out); i++ {
		hi, ok1 := HexNibble(s[2*i])
		lo, ok2 := HexNibble(s[2*i+1])
		if !ok1 || !ok2 {
			Wipe(out)
			pos := 2*i + 1
			if ok1 {
				pos++
			}
			return nil, &InputError{Source: source, Msg: fmt.Sprintf("not a hex key: character %d is not a hex digit", pos)}
		}
		out[i] = hi<<4 | lo
	}
	return NewSecret(out), nil
}

// b64Val maps a base64 character (standard or URL alphabet) to its value.
func b64Val(c byte) (byte, bool) {
	switch {
	case 'A' <= c && c <= 'Z':
		return c - 'A', true
	case 'a' <= c && c <= 'z':
		return c - 'a' + 26, true
	case '0' <= c && c <= '9':
		return c - '0' + 52, true
	case c == '+' || c == '-':
		return 62, true
	case c == '/' || c == '_':
		return 63, true
	}
	return 0, false
}

func decodeBase64(source string, s []byte) (*Secret, error) {
	n := len(s)
	for n > 0 && s[n-1] == '=' {
		n--
	}
	if pad := len(s) - n; pad > 2 || (pad > 0 && len(s)%4 != 0) {
		return nil, &InputError{Source: source, Msg: "not a base64 key: bad padding"}
	}
	body := s[:n]
	if len(body) == 0 {
		return nil, &InputError{Source: source, Msg: emptyKey}
	}
	if len(body)%4 == 1 {
		return nil, &InputError{Source: source, Msg: "not a base64 key: wrong length"}
	}
	out := make([]byte, 0, len(body)*3/4)
	var acc uint32
	var bits uint
	for i, c := range body {
		v, ok := b64Val(c)
		if !ok {
			Wipe(out)
			return nil, &InputError{Source: source, Msg: fmt.Sprintf("not a base64 key: character %d is not base64", i+1)}
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
	}
	// Leftover bits must be zero (canonical encoding).
	if acc&(1<<bits-1) != 0 {
		Wipe(out)
		return nil, &InputError{Source: source, Msg: "not a base64 key: non-canonical final character"}
	}
	return NewSecret(out), nil
}
