package psk

import (
	"encoding/base64"
	"fmt"
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

// Encodings lists the accepted names, for help text and validation.
var Encodings = []Encoding{Hex, Base64, Raw, C}

// ParseEncoding validates an encoding name given in source (a flag name).
// decodable restricts the choice to encodings that can be read back.
func ParseEncoding(source, name string, decodable bool) (Encoding, error) {
	switch e := Encoding(strings.ToLower(name)); e {
	case Hex, Base64, Raw:
		return e, nil
	case C:
		if !decodable {
			return e, nil
		}
	}
	allowed := "hex, base64, raw, c"
	if decodable {
		allowed = "hex, base64, raw"
	}
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

// encodeC writes the C array form of design §3, 8 bytes per line.
func encodeC(b []byte) []byte {
	head := fmt.Sprintf("static const uint8_t usmp_psk[%d] = {\n", len(b))
	out := make([]byte, 0, len(head)+len(b)*6+len(b)/8*6+8)
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
	}
	return nil, &InputError{Source: source, Msg: "this encoding cannot be read back (use hex, base64 or raw)"}
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
