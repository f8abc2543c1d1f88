package registry

// registry import: a JSON map {"device_id": "hex psk", …} (what registry
// export writes) or CSV "id,psk". The file holds keys: errors and warnings
// name the file, the line and a valid device id, never a field's content.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
)

// ImportEntry is one device of an import file.
type ImportEntry struct {
	ID   string
	Key  *psk.Secret
	Line int
}

// ImportSet is a parsed import file (ParseImport).
type ImportSet struct {
	File     string
	Entries  []ImportEntry
	Warnings []string // keys shorter than 32 bytes
}

// Destroy wipes every key.
func (s *ImportSet) Destroy() {
	if s == nil {
		return
	}
	for _, e := range s.Entries {
		e.Key.Destroy()
	}
}

// ParseImport reads an import file (registry import FILE): a JSON map
// {"device_id": "hex psk", …} or CSV with the header "id,psk" (or
// "device_id,psk") and one "id,hexkey" line per device; fields may be
// quoted, blank lines are skipped. Every id and key is checked before
// anything is returned: valid ids, hex keys, no documentation
// placeholders, no id twice. data holds key text: the caller wipes it.
func ParseImport(file string, data []byte) (*ImportSet, error) {
	set := &ImportSet{File: file}
	b := bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var err error
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		err = set.parseJSON(b)
	} else {
		err = set.parseCSV(b)
	}
	if err == nil && len(set.Entries) == 0 {
		err = &ImportError{File: file, Msg: "no devices in the file"}
	}
	if err != nil {
		set.Destroy()
		return nil, err
	}
	return set, nil
}

// add validates one id and key text and appends the entry.
func (s *ImportSet) add(id string, raw []byte, line int, seen map[string]int) error {
	if psk.LooksLikeKey(id) {
		// Never named: it may be the key itself.
		return &ImportError{File: s.File, Line: line, Msg: "the device id looks like a key: are the columns swapped? (id first, then the key)"}
	}
	if err := psk.ValidateDeviceID(id); err != nil {
		return &ImportError{File: s.File, Line: line, Msg: "not a valid device id (1-64 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit)"}
	}
	if prev, dup := seen[id]; dup {
		return &ImportError{File: s.File, Line: line, Device: id, Msg: fmt.Sprintf("given twice (also on line %d)", prev)}
	}
	seen[id] = line
	if psk.IsPlaceholder(raw) {
		return &ImportError{File: s.File, Line: line, Device: id, Msg: psk.PlaceholderRule}
	}
	key, err := psk.Decode(s.File, raw, psk.Hex)
	if err != nil {
		msg := "not a hex key"
		var ie *psk.InputError
		if errors.As(err, &ie) {
			msg = ie.Msg
		}
		return &ImportError{File: s.File, Line: line, Device: id, Msg: msg}
	}
	if psk.IsPlaceholder(key.Expose()) {
		key.Destroy()
		return &ImportError{File: s.File, Line: line, Device: id, Msg: psk.PlaceholderRule}
	}
	if key.Len() > maxKeyBytes {
		key.Destroy()
		return &ImportError{File: s.File, Line: line, Device: id, Msg: "the key is longer than 4096 bytes"}
	}
	if key.Len() < psk.MinGeneratedBytes {
		s.Warnings = append(s.Warnings, fmt.Sprintf("%s:%d: device %q: the key has only %d bytes; generated keys have at least 32", s.File, line, id, key.Len()))
	}
	s.Entries = append(s.Entries, ImportEntry{ID: id, Key: key, Line: line})
	return nil
}

// parseJSON reads the map with encoding/json's tokenizer. Its errors are
// never shown (they quote the input): the message says which line.
func (s *ImportSet) parseJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	bad := func(msg string) error {
		return &ImportError{File: s.File, Line: lineAt(b, dec.InputOffset()), Msg: msg}
	}
	const notMap = "not a JSON map of device id to hex key"
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return bad(notMap)
	}
	seen := map[string]int{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad(notMap)
		}
		line := lineAt(b, dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return bad(notMap)
		}
		if len(raw) < 2 || raw[0] != '"' || bytes.IndexByte(raw, '\\') >= 0 {
			psk.Wipe(raw)
			return &ImportError{File: s.File, Line: line, Msg: "the key must be a string of hex digits (no escapes)"}
		}
		err = s.add(tok.(string), raw[1:len(raw)-1], line, seen)
		psk.Wipe(raw)
		if err != nil {
			return err
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return bad(notMap)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("unexpected data after the map")
	}
	return nil
}

// lineAt is the 1-based line of byte offset off.
func lineAt(b []byte, off int64) int {
	off = min(max(off, 0), int64(len(b)))
	return bytes.Count(b[:off], []byte{'\n'}) + 1
}

func (s *ImportSet) parseCSV(b []byte) error {
	seen := map[string]int{}
	header := false
	for line := 1; len(b) > 0; line++ {
		var l []byte
		l, b, _ = bytes.Cut(b, []byte{'\n'})
		l = bytes.Trim(l, " \t\r")
		if len(l) == 0 {
			continue
		}
		f1, f2, n, ok := splitCSV(l)
		if !ok {
			return &ImportError{File: s.File, Line: line, Msg: "a field has a stray quote"}
		}
		if !header {
			// Compared as bytes: without a header this line holds a key,
			// which must not become a Go string.
			if n != 2 || (!bytes.EqualFold(f1, []byte("id")) && !bytes.EqualFold(f1, []byte("device_id"))) || !bytes.EqualFold(f2, []byte("psk")) {
				return &ImportError{File: s.File, Line: line, Msg: "not an import file: a JSON map {\"device_id\": \"hex psk\"} or CSV starting with the header id,psk"}
			}
			header = true
			continue
		}
		if n != 2 {
			return &ImportError{File: s.File, Line: line, Msg: fmt.Sprintf("expected 2 fields (id,psk), found %d", n)}
		}
		if err := s.add(string(f1), f2, line, seen); err != nil {
			return err
		}
	}
	return nil
}

// splitCSV splits a line at commas into its first two fields (trimmed and
// unquoted) and counts the fields. Ids and hex keys hold no commas or
// quotes, so quoted fields are only unwrapped.
func splitCSV(l []byte) (f1, f2 []byte, n int, ok bool) {
	for {
		f, rest, more := bytes.Cut(l, []byte{','})
		f = bytes.Trim(f, " \t\r")
		if len(f) >= 2 && f[0] == '"' && f[len(f)-1] == '"' {
			f = f[1 : len(f)-1]
		}
		if bytes.IndexByte(f, '"') >= 0 {
			return nil, nil, 0, false
		}
		switch n {
		case 0:
			f1 = f
		case 1:
			f2 = f
		}
		n++
		if !more {
			return f1, f2, n, true
		}
		l = rest
	}
}

// ImportResult says what Import did.
type ImportResult struct {
	Added     []Device
	Unchanged int // devices already recorded with the same key
}

// Import records the devices of set as imported keys (registry import), in
// one transaction: all or nothing. A device already recorded with the same
// key (the stored key, or the KCV of a derived one) is left unchanged; one
// recorded with another key, or revoked, is an error and nothing changes.
// The registry is created when missing. The set's warnings go to Warn.
func (r *Registry) Import(ctx context.Context, set *ImportSet) (*ImportResult, error) {
	for _, w := range set.Warnings {
		r.warn(w)
	}
	ids := make([]string, len(set.Entries))
	for i, e := range set.Entries {
		ids[i] = e.ID
	}
	res := &ImportResult{}
	var warnings []string
	err := r.update(ctx, writeOpts{create: true, storesKeys: true}, func(t *tx, now time.Time) error {
		old, err := t.devices(ids, true)
		if err != nil {
			return err
		}
		defer func() {
			for _, rec := range old {
				rec.Destroy()
			}
		}()
		if err := r.refuseForgotten(t, ids, old); err != nil {
			return err
		}
		recs, err := r.importRecords(set, old, res, now)
		if err != nil {
			return err
		}
		if warnings, err = t.reusedKeys(recs); err != nil {
			for _, rec := range recs {
				rec.Destroy()
			}
			return err
		}
		for _, rec := range recs {
			t.log(r.event(now, EventImport, rec))
		}
		err = t.insertDevices(recs)
		for _, rec := range recs {
			rec.Destroy()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		r.warn(w)
	}
	return res, nil
}

// importRecords makes the records of the entries that are new, and checks
// the others against what the registry holds.
func (r *Registry) importRecords(set *ImportSet, old map[string]*Record, res *ImportResult, now time.Time) ([]*Record, error) {
	var recs []*Record
	for _, e := range set.Entries {
		if o := old[e.ID]; o != nil {
			if err := sameImported(set.File, e, o); err != nil {
				for _, rec := range recs {
					rec.Destroy()
				}
				return nil, err
			}
			res.Unchanged++
			continue
		}
		rec := &Record{Device: Device{ID: e.ID, Source: SourceImported, Status: StatusActive, KCV: psk.KCV(e.Key), Created: now, Updated: now},
			Key: psk.CopySecret(e.Key.Expose())}
		res.Added = append(res.Added, rec.Info())
		recs = append(recs, rec)
	}
	return recs, nil
}

// sameImported accepts an entry whose device the registry holds with the
// same key (stored, or derived with the same KCV).
func sameImported(file string, e ImportEntry, old *Record) error {
	if old.Status == StatusRevoked {
		return &ImportError{File: file, Line: e.Line, Device: e.ID, Msg: "revoked; a revoked device id is not used again"}
	}
	same := equalKCV(old.KCV, psk.KCV(e.Key))
	if old.Key != nil {
		same = old.Key.Equal(e.Key)
	}
	if same {
		return nil
	}
	return &ImportError{File: file, Line: e.Line, Device: e.ID,
		Msg: fmt.Sprintf("already in the registry with another key (%s, KCV %s; the file's KCV is %s); rotate it instead", old.Source, old.KCV, psk.KCV(e.Key))}
}
