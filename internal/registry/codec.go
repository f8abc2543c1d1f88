package registry

// The registry file, version 1. The encoder is deterministic: devices sorted
// by id, fields in a fixed order, one device per line, times in RFC 3339 UTC,
// so the same records, times and audit head always give the same bytes:
//
//	{
//	  "version": 1,
//	  "audit": {"seq": 3, "hash": "<64 hex>"},
//	  "devices": [
//	    {"id":"a","source":"derived","epoch":0,"status":"active","kcv":"…","created":"…","updated":"…"},
//	    {"id":"b","source":"random","epoch":1,"status":"active","kcv":"…","psk":"<hex>","created":"…","updated":"…","history":[{"kcv":"…","epoch":0,"source":"random","reason":"…","retired":"…"}]},
//	    {"id":"c","source":"derived","epoch":0,"status":"revoked","kcv":"…","created":"…","updated":"…","revoked":"…","revoke_reason":"…"}
//	  ]
//	}
//
// Field order in a device: id, source, epoch, status, kcv, psk, created,
// updated, revoked, revoke_reason, history. "psk" (lowercase hex) appears
// only for random and imported keys; "revoked" and "revoke_reason" only on
// revoked devices; "history" only when non-empty. "audit" is the last entry
// of the audit log when the file was written (see audit.go).

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usmp/usmp-psk/internal/psk"
)

// AuditHead is the last audit log entry a registry file knows of.
type AuditHead struct {
	Seq  uint64
	Hash string
}

// regData is a decoded registry: records sorted by id.
type regData struct {
	head AuditHead
	recs []*Record
}

// find returns the index of id in recs, or where to insert it.
func (r *regData) find(id string) (int, bool) {
	return slices.BinarySearchFunc(r.recs, id, func(rec *Record, id string) int { return strings.Compare(rec.ID, id) })
}

// destroy wipes every key (best effort, R26).
func (r *regData) destroy() {
	if r == nil {
		return
	}
	for _, rec := range r.recs {
		rec.Destroy()
	}
}

// hasKeys reports whether any record holds key bytes.
func (r *regData) hasKeys() bool {
	for _, rec := range r.recs {
		if rec.Key != nil {
			return true
		}
	}
	return false
}

const (
	fID uint16 = 1 << iota
	fSource
	fEpoch
	fStatus
	fKCV
	fPSK
	fCreated
	fUpdated
	fRevoked
	fReason
	fHistory
)

// deviceField maps a member name of a device to its bit (0: unknown).
func deviceField(name []byte) uint16 {
	switch string(name) {
	case "id":
		return fID
	case "source":
		return fSource
	case "epoch":
		return fEpoch
	case "status":
		return fStatus
	case "kcv":
		return fKCV
	case "psk":
		return fPSK
	case "created":
		return fCreated
	case "updated":
		return fUpdated
	case "revoked":
		return fRevoked
	case "revoke_reason":
		return fReason
	case "history":
		return fHistory
	}
	return 0
}

// fieldNames lists the device members in file order, for messages.
var fieldNames = []string{"id", "source", "epoch", "status", "kcv", "psk", "created", "updated", "revoked", "revoke_reason", "history"}

const requiredFields = fID | fSource | fEpoch | fStatus | fKCV | fCreated | fUpdated

// maxProblems bounds the problems one decode collects.
const maxProblems = 1000

// maxReason bounds free text (reasons) in bytes.
const maxReason = 1024

type decoder struct {
	path     string
	sc       scanner
	lines    lineIndex
	problems []*CorruptError
	dropped  int
	slab     []Record // records are allocated in blocks
	kcvs     kcvChecker
}

func (d *decoder) problem(off int, field, msg string) {
	if len(d.problems) >= maxProblems {
		d.dropped++
		return
	}
	d.problems = append(d.problems, &CorruptError{Path: d.path, Field: field, Msg: msg, off: off})
}

// fatal turns a syntax error into the decode's final problem.
func (d *decoder) fatal(e *scanError) {
	d.problems = append(d.problems, &CorruptError{Path: d.path, Msg: e.msg, off: e.off})
}

// finish fills in line numbers.
func (d *decoder) finish() []*CorruptError {
	for _, p := range d.problems {
		p.Line = d.lines.line(p.off)
	}
	if d.dropped > 0 && len(d.problems) > 0 {
		d.problems[len(d.problems)-1].More = d.dropped
	}
	return d.problems
}

// str reads a string member; a non-string value is a problem (ok false)
// and is skipped.
func (d *decoder) str(field string) (raw []byte, esc bool, off int, ok bool, err *scanError) {
	if c := d.sc.peek(); c != '"' {
		off = d.sc.pos
		if err = d.sc.skip(0); err != nil {
			return nil, false, off, false, err
		}
		d.problem(off, field, "must be a string")
		return nil, false, off, false, nil
	}
	raw, esc, off, err = d.sc.str()
	return raw, esc, off, err == nil, err
}

// uint reads a whole-number member no larger than limit.
func (d *decoder) uint(field string, limit uint64) (v uint64, ok bool, err *scanError) {
	c := d.sc.peek()
	if c != '-' && (c < '0' || c > '9') {
		off := d.sc.pos
		if err = d.sc.skip(0); err != nil {
			return 0, false, err
		}
		d.problem(off, field, "must be a number")
		return 0, false, nil
	}
	v, off, e := d.sc.uint(limit)
	if e != nil {
		d.problem(off, field, e.msg)
		return 0, false, nil
	}
	return v, true, nil
}

func (d *decoder) time(field string) (time.Time, bool, *scanError) {
	raw, _, off, ok, err := d.str(field)
	if !ok {
		return time.Time{}, false, err
	}
	t, ok := parseTime(raw)
	if !ok {
		d.problem(off, field, "not an RFC 3339 time")
	}
	return t, ok, nil
}

func (d *decoder) source(field string) (Source, bool, *scanError) {
	raw, _, off, ok, err := d.str(field)
	if !ok {
		return "", false, err
	}
	switch string(raw) {
	case "derived":
		return SourceDerived, true, nil
	case "random":
		return SourceRandom, true, nil
	case "imported":
		return SourceImported, true, nil
	}
	d.problem(off, field, "not one of derived, random, imported")
	return "", false, nil
}

func (d *decoder) kcv(field string) (string, bool, *scanError) {
	raw, _, off, ok, err := d.str(field)
	if !ok {
		return "", false, err
	}
	s := string(raw)
	if !validKCV(s) {
		d.problem(off, field, "not a KCV (8 lowercase hex digits)")
		return "", false, nil
	}
	return s, true, nil
}

func (d *decoder) reason(field string) (string, bool, *scanError) {
	raw, esc, off, ok, err := d.str(field)
	if !ok {
		return "", false, err
	}
	if len(raw) > 6*maxReason {
		d.problem(off, field, "too long")
		return "", false, nil
	}
	s := unquote(raw, esc)
	if len(s) > maxReason {
		d.problem(off, field, "too long")
		return "", false, nil
	}
	return s, true, nil
}

type item struct {
	rec *Record
	off int
}

// decodeRegistry parses a registry file. It returns the sound records and
// every problem found (up to maxProblems); the registry is nil when the
// file cannot be read as a registry at all (syntax, version). A caller that
// needs the whole registry refuses it when there is any problem. Key bytes
// go straight from data into psk.Secrets; the caller wipes data afterwards.
func decodeRegistry(path string, data []byte) (*regData, []*CorruptError) {
	d := &decoder{path: path, sc: scanner{data: data}, lines: lineIndex{data: data}}
	reg := &regData{}
	var items []item
	var seen uint8
	var version uint64
	versionOK := false
	err := d.sc.object(func(name string, off int) *scanError {
		var bit uint8
		switch name {
		case "version":
			bit = 1
		case "audit":
			bit = 2
		case "devices":
			bit = 4
		default:
			d.problem(off, "", "unknown field")
			return d.sc.skip(0)
		}
		if seen&bit != 0 {
			d.problem(off, name, "duplicate field")
			return d.sc.skip(0)
		}
		seen |= bit
		switch name {
		case "version":
			v, ok, err := d.uint("version", 1<<31)
			version, versionOK = v, ok
			return err
		case "audit":
			return d.auditHead(&reg.head)
		default:
			if d.sc.peek() != '[' {
				off := d.sc.pos
				d.problem(off, "devices", "must be an array")
				return d.sc.skip(0)
			}
			if items == nil {
				items = make([]item, 0, len(data)/160+1)
			}
			return d.sc.array(func(int) *scanError {
				rec, off, err := d.device()
				if rec != nil {
					items = append(items, item{rec, off})
				}
				return err
			})
		}
	})
	if err == nil && d.sc.peek() != 0 {
		err = d.sc.errAt(d.sc.pos, "unexpected data after the registry object")
	}
	fatal := true
	switch {
	case err != nil:
		d.fatal(err)
	case seen&1 == 0:
		d.problem(0, "version", "missing: not a usmp-psk registry")
	case !versionOK:
		// The version's problem is recorded.
	case version != SchemaVersion:
		// An unknown schema: the other problems mean nothing.
		d.problems = d.problems[:0]
		d.problem(0, "version", "unsupported registry version (this usmp-psk reads version 1)")
	default:
		fatal = false
	}
	if fatal {
		for _, it := range items {
			it.rec.Destroy()
		}
		return nil, d.finish()
	}
	if seen&4 == 0 {
		d.problem(0, "devices", "missing")
	}
	// Sort (a hand-edited file may be out of order) and find duplicates.
	if !slices.IsSortedFunc(items, func(a, b item) int { return strings.Compare(a.rec.ID, b.rec.ID) }) {
		slices.SortStableFunc(items, func(a, b item) int { return strings.Compare(a.rec.ID, b.rec.ID) })
	}
	reg.recs = make([]*Record, 0, len(items))
	for i, it := range items {
		if i > 0 && it.rec.ID == items[i-1].rec.ID {
			a, b := items[i-1].off, it.off
			if a > b {
				a, b = b, a
			}
			d.problem(b, "id", "duplicate device id (also on line "+itoa(d.lines.line(a))+")")
			if len(d.problems) > 0 {
				d.problems[len(d.problems)-1].Device = it.rec.ID
			}
			it.rec.Destroy()
			continue
		}
		reg.recs = append(reg.recs, it.rec)
	}
	if len(d.problems) > 0 {
		slices.SortStableFunc(d.problems, func(a, b *CorruptError) int { return a.off - b.off })
		return reg, d.finish()
	}
	return reg, nil
}

func (d *decoder) auditHead(h *AuditHead) *scanError {
	if d.sc.peek() != '{' {
		off := d.sc.pos
		d.problem(off, "audit", "must be an object")
		return d.sc.skip(0)
	}
	start := d.sc.pos
	var seen uint8
	err := d.sc.object(func(name string, off int) *scanError {
		switch name {
		case "seq":
			if seen&1 != 0 {
				d.problem(off, "audit.seq", "duplicate field")
				return d.sc.skip(0)
			}
			seen |= 1
			v, _, err := d.uint("audit.seq", 1<<62)
			h.Seq = v
			return err
		case "hash":
			if seen&2 != 0 {
				d.problem(off, "audit.hash", "duplicate field")
				return d.sc.skip(0)
			}
			seen |= 2
			raw, _, off, ok, err := d.str("audit.hash")
			if ok {
				if !validHash(raw) {
					d.problem(off, "audit.hash", "not 64 lowercase hex digits")
				} else {
					h.Hash = string(raw)
				}
			}
			return err
		}
		d.problem(off, "audit", "unknown field")
		return d.sc.skip(0)
	})
	if err == nil && seen != 3 {
		d.problem(start, "audit", "needs seq and hash")
	}
	return err
}

// device parses one device object. It returns nil when the record has a
// problem (recorded in d.problems).
func (d *decoder) device() (*Record, int, *scanError) {
	c := d.sc.peek()
	start := d.sc.pos
	if c != '{' {
		d.problem(start, "", "a device must be an object")
		return nil, start, d.sc.skip(0)
	}
	first := len(d.problems)
	if len(d.slab) == 0 {
		d.slab = make([]Record, 256)
	}
	r := &d.slab[0]
	d.slab = d.slab[1:]
	var seen uint16
	idOK := false
	bad := false
	err := d.sc.objectRaw(func(rawName []byte, esc bool, off int) *scanError {
		if esc {
			rawName = []byte(unquote(rawName, esc))
		}
		bit := deviceField(rawName)
		if bit == 0 {
			d.problem(off, "", "unknown field")
			bad = true
			return d.sc.skip(0)
		}
		if seen&bit != 0 {
			d.problem(off, string(rawName), "duplicate field")
			bad = true
			return d.sc.skip(0)
		}
		seen |= bit
		var ok bool
		var err *scanError
		switch bit {
		case fID:
			var raw []byte
			var esc bool
			var voff int
			raw, esc, voff, ok, err = d.str("id")
			if ok {
				id := unquote(raw, esc)
				if psk.ValidateDeviceID(id) != nil {
					d.problem(voff, "id", "not a valid device id (1-64 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit)")
					ok = false
				} else {
					r.ID, idOK = id, true
				}
			}
		case fSource:
			r.Source, ok, err = d.source("source")
		case fStatus:
			var raw []byte
			var voff int
			raw, _, voff, ok, err = d.str("status")
			if ok {
				switch string(raw) {
				case "active":
					r.Status = StatusActive
				case "revoked":
					r.Status = StatusRevoked
				default:
					d.problem(voff, "status", "not one of active, revoked")
					ok = false
				}
			}
		case fEpoch:
			var v uint64
			v, ok, err = d.uint("epoch", 1<<32-1)
			r.Epoch = uint32(v)
		case fKCV:
			r.KCV, ok, err = d.kcv("kcv")
		case fPSK:
			var raw []byte
			var esc bool
			var voff int
			raw, esc, voff, ok, err = d.str("psk")
			if ok {
				if esc {
					d.problem(voff, "psk", "not a hex key: escapes are not allowed")
					ok = false
				} else if key, msg := decodeHexSecret(raw); msg != "" {
					d.problem(voff, "psk", msg)
					ok = false
				} else {
					r.Key = key
				}
			}
		case fCreated:
			r.Created, ok, err = d.time("created")
		case fUpdated:
			r.Updated, ok, err = d.time("updated")
		case fRevoked:
			r.Revoked, ok, err = d.time("revoked")
		case fReason:
			r.RevokeReason, ok, err = d.reason("revoke_reason")
		case fHistory:
			ok, err = d.history(r)
		}
		if !ok {
			bad = true
		}
		return err
	})
	if err == nil && !bad {
		if missing := requiredFields &^ seen; missing != 0 {
			for i, name := range fieldNames {
				if bit := uint16(1) << i; missing&bit != 0 {
					d.problem(start, name, "missing")
					break
				}
			}
			bad = true
		} else if field, msg := r.crossCheck(seen, &d.kcvs); msg != "" {
			d.problem(start, field, msg)
			bad = true
		}
	}
	if idOK {
		for _, p := range d.problems[min(first, len(d.problems)):] {
			p.Device = r.ID
		}
	}
	if bad || err != nil {
		r.Destroy()
		return nil, start, err
	}
	return r, start, nil
}

// crossCheck applies the rules between fields of a decoded record.
func (r *Record) crossCheck(seen uint16, kc *kcvChecker) (field, msg string) {
	switch {
	case r.Source == SourceDerived && r.Key != nil:
		return "psk", "a derived device must not hold key bytes"
	case r.Source.Stored() && r.Status == StatusActive && r.Key == nil:
		return "psk", "missing: an active " + string(r.Source) + " device holds its key"
	case r.Key != nil && !kc.matches(r.Key, r.KCV):
		return "kcv", "does not match the stored key"
	case r.Status == StatusActive && seen&(fRevoked|fReason) != 0:
		return "revoked", "set on an active device"
	case r.Status == StatusRevoked && seen&fRevoked == 0:
		return "revoked", "missing on a revoked device"
	}
	return "", ""
}

func (d *decoder) history(r *Record) (bool, *scanError) {
	if d.sc.peek() != '[' {
		off := d.sc.pos
		d.problem(off, "history", "must be an array")
		return false, d.sc.skip(0)
	}
	ok := true
	err := d.sc.array(func(int) *scanError {
		if d.sc.peek() != '{' {
			off := d.sc.pos
			d.problem(off, "history", "an entry must be an object")
			ok = false
			return d.sc.skip(0)
		}
		start := d.sc.pos
		var h Retired
		var seen uint8
		err := d.sc.objectRaw(func(rawName []byte, esc bool, off int) *scanError {
			name := ""
			if esc {
				name = unquote(rawName, esc)
				rawName = []byte(name)
			}
			var bit uint8
			switch string(rawName) {
			case "kcv":
				bit = 1
			case "epoch":
				bit = 2
			case "source":
				bit = 4
			case "reason":
				bit = 8
			case "retired":
				bit = 16
			default:
				d.problem(off, "history", "unknown field")
				ok = false
				return d.sc.skip(0)
			}
			if seen&bit != 0 {
				d.problem(off, "history."+string(rawName), "duplicate field")
				ok = false
				return d.sc.skip(0)
			}
			seen |= bit
			var fok bool
			var err *scanError
			switch bit {
			case 1:
				h.KCV, fok, err = d.kcv("history.kcv")
			case 2:
				var v uint64
				v, fok, err = d.uint("history.epoch", 1<<32-1)
				h.Epoch = uint32(v)
			case 4:
				h.Source, fok, err = d.source("history.source")
			case 8:
				h.Reason, fok, err = d.reason("history.reason")
			case 16:
				h.Retired, fok, err = d.time("history.retired")
			}
			if !fok {
				ok = false
			}
			return err
		})
		if err == nil && seen|8 != 31 {
			d.problem(start, "history", "an entry needs kcv, epoch, source and retired")
			ok = false
		}
		r.History = append(r.History, h)
		return err
	})
	return ok, err
}

func validHash(b []byte) bool {
	if len(b) != 64 {
		return false
	}
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parseTime reads an RFC 3339 time, with a fast path for the form the
// encoder writes (2006-01-02T15:04:05Z).
func parseTime(b []byte) (time.Time, bool) {
	if len(b) == 20 && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' && b[19] == 'Z' {
		num := func(s []byte) (int, bool) {
			n := 0
			for _, c := range s {
				if c < '0' || c > '9' {
					return 0, false
				}
				n = n*10 + int(c-'0')
			}
			return n, true
		}
		y, ok1 := num(b[0:4])
		mo, ok2 := num(b[5:7])
		dd, ok3 := num(b[8:10])
		h, ok4 := num(b[11:13])
		mi, ok5 := num(b[14:16])
		s, ok6 := num(b[17:19])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && mo >= 1 && mo <= 12 && dd >= 1 && h < 24 && mi < 60 && s < 60 {
			t := time.Date(y, time.Month(mo), dd, h, mi, s, 0, time.UTC)
			if t.Day() == dd {
				return t, true
			}
		}
		return time.Time{}, false
	}
	if len(b) > 64 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// encodeRegistry appends the file form of reg to buf. The result holds key
// hex when a record holds a key: the caller wipes it after writing.
func encodeRegistry(buf []byte, reg *regData) []byte {
	buf = append(buf, "{\n  \"version\": 1,\n  \"audit\": {\"seq\": "...)
	buf = appendUint(buf, reg.head.Seq)
	buf = append(buf, ", \"hash\": \""...)
	if reg.head.Hash == "" {
		buf = append(buf, zeroHash...)
	} else {
		buf = append(buf, reg.head.Hash...)
	}
	buf = append(buf, "\"},\n  \"devices\": ["...)
	if len(reg.recs) == 0 {
		return append(buf, "]\n}\n"...)
	}
	buf = append(buf, '\n')
	for i, r := range reg.recs {
		buf = append(buf, "    "...)
		buf = appendRecord(buf, r)
		if i < len(reg.recs)-1 {
			buf = append(buf, ',')
		}
		buf = append(buf, '\n')
	}
	return append(buf, "  ]\n}\n"...)
}

func appendRecord(buf []byte, r *Record) []byte {
	buf = append(buf, `{"id":`...)
	buf = appendString(buf, r.ID)
	buf = append(buf, `,"source":"`...)
	buf = append(buf, r.Source...)
	buf = append(buf, `","epoch":`...)
	buf = appendUint(buf, uint64(r.Epoch))
	buf = append(buf, `,"status":"`...)
	buf = append(buf, r.Status...)
	buf = append(buf, `","kcv":"`...)
	buf = append(buf, r.KCV...)
	buf = append(buf, '"')
	if r.Key != nil {
		buf = append(buf, `,"psk":"`...)
		for _, c := range r.Key.Expose() {
			buf = append(buf, hexDigits[c>>4], hexDigits[c&0x0f])
		}
		buf = append(buf, '"')
	}
	buf = append(buf, `,"created":"`...)
	buf = appendTime(buf, r.Created)
	buf = append(buf, `","updated":"`...)
	buf = appendTime(buf, r.Updated)
	buf = append(buf, '"')
	if r.Status == StatusRevoked {
		buf = append(buf, `,"revoked":"`...)
		buf = appendTime(buf, r.Revoked)
		buf = append(buf, '"')
		if r.RevokeReason != "" {
			buf = append(buf, `,"revoke_reason":`...)
			buf = appendString(buf, r.RevokeReason)
		}
	}
	if len(r.History) > 0 {
		buf = append(buf, `,"history":[`...)
		for i, h := range r.History {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `{"kcv":"`...)
			buf = append(buf, h.KCV...)
			buf = append(buf, `","epoch":`...)
			buf = appendUint(buf, uint64(h.Epoch))
			buf = append(buf, `,"source":"`...)
			buf = append(buf, h.Source...)
			buf = append(buf, '"')
			if h.Reason != "" {
				buf = append(buf, `,"reason":`...)
				buf = appendString(buf, h.Reason)
			}
			buf = append(buf, `,"retired":"`...)
			buf = appendTime(buf, h.Retired)
			buf = append(buf, `"}`...)
		}
		buf = append(buf, ']')
	}
	return append(buf, '}')
}

const hexDigits = "0123456789abcdef"

func appendUint(buf []byte, v uint64) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(buf, b[i:]...)
}

// appendString appends s as a JSON string: '"' and '\' are escaped with a
// backslash, bytes below 0x20 as \u00xx (lowercase hex), invalid UTF-8 is
// replaced by U+FFFD, everything else is copied as it is. The audit log's
// canonical form uses the same rule.
func appendString(buf []byte, s string) []byte {
	if !utf8ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		default:
			buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0x0f])
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// appendTime appends t in RFC 3339, UTC, with fractional seconds only when
// t has them.
func appendTime(buf []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	if t.Nanosecond() != 0 || y < 0 || y > 9999 {
		return t.AppendFormat(buf, time.RFC3339Nano)
	}
	h, mi, s := t.Clock()
	two := func(buf []byte, v int) []byte { return append(buf, byte('0'+v/10), byte('0'+v%10)) }
	buf = append(buf, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-')
	buf = two(buf, int(mo))
	buf = append(buf, '-')
	buf = two(buf, d)
	buf = append(buf, 'T')
	buf = two(buf, h)
	buf = append(buf, ':')
	buf = two(buf, mi)
	buf = append(buf, ':')
	buf = two(buf, s)
	return append(buf, 'Z')
}

func utf8ValidString(s string) bool { return utf8.ValidString(s) }
