// Package leakcheck is the search half of the leak-canary harness (R22):
// given secrets (the canary master and the keys derived from it), it lists
// every form in which they could leak and finds them in captured output.
// It is used only by tests, but lives in a normal package so that tests of
// several packages share it.
package leakcheck

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Window is the length of the partial-leak windows: every run of this many
// consecutive secret bytes is searched for in each encoding (R22).
const Window = 6

// TextWindow is the length of a raw window made only of characters that
// hex, base32 and base64 output is made of (TextAlphabet). Six such
// characters turn up by chance in a page of SHA-256 hex (the audit log),
// which made TestScripts/batch_basic fail about once in 150 runs, so these
// windows are searched at 16 characters: at least 64 bits, more than the 48
// of a 6-byte window of a binary key. Issue 13.
const TextWindow = 16

// TextAlphabet is every character of hex (either case), base32 and base64
// (standard and URL, with padding) output.
const TextAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/-_="

func isText(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 || strings.IndexByte(TextAlphabet, c) < 0 {
			return false
		}
	}
	return true
}

// Form is one searchable encoding of (part of) a secret.
type Form struct {
	Name string // e.g. "hex", "base64url window 3"
	Data []byte
}

// encoders are the encodings R22 lists.
var encoders = []struct {
	name string
	enc  func([]byte) []string
}{
	{"raw", func(b []byte) []string { return []string{string(b)} }},
	{"hex", func(b []byte) []string { return []string{hex.EncodeToString(b)} }},
	{"HEX", func(b []byte) []string { return []string{strings.ToUpper(hex.EncodeToString(b))} }},
	{"base64", func(b []byte) []string { return b64All(base64.StdEncoding, base64.RawStdEncoding, b) }},
	{"base64url", func(b []byte) []string { return b64All(base64.URLEncoding, base64.RawURLEncoding, b) }},
	{"base32", func(b []byte) []string {
		return []string{strings.TrimRight(base32.StdEncoding.EncodeToString(b), "=")}
	}},
	{"c", func(b []byte) []string { return []string{cBytes(b, ", "), cBytes(b, ",")} }},
	{"%v", func(b []byte) []string { s := fmt.Sprint(b); return []string{s[1 : len(s)-1]} }},
	{"%#v", func(b []byte) []string {
		s := fmt.Sprintf("%#v", b)
		return []string{s[strings.IndexByte(s, '{')+1 : len(s)-1]}
	}},
}

// b64All returns the base64 of b at the three byte alignments, without
// the partial first and last characters, so a window is found wherever it
// sits inside a longer base64 text.
func b64All(padded, raw *base64.Encoding, b []byte) []string {
	out := []string{strings.TrimRight(padded.EncodeToString(b), "=")}
	for shift := 1; shift < 3 && len(b) > shift+3; shift++ {
		s := raw.EncodeToString(b[shift:])
		out = append(out, s[:len(s)-len(s)%4])
	}
	return out
}

func cBytes(b []byte, sep string) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("0x%02x", c)
	}
	return strings.Join(parts, sep)
}

// Forms returns every form of secret that the harness searches for: the
// whole secret in each encoding, and each Window-byte run of it in each
// encoding (which catches truncated and partial leaks). A raw run made
// only of TextAlphabet characters is searched at TextWindow characters
// instead, because hex and base64 output can hold it by chance.
func Forms(secret []byte) []Form {
	var out []Form
	add := func(name string, b []byte, raw bool) {
		for _, e := range encoders {
			if e.name == "raw" && !raw {
				continue
			}
			for i, s := range e.enc(b) {
				if len(s) < 8 && e.name != "raw" {
					continue
				}
				out = append(out, Form{Name: fmt.Sprintf("%s %s #%d", e.name, name, i), Data: []byte(s)})
			}
		}
	}
	add("whole", secret, true)
	for i := 0; i+Window <= len(secret); i++ {
		w := secret[i : i+Window]
		text := isText(w)
		add(fmt.Sprintf("window@%d", i), w, !text)
		if text && len(secret) > TextWindow {
			j := min(i, len(secret)-TextWindow)
			out = append(out, Form{Name: fmt.Sprintf("raw text-window@%d", j), Data: secret[j : j+TextWindow]})
		}
	}
	return out
}

// canaryLetters and canaryMarks make up a canary master: every third
// character is a mark, which no hex, base32 or base64 text and no output of
// ours holds next to letters that way, so every Window of it (after the
// prefix) can only be found where it leaked.
const (
	canaryLetters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	canaryMarks   = "!#&*;<>?@^|~"
)

// CanaryMaster returns a fresh random master secret for one test (R22):
// "CANARY-" and 48 printable ASCII characters that an environment variable,
// a shell's double quotes and a file carry unchanged. Unlike hex, none of
// its windows can turn up by chance in hex or base64 output, so the harness
// searches all of them at Window characters.
func CanaryMaster() string {
	b := make([]byte, 48)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	for i, c := range b {
		if i%3 == 2 {
			b[i] = canaryMarks[int(c)%len(canaryMarks)]
		} else {
			b[i] = canaryLetters[int(c)%len(canaryLetters)]
		}
	}
	return "CANARY-" + string(b)
}

// Finding is one leak: which secret, in which form, in which output.
type Finding struct {
	Secret string // the label given to Scan
	Form   string
	Where  string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s leaked as %s in %s", f.Secret, f.Form, f.Where)
}

// Scanner searches outputs for a set of labelled secrets.
type Scanner struct {
	secrets []labelled
}

type labelled struct {
	label string
	forms []Form
}

// Add registers a secret under a label (never the secret itself).
func (s *Scanner) Add(label string, secret []byte) {
	s.secrets = append(s.secrets, labelled{label, Forms(secret)})
}

// Scan returns the leaks of every registered secret in data, labelled where.
func (s *Scanner) Scan(where string, data []byte) []Finding {
	var out []Finding
	for _, sec := range s.secrets {
		for _, f := range sec.forms {
			if bytes.Contains(data, f.Data) {
				out = append(out, Finding{Secret: sec.label, Form: f.Name, Where: where})
				break // one finding per secret and output is enough
			}
		}
	}
	return out
}
