package agecrypt

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/usmp/usmp-psk/internal/psk"
)

// maxRecipientsFile bounds what is read of a recipients file: a line is 62
// bytes, so this is thousands of gateways.
const maxRecipientsFile = 1 << 20

// ParseRecipient parses one X25519 recipient ("age1…", as age-keygen -y
// prints it). source names where it came from ("--recipient", "FILE:3") for
// the error, which never repeats the value: it may be a secret key pasted
// by mistake.
func ParseRecipient(source, s string) (*age.X25519Recipient, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, &psk.InputError{Source: source, Msg: "empty age recipient"}
	}
	if msg := misplaced(s); msg != "" {
		return nil, &psk.InputError{Source: source, Msg: msg}
	}
	r, err := age.ParseX25519Recipient(s)
	if err != nil {
		// age's error quotes the value (and bech32's names a character):
		// it is dropped, not wrapped (R9).
		return nil, &psk.InputError{Source: source, Msg: "not a valid age X25519 recipient (want age1 and 58 more characters, as age-keygen -y prints; this one has a wrong length, character or checksum)"}
	}
	return r, nil
}

// misplaced recognises the values people give where a recipient belongs
// and says what they are, or returns "" for something that may be one.
func misplaced(s string) string {
	upper := strings.ToUpper(s)
	switch {
	case strings.HasPrefix(upper, "AGE-SECRET-KEY-"):
		return "this is an age identity (a secret key), not a recipient\nhint: give its public key, which 'age-keygen -y IDENTITY_FILE' prints; a secret key typed on a command line may be in your shell history and was visible to other users (ps): consider making a new one"
	case strings.HasPrefix(upper, "AGE-PLUGIN-"):
		return "this is an age plugin identity, not a recipient; only X25519 recipients (age1…) are supported"
	case strings.HasPrefix(s, "age1pq1"):
		return "post-quantum (hybrid) age recipients are not supported: the age of the gateway may not decrypt them; use an X25519 recipient (age1…, from age-keygen)"
	case strings.HasPrefix(s, "ssh-"), strings.HasPrefix(s, "ecdsa-"), strings.HasPrefix(s, "sk-"):
		return "SSH public keys are not supported; use an age X25519 recipient (age1…, from age-keygen)"
	case !strings.HasPrefix(strings.ToLower(s), "age1"):
		return "not an age recipient (want age1 and 58 more characters, as age-keygen -y prints)"
	}
	return ""
}

// ParseRecipientsFile reads a recipients file in age's format: one
// recipient a line, blank lines and lines starting with # ignored. name is
// the file's name for errors, which give the line, never its content.
func ParseRecipientsFile(name string, r io.Reader) ([]*age.X25519Recipient, error) {
	lr := &io.LimitedReader{R: r, N: maxRecipientsFile + 1}
	sc := bufio.NewScanner(lr)
	var out []*age.X25519Recipient
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rec, err := ParseRecipient(fmt.Sprintf("%s:%d", name, n), line)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &psk.InputError{Source: name, Msg: "a line is too long for a recipients file"}
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if lr.N == 0 {
		return nil, &psk.InputError{Source: name, Msg: fmt.Sprintf("larger than %d bytes: not a recipients file", maxRecipientsFile)}
	}
	if len(out) == 0 {
		return nil, &psk.InputError{Source: name, Msg: "no recipients in the file (one age1… a line; # starts a comment)"}
	}
	return out, nil
}

// Encrypt writes what write produces to w, encrypted to every recipient
// (any one of their identities decrypts it) and, with armored, in age's
// ASCII armor (PEM-like text). Nothing reaches w unencrypted.
func Encrypt(w io.Writer, recipients []*age.X25519Recipient, armored bool, write func(io.Writer) error) error {
	if len(recipients) == 0 {
		return errors.New("age: no recipients")
	}
	rs := make([]age.Recipient, len(recipients))
	for i, r := range recipients {
		rs[i] = r
	}
	dst, closeArmor := w, func() error { return nil }
	if armored {
		aw := armor.NewWriter(w)
		dst, closeArmor = aw, aw.Close
	}
	enc, err := age.Encrypt(dst, rs...)
	if err != nil {
		return fmt.Errorf("age: %w", err)
	}
	if err := write(enc); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("age: %w", err)
	}
	return closeArmor()
}
