package registry

// The legacy registry of usmp-psk before the database: one JSON file
// (usmp-registry.json) and its audit log beside it (usmp-registry.audit.jsonl),
// writers serialised by a lock on "<file>.lock". Only 'registry migrate'
// reads it. docs/registry.md ("Moving from a JSON registry") describes it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/usmp/usmp-psk/internal/psk"
)

// legacyFile is the registry file, version 1.
type legacyFile struct {
	Version *int           `json:"version"`
	Audit   *legacyHead    `json:"audit"`
	Devices []legacyDevice `json:"devices"`
}

type legacyHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// legacyDevice is a record; the key stays raw JSON (bytes that can be
// wiped, never a Go string).
type legacyDevice struct {
	ID           string          `json:"id"`
	Source       Source          `json:"source"`
	Epoch        uint32          `json:"epoch"`
	Status       Status          `json:"status"`
	KCV          string          `json:"kcv"`
	PSK          json.RawMessage `json:"psk"`
	Created      time.Time       `json:"created"`
	Updated      time.Time       `json:"updated"`
	Revoked      time.Time       `json:"revoked"`
	RevokeReason string          `json:"revoke_reason"`
	History      []Retired       `json:"history"`
}

// errLegacyAuditLink refuses a legacy audit log that is a symbolic link.
var errLegacyAuditLink = errors.New("the legacy audit log is a symbolic link: refusing to read it through the link")

// legacyAuditPath is the audit log of a legacy registry file.
func legacyAuditPath(path string) string {
	return strings.TrimSuffix(path, ".json") + ".audit.jsonl"
}

// loadLegacy reads a legacy registry and its audit log, holding the
// legacy writers' lock so that a writer of an earlier usmp-psk cannot
// change them meanwhile. The path is resolved once, first: the lock and
// the audit log are the ones beside the file itself, not beside a
// symbolic link to it, which would fork them (issue 13 item 7); and a
// registry that does not exist gets no lock file made for it.
func loadLegacy(ctx context.Context, path string, lockTimeout time.Duration) (*snapshot, error) {
	file, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &RegistryError{Location: path, Err: ErrNoRegistry}
	}
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", path, err)
	}
	lock := flock.New(file+".lock", flock.SetFlag(os.O_CREATE|os.O_RDWR|noFollow), flock.SetPermissions(0o600))
	lctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	if ok, err := lock.TryLockContext(lctx, 50*time.Millisecond); !ok || err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			// A lock file that cannot be opened: a symbolic link planted
			// at its path (refused by O_NOFOLLOW), a directory, no access.
			return nil, fmt.Errorf("registry %s: the legacy writers' lock file: %w", path, err)
		}
		return nil, &LockedError{Location: file + ".lock", Waited: lockTimeout}
	}
	defer func() { _ = lock.Unlock() }()
	// The registry file or its audit log can be a FIFO or a pipe that
	// never delivers: the reads run in a goroutine that an interrupt stops
	// waiting for, and what they return late is destroyed (issue 13 item 6).
	type loaded struct {
		snap *snapshot
		err  error
	}
	ch := make(chan loaded, 1)
	go func() {
		snap, err := readLegacy(path, file)
		ch <- loaded{snap, err}
	}()
	select {
	case r := <-ch:
		return r.snap, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.snap != nil {
				r.snap.destroy()
			}
		}()
		return nil, ctx.Err()
	}
}

// readLegacy reads and checks a legacy registry (file: path with its
// links resolved) and its audit log, for loadLegacy.
func readLegacy(path, file string) (*snapshot, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &RegistryError{Location: path, Err: ErrNoRegistry}
	}
	if err != nil {
		return nil, err
	}
	defer psk.Wipe(data)
	snap, head, err := parseLegacy(path, data)
	if err != nil {
		return nil, err
	}
	if err := snap.readLegacyAudit(legacyAuditPath(file), head); err != nil {
		snap.destroy()
		return nil, err
	}
	return snap, nil
}

// parseLegacy decodes the registry file. Its errors name the file and the
// line, never content (the file holds keys).
func parseLegacy(path string, data []byte) (*snapshot, AuditHead, error) {
	var f legacyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&f)
	if err != nil || f.Version == nil || *f.Version != 1 || f.Audit == nil {
		return nil, AuditHead{}, &CorruptError{Path: path, Msg: "not a usmp-psk registry file of version 1 (" + legacyWhere(data, err) + ")"}
	}
	snap := &snapshot{}
	seen := map[string]bool{}
	for i := range f.Devices {
		rec, err := f.Devices[i].record(path)
		psk.Wipe(f.Devices[i].PSK)
		if err == nil && seen[rec.ID] {
			err = &CorruptError{Path: path, Device: rec.ID, Msg: "given twice"}
		}
		if err != nil {
			snap.destroy()
			return nil, AuditHead{}, err
		}
		seen[rec.ID] = true
		snap.recs = append(snap.recs, rec)
	}
	return snap, AuditHead{Seq: f.Audit.Seq, Hash: f.Audit.Hash}, nil
}

// legacyWhere says where decoding failed, without quoting the input.
func legacyWhere(data []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "line " + strconv.Itoa(lineAt(data, se.Offset)) + ": not JSON"
	case errors.As(err, &te):
		return "line " + strconv.Itoa(lineAt(data, te.Offset)) + ": field " + te.Field + " has the wrong type"
	case err != nil:
		return "unknown or malformed fields"
	}
	return "no version 1, or no audit head"
}

// record checks a legacy record and decodes its key.
func (d *legacyDevice) record(path string) (*Record, error) {
	rec := &Record{Device: Device{ID: d.ID, Source: d.Source, Epoch: d.Epoch, Status: d.Status, KCV: d.KCV,
		Created: d.Created.UTC(), Updated: d.Updated.UTC(), Revoked: d.Revoked.UTC(), RevokeReason: d.RevokeReason, History: d.History}}
	dev := ""
	if psk.ValidateDeviceID(d.ID) == nil {
		dev = d.ID
	}
	if len(d.PSK) > 0 && string(d.PSK) != "null" {
		raw := d.PSK
		if len(raw) < 2 || raw[0] != '"' || bytes.IndexByte(raw, '\\') >= 0 {
			return nil, &CorruptError{Path: path, Device: dev, Field: "psk", Msg: "not a string of hex digits"}
		}
		k, err := psk.Decode(path, raw[1:len(raw)-1], psk.Hex)
		if err != nil {
			return nil, &CorruptError{Path: path, Device: dev, Field: "psk", Msg: "not a hex key"}
		}
		rec.Key = k
	}
	if field, msg := rec.validate(true); msg != "" {
		rec.Destroy()
		return nil, &CorruptError{Path: path, Device: dev, Field: field, Msg: msg}
	}
	return rec, nil
}

// readLegacyAudit reads and verifies the legacy audit log. Entries after
// the head the registry file records (a writer stopped between the two
// files) are kept: the chain stays whole, and 'registry check' reports
// what they describe that the registry does not hold.
func (s *snapshot) readLegacyAudit(path string, head AuditHead) error {
	// Not through a symbolic link: one planted at the log's path would
	// have another file verified and copied as its history (issue 13
	// item 7).
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if errors.Is(err, os.ErrNotExist) && head.Seq == 0 {
		return nil
	}
	if fi, lerr := os.Lstat(path); err != nil && lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return &RegistryError{Location: path, Err: errLegacyAuditLink,
			Hint: "put the log itself beside the registry file (the link's target, if that is the registry's log), then migrate again"}
	}
	if err != nil {
		return &AuditError{Path: path, Msg: "cannot be read: " + err.Error()}
	}
	defer f.Close()
	c := &chain{location: path}
	r := bufio.NewReaderSize(f, maxAuditLine+2)
	var atHead string
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			break
		}
		if err != nil {
			return &AuditError{Path: path, Line: int(c.head.Seq) + 1, Msg: "incomplete or overlong last line: the log was cut short (or a write was interrupted)"}
		}
		e, err := c.next(line[:len(line)-1])
		if err != nil {
			return err
		}
		if e.Seq == head.Seq {
			atHead = e.Hash
		}
		s.entries = append(s.entries, *e)
		s.lines = append(s.lines, string(line[:len(line)-1]))
	}
	if head.Seq > c.head.Seq || (head.Seq > 0 && atHead != head.Hash) {
		return &AuditError{Path: path, Line: int(c.head.Seq), Msg: "the log does not reach the entry the registry file records: it was cut short or replaced"}
	}
	s.head = c.head
	return nil
}
