package psk

import "crypto/subtle"

// The USMP documentation's example and placeholder keys (design §3). They
// are refused wherever a key is taken in.
var placeholderTexts = [][]byte{
	[]byte("7f3a1b9e2c4d5f6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a"),
	[]byte("your-generated-psk-here"),
	[]byte("unique-psk-for-device-1"),
	[]byte("unique-psk-for-device-2"),
}

// placeholderHexBytes is the documentation's hex key decoded to bytes.
var placeholderHexBytes = []byte{
	0x7f, 0x3a, 0x1b, 0x9e, 0x2c, 0x4d, 0x5f, 0x6a, 0x8b, 0x9c, 0x0d, 0x1e, 0x2f, 0x3a, 0x4b, 0x5c,
	0x6d, 0x7e, 0x8f, 0x9a, 0x0b, 0x1c, 0x2d, 0x3e, 0x4f, 0x5a, 0x6b, 0x7c, 0x8d, 0x9e, 0x0f, 0x1a,
}

// PlaceholderRule is the message that names the rule a placeholder breaks.
const PlaceholderRule = "this is an example or placeholder key from the USMP documentation; never use it on a device (generate one with 'usmp-psk generate' or derive one with 'usmp-psk derive')"

// IsPlaceholder reports whether key is one of the documentation's example
// keys, as bytes or as text (upper- or lower-case hex), design §3.
func IsPlaceholder(key []byte) bool {
	if subtle.ConstantTimeCompare(key, placeholderHexBytes) == 1 {
		return true
	}
	k := trimSpace(key)
	for _, p := range placeholderTexts {
		if len(k) == len(p) && equalFoldASCII(k, p) {
			return true
		}
	}
	return false
}

func equalFoldASCII(a, b []byte) bool {
	var diff byte
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		diff |= x ^ y
	}
	return diff == 0
}
