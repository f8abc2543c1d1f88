package nvscrypt

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// leakForms returns the encodings of b that R22 searches for: raw, hex lower
// and upper, base64 (std, url, raw, padded), base32, and the Go decimal,
// octal, binary and %#v byte lists; for 8 bytes or more also the big-endian
// uint32 words in decimal and hex (the form an AES key schedule prints in).
func leakForms(b []byte) [][]byte {
	forms := [][]byte{
		b,
		[]byte(hex.EncodeToString(b)),
		[]byte(strings.ToUpper(hex.EncodeToString(b))),
		[]byte(base64.StdEncoding.EncodeToString(b)),
		[]byte(base64.RawStdEncoding.EncodeToString(b)),
		[]byte(base64.URLEncoding.EncodeToString(b)),
		[]byte(base64.RawURLEncoding.EncodeToString(b)),
		[]byte(strings.TrimRight(base32.StdEncoding.EncodeToString(b), "=")),
		[]byte(strings.Trim(fmt.Sprint(b), "[]")),
		[]byte(strings.Trim(fmt.Sprintf("%o", b), "[]")),
		[]byte(strings.Trim(fmt.Sprintf("%b", b), "[]")),
		[]byte(strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", b), "[]byte{"), "}")),
	}
	if len(b) >= 8 {
		w1, w2 := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
		forms = append(forms, fmt.Appendf(nil, "%d %d", w1, w2), fmt.Appendf(nil, "%x %x", w1, w2))
	}
	return forms
}

// leakSet is every leak form of every 6-byte window (and 8-byte window, for
// the word forms) of a secret.
type leakSet [][]byte

func newLeakSet(secret []byte) leakSet {
	var s leakSet
	for i := 0; i+6 <= len(secret); i++ {
		s = append(s, leakForms(secret[i:i+6])...)
		if i+8 <= len(secret) {
			s = append(s, leakForms(secret[i : i+8])[12:]...)
		}
	}
	return s
}

// found reports the index of the first form of s that out contains, or -1.
func (s leakSet) found(out string) int {
	o := []byte(out)
	for i, f := range s {
		if bytes.Contains(o, f) {
			return i
		}
	}
	return -1
}

// assertNoLeak fails if out holds secret, or any 6-byte window of it, in any
// leak form (R13, R22). It never prints the output or the secret.
func assertNoLeak(t testing.TB, out string, secret []byte) {
	t.Helper()
	if i := newLeakSet(secret).found(out); i >= 0 {
		t.Fatalf("output leaks key bytes (leak form %d); output length %d", i, len(out))
	}
}

// TestFormattingRedacts is R13: no fmt verb, nesting, JSON, gob, slog or
// error path shows key bytes of Keys, HMACKey or Cipher.
func TestFormattingRedacts(t *testing.T) {
	t.Parallel()
	keys, keyCanary := canaryKeys(t, "r13-keys")
	hmacCanary := canaryBytes("r13-hmac", HMACKeySize)
	hk, err := ParseHMACKey(hmacCanary)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCipher(keys)
	if err != nil {
		t.Fatal(err)
	}
	sets := []leakSet{newLeakSet(keyCanary), newLeakSet(hmacCanary)}

	type exported struct {
		K Keys
		P *Keys
		H HMACKey
		Q *HMACKey
		C *Cipher
	}
	type unexported struct {
		k Keys
		p *Keys
		h HMACKey
		q *HMACKey
		c *Cipher
		v Cipher
	}
	values := map[string]any{
		"Keys":              *keys,
		"*Keys":             keys,
		"HMACKey":           *hk,
		"*HMACKey":          hk,
		"Cipher":            *c,
		"*Cipher":           c,
		"struct exported":   exported{*keys, keys, *hk, hk, c},
		"*struct exported":  &exported{*keys, keys, *hk, hk, c},
		"struct unexported": unexported{*keys, keys, *hk, hk, c, *c},
		"*struct unexp":     &unexported{*keys, keys, *hk, hk, c, *c},
		"[]Keys":            []Keys{*keys},
		"[]*Keys":           []*Keys{keys},
		"[]HMACKey":         []HMACKey{*hk},
		"map value":         map[string]*Keys{"k": keys},
		"map value struct":  map[string]Keys{"k": *keys},
		"map key":           map[*Keys]int{keys: 1},
		"map hmac":          map[string]*HMACKey{"h": hk},
		"**Keys":            &keys,
		"any slice":         []any{keys, hk, c},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b", "%c", "%U", "%T %v", "%10.3v", "%-x", "% x", "%#x"}

	check := func(name, out string) {
		t.Helper()
		for _, s := range sets {
			if i := s.found(out); i >= 0 {
				t.Errorf("%s: output leaks key bytes (leak form %d)", name, i)
			}
		}
	}
	for name, v := range values {
		for _, verb := range verbs {
			check(name+" "+verb, fmt.Sprintf(verb, v))
		}
		check(name+" Sprint", fmt.Sprint(v))
		check(name+" Sprintln", fmt.Sprintln(v))
		check(name+" errors.New", errors.New(fmt.Sprint(v)).Error())
		check(name+" Errorf", fmt.Errorf("wrap: %v", v).Error())

		if js, err := json.Marshal(v); err == nil {
			check(name+" json", string(js))
		}
		var gb bytes.Buffer
		if err := gob.NewEncoder(&gb).Encode(v); err == nil {
			check(name+" gob", gb.String())
		}
		for _, h := range []struct {
			name string
			new  func(*bytes.Buffer) slog.Handler
		}{
			{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
			{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
		} {
			var buf bytes.Buffer
			slog.New(h.new(&buf)).Info("msg", "v", v, slog.Any("any", v), slog.Group("g", "v", v))
			check(name+" slog "+h.name, buf.String())
		}
	}

	// JSON, text and gob marshaling are refused outright.
	for _, v := range []any{keys, hk, c} {
		if _, err := json.Marshal(v); !errors.Is(err, ErrNotSerialized) {
			t.Errorf("json.Marshal(%T) error = %v, want ErrNotSerialized", v, err)
		}
	}
	for _, v := range []any{keys, hk} {
		if err := gob.NewEncoder(&bytes.Buffer{}).Encode(v); err == nil {
			t.Errorf("gob encoded %T", v)
		}
		if m, ok := v.(interface{ MarshalText() ([]byte, error) }); !ok {
			t.Errorf("%T has no MarshalText", v)
		} else if _, err := m.MarshalText(); !errors.Is(err, ErrNotSerialized) {
			t.Errorf("%T.MarshalText error = %v", v, err)
		}
	}

	// Control: the harness does detect a leak in every form it searches.
	for j, f := range append(leakForms(keyCanary[10:16]), leakForms(keyCanary[10:18])[12:]...) {
		if sets[0].found("x"+string(f)+"y") < 0 {
			t.Errorf("leak harness missed form %d", j)
		}
	}
}

// TestErrorsHaveNoContent is R9: the errors of the parsers cite sizes and
// offsets, never bytes of the secret input.
func TestErrorsHaveNoContent(t *testing.T) {
	t.Parallel()
	canary := canaryBytes("r9", KeysPartitionSize+1)
	part := bytes.Clone(canary[:KeysPartitionSize]) // CRC fails
	inputs := [][]byte{canary, part, canary[:68], canary[:63], canary[:31], canary[:33]}
	set := newLeakSet(canary) // every input is a prefix of the canary
	keys := mustKeys(t, "enc_usmp.keys.bin")
	for _, in := range inputs {
		var errs []error
		_, err := ParseKeysPartition(in)
		errs = append(errs, err)
		_, err = ParseKeysPartitionLenient(in)
		errs = append(errs, err)
		_, err = ParseHMACKey(in)
		errs = append(errs, err)
		_, err = deriveFromHMACKey(in)
		errs = append(errs, err)
		_, err = DecryptImage(in, keys)
		errs = append(errs, err)
		_, err = EncryptImage(in, keys)
		errs = append(errs, err)
		for _, err := range errs {
			if err == nil {
				continue
			}
			if i := set.found(fmt.Sprintf("%v %+v %#v", err, err, err)); i >= 0 {
				t.Errorf("error of a %d-byte input leaks input bytes (leak form %d)", len(in), i)
			}
		}
	}
}
