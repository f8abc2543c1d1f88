package cli

// What never reaches stderr (issue 13 item 2). Errors, warnings and
// progress lines name paths and settings on purpose, but a key pasted
// where a path or a name belongs must not come back in one, whichever
// message names it, nor a setting the tool announced without its value.
// IOStreams passes every message through the run's redactor, which run
// builds from the command line; stdout (the results) is left alone.

import (
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/usmp/usmp-psk/internal/psk"
)

// keyArgRedaction replaces a part of an argument that looks like a key;
// keySettingRedaction, of a setting's value (environment, config file).
const (
	keyArgRedaction     = "[an argument that looks like a key, not repeated]"
	keySettingRedaction = "[a setting that looks like a key, not repeated]"
)

// redactor replaces, in messages, what they must not show. The zero value
// and nil replace nothing. It is safe for concurrent use (batch workers
// warn through IOStreams).
type redactor struct {
	mu   sync.Mutex
	subs []substitution // the longest first
}

// newArgRedactor cuts out every part of args that looks like a key
// (psk.KeyTokens): in an argument, in a flag's value after "=", and in a
// value joined to a short flag ("-oVALUE", also after grouped switches),
// where the flag's letter would otherwise be taken for part of a hex key.
func newArgRedactor(args []string) *redactor {
	r := &redactor{}
	for _, a := range args {
		r.cutKeys(a, keyArgRedaction)
	}
	return r
}

// cutKeys cuts out every part of the argument a that looks like a key,
// putting marker in its place.
func (r *redactor) cutKeys(a, marker string) {
	for _, base := range argForms(a) {
		for _, tok := range psk.KeyTokens(base) {
			r.addKey(tok, marker)
		}
	}
}

// addKey cuts out a key-like token, also in the forms a message about a
// path gives it: cleaned ("a//b", "k/"), and, since base64 holds '/', the
// parts between its slashes that a message naming the path's directory or
// base would show, as whole words of four characters or more.
func (r *redactor) addKey(tok, marker string) {
	r.add(substitution{old: tok, with: marker})
	if c := filepath.Clean(tok); c != tok {
		r.add(substitution{old: c, with: marker})
	}
	for i := 0; i < len(tok); i++ {
		if i > 0 && tok[i-1] != '/' {
			continue
		}
		for j := i + 1; j <= len(tok); j++ {
			if (j == len(tok) || tok[j] == '/') && j-i >= 4 && (i > 0 || j < len(tok)) {
				r.add(substitution{old: tok[i:j], with: marker, word: true})
			}
		}
	}
}

// argForms are the strings an argument may give a message: itself and,
// for "-abcVALUE", each value after the leading letters.
func argForms(a string) []string {
	forms := []string{a}
	if len(a) < 3 || a[0] != '-' || a[1] == '-' {
		return forms
	}
	for i := 2; i < len(a) && isLetter(a[i-1]); i++ {
		forms = append(forms, a[i:])
	}
	return forms
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// hide makes messages name the value of a setting by label instead
// (announceSetting chose not to show it): the value as given, with a URL's
// scheme in lower case (as the registry writes it), cleaned and made
// absolute, as a path would be named, and after the setting's name
// ("created registry X"), so that the label reads in its place. Only
// whole words are replaced, and not values shorter than minHidden: they
// would cut up messages that merely hold the same word ("wifi/ssid").
func (r *redactor) hide(name, value, label string) {
	forms := []string{value, filepath.Clean(value)}
	if i := strings.Index(value, "://"); i > 0 {
		forms = append(forms, strings.ToLower(value[:i])+value[i:])
	}
	if abs, err := filepath.Abs(value); err == nil {
		forms = append(forms, abs)
	}
	for _, v := range forms {
		if len(strings.Trim(v, "./")) < minHidden {
			continue // "." or "/" names nothing, and is in every path
		}
		r.add(substitution{old: name + " " + v, with: label, word: true})
		r.add(substitution{old: v, with: label, word: true})
	}
}

// minHidden is the length below which hide leaves a value alone.
const minHidden = 6

// substitution is one text cut out of messages. A word substitution
// applies only where old is not next to a letter or digit.
type substitution struct {
	old, with string
	word      bool
}

// add records one substitution; an earlier one for the same text wins.
func (r *redactor) add(s substitution) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.ContainsFunc(r.subs, func(o substitution) bool { return o.old == s.old }) {
		return
	}
	r.subs = append(r.subs, s)
	// The longest first, where two start at the same place.
	slices.SortStableFunc(r.subs, func(a, b substitution) int { return len(b.old) - len(a.old) })
}

// apply returns msg with every recorded text replaced, in one pass from
// the left: a replacement is never itself searched again.
func (r *redactor) apply(msg string) string {
	if r == nil {
		return msg
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.subs) == 0 {
		return msg
	}
	var b strings.Builder
	for i := 0; i < len(msg); {
		s, ok := r.match(msg, i)
		if !ok {
			b.WriteByte(msg[i])
			i++
			continue
		}
		b.WriteString(s.with)
		i += len(s.old)
	}
	return b.String()
}

// match finds the substitution that applies at position i of msg.
func (r *redactor) match(msg string, i int) (substitution, bool) {
	for _, s := range r.subs {
		if !strings.HasPrefix(msg[i:], s.old) {
			continue
		}
		end := i + len(s.old)
		if s.word && (i > 0 && isAlnumByte(msg[i-1]) || end < len(msg) && isAlnumByte(msg[end])) {
			continue
		}
		return s, true
	}
	return substitution{}, false
}

func isAlnumByte(c byte) bool { return isLetter(c) || '0' <= c && c <= '9' }
