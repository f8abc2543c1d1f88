package registry

// The audit log, design §5: "<registry path without .json>.audit.jsonl",
// one JSON object per line, each chained to the previous one by its hash.
//
// Canonical form. The hash of a line is the SHA-256, in lowercase hex, of
// the line's canonical form, which is the line's JSON object without its
// "hash" member, with no white space, members in this order:
//
//	{"seq":S,"time":"T","event":"E","device":"D","kcv":"K","epoch":N,"actor":"A","prev":"P"}
//
//   - S: the line's 1-based sequence number, decimal without leading zeros;
//   - T: the time in RFC 3339, UTC, "Z", fractional seconds only when not
//     zero (the tool writes whole seconds: 2006-01-02T15:04:05Z);
//   - E: init, add, rotate, revoke, import, export or batch;
//   - "device", "kcv" and "epoch" are present together when the event
//     concerns one device (D its id, K its KCV after the event, N its epoch
//     after the event, decimal) and absent otherwise (init, export);
//   - A: the actor: the OS user name, then for each CI job variable that is
//     set, in a fixed order, a space and NAME=value (see actor.go);
//   - P: the hash of the previous line, 64 lowercase hex digits; 64 zeros
//     on the first line.
//
// Strings are written as in JSON with this exact escaping: '"' and '\' as
// \" and \\, bytes below 0x20 as \u00xx with lowercase hex, invalid UTF-8
// replaced by U+FFFD, every other character as its UTF-8 bytes. The line in
// the file is the canonical form with `,"hash":"H"` inserted before its
// closing brace, followed by "\n". So hash = sha256(line minus the 75 bytes
// `,"hash":"<64 hex>"` before the final '}'), and a line must be exactly
// canonical: a verifier re-encodes the parsed fields and compares bytes.
// Key bytes are never part of a line.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/secfile"
)

// auditWrite appends to the audit log. Tests replace it to make an append
// fail part way (as on a full disk) without lowering a process-wide limit
// that the test framework's own files would hit.
var auditWrite = (*os.File).Write

// Event is the kind of an audit entry.
type Event string

// The events of design §5.
const (
	EventInit   Event = "init"
	EventAdd    Event = "add"
	EventRotate Event = "rotate"
	EventRevoke Event = "revoke"
	EventImport Event = "import"
	EventExport Event = "export"
	EventBatch  Event = "batch"
)

const (
	// zeroHash is the prev of the first line.
	zeroHash = "0000000000000000000000000000000000000000000000000000000000000000"
	// hashSuffixLen is the length of `,"hash":"<64 hex>"`.
	hashSuffixLen = len(`,"hash":"`) + 64 + len(`"`)
	// maxAuditLine bounds a line of the log.
	maxAuditLine = 64 << 10
)

func (e Event) valid() bool {
	switch e {
	case EventInit, EventAdd, EventRotate, EventRevoke, EventImport, EventExport, EventBatch:
		return true
	}
	return false
}

// AuditEvent is what an operation records: the store adds seq, prev and
// hash when it commits.
type AuditEvent struct {
	Time   time.Time
	Event  Event
	Device string // "" when the event concerns no single device
	KCV    string // the device's KCV after the event
	Epoch  uint32 // the device's epoch after the event
	Actor  string
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	Seq uint64
	AuditEvent
	Prev string
	Hash string
}

// AuditPath returns the audit log of a registry file: the path without a
// ".json" suffix, plus ".audit.jsonl".
func AuditPath(registryPath string) string {
	return strings.TrimSuffix(registryPath, ".json") + ".audit.jsonl"
}

// appendCanonical appends the canonical form of an entry (no hash).
func appendCanonical(buf []byte, seq uint64, ev *AuditEvent, prev string) []byte {
	buf = append(buf, `{"seq":`...)
	buf = appendUint(buf, seq)
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
		buf = appendUint(buf, uint64(ev.Epoch))
	}
	buf = append(buf, `,"actor":`...)
	buf = appendString(buf, ev.Actor)
	buf = append(buf, `,"prev":"`...)
	buf = append(buf, prev...)
	return append(buf, `"}`...)
}

// appendAuditLine appends the line of an entry (with "\n") and returns the
// entry's hash.
func appendAuditLine(buf []byte, seq uint64, ev *AuditEvent, prev string) ([]byte, string) {
	start := len(buf)
	buf = appendCanonical(buf, seq, ev, prev)
	sum := sha256.Sum256(buf[start:])
	h := hex.EncodeToString(sum[:])
	buf = buf[:len(buf)-1]
	buf = append(buf, `,"hash":"`...)
	buf = append(buf, h...)
	return append(buf, "\"}\n"...), h
}

// parseAuditLine checks one line (without "\n"): exact canonical form and
// hash. The message says what is wrong.
func parseAuditLine(line []byte) (*AuditEntry, string) {
	n := len(line)
	if n < hashSuffixLen+2 || line[n-1] != '}' || !bytes.HasPrefix(line[n-1-hashSuffixLen:], []byte(`,"hash":"`)) || line[n-2] != '"' {
		return nil, "damaged: not an audit entry (no hash at its end)"
	}
	hash := line[n-1-hashSuffixLen+len(`,"hash":"`) : n-2]
	if !validHash(hash) {
		return nil, "damaged: the hash is not 64 lowercase hex digits"
	}
	canon := make([]byte, 0, n-hashSuffixLen)
	canon = append(canon, line[:n-1-hashSuffixLen]...)
	canon = append(canon, '}')

	e := &AuditEntry{Hash: string(hash)}
	sc := scanner{data: canon}
	var seen uint16
	msg := ""
	err := sc.object(func(name string, _ int) *scanError {
		var bit uint16
		switch name {
		case "seq":
			bit = 1
		case "time":
			bit = 2
		case "event":
			bit = 4
		case "device":
			bit = 8
		case "kcv":
			bit = 16
		case "epoch":
			bit = 32
		case "actor":
			bit = 64
		case "prev":
			bit = 128
		default:
			msg = "damaged: unknown field"
			return sc.skip(0)
		}
		if seen&bit != 0 {
			msg = "damaged: duplicate field " + name
		}
		seen |= bit
		switch name {
		case "seq", "epoch":
			v, _, err := sc.uint(1 << 62)
			if err != nil {
				if msg == "" {
					msg = "damaged: bad " + name
				}
				return nil
			}
			if name == "seq" {
				e.Seq = v
			} else if v > 1<<32-1 {
				msg = "damaged: bad epoch"
			} else {
				e.Epoch = uint32(v)
			}
			return nil
		}
		raw, esc, _, err := sc.str()
		if err != nil {
			return err
		}
		s := unquote(raw, esc)
		switch name {
		case "time":
			t, ok := parseTime(raw)
			if !ok && msg == "" {
				msg = "damaged: bad time"
			}
			e.Time = t
		case "event":
			e.Event = Event(s)
			if !e.Event.valid() && msg == "" {
				msg = "damaged: unknown event"
			}
		case "device":
			e.Device = s
			if psk.ValidateDeviceID(s) != nil && msg == "" {
				msg = "damaged: bad device id"
			}
		case "kcv":
			e.KCV = s
		case "actor":
			e.Actor = s
		case "prev":
			e.Prev = s
			if !validHash(raw) && msg == "" {
				msg = "damaged: prev is not 64 lowercase hex digits"
			}
		}
		return nil
	})
	if err != nil {
		return nil, "damaged: " + err.msg
	}
	if sc.peek() != 0 {
		return nil, "damaged: data after the entry"
	}
	if msg != "" {
		return nil, msg
	}
	if seen&(1|2|4|64|128) != 1|2|4|64|128 || (seen&(8|16|32) != 0 && seen&(8|16|32) != 8|16|32) {
		return nil, "damaged: fields are missing"
	}
	if again := appendCanonical(nil, e.Seq, &e.AuditEvent, e.Prev); !bytes.Equal(again, canon) {
		return nil, "not in canonical form: the line was edited"
	}
	sum := sha256.Sum256(canon)
	if hex.EncodeToString(sum[:]) != e.Hash {
		return nil, "the hash does not match the line's content: the line was edited"
	}
	return e, ""
}

// VerifyAudit checks the whole chain of the audit log at path: every line
// canonical with a correct hash, seq counting from 1, prev equal to the
// previous line's hash (64 zeros on line 1), the last line complete. It
// returns an *AuditError that says at which line the chain breaks (a line
// edited, deleted, inserted or moved; the start or the end cut off). A
// log cut after a complete line is only detectable against the registry's
// recorded head: see Registry.VerifyAudit.
func VerifyAudit(path string) error {
	_, _, err := verifyAudit(path, 0, nil)
	return err
}

// AuditReport is the result of a successful verification.
type AuditReport struct {
	Path    string
	Entries uint64    // lines in the log
	Head    AuditHead // the last line
	// Uncommitted counts the lines after the last entry the registry
	// recorded: a writer stopped between appending to the log and replacing
	// the registry (or the registry was restored from a backup). Those
	// entries describe changes the registry may not hold; the next write
	// continues the chain after them.
	Uncommitted uint64
}

// ReadAudit verifies the log at path and returns its entries.
func ReadAudit(path string) ([]AuditEntry, error) {
	var out []AuditEntry
	_, _, err := verifyAudit(path, 0, func(e *AuditEntry) { out = append(out, *e) })
	return out, err
}

// verifyAudit verifies the chain and returns the hash of line want ("" when
// the log does not reach it).
func verifyAudit(path string, want uint64, each func(*AuditEntry)) (rep *AuditReport, wantHash string, err error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", &AuditError{Path: path, Msg: "missing"}
		}
		return nil, "", err
	}
	defer f.Close()
	rep = &AuditReport{Path: path}
	r := bufio.NewReaderSize(f, 64<<10)
	prev := zeroHash
	for n := uint64(1); ; n++ {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, "", &AuditError{Path: path, Line: int(n), Msg: "damaged: line too long"}
		}
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				return nil, "", &AuditError{Path: path, Line: int(n), Msg: "incomplete last line: the log was cut short (or a write was interrupted)"}
			}
			break
		}
		if err != nil {
			return nil, "", err
		}
		e, msg := parseAuditLine(line[:len(line)-1])
		if msg != "" {
			return nil, "", &AuditError{Path: path, Line: int(n), Msg: msg}
		}
		if e.Seq != n {
			return nil, "", &AuditError{Path: path, Line: int(n), Msg: "seq is " + itoa(int(e.Seq)) + ", expected " + itoa(int(n)) + ": a line was deleted, inserted or moved"}
		}
		if e.Prev != prev {
			if n == 1 {
				return nil, "", &AuditError{Path: path, Line: 1, Msg: "prev of the first line is not 64 zeros: the start of the log was cut off"}
			}
			return nil, "", &AuditError{Path: path, Line: int(n), Msg: "prev does not match the hash of line " + itoa(int(n-1)) + ": a line was edited, deleted, inserted or moved"}
		}
		prev = e.Hash
		rep.Entries = n
		rep.Head = AuditHead{Seq: n, Hash: e.Hash}
		if n == want {
			wantHash = e.Hash
		}
		if each != nil {
			each(e)
		}
	}
	return rep, wantHash, nil
}

// auditLog is the log opened for appending by a writer holding the lock.
// Opening it changes nothing: a missing log is created, and an incomplete
// last line removed, only by append, once the writer has passed every check
// that can refuse it. What append wrote, rollback removes again.
type auditLog struct {
	path    string
	f       *os.File  // nil until append creates a missing log
	created bool      // the log did not exist: append creates it
	last    AuditHead // the last complete entry (Seq 0: empty log)
	// size is the length of the log without an incomplete last line, the
	// length rollback restores; cut is the length of that line (0: none).
	size int64
	cut  int64
	// appended: append wrote (or tried to write) after size.
	appended bool
	warn     func(string)
}

// openAuditLog opens the log for appending, finds its last complete entry
// and reconciles it with the registry's head. An incomplete last line after
// the head is a writer killed in the middle of an append (never a committed
// line: the registry is written only after the log was synced); append
// removes it. An incomplete line where the registry records a committed
// entry is damage: the writer refuses, and the line stays for 'registry
// audit' to report (docs/registry.md §6).
func openAuditLog(path string, head AuditHead, warn func(string)) (*auditLog, error) {
	_, statErr := os.Lstat(path)
	l := &auditLog{path: path, created: errors.Is(statErr, fs.ErrNotExist), warn: warn}
	if l.created {
		if head.Seq > 0 {
			return nil, &AuditError{Path: path, Msg: "missing, but the registry records " + itoa(int(head.Seq)) + " entries: the log was deleted or moved; restore it from a backup"}
		}
		return l, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	l.f = f
	if err := l.readTail(); err != nil {
		f.Close()
		return nil, err
	}
	switch {
	case l.last.Seq < head.Seq && l.cut > 0:
		f.Close()
		return nil, &AuditError{Path: path, Line: int(l.last.Seq) + 1, Msg: "incomplete last line, but the registry records entry " + itoa(int(head.Seq)) + ": the log was cut short (not an interrupted write, whose entries the registry never records); restore it from a backup"}
	case l.last.Seq < head.Seq:
		f.Close()
		return nil, &AuditError{Path: path, Line: int(l.last.Seq), Msg: "the log ends at entry " + itoa(int(l.last.Seq)) + " but the registry records entry " + itoa(int(head.Seq)) + ": the log was truncated or replaced"}
	case l.last.Seq == head.Seq && head.Seq > 0 && l.last.Hash != head.Hash:
		f.Close()
		return nil, &AuditError{Path: path, Line: int(l.last.Seq), Msg: "the last entry is not the one the registry records: the log was replaced or edited"}
	}
	return l, nil
}

// readTail finds the last complete entry and an incomplete line after it.
// It only reads.
func (l *auditLog) readTail() error {
	fi, err := l.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	l.size = size
	if size == 0 {
		return nil
	}
	n := min(size, maxAuditLine+1)
	buf := make([]byte, n)
	if _, err := l.f.ReadAt(buf, size-n); err != nil {
		return err
	}
	end := len(buf)
	if buf[end-1] != '\n' {
		i := bytes.LastIndexByte(buf, '\n')
		if i < 0 && n < size {
			return &AuditError{Path: l.path, Msg: "damaged: last line too long"}
		}
		keep := size - n + int64(i+1)
		l.size, l.cut = keep, size-keep
		size = keep
		buf = buf[:i+1]
		end = len(buf)
		if size == 0 {
			return nil
		}
	}
	start := bytes.LastIndexByte(buf[:end-1], '\n') + 1
	if start == 0 && int64(len(buf)) < size {
		return &AuditError{Path: l.path, Msg: "damaged: last line too long"}
	}
	e, msg := parseAuditLine(buf[start : end-1])
	if msg != "" {
		return &AuditError{Path: l.path, Msg: "last line: " + msg + "; run 'usmp-psk registry audit'"}
	}
	l.last = AuditHead{Seq: e.Seq, Hash: e.Hash}
	return nil
}

// append writes the events after the last entry — creating a missing log,
// or first removing an incomplete last line (with a warning) — syncs the
// log and returns the new head. The caller syncs the directory of a log
// append created (created).
func (l *auditLog) append(events []AuditEvent) (AuditHead, error) {
	head := l.last
	if len(events) == 0 {
		return head, nil
	}
	buf := make([]byte, 0, 256*len(events))
	for i := range events {
		prev := head.prevHash()
		head.Seq++
		buf, head.Hash = appendAuditLine(buf, head.Seq, &events[i], prev)
	}
	if l.created {
		// O_EXCL: the log appeared although the registry has no head for
		// it; the writers' lock makes that someone else's doing.
		f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
		if err != nil {
			return AuditHead{}, err
		}
		l.f = f
	}
	l.appended = true
	if l.cut > 0 {
		if err := l.f.Truncate(l.size); err != nil {
			return AuditHead{}, err
		}
		if l.warn != nil {
			l.warn("audit log " + l.path + ": removed an incomplete last line (an interrupted write)")
		}
		l.cut = 0
	}
	if _, err := auditWrite(l.f, buf); err != nil {
		return AuditHead{}, err
	}
	if err := l.f.Sync(); err != nil {
		return AuditHead{}, err
	}
	l.last = head
	return head, nil
}

// rollback removes what append wrote, when the registry write that the
// entries were for failed: the log gets back its length before the append
// (without the incomplete line append removed), synced; a log append
// created is removed, and its directory synced. It closes the log.
func (l *auditLog) rollback() error {
	// The handle's Close error does not matter here: the log is reopened.
	_ = l.close()
	if !l.appended {
		return nil
	}
	if l.created {
		if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		l.appended = false
		return secfile.SyncDir(filepath.Dir(l.path))
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(l.size); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	l.appended = false
	return nil
}

// prevHash is the hash the next entry chains to.
func (h AuditHead) prevHash() string {
	if h.Seq == 0 || h.Hash == "" {
		return zeroHash
	}
	return h.Hash
}

// close closes the log. It may be called more than once: the calls after
// the first do nothing and return nil.
func (l *auditLog) close() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
