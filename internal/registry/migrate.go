package registry

// Moving a registry (registry migrate): from a legacy JSON file, or from
// one database to another (SQLite to PostgreSQL when several stations must
// share it, or back), and sealing stored keys under a new registry key
// (registry rekey).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
)

// snapshot is a whole registry: its records (keys and history included),
// in id order, and its audit log.
type snapshot struct {
	recs    []*Record
	entries []AuditEntry
	lines   []string
	head    AuditHead
}

func (s *snapshot) destroy() {
	for _, r := range s.recs {
		r.Destroy()
	}
}

// MigrateReport says what Migrate copied.
type MigrateReport struct {
	From, To     string
	Devices      int
	StoredKeys   int    // random and imported keys copied (sealed when the destination seals)
	AuditEntries uint64 // entries copied, with the same hashes
	// Findings are what 'registry check' reports on the copy: records its
	// log contradicts (a legacy writer stopped between its two files).
	Findings []Finding
}

// MigrateError reports a copy that does not match its source: the
// destination was written but must not be used. Exit code 3.
type MigrateError struct {
	To     string
	Device string
	Msg    string
}

func (e *MigrateError) Error() string {
	s := "migrate: the copy in " + e.To + " does not match the source: "
	if e.Device != "" {
		s += "device " + strconv.Quote(e.Device) + ": "
	}
	return s + e.Msg
}

// Mismatch marks a failed verification (exit code 3).
func (e *MigrateError) Mismatch() bool { return true }

// Migrate copies the registry at from — a legacy JSON file (.json) or a
// database — into to, which must not exist yet: every record as it is
// (keys included, sealed where to seals them) and the audit log entry by
// entry, so the copy's chain has the same hashes. The source is left as it
// is, its writers held off during the copy. Then the copy is verified: the
// same devices, fields and keys (compared in constant time), the same
// audit entries, an intact chain.
func Migrate(ctx context.Context, from string, fromOpts Options, to *Registry) (*MigrateReport, error) {
	if err := to.Exists(ctx); err == nil {
		return nil, &RegistryError{Location: to.Location(), Err: ErrRegistryExists, Hint: "migrate only into a registry that does not exist yet"}
	} else if !isNoRegistry(err) {
		return nil, err
	}
	rep := &MigrateReport{From: from, To: to.Location()}
	copyTo := func(snap *snapshot) error {
		if err := to.restore(ctx, snap); err != nil {
			return err
		}
		return to.verifyCopy(ctx, snap, rep)
	}
	if IsLegacyPath(from) {
		if fromOpts.LockTimeout <= 0 {
			fromOpts.LockTimeout = DefaultLockTimeout
		}
		snap, err := loadLegacy(ctx, from, fromOpts.LockTimeout)
		if err != nil {
			return nil, err
		}
		defer snap.destroy()
		return rep, copyTo(snap)
	}
	src, err := Open(from, fromOpts)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	// A write transaction that changes nothing: other writers wait until
	// the copy is verified.
	err = src.st.write(ctx, writeOpts{}, func(t *tx) error {
		snap, err := t.snapshot()
		if err != nil {
			return err
		}
		defer snap.destroy()
		return copyTo(snap)
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

func isNoRegistry(err error) bool { return errors.Is(err, ErrNoRegistry) }

// snapshot reads the whole registry, keys and history included, and its
// verified audit log.
func (t *tx) snapshot() (*snapshot, error) {
	snap := &snapshot{}
	err := t.eachDevice("", true, func(rec *Record) error {
		snap.recs = append(snap.recs, rec)
		return nil
	})
	if err == nil {
		err = t.allHistory(snap.recs)
	}
	if err == nil {
		rep := &AuditReport{Location: t.s.location() + " (table usmp_audit)"}
		_, err = t.verifyChain(rep, nil, func(line string) error {
			e, msg := parseAuditLine([]byte(line))
			if msg != "" {
				return fmt.Errorf("audit entry: %s", msg)
			}
			snap.entries = append(snap.entries, *e)
			snap.lines = append(snap.lines, line)
			return nil
		})
		snap.head = rep.Head
	}
	if err != nil {
		snap.destroy()
		return nil, err
	}
	return snap, nil
}

// allHistory reads every device's history into recs (in id order).
func (t *tx) allHistory(recs []*Record) error {
	rows, err := t.query("read the history", `SELECT device, kcv, epoch, source, reason, retired FROM usmp_history ORDER BY device, n`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var h Retired
		var epoch int64
		var at dbTime
		if err := rows.Scan(&id, &h.KCV, &epoch, &h.Source, &h.Reason, &at); err != nil {
			return t.s.eng.dbErr("read the history", err)
		}
		h.Epoch, h.Retired = uint32(epoch), at.t
		i, ok := slices.BinarySearchFunc(recs, id, func(r *Record, id string) int { return strings.Compare(r.ID, id) })
		if !ok {
			return &CorruptError{Path: t.s.location(), Device: id, Field: "usmp_history", Msg: "history of a device that has no record"}
		}
		recs[i].History = append(recs[i].History, h)
	}
	return t.s.eng.dbErr("read the history", rows.Err())
}

// restore writes a snapshot into a registry it creates, in one
// transaction: the records, their history, the audit entries as they are.
func (r *Registry) restore(ctx context.Context, snap *snapshot) error {
	return r.st.write(ctx, writeOpts{create: true, exclusive: true, storesKeys: true}, func(t *tx) error {
		if !t.created {
			return &RegistryError{Location: r.Location(), Err: ErrRegistryExists}
		}
		if err := t.insertDevices(snap.recs); err != nil {
			return err
		}
		var hist [][]any
		for _, rec := range snap.recs {
			for n, h := range rec.History {
				hist = append(hist, []any{rec.ID, n + 1, h.KCV, int64(h.Epoch), string(h.Source), h.Reason, t.s.dia.timeArg(h.Retired)})
			}
		}
		if err := t.insert("copy the history", historyTable, hist); err != nil {
			return err
		}
		return t.copyAudit(snap)
	})
}

// copyAudit appends a snapshot's entries as they are, with its head.
func (t *tx) copyAudit(snap *snapshot) error {
	rows := make([][]any, len(snap.entries))
	for i, e := range snap.entries {
		var device any
		if e.Device != "" {
			device = e.Device
		}
		rows[i] = []any{int64(e.Seq), t.s.dia.timeArg(e.Time), string(e.Event), device, e.Hash, snap.lines[i]}
	}
	if err := t.insert("copy the audit log", auditTable, rows); err != nil {
		return err
	}
	t.meta.head = snap.head
	t.events = nil
	return t.exec("record the audit head", `UPDATE usmp_meta SET audit_seq = ?, audit_hash = ? WHERE id = 1`, int64(snap.head.Seq), snap.head.Hash)
}

// verifyCopy reads the copy back and compares it with the snapshot, then
// verifies its audit log.
func (r *Registry) verifyCopy(ctx context.Context, want *snapshot, rep *MigrateReport) error {
	bad := func(dev, msg string) error { return &MigrateError{To: r.Location(), Device: dev, Msg: msg} }
	err := r.st.read(ctx, func(t *tx) error {
		got, err := t.snapshot()
		if err != nil {
			return err
		}
		defer got.destroy()
		if len(got.recs) != len(want.recs) {
			return bad("", fmt.Sprintf("%d devices, the source has %d", len(got.recs), len(want.recs)))
		}
		for i, w := range want.recs {
			if msg := sameRecord(got.recs[i], w); msg != "" {
				return bad(w.ID, msg)
			}
		}
		if !slices.Equal(got.lines, want.lines) {
			return bad("", "the audit log differs")
		}
		return nil
	})
	if err != nil {
		return err
	}
	audit, err := r.VerifyAudit(ctx, nil)
	if err != nil {
		return err
	}
	rep.Devices, rep.AuditEntries, rep.Findings = len(want.recs), audit.Entries, audit.Findings
	for _, rec := range want.recs {
		if rec.Key != nil {
			rep.StoredKeys++
		}
	}
	return nil
}

// sameRecord compares two records, keys in constant time.
func sameRecord(a, b *Record) string {
	switch {
	case a.ID != b.ID:
		return "another device in its place"
	case a.Source != b.Source || a.Epoch != b.Epoch || a.Status != b.Status || a.KCV != b.KCV || a.RevokeReason != b.RevokeReason:
		return "its fields differ"
	case !a.Created.Equal(b.Created) || !a.Updated.Equal(b.Updated) || !a.Revoked.Equal(b.Revoked):
		return "its times differ"
	case (a.Key == nil) != (b.Key == nil) || (a.Key != nil && !a.Key.Equal(b.Key)):
		return "its key differs"
	case len(a.History) != len(b.History):
		return "its history differs"
	}
	for i := range a.History {
		x, y := a.History[i], b.History[i]
		if x.KCV != y.KCV || x.Epoch != y.Epoch || x.Source != y.Source || x.Reason != y.Reason || !x.Retired.Equal(y.Retired) {
			return "its history differs"
		}
	}
	return ""
}

// Rekey seals every stored key under newKey (registry rekey), in one
// transaction, and records newKey's id: from then on the registry needs
// newKey. Keys stored in clear (SQLite without a registry key) are sealed
// too. The registry's current key is needed to open sealed keys. It
// returns how many keys were sealed; the caller keeps newKey and destroys
// it.
func (r *Registry) Rekey(ctx context.Context, newKey *psk.Secret) (int, error) {
	ns, err := newSealer(newKey)
	if err != nil {
		return 0, err
	}
	n := 0
	err = r.update(ctx, writeOpts{}, func(t *tx, now time.Time) error {
		var recs []*Record
		defer func() {
			for _, rec := range recs {
				rec.Destroy()
			}
		}()
		err := t.eachDevice(`psk IS NOT NULL OR psk_sealed IS NOT NULL`, true, func(rec *Record) error {
			recs = append(recs, rec)
			return nil
		})
		if err != nil {
			return err
		}
		for _, rec := range recs {
			blob, err := ns.seal(rec.ID, rec.Key)
			if err != nil {
				return err
			}
			if err := t.exec("seal the key of device "+strconv.Quote(rec.ID), `UPDATE usmp_devices SET psk = NULL, psk_sealed = ? WHERE id = ?`, blob, rec.ID); err != nil {
				return err
			}
		}
		n = len(recs)
		t.log(r.event(now, EventRekey, nil))
		return t.exec("record the registry key", `UPDATE usmp_meta SET key_id = ? WHERE id = 1`, ns.id)
	})
	if err != nil {
		return 0, err
	}
	r.st.sealer = ns
	return n, nil
}
