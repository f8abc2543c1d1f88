package psk

import (
	"slices"
	"strings"
	"testing"
)

// cutTokens replaces the tokens of s, longest first, with "#".
func cutTokens(s string, toks []string) string {
	toks = slices.Clone(toks)
	slices.SortFunc(toks, func(a, b string) int { return len(b) - len(a) })
	for _, t := range toks {
		s = strings.ReplaceAll(s, t, "#")
	}
	return s
}

// TestKeyTokens pins what is cut out of a path or a flag value that holds
// a key (issue 13 item 2): the key itself, not the rest of the path, and
// nothing of names and paths people use.
func TestKeyTokens(t *testing.T) {
	t.Parallel()
	const (
		hex64 = "82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a"
		b64   = "gvE3OuRJq2PKncFFVpNN3N1+w2HB2AAw0xbpynNVpAo="
		// a key whose base64 holds '/' (a path separator)
		b64Slash = "K0wfZNDxdOhZQJTx5PssM6ySGBwW/amgS48kPD7YYmg="
		colonHex = "82:f1:37:3a:e4:49:ab:63:ca:9d:c1:45:56:93:4d:dc"
	)
	tests := []struct{ s, want string }{
		{hex64, "#"},
		{hex64 + "/x", "#/x"},
		{"./out/" + hex64 + ".db", "./out/#.db"},
		{"-o" + hex64, "-o#"},
		{"--output=" + hex64 + "/k", "--output=#/k"},
		{"dev-" + hex64[:40] + "-x", "dev-#-x"},
		{b64, "#"},
		{"keys/" + b64 + ".txt", "keys/#.txt"},
		{"--psk-file=" + b64, "--psk-file=#"},
		{b64Slash + "/x", "#/x"},
		{"dir/" + b64Slash, "dir/#"},
		{"dir/" + strings.TrimSuffix(b64Slash, "=") + "/x", "dir/#/x"},
		{"/run/" + colonHex + ":aa/x", "/run/#/x"},
		// nothing to cut
		{"usmp-registry.db", "usmp-registry.db"},
		{"24:6F:28:AA:BB:CC", "24:6F:28:AA:BB:CC"},
		{"550e8400-e29b-41d4-a716-446655440000.psk", "550e8400-e29b-41d4-a716-446655440000.psk"},
		{"/srv/factory/Line2024/batch-0007/images/dev-a.bin", "/srv/factory/Line2024/batch-0007/images/dev-a.bin"},
		{strings.Repeat("factory-line-", 3) + "0004", strings.Repeat("factory-line-", 3) + "0004"},
		// a path whose 43-character stretch is base64-shaped (mixed case,
		// digits, last character fits), but with the few capitals of names
		{"Plant2/Line4/Station12/keys/batch2024/week8/k.bin", "Plant2/Line4/Station12/keys/batch2024/week8/k.bin"},
		// 43 base64 characters inside a longer word are not a key
		{"x" + strings.TrimSuffix(b64, "="), "x" + strings.TrimSuffix(b64, "=")},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			toks := KeyTokens(tt.s)
			if got := cutTokens(tt.s, toks); got != tt.want {
				t.Fatalf("KeyTokens = %q: %q, want %q", toks, got, tt.want)
			}
		})
	}
}

// FuzzKeyTokens checks that every token is a part of the input that looks
// like a key, and that an input that looks like a key has one (R28).
func FuzzKeyTokens(f *testing.F) {
	for _, s := range []string{"x/82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a.db",
		"-ogvE3OuRJq2PKncFFVpNN3N1+w2HB2AAw0xbpynNVpAo=", "82:f1:37:3a:e4:49:ab:63:ca:9d:c1:45:56:93:4d:dc", "dev-a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks := KeyTokens(s)
		for _, tok := range toks {
			if !strings.Contains(s, tok) || !LooksLikeKey(tok) {
				t.Fatalf("token %q of %q is not a key-like part of it", tok, s)
			}
		}
		if LooksLikeKey(s) && len(toks) == 0 {
			t.Fatalf("%q looks like a key but has no token", s)
		}
	})
}
