package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/secfile"
)

// Export is the key map of the active devices (registry export): device id
// → key, in id order. It holds key material: hand it only to WriteJSON
// towards a 0600 file or a pipe, then Destroy it.
type Export struct {
	ids  []string
	keys []*psk.Secret
}

// Len returns the number of devices.
func (e *Export) Len() int { return len(e.ids) }

// IDs returns the device ids in order.
func (e *Export) IDs() []string { return slices.Clone(e.ids) }

// Key returns the key of id (owned by e), or nil.
func (e *Export) Key(id string) *psk.Secret {
	i, ok := slices.BinarySearch(e.ids, id)
	if !ok {
		return nil
	}
	return e.keys[i]
}

// Destroy wipes every key (best effort, R26).
func (e *Export) Destroy() {
	for _, k := range e.keys {
		k.Destroy()
	}
}

// WriteJSON writes the map the gateway's load_psk_registry reads, one
// device per line, lowercase hex:
//
//	{
//	  "device-1": "82f1…",
//	  "device-2": "5a0c…"
//	}
//
// An empty export is "{}\n". The buffer is wiped after the write.
func (e *Export) WriteJSON(w io.Writer) error {
	n := 4
	for i, k := range e.keys {
		n += len(e.ids[i]) + 2*k.Len() + 10
	}
	buf := make([]byte, 0, n)
	defer func() { psk.Wipe(buf) }()
	if len(e.ids) == 0 {
		buf = append(buf, "{}\n"...)
	} else {
		buf = append(buf, "{\n"...)
		for i, id := range e.ids {
			buf = append(buf, "  "...)
			buf = appendString(buf, id)
			buf = append(buf, `: "`...)
			for _, c := range e.keys[i].Expose() {
				buf = append(buf, hexDigits[c>>4], hexDigits[c&0x0f])
			}
			buf = append(buf, '"')
			if i < len(e.ids)-1 {
				buf = append(buf, ',')
			}
			buf = append(buf, '\n')
		}
		buf = append(buf, "}\n"...)
	}
	_, err := w.Write(buf)
	return err
}

// DeliverJSON is WriteJSON to the export's destination (standard output,
// to stands for it in messages): a write that fails after any byte got out
// returns a *DeliveredError (Partial), so that ExportTo keeps the export's
// audit entry; one that failed before returns its error as it is.
func (e *Export) DeliverJSON(w io.Writer, to string) error {
	cw := &countingWriter{w: w}
	err := e.WriteJSON(cw)
	if err != nil && cw.n > 0 {
		return &DeliveredError{To: to, Partial: true, Err: err}
	}
	return err
}

// DeliverJSONFile writes the export to path as a secret file
// (secfile.Write of WriteJSON). A write that fails once the complete file
// is at path (its directory's sync) returns a *DeliveredError, so that
// ExportTo keeps the export's audit entry.
func (e *Export) DeliverJSONFile(path string, opts secfile.Options) error {
	err := secfile.Write(path, opts, e.WriteJSON)
	var pe *secfile.PublishedError
	if errors.As(err, &pe) {
		return &DeliveredError{To: path, Err: err}
	}
	return err
}

// countingWriter counts the bytes its writer took.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Export returns the keys of every active device (registry export):
// stored keys as they are, derived keys from master at each device's epoch,
// each checked against its KCV. master may be nil when no active device is
// derived (Stats.NeedsMaster). The export is recorded in the audit log.
func (r *Registry) Export(ctx context.Context, master *psk.Secret) (*Export, error) {
	return r.ExportTo(ctx, master, nil)
}

// ExportTo is Export that hands the keys to deliver (which writes them to
// their destination) under the writer lock, once the export's audit entry
// is durable: a delivered export always has its entry. If deliver fails,
// the entry is removed again (and if that fails, it stays and 'registry
// audit' reports it as uncommitted: an export over-reported, never one
// hidden) — unless its error is a *DeliveredError (DeliverJSON,
// DeliverJSONFile: keys got out before it failed): then the export counts
// as delivered, its entry is committed like a successful one's (in either
// store), and ExportTo returns that error. If appending the entry fails,
// nothing is delivered. deliver may be nil.
func (r *Registry) ExportTo(ctx context.Context, master *psk.Secret, deliver func(*Export) error) (*Export, error) {
	ex := &Export{}
	opts := UpdateOptions{}
	var delivered error
	if deliver != nil {
		opts.Deliver = func() error {
			err := deliver(ex)
			if de := (*DeliveredError)(nil); errors.As(err, &de) {
				// Delivered, in part or not durably: to the store, a
				// delivery (its entries stay whatever follows).
				delivered = err
				return nil
			}
			return err
		}
	}
	err := r.update(ctx, opts, func(tx Tx, now time.Time) error {
		var err error
		tx.Range(func(rec *Record) bool {
			if rec.Status != StatusActive {
				return true
			}
			if rec.Source == SourceDerived && master.Len() == 0 {
				err = &DeviceError{Err: ErrNeedMaster, Msg: "the registry has derived devices: exporting them needs the master secret"}
				return false
			}
			var k *psk.Secret
			if k, err = recordKey(rec, master); err != nil {
				return false
			}
			ex.ids = append(ex.ids, rec.ID)
			ex.keys = append(ex.keys, k)
			return true
		})
		if err != nil {
			return err
		}
		tx.Log(r.event(now, EventExport, nil))
		return nil
	})
	if delivered != nil {
		// The delivery's error first; a failed registry write after it
		// (its entry stays, uncommitted) with it.
		err = errors.Join(delivered, err)
	}
	if err != nil {
		ex.Destroy()
		return nil, err
	}
	return ex, nil
}

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
// {"device_id": "hex psk", …} — what registry export writes — or CSV with
// the header "id,psk" (or "device_id,psk") and one "id,hexkey" line per
// device; fields may be quoted, blank lines are skipped. Every id and key is
// checked before anything is returned: valid ids, hex keys, no
// documentation placeholders (design §3), no id twice. Errors name file and
// line, never the key (R9). data holds key text: the caller wipes it.
func ParseImport(file string, data []byte) (*ImportSet, error) {
	set := &ImportSet{File: file}
	b := data
	if len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf {
		b = b[3:]
	}
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	var err error
	if i < len(b) && b[i] == '{' {
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
	if psk.ValidateDeviceID(id) != nil {
		return &ImportError{File: s.File, Line: line, Msg: "not a valid device id (1-64 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit)"}
	}
	if prev, dup := seen[id]; dup {
		return &ImportError{File: s.File, Line: line, Device: id, Msg: fmt.Sprintf("given twice (also on line %d)", prev)}
	}
	seen[id] = line
	if psk.IsPlaceholder(raw) {
		return &ImportError{File: s.File, Line: line, Device: id, Msg: psk.PlaceholderRule}
	}
	key, msg := decodeHexSecret(raw)
	if msg != "" {
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

func (s *ImportSet) parseJSON(b []byte) error {
	sc := scanner{data: b}
	lines := lineIndex{data: b}
	seen := map[string]int{}
	var addErr error
	stop := &scanError{}
	err := sc.object(func(name string, off int) *scanError {
		line := lines.line(off)
		if sc.peek() != '"' {
			addErr = &ImportError{File: s.File, Line: lines.line(sc.pos), Msg: "the key must be a string of hex digits"}
			return stop
		}
		raw, esc, _, err := sc.str()
		if err != nil {
			return err
		}
		if esc {
			addErr = &ImportError{File: s.File, Line: line, Msg: "the key must be a string of hex digits (no escapes)"}
			return stop
		}
		if e := s.add(name, raw, line, seen); e != nil {
			addErr = e
			return stop
		}
		return nil
	})
	if addErr != nil {
		return addErr
	}
	if err == nil && sc.peek() != 0 {
		err = sc.errAt(sc.pos, "unexpected data after the object")
	}
	if err != nil {
		return &ImportError{File: s.File, Line: lines.line(err.off), Msg: "not a JSON map of device id to hex key: " + err.msg}
	}
	return nil
}

func (s *ImportSet) parseCSV(b []byte) error {
	seen := map[string]int{}
	header := false
	for line := 1; len(b) > 0; line++ {
		l := b
		if i := indexByte(b, '\n'); i >= 0 {
			l, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		l = trimCSV(l)
		if len(l) == 0 {
			continue
		}
		f1, f2, n, ok := splitCSV(l)
		if !ok {
			return &ImportError{File: s.File, Line: line, Msg: "a field has a stray quote"}
		}
		if !header {
			h1 := strings.ToLower(string(f1))
			if n != 2 || (h1 != "id" && h1 != "device_id") || strings.ToLower(string(f2)) != "psk" {
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

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func trimCSV(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// splitCSV splits a line at commas into its first two fields (trimmed and
// unquoted) and counts the fields. Ids and hex keys hold no commas or
// quotes, so quoted fields are only unwrapped.
func splitCSV(l []byte) (f1, f2 []byte, n int, ok bool) {
	for {
		i := indexByte(l, ',')
		f := l
		if i >= 0 {
			f = l[:i]
		}
		f = trimCSV(f)
		if len(f) >= 2 && f[0] == '"' && f[len(f)-1] == '"' {
			f = f[1 : len(f)-1]
		}
		if indexByte(f, '"') >= 0 {
			return nil, nil, 0, false
		}
		switch n {
		case 0:
			f1 = f
		case 1:
			f2 = f
		}
		n++
		if i < 0 {
			return f1, f2, n, true
		}
		l = l[i+1:]
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
	res := &ImportResult{}
	// A new registry gets every entry's key: the location rules refuse it
	// before anything is created.
	err := r.update(ctx, UpdateOptions{Create: true, StoresKeysIfCreated: true}, func(tx Tx, now time.Time) error {
		for _, e := range set.Entries {
			if old, ok := tx.Get(e.ID); ok {
				same := false
				if old.Status == StatusActive {
					if old.Key != nil {
						same = old.Key.Equal(e.Key)
					} else {
						same = equalKCV(old.KCV, psk.KCV(e.Key))
					}
				}
				if !same {
					msg := fmt.Sprintf("already in the registry with another key (%s, KCV %s; the file's KCV is %s); rotate it instead", old.Source, old.KCV, psk.KCV(e.Key))
					if old.Status == StatusRevoked {
						msg = "revoked; a revoked device id is not used again"
					}
					return &ImportError{File: set.File, Line: e.Line, Device: e.ID, Msg: msg}
				}
				res.Unchanged++
				continue
			}
			rec := &Record{Device: Device{ID: e.ID, Source: SourceImported, Status: StatusActive, KCV: psk.KCV(e.Key), Created: now, Updated: now}, Key: psk.CopySecret(e.Key.Expose())}
			res.Added = append(res.Added, rec.Info())
			if err := tx.Put(rec); err != nil {
				return err
			}
			tx.Log(r.event(now, EventImport, rec))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}
