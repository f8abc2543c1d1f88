package psk

import (
	"fmt"
	"strings"
)

// MaxDeviceIDLen is the longest device id in bytes (design §3).
const MaxDeviceIDLen = 64

// idRule is the rule every device-id error quotes.
const idRule = "device ids are 1-64 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit"

// keyLikeID is the message for an id that looks like key material.
const keyLikeID = "looks like a key, not a device id, so it is refused and not repeated here (a run of 32 or more hex digits, 16 or more colon-separated hex bytes, or base64 of 32 bytes)" +
	"\nhint: give the device's id (like 24:6F:28:AA or device-id-1); keys belong in files (--psk-file FILE); a real key typed on a command line is in your shell history: treat it as exposed"

// deviceIDSource names a device id in errors.
const deviceIDSource = "device id"

// ValidateDeviceID checks a device id against design §3: 1–64 bytes matching
// [A-Za-z0-9][A-Za-z0-9._:-]*. Ids are compared exactly and never normalized;
// anything else is refused (R25). An id that looks like a key (LooksLikeKey)
// is refused too: it is what a swapped CSV column or a keys file given as an
// ids file produces, and storing it would put a key in the registry and the
// audit log. The error gives the position of the first bad byte but never
// echoes the input, in case someone pasted a key where an id belongs (R9).
func ValidateDeviceID(id string) error {
	// Before the length and character rules, so that a 44-character padded
	// base64 key or a 128-digit hex key gets the hint, not "too long".
	if LooksLikeKey(id) {
		return &InputError{Source: deviceIDSource, Msg: keyLikeID}
	}
	if id == "" {
		return &InputError{Source: deviceIDSource, Msg: "empty (" + idRule + ")"}
	}
	if len(id) > MaxDeviceIDLen {
		return &InputError{Source: deviceIDSource, Msg: fmt.Sprintf("too long: %d bytes (%s)", len(id), idRule)}
	}
	if msg := idCharProblem(id); msg != "" {
		return &InputError{Source: deviceIDSource, Msg: msg}
	}
	return nil
}

// idCharProblem says which character of id the rule refuses, or "": a
// letter or digit first, then also '.', '_', ':' and '-'.
func idCharProblem(id string) string {
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if i > 0 {
			ok = ok || c == '.' || c == '_' || c == ':' || c == '-'
		}
		if !ok {
			if i == 0 && (c == '.' || c == '_' || c == ':' || c == '-') {
				return "the first character must be a letter or digit (" + idRule + ")"
			}
			return fmt.Sprintf("character %d is not allowed (%s)", i+1, idRule)
		}
	}
	return ""
}

// LooksLikeKey reports whether s looks like key material rather than a name:
//   - a run of 32 or more hex digits (a key of 16 bytes or more in hex,
//     also inside a longer string);
//   - 16 or more hex bytes separated by ':' (the form openssl prints);
//   - base64 (standard or URL alphabet) that decodes to exactly 32 bytes:
//     44 characters with '=' padding, or 43 without padding that mix upper-
//     and lower-case letters and digits, as a base64 key all but always
//     does (an all-lower-case name of 43 characters stays an id).
//
// Ids people use stay valid: MAC addresses, EUI-64s, UUIDs written with
// dashes (no run of more than 12 hex digits), serial numbers and names.
// The check looks at the shape only and runs in time linear in len(s).
func LooksLikeKey(s string) bool {
	return hasHexRun(s, 32) || isColonHexBytes(s, 16) || isBase64Key32(s)
}

func isHexDigit(c byte) bool {
	_, ok := HexNibble(c)
	return ok
}

// hasHexRun reports whether s holds n or more hex digits in a row.
func hasHexRun(s string, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			run = 0
			continue
		}
		if run++; run >= n {
			return true
		}
	}
	return false
}

// isColonHexBytes reports whether s is n or more two-digit hex bytes
// separated by ':' ("82:f1:37:…").
func isColonHexBytes(s string, n int) bool {
	if len(s) < 3*n-1 || len(s)%3 != 2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i%3 == 2 {
			if s[i] != ':' {
				return false
			}
		} else if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

// isBase64Key32 reports whether s is base64 of exactly 32 bytes (see
// LooksLikeKey). The last character must be canonical (its two unused bits
// zero), as every encoder writes it.
func isBase64Key32(s string) bool {
	body, padded := strings.CutSuffix(s, "=")
	if len(body) != 43 || (padded && len(s) != 44) {
		return false
	}
	cls, ok := base64Classes(body)
	if !ok || cls.std && cls.url {
		return false
	}
	last, _ := b64Val(body[42])
	if last&0x3 != 0 {
		return false
	}
	return padded || (cls.upper && cls.lower && cls.digit)
}

// b64Classes says which kinds of base64 characters a string holds.
type b64Classes struct{ std, url, upper, lower, digit bool }

// base64Classes classifies the characters of s; ok is false when one is
// not base64 (standard or URL alphabet).
func base64Classes(s string) (cls b64Classes, ok bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			cls.upper = true
		case 'a' <= c && c <= 'z':
			cls.lower = true
		case '0' <= c && c <= '9':
			cls.digit = true
		case c == '+' || c == '/':
			cls.std = true
		case c == '-' || c == '_':
			cls.url = true
		default:
			return cls, false
		}
	}
	return cls, true
}

// DeviceFileName turns a valid device id into a file name base by writing
// ':' as "%3A" (design §3). The mapping is injective because valid ids hold
// no '%'.
func DeviceFileName(id string) string {
	return strings.ReplaceAll(id, ":", "%3A")
}
