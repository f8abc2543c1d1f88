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
	}
	panic(how)
}

func TestHarnessCatchesEveryEncoding(t *testing.T) {
	for i := 0; i < 20; i++ {
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		var s Scanner
		s.Add("canary", secret)
		for _, how := range []string{"raw", "hex", "HEX", "base64", "base64-raw", "base64url", "base32", "c", "%v", "%#v", "partial-hex", "partial-base64", "partial-raw", "partial-%v"} {
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
