package registry

// The audit log: one entry per event, each chained to the previous one by
// its hash. docs/registry.md ("The audit log") is the specification; in
// short, the hash of an entry is the SHA-256 (lowercase hex) of its
// canonical form, the JSON object without its "hash" member, no white
// space, members in this order:
//
//	{"seq":S,"time":"T","event":"E","device":"D","kcv":"K","epoch":N,"source":"O","actor":"A","prev":"P"}
//
// "device", "kcv" and "epoch" are present together, for events about one
// device; "source" follows them in entries this version writes (entries of
// earlier versions have none). The line is the canonical form with
// `,"hash":"H"` inserted before the closing brace. Strings are escaped as
// in JSON with one exact rule (appendString). Key bytes are never part of
// an entry.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usmp/usmp-psk/internal/psk"
)

// Event is the kind of an audit entry.
type Event string

// The events an audit entry records.
const (
	EventInit   Event = "init"
	EventAdd    Event = "add"
	EventRotate Event = "rotate"
	EventRevoke Event = "revoke"
	EventImport Event = "import"
	EventExport Event = "export"
	EventBatch  Event = "batch"
	// EventRekey records that stored keys were sealed under another
	// registry key (registry rekey): no device changes, but every stored
	// key's row was rewritten.
	EventRekey Event = "rekey"
)

func (e Event) valid() bool {
	switch e {
	case EventInit, EventAdd, EventRotate, EventRevoke, EventImport, EventExport, EventBatch, EventRekey:
		return true
	}
	return false
}

const (
	// zeroHash is the prev of the first entry.
	zeroHash = "0000000000000000000000000000000000000000000000000000000000000000"
	// hashSuffixLen is the length of `,"hash":"<64 hex>"`.
	hashSuffixLen = len(`,"hash":"`) + 64 + len(`"`)
	// maxAuditLine bounds an entry.
	maxAuditLine = 64 << 10
)

// AuditEvent is what an operation records; the store adds seq, prev and
// hash when it commits.
type AuditEvent struct {
	Time   time.Time
	Event  Event
	Device string // "" when the event concerns no single device
	KCV    string // the device's KCV after the event
	Epoch  uint32 // the device's epoch after the event
	Source Source // the device's key source after the event ("" in entries of earlier versions)
	Actor  string
}

// AuditEntry is one entry of the audit log.
type AuditEntry struct {
	Seq uint64
	AuditEvent
	Prev string
	Hash string
}

// AuditHead names the last entry of a log: its seq and hash.
type AuditHead struct {
	Seq  uint64
	Hash string
}

// String is the checkpoint form SEQ:HASH (registry audit --head).
func (h AuditHead) String() string { return strconv.FormatUint(h.Seq, 10) + ":" + h.Hash }

// prevHash is the hash the next entry chains to.
func (h AuditHead) prevHash() string {
	if h.Seq == 0 || h.Hash == "" {
		return zeroHash
	}
	return h.Hash
}

// ParseAuditHead reads a checkpoint SEQ:HASH (registry audit --expect).
func ParseAuditHead(source, s string) (AuditHead, error) {
	seqText, hash, ok := strings.Cut(s, ":")
	seq, err := strconv.ParseUint(seqText, 10, 63)
	if !ok || err != nil || seq == 0 || !validHash([]byte(hash)) {
		return AuditHead{}, &psk.InputError{Source: source, Msg: "not a checkpoint SEQ:HASH (what 'registry audit --head' prints: a positive seq, a colon, 64 lowercase hex digits)"}
	}
	return AuditHead{Seq: seq, Hash: hash}, nil
}

// appendCanonical appends the canonical form of an entry (no hash).
func appendCanonical(buf []byte, seq uint64, ev *AuditEvent, prev string) []byte {
	buf = append(buf, `{"seq":`...)
	buf = strconv.AppendUint(buf, seq, 10)
	buf = append(buf, `,"time":"`...)
	buf = appendTime(buf, ev.Time)
	buf = append(buf, `","event":`...)
	buf = appendString(buf, string(ev.Event))
	if ev.Device != "" {
		buf = append(buf, `,"device":`...)
		buf = appendString(buf, ev.Device)
		buf = append(buf, `,"kcv":`...)
		buf = appendString(buf, ev.KCV)
		buf = append(buf, `,"epoch":`...)
		buf = strconv.AppendUint(buf, uint64(ev.Epoch), 10)
		if ev.Source != "" {
			buf = append(buf, `,"source":`...)
			buf = appendString(buf, string(ev.Source))
		}
	}
	buf = append(buf, `,"actor":`...)
	buf = appendString(buf, ev.Actor)
	buf = append(buf, `,"prev":"`...)
	buf = append(buf, prev...)
	return append(buf, `"}`...)
}

// auditLine returns the line of an entry (without "\n") and its hash.
func auditLine(seq uint64, ev *AuditEvent, prev string) (line []byte, hash string) {
	buf := appendCanonical(make([]byte, 0, 256), seq, ev, prev)
	sum := sha256.Sum256(buf)
	hash = hex.EncodeToString(sum[:])
	buf = append(buf[:len(buf)-1], `,"hash":"`...)
	buf = append(buf, hash...)
	return append(buf, `"}`...), hash
}

// auditFields are the members of an entry as JSON gives them; pointers
// tell a missing member from a zero one.
type auditFields struct {
	Seq    *uint64 `json:"seq"`
	Time   *string `json:"time"`
	Event  *string `json:"event"`
	Device *string `json:"device"`
	KCV    *string `json:"kcv"`
	Epoch  *uint64 `json:"epoch"`
	Source *string `json:"source"`
	Actor  *string `json:"actor"`
	Prev   *string `json:"prev"`
	Hash   *string `json:"hash"`
}

// parseAuditLine checks one line (without "\n"): its fields, its exact
// canonical form (the parsed fields are encoded again and must give the
// same bytes) and its hash. The message says what is wrong.
func parseAuditLine(line []byte) (*AuditEntry, string) {
	n := len(line)
	if n <= maxAuditLine && (n < hashSuffixLen+2 || line[n-1] != '}' || !bytes.HasPrefix(line[n-1-hashSuffixLen:], []byte(`,"hash":"`))) {
		return nil, "damaged: not an audit entry (no hash at its end)"
	}
	e, msg := parseAuditFields(line)
	if msg != "" {
		return nil, msg
	}
	canon := appendCanonical(make([]byte, 0, n), e.Seq, &e.AuditEvent, e.Prev)
	body := line[:n-1-hashSuffixLen]
	if !bytes.Equal(canon[:len(canon)-1], body) {
		return nil, "not in canonical form: the entry was edited"
	}
	sum := sha256.Sum256(canon)
	if hex.EncodeToString(sum[:]) != e.Hash {
		return nil, "the hash does not match the entry's content: the entry was edited"
	}
	return e, ""
}

// parseAuditFields decodes one line's members into an entry without
// checking its form or hash: what a replay of a broken log can still use.
func parseAuditFields(line []byte) (*AuditEntry, string) {
	if len(line) > maxAuditLine {
		return nil, "damaged: the entry is too long"
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var f auditFields
	if err := dec.Decode(&f); err != nil || dec.More() {
		return nil, "damaged: not a JSON audit entry with known fields"
	}
	return f.entry()
}

// entry checks the members and builds the entry.
func (f *auditFields) entry() (*AuditEntry, string) {
	if f.Seq == nil || f.Time == nil || f.Event == nil || f.Actor == nil || f.Prev == nil || f.Hash == nil {
		return nil, "damaged: fields are missing"
	}
	one := f.Device != nil
	if f.KCV != nil != one || f.Epoch != nil != one || (f.Source != nil && !one) {
		return nil, "damaged: device, kcv and epoch are not given together"
	}
	e := &AuditEntry{Seq: *f.Seq, Prev: *f.Prev, Hash: *f.Hash,
		AuditEvent: AuditEvent{Event: Event(*f.Event), Actor: *f.Actor}}
	t, err := time.Parse(time.RFC3339Nano, *f.Time)
	switch {
	case err != nil:
		return nil, "damaged: bad time"
	case !e.Event.valid():
		return nil, "damaged: unknown event"
	case !validHash([]byte(e.Prev)):
		return nil, "damaged: prev is not 64 lowercase hex digits"
	case !validHash([]byte(e.Hash)):
		return nil, "damaged: the hash is not 64 lowercase hex digits"
	}
	e.Time = t.UTC()
	if one {
		if psk.ValidateDeviceID(*f.Device) != nil || *f.Epoch > 1<<32-1 {
			return nil, "damaged: bad device id or epoch"
		}
		e.Device, e.KCV, e.Epoch = *f.Device, *f.KCV, uint32(*f.Epoch)
		if f.Source != nil {
			if e.Source = Source(*f.Source); !e.Source.valid() {
				return nil, "damaged: unknown source"
			}
		}
	}
	return e, ""
}

// chain verifies a log entry by entry: each line canonical with a correct
// hash, seq counting from 1, prev equal to the previous hash.
type chain struct {
	location string
	head     AuditHead
}

// next checks the next line of the log.
func (c *chain) next(line []byte) (*AuditEntry, error) {
	n := c.head.Seq + 1
	bad := func(msg string) error { return &AuditError{Path: c.location, Line: int(n), Msg: msg} }
	e, msg := parseAuditLine(line)
	switch {
	case msg != "":
		return nil, bad(msg)
	case e.Seq != n:
		return nil, bad("seq is " + strconv.FormatUint(e.Seq, 10) + ", expected " + strconv.FormatUint(n, 10) + ": an entry was deleted, inserted or moved")
	case e.Prev != c.head.prevHash() && n == 1:
		return nil, bad("prev of the first entry is not 64 zeros: the start of the log was cut off")
	case e.Prev != c.head.prevHash():
		return nil, bad("prev does not match the hash of entry " + strconv.FormatUint(n-1, 10) + ": an entry was edited, deleted, inserted or moved")
	}
	c.head = AuditHead{Seq: n, Hash: e.Hash}
	return e, nil
}

// end checks the chain's end against the head the registry records.
func (c *chain) end(recorded AuditHead) error {
	n := c.head.Seq
	switch {
	case recorded.Seq > n:
		return &AuditError{Path: c.location, Line: int(n), Msg: "the log ends at entry " + strconv.FormatUint(n, 10) + " but the registry records entry " + strconv.FormatUint(recorded.Seq, 10) + ": entries were deleted"}
	case recorded.Seq < n:
		return &AuditError{Path: c.location, Line: int(recorded.Seq + 1), Msg: "entries after the last one the registry records (" + strconv.FormatUint(recorded.Seq, 10) + "): entries were added outside usmp-psk"}
	case n > 0 && recorded.Hash != c.head.Hash:
		return &AuditError{Path: c.location, Line: int(n), Msg: "this entry is not the one the registry records: the log was rewritten"}
	}
	return nil
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

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string: '"' and '\' are escaped with a
// backslash, bytes below 0x20 as \u00xx (lowercase hex), invalid UTF-8 is
// replaced by U+FFFD, everything else is copied as it is.
func appendString(buf []byte, s string) []byte {
	if !utf8.ValidString(s) {
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
		if c == '"' || c == '\\' {
			buf = append(buf, '\\', c)
		} else {
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
	if t.Nanosecond() != 0 {
		return t.AppendFormat(buf, time.RFC3339Nano)
	}
	return t.AppendFormat(buf, "2006-01-02T15:04:05Z")
}
