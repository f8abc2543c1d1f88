package leakcheck

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// leakyFixture is the deliberately leaking command of R22: it prints the
// secret, or part of it, in one encoding. The harness must catch each one.
func leakyFixture(secret []byte, how string) string {
	part := secret[5:13] // a truncated leak: 8 bytes from the middle
	switch how {
	case "raw":
		return "key=" + string(secret)
	case "hex":
		return "key " + hex.EncodeToString(secret)
	case "HEX":
		return strings.ToUpper(hex.EncodeToString(secret))
	case "base64":
		return base64.StdEncoding.EncodeToString(secret)
	case "base64-raw":
		return base64.RawStdEncoding.EncodeToString(secret)
	case "base64url":
		return base64.URLEncoding.EncodeToString(secret)
	case "base32":
		return base32.StdEncoding.EncodeToString(secret)
	case "c":
		var b strings.Builder
		for i, c := range secret {
			fmt.Fprintf(&b, "0x%02x,", c)
			if i%8 == 7 {
				b.WriteString("\n    ")
			} else {
				b.WriteString(" ")
			}
		}
		return b.String()
	case "%v":
		return fmt.Sprintf("derive(%v)", secret)
	case "%#v":
		return fmt.Sprintf("%#v", secret)
	case "partial-hex":
		return "…" + hex.EncodeToString(part) + "…"
	case "partial-base64":
		return base64.StdEncoding.EncodeToString(append([]byte{0x41}, part...))
	case "partial-raw":
		return string(part)
	case "partial-%v":
		return fmt.Sprint(part)
	case "partial-text":
		// A text secret (a master) leaked in part next to hex: the rule
		// for text windows (TestTextWindows) must not hide it.
		return hex.EncodeToString(part) + string(secret[3:3+TextWindow]) + "…"
	}
	panic(how)
}

func TestHarnessCatchesEveryEncoding(t *testing.T) {
	t.Parallel()
	for i := 0; i < 40; i++ {
		// Derived keys are binary; the canary master is text.
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		if i%2 == 1 {
			secret = []byte(CanaryMaster())
		}
		var s Scanner
		s.Add("canary", secret)
		for _, how := range []string{"raw", "hex", "HEX", "base64", "base64-raw", "base64url", "base32", "c", "%v", "%#v", "partial-hex", "partial-base64", "partial-raw", "partial-%v", "partial-text"} {
			out := leakyFixture(secret, how)
			if got := s.Scan("stdout", []byte(out)); len(got) == 0 {
				t.Fatalf("leak as %s not detected", how)
			}
		}
		clean := "wrote 32-byte key to k.psk (hex, kcv 73b52cac)\n"
		if got := s.Scan("stderr", []byte(clean)); len(got) != 0 {
			t.Fatalf("false positive: %v", got)
		}
	}
}

// TestTextWindows: a raw window made only of hex/base64 characters is
// searched at TextWindow characters, so a hex-text secret (the old canary
// master, "CANARY-" and hex) no longer "leaks" because six of its
// characters turn up in a SHA-256 of the audit log — the flake of
// TestScripts/batch_basic (issue 13) — while a longer run of it, and any
// six characters of the canary master, are still caught.
func TestTextWindows(t *testing.T) {
	t.Parallel()
	hexSecret := "CANARY-" + strings.Repeat("0123456789abcdef", 3)
	canary := CanaryMaster()
	tests := []struct {
		name   string
		secret string
		output func(secret string) string
		leak   bool
	}{
		{"6 hex chars of a hex secret inside a sha256", hexSecret, func(s string) string {
			return `"sha256":"4d2d94c6` + s[12:18] + `0e9830a7ae4114b6cd3d541e30ddb5d3"`
		}, false},
		{"15 hex chars of a hex secret", hexSecret, func(s string) string { return "x" + s[10:25] + "x" }, false},
		{"16 hex chars of a hex secret", hexSecret, func(s string) string { return "x" + s[10:26] + "x" }, true},
		{"the tail of a hex secret", hexSecret, func(s string) string { return "x" + s[len(s)-16:] }, true},
		{"the whole hex secret", hexSecret, func(s string) string { return s }, true},
		{"6 chars of the canary", canary, func(s string) string { return "id " + s[20:26] + "." }, true},
		{"the canary's last 6 chars", canary, func(s string) string { return s[len(s)-6:] }, true},
		{"the canary's prefix and 10 more", canary, func(s string) string { return s[:17] }, true},
		{"the canary prefix alone", canary, func(s string) string { return "CANARY-" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Scanner
			s.Add("canary", []byte(tt.secret))
			got := s.Scan("out", []byte(tt.output(tt.secret)))
			if (len(got) > 0) != tt.leak {
				t.Fatalf("findings %v, want leak=%v", got, tt.leak)
			}
		})
	}
}

// TestCanaryNeverLooksLikeText: every Window of a canary master after its
// prefix holds a character that hex, base32 and base64 output never holds,
// so no such output can contain it, and every window is searched at full
// sensitivity; half a MiB of random hex and base64 never matches a canary.
func TestCanaryNeverLooksLikeText(t *testing.T) {
	t.Parallel()
	noise := make([]byte, 1<<18)
	_, _ = rand.Read(noise)
	text := []byte(hex.EncodeToString(noise[:1<<17]) + base64.StdEncoding.EncodeToString(noise[1<<17:]) +
		base64.RawURLEncoding.EncodeToString(noise) + base32.StdEncoding.EncodeToString(noise[:1<<15]))
	for i := 0; i < 200; i++ {
		c := CanaryMaster()
		if !strings.HasPrefix(c, "CANARY-") || len(c) != 55 {
			t.Fatalf("canary shape: %d bytes", len(c))
		}
		for j := len("CANARY-") - 2; j+Window <= len(c); j++ {
			if isText([]byte(c[j : j+Window])) {
				t.Fatalf("window at %d is all hex/base64 characters", j)
			}
		}
		if strings.ContainsAny(c, " \t\n\"'\\$`") {
			t.Fatal("canary holds a character a shell or a file would change")
		}
		if i < 10 {
			var s Scanner
			s.Add("canary", []byte(c))
			if got := s.Scan("noise", text); len(got) != 0 {
				t.Fatalf("canary found in random hex/base64: %v", got)
			}
		}
	}
}
