package registry

// registry check and registry audit: the chain of the audit log, the state
// it implies against the records, checkpoints, and the log as JSON lines.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
)

// AuditLocation names the audit log in messages.
func (r *Registry) AuditLocation() string { return r.Location() + " (table usmp_audit)" }

// AuditReport is the result of an intact audit chain.
type AuditReport struct {
	Location string
	Entries  uint64    // entries in the log
	Head     AuditHead // the last entry
	// Findings are the records the log contradicts (deleted, un-revoked,
	// another epoch, KCV or source, never logged), in id order.
	Findings []Finding
}

// Finding is one problem 'registry check' (or 'registry audit') reports.
// It names the device and the field, never key content.
type Finding struct {
	Device  string `json:"device,omitempty"`
	Field   string `json:"field,omitempty"`
	Problem string `json:"problem"`
}

func (f Finding) String() string {
	s := ""
	if f.Device != "" {
		s += "device " + strconv.Quote(f.Device) + ": "
	}
	if f.Field != "" {
		s += f.Field + ": "
	}
	return s + f.Problem
}

// VerifyAudit verifies the audit log (registry audit): every entry
// canonical with a correct hash, seq counting from 1, each prev the hash
// before, the last entry the one the registry records; with expect, the
// entry at expect.Seq must be expect (a checkpoint kept elsewhere catches a
// chain rewritten as a whole). A broken chain is an *AuditError naming the
// entry. Then the state the log implies is compared with the records.
func (r *Registry) VerifyAudit(ctx context.Context, expect *AuditHead) (*AuditReport, error) {
	rep := &AuditReport{Location: r.AuditLocation()}
	err := r.st.read(ctx, func(t *tx) error {
		p, err := t.verifyChain(rep, expect, nil)
		var ae *AuditError
		if errors.As(err, &ae) {
			// What the broken log still says about the records, best
			// effort: the broken chain is the verdict either way.
			if up, uerr := t.replayUnverified(); uerr == nil {
				_ = t.compareRecords(up, noted(func(f Finding) { ae.Contradictions = append(ae.Contradictions, f) }))
			}
			return err
		}
		if err != nil {
			return err
		}
		return t.compareRecords(p, func(f Finding) { rep.Findings = append(rep.Findings, f) })
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// verifyChain reads the whole log, checking the chain, the columns against
// each entry, the end against the meta row and the checkpoint, and
// replays it. each, when set, gets every line.
func (t *tx) verifyChain(rep *AuditReport, expect *AuditHead, each func(line string) error) (*replay, error) {
	rows, err := t.query("read the audit log", `SELECT seq, time, event, device, hash, line FROM usmp_audit ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	c := &chain{location: rep.Location}
	p := newReplay()
	var atExpect string
	for rows.Next() {
		e, line, err := t.nextEntry(rows, c)
		if err != nil {
			return nil, err
		}
		if expect != nil && e.Seq == expect.Seq {
			atExpect = e.Hash
		}
		p.apply(e)
		if each != nil {
			if err := each(line); err != nil {
				return nil, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.eng.dbErr("read the audit log", err)
	}
	if err := c.end(t.meta.head); err != nil {
		return nil, err
	}
	rep.Entries, rep.Head = c.head.Seq, c.head
	if expect != nil && atExpect != expect.Hash {
		return nil, checkpointError(rep, *expect)
	}
	return p, nil
}

// checkpointError says how the log fails to hold the checkpoint: it ends
// before it (entries removed, an older backup restored) or holds another
// entry there (the chain rewritten).
func checkpointError(rep *AuditReport, expect AuditHead) error {
	at := "entry " + strconv.FormatUint(expect.Seq, 10)
	if expect.Seq > rep.Entries {
		return &AuditError{Path: rep.Location, Checkpoint: true, Msg: "the log does not hold the checkpoint: it ends at entry " +
			strconv.FormatUint(rep.Entries, 10) + ", before " + at + ": entries were removed or an older copy was restored (or the checkpoint is of another registry)"}
	}
	return &AuditError{Path: rep.Location, Line: int(expect.Seq), Checkpoint: true, Msg: "the log does not hold the checkpoint (" + at +
		" with the hash given): the chain was rewritten (or the checkpoint is of another registry)"}
}

// nextEntry scans and checks one row of the log.
func (t *tx) nextEntry(rows *sql.Rows, c *chain) (*AuditEntry, string, error) {
	var seq int64
	var at dbTime
	var event, hash, line, device string
	var bad, badLine bool
	if err := rows.Scan(intCol{&seq, &bad}, &at, textCol{dst: &event, bad: &bad}, textCol{dst: &device, bad: &bad, nullable: true},
		textCol{dst: &hash, bad: &bad}, textCol{dst: &line, bad: &badLine}); err != nil {
		return nil, "", t.s.eng.dbErr("read the audit log", err)
	}
	if badLine {
		return nil, "", &AuditError{Path: c.location, Line: int(c.head.Seq + 1), Msg: "damaged: the entry is not text"}
	}
	e, err := c.next([]byte(line))
	if err != nil {
		return nil, "", err
	}
	if bad || at.bad || uint64(seq) != e.Seq || hash != e.Hash || event != string(e.Event) || device != e.Device || !at.t.Equal(e.Time.Truncate(time.Microsecond)) {
		return nil, "", &AuditError{Path: c.location, Line: int(e.Seq), Msg: "the row's columns do not match its entry: the row was edited"}
	}
	return e, line, nil
}

// compareRecords compares every record with the state the log implies.
func (t *tx) compareRecords(p *replay, find func(Finding)) error {
	rows, err := t.query("read the devices", `SELECT `+deviceCols+` FROM usmp_devices ORDER BY id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var rw row
		if err := rows.Scan(rw.dest(false)...); err != nil {
			return t.s.eng.dbErr("read the devices", err)
		}
		rec, err := t.decode(&rw, false)
		if ce := (*CorruptError)(nil); errors.As(err, &ce) {
			// A damaged row is a finding; what can be read of it, and
			// the other rows, are still compared.
			find(Finding{Device: ce.Device, Field: ce.Field, Problem: ce.Msg})
			for _, f := range p.compareDamaged(&rw) {
				find(f)
			}
			continue
		}
		if err != nil {
			return err
		}
		for _, f := range p.compare(rec) {
			find(f)
		}
	}
	if err := rows.Err(); err != nil {
		return t.s.eng.dbErr("read the devices", err)
	}
	for _, f := range p.deleted() {
		find(f)
	}
	return t.compareHistory(p, find)
}

// WriteAuditJSONL writes the audit log as JSON lines, the canonical
// entries with their hashes (registry audit --jsonl), verifying the chain
// as it goes.
func (r *Registry) WriteAuditJSONL(ctx context.Context, w io.Writer) (*AuditReport, error) {
	rep := &AuditReport{Location: r.AuditLocation()}
	err := r.st.read(ctx, func(t *tx) error {
		_, err := t.verifyChain(rep, nil, func(line string) error {
			_, err := io.WriteString(w, line+"\n")
			return err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// CheckReport is the result of Check.
type CheckReport struct {
	Devices  int       // records read
	Checked  int       // derived records checked against the master secret
	Findings []Finding // empty: the registry is sound
}

// Check looks for every problem (registry check): damaged records, stored
// keys whose KCV does not match, example keys, one key stored for several
// devices, an open file mode on a database with plain keys, a broken audit
// chain, records the audit log contradicts, and with a master secret KCVs
// (current and retired) that derivation does not reproduce.
func (r *Registry) Check(ctx context.Context, master *psk.Secret) (*CheckReport, error) {
	rep := &CheckReport{}
	err := r.st.read(ctx, func(t *tx) error {
		c := &checker{t: t, master: master, rep: rep, keys: map[[32]byte]*keyUse{}}
		c.contradiction = c.find
		return c.run()
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// checker is one run of Check.
type checker struct {
	t      *tx
	master *psk.Secret
	rep    *CheckReport
	keys   map[[32]byte]*keyUse // stored keys (by keyDigest) → devices
	plain  bool                 // a key is stored unsealed
	// contradiction reports a record the log contradicts: find, with a
	// note when the log's chain is broken.
	contradiction func(Finding)
}

func (c *checker) find(f Finding) { c.rep.Findings = append(c.rep.Findings, f) }

func (c *checker) run() error {
	audit := &AuditReport{Location: c.t.s.location() + " (table usmp_audit)"}
	p, err := c.t.verifyChain(audit, nil, nil)
	var ae *AuditError
	switch {
	case errors.As(err, &ae):
		// A broken chain must not hide what else was changed (an
		// un-revoked device, say): compare with the log as it stands.
		c.find(Finding{Field: "audit", Problem: ae.Error()})
		if p, err = c.t.replayUnverified(); err != nil {
			return err
		}
		c.contradiction = noted(c.find)
	case err != nil:
		return err
	}
	if err := c.records(p); err != nil {
		return err
	}
	for _, f := range p.deleted() {
		c.contradiction(f)
	}
	if err := c.t.compareHistory(p, c.contradiction); err != nil {
		return err
	}
	c.reuse()
	if err := c.history(); err != nil {
		return err
	}
	c.fileMode()
	return nil
}

// records checks every row against p, the state the log implies.
func (c *checker) records(p *replay) error {
	rows, err := c.t.query("read the devices", `SELECT `+deviceCols+keyCols+` FROM usmp_devices ORDER BY id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var rw row
		if err := rows.Scan(rw.dest(true)...); err != nil {
			psk.Wipe(rw.plain)
			return c.t.s.eng.dbErr("read the devices", err)
		}
		c.plain = c.plain || rw.plain != nil
		c.row(&rw, p)
	}
	return c.t.s.eng.dbErr("read the devices", rows.Err())
}

// row checks one row: its fields against the log, then its key and the
// whole record.
func (c *checker) row(rw *row, p *replay) {
	rec, err := c.t.decodeFields(rw)
	var compared []Finding
	if err == nil {
		compared = p.compare(rec)
	} else {
		compared = p.compareDamaged(rw)
	}
	for _, f := range compared {
		c.contradiction(f)
	}
	if err == nil {
		err = c.t.withKey(rec, rw)
	}
	if ke := (*KeyError)(nil); errors.As(err, &ke) {
		// Without the registry key a sealed key cannot be checked: a
		// finding, and check goes on with the other records.
		c.find(Finding{Device: rw.id, Field: "psk_sealed", Problem: ke.Msg})
		return
	}
	if ce := (*CorruptError)(nil); errors.As(err, &ce) {
		c.find(Finding{Device: ce.Device, Field: ce.Field, Problem: ce.Msg})
		psk.Wipe(rw.plain)
		return
	}
	c.record(rec)
	rec.Destroy()
}

// record checks one sound record.
func (c *checker) record(rec *Record) {
	c.rep.Devices++
	if rec.Key != nil {
		if psk.IsPlaceholder(rec.Key.Expose()) {
			c.find(Finding{Device: rec.ID, Field: "psk", Problem: "the stored key is an example key of the USMP documentation"})
		}
		c.use(rec, rec.Key.Expose(), false)
	}
	if c.master.Len() > 0 && rec.Source == SourceDerived {
		c.rep.Checked++
		if me := (*MismatchError)(nil); errors.As(verifyDerived(rec, c.master), &me) {
			c.find(Finding{Device: rec.ID, Field: "kcv", Problem: fmt.Sprintf("does not match the key the master secret derives at epoch %d (registry %s, derived %s)", me.Epoch, me.Registered, me.Derived)})
			return
		}
		// A stored key that is a derived device's key (copied from
		// 'usmp-psk derive') is reuse too: with the master, the keys
		// themselves are compared.
		k := psk.Derive(c.master, rec.ID, rec.Epoch)
		c.use(rec, k.Expose(), true)
		k.Destroy()
	}
}

// use records that rec holds key, for reuse.
func (c *checker) use(rec *Record, key []byte, derived bool) {
	d := keyDigest(key)
	if c.keys[d] == nil {
		c.keys[d] = &keyUse{kcv: rec.KCV}
	}
	c.keys[d].ids = append(c.keys[d].ids, rec.ID)
	c.keys[d].derived = c.keys[d].derived || derived
}

// reuse reports one key stored for several devices: one leak then
// compromises them all. Keys are told apart in full, not by KCV, which two
// different keys share about once in 4 billion pairs (a registry of 100k
// stored keys has such a pair more often than not).
func (c *checker) reuse() {
	var uses []*keyUse
	for _, u := range c.keys {
		if len(u.ids) > 1 {
			uses = append(uses, u)
		}
	}
	slices.SortFunc(uses, func(a, b *keyUse) int { return strings.Compare(a.ids[0], b.ids[0]) })
	for _, u := range uses {
		verb := "stored for"
		if u.derived {
			verb = "held (stored or derived) by"
		}
		slices.Sort(u.ids)
		c.find(Finding{Device: u.ids[0], Field: "psk", Problem: fmt.Sprintf("the same key (KCV %s) is %s %d devices: %s; give each device its own key ('usmp-psk rotate')", u.kcv, verb, len(u.ids), quoteList(u.ids))})
	}
}

// keyUse is the devices that hold one key.
type keyUse struct {
	kcv     string
	ids     []string
	derived bool // one of them is a derived device
}

// keyDigest tells stored keys apart without keeping them: a SHA-256 of the
// key, domain-separated, held only in memory for the check.
func keyDigest(key []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte("usmp-psk registry check: key reuse\x00"))
	h.Write(key)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

func quoteList(ids []string) string {
	s := ""
	for i, id := range ids {
		if i == 5 {
			return s + fmt.Sprintf(", … (%d more)", len(ids)-5)
		}
		if i > 0 {
			s += ", "
		}
		s += strconv.Quote(id)
	}
	return s
}

// history checks the retired KCVs of derived keys against the master.
func (c *checker) history() error {
	if c.master.Len() == 0 {
		return nil
	}
	rows, err := c.t.query("read the history", `SELECT device, epoch, kcv FROM usmp_history WHERE source = 'derived' ORDER BY device, n`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, kcv string
		var epoch int64
		if err := rows.Scan(&id, &epoch, &kcv); err != nil {
			return c.t.s.eng.dbErr("read the history", err)
		}
		k := psk.Derive(c.master, id, uint32(epoch))
		if got := psk.KCV(k); !equalKCV(got, kcv) {
			c.find(Finding{Device: id, Field: "history", Problem: fmt.Sprintf("retired kcv of epoch %d does not match the key the master secret derives (registry %s, derived %s)", epoch, kcv, got)})
		}
		k.Destroy()
	}
	return c.t.s.eng.dbErr("read the history", rows.Err())
}

// fileMode reports a SQLite database with plain keys that group or others
// can read.
func (c *checker) fileMode() {
	e, ok := c.t.s.eng.(interface{ Paths() []string })
	if !ok || !c.plain || runtime.GOOS == "windows" {
		return
	}
	// SQLite gives the -wal and -shm files the database's mode (this
	// check's own read may have just made them, and closing removes
	// them): an open database is one finding, not three.
	for _, p := range e.Paths() {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
			c.find(Finding{Field: "mode", Problem: fmt.Sprintf("%s holds keys and group or others can read it (mode %04o): chmod 600 it", p, fi.Mode().Perm())})
			if p == e.Paths()[0] {
				return
			}
		}
	}
}
