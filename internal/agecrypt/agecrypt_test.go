package agecrypt

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/usmp/usmp-psk/internal/psk"
)

// newIdentity makes a fresh X25519 identity for a test.
func newIdentity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestParseRecipient: good recipients parse; everything else is refused as
// bad input (exit 2) that names the source and never repeats the value,
// with what the value looks like where that helps.
func TestParseRecipient(t *testing.T) {
	id := newIdentity(t)
	good := id.Recipient().String()
	flip := good[:20] + string("qpzry9x8"[(strings.IndexByte("qpzry9x8", good[20])+1)%8]) + good[21:]
	if flip == good {
		t.Fatal("the flipped recipient is the same")
	}
	tests := []struct {
		name, in, want string // want: "" parses, else part of the message
	}{
		{"recipient", good, ""},
		{"surrounding spaces", "  " + good + "\r", ""},
		{"identity", id.String(), "age identity (a secret key), not a recipient"},
		{"identity lower case", strings.ToLower(id.String()), "age identity (a secret key)"},
		{"plugin identity", "AGE-PLUGIN-YUBIKEY-1QQQQQQQQQQQQQQQQQQQ", "plugin identity"},
		{"hybrid", "age1pq1" + strings.Repeat("q", 80), "post-quantum"},
		{"ssh", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + strings.Repeat("x", 43) + " user@host", "SSH public keys are not supported"},
		{"not age", "hello-world-0123456789", "not an age recipient"},
		{"empty", "  ", "empty age recipient"},
		{"bad checksum", flip, "wrong length, character or checksum"},
		{"short", good[:40], "wrong length, character or checksum"},
		{"bad character", good[:30] + "b" + good[31:], "wrong length, character or checksum"},
		{"plugin recipient", "age1yubikey1qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnmqq", "wrong length, character or checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRecipient("--recipient", tt.in)
			if tt.want == "" {
				if err != nil || r.String() != good {
					t.Fatalf("got %v, %v", r, err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			var ie *psk.InputError
			if !errors.As(err, &ie) || !ie.BadInput() || ie.Source != "--recipient" {
				t.Fatalf("error %T %v: want a *psk.InputError from --recipient", err, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not say %q", msg, tt.want)
			}
			noEcho(t, msg, tt.in)
		})
	}
}

// noEcho fails when msg shares 8 or more characters with the value (R9):
// the value may be a secret key pasted in the wrong place.
func noEcho(t *testing.T, msg, value string) {
	t.Helper()
	v := strings.TrimSpace(value)
	for i := 0; i+8 <= len(v); i++ {
		if w := v[i : i+8]; strings.Contains(msg, w) && !strings.Contains("AGE-SECRET-KEY-AGE-PLUGIN-age1pq1ssh-ed25519 ", w) {
			t.Fatalf("message %q repeats %q of the value", msg, w)
		}
	}
}

// TestParseRecipientsFile: age's format, errors by line, never the line.
func TestParseRecipientsFile(t *testing.T) {
	a, b := newIdentity(t), newIdentity(t)
	ra, rb := a.Recipient().String(), b.Recipient().String()
	tests := []struct {
		name, in string
		want     int    // recipients, when it parses
		err      string // part of the message, when it does not
	}{
		{"two", ra + "\n" + rb + "\n", 2, ""},
		{"comments and blanks", "# gateway 1\n\n" + ra + "\r\n  # gateway 2\n" + rb, 2, ""},
		{"empty", "", 0, "gw.txt: no recipients in the file"},
		{"only comments", "# nothing\n\n", 0, "no recipients"},
		{"identity file", "# created: 2025\n# public key: " + ra + "\n" + a.String() + "\n", 0, "gw.txt:3: this is an age identity (a secret key)"},
		{"bad line", ra + "\n" + rb[:50] + "\n", 0, "gw.txt:2: not a valid age X25519 recipient"},
		{"too long", strings.Repeat("#", maxRecipientsFile+10), 0, "line is too long"},
		{"too large", strings.Repeat("# comment\n", maxRecipientsFile/10+10), 0, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRecipientsFile("gw.txt", strings.NewReader(tt.in))
			if tt.err == "" {
				if err != nil || len(got) != tt.want {
					t.Fatalf("got %d recipients, %v; want %d", len(got), err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
			var ie *psk.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T: want *psk.InputError", err)
			}
			noEcho(t, err.Error(), a.String())
		})
	}
}

// TestEncryptRoundTrip: every recipient's identity decrypts exactly the
// plaintext, armored or not; another identity does not; the ciphertext
// holds no part of the plaintext.
func TestEncryptRoundTrip(t *testing.T) {
	a, b, other := newIdentity(t), newIdentity(t), newIdentity(t)
	plain := []byte("{\n  \"device-id-1\": \"" + strings.Repeat("5a0c", 16) + "\"\n}\n")
	for _, armored := range []bool{false, true} {
		var ct bytes.Buffer
		err := Encrypt(&ct, []*age.X25519Recipient{a.Recipient(), b.Recipient()}, armored, func(w io.Writer) error {
			_, err := w.Write(plain)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(ct.Bytes(), []byte("5a0c5a0c")) || bytes.Contains(ct.Bytes(), []byte("device-id-1")) {
			t.Fatal("the ciphertext holds the plaintext")
		}
		if got := strings.HasPrefix(ct.String(), armor.Header); got != armored {
			t.Fatalf("armored %v: starts with the armor header: %v", armored, got)
		}
		for _, id := range []*age.X25519Identity{a, b} {
			var src io.Reader = bytes.NewReader(ct.Bytes())
			if armored {
				src = armor.NewReader(src)
			}
			r, err := age.Decrypt(src, id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("decrypted %d bytes (%v), not the plaintext", len(got), err)
			}
		}
		var src io.Reader = bytes.NewReader(ct.Bytes())
		if armored {
			src = armor.NewReader(src)
		}
		var nm *age.NoIdentityMatchError
		if _, err := age.Decrypt(src, other); !errors.As(err, &nm) {
			t.Fatalf("another identity: %v, want NoIdentityMatchError", err)
		}
	}
}

// TestEncryptErrors: no recipients is refused before anything is written,
// and the writer's error comes back as it is.
func TestEncryptErrors(t *testing.T) {
	var ct bytes.Buffer
	if err := Encrypt(&ct, nil, false, func(io.Writer) error { return nil }); err == nil || ct.Len() != 0 {
		t.Fatalf("no recipients: %v, %d bytes written", err, ct.Len())
	}
	boom := errors.New("boom")
	r := newIdentity(t).Recipient()
	if err := Encrypt(&ct, []*age.X25519Recipient{r}, true, func(io.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the writer's error", err)
	}
}
