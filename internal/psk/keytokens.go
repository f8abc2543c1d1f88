package psk

import (
	"regexp"
	"slices"
	"strings"
)

// colonHexRun is a run of 16 or more hex bytes separated by ':' (the
// colon form of LooksLikeKey), found anywhere in a string.
var colonHexRun = regexp.MustCompile(`[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){15,}`)

// KeyTokens returns the parts of s that look like key material
// (LooksLikeKey), so that text which may repeat s — a path in an error —
// can have them cut out (issue 13 item 2):
//   - every maximal run of 32 or more hex digits, wherever it sits;
//   - every maximal run of 16 or more colon-separated hex bytes;
//   - every span of 43 or 44 characters that is base64 of 32 bytes and
//     begins and ends at a word boundary (next to a character that is not
//     a letter or digit, or at an end of s), so that a key followed by
//     ".db" or between '/' of a path is found, its own '/' and '+'
//     included, but a long name is not cut into windows.
//
// The result is in order of first appearance, without repeats, and empty
// when s holds no such part. It runs in time linear in len(s).
func KeyTokens(s string) []string {
	var toks []string
	add := func(t string) {
		if !slices.Contains(toks, t) {
			toks = append(toks, t)
		}
	}
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isHexDigit(s[j]) {
			j++
		}
		if j-i >= 32 {
			add(s[i:j])
		}
		i = max(j, i+1)
	}
	for _, m := range colonHexRun.FindAllString(s, -1) {
		add(m)
	}
	for i := 0; i+43 <= len(s); i++ {
		if !wordBoundary(s, i) {
			continue
		}
		for _, n := range []int{44, 43} {
			if j := i + n; j <= len(s) && wordBoundary(s, j) && isBase64Key32(s[i:j]) && (n == len(s) || !pathLike(s[i:j])) {
				add(s[i:j])
			}
		}
	}
	return toks
}

// pathLike reports whether t, a base64-shaped span of a longer string, is
// more likely part of a path than a key: unpadded, with a '/', and with fewer than 6 upper-case
// or 6 lower-case letters. 43 random base64 characters hold about 17 of
// each (fewer than 6 about once in 15,000 keys); "Plant2/Line4/Station12/keys/b2"
// and its kind hold a handful of capitals, and would otherwise be cut out
// of every message that names them.
func pathLike(t string) bool {
	if t[len(t)-1] == '=' || !strings.Contains(t, "/") {
		return false
	}
	upper, lower := 0, 0
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case 'A' <= c && c <= 'Z':
			upper++
		case 'a' <= c && c <= 'z':
			lower++
		}
	}
	return upper < 6 || lower < 6
}

// wordBoundary reports whether position i of s is not inside a run of
// letters and digits.
func wordBoundary(s string, i int) bool {
	return i == 0 || i == len(s) || !isAlnum(s[i-1]) || !isAlnum(s[i])
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
