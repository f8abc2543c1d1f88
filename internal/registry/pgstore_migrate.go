package registry

// Moving a registry between stores (registry migrate --to postgres://…,
// issue 8), and what the commands need to know about a store beyond the
// Store interface: where its audit log is, and rekeying.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"github.com/usmp/usmp-psk/internal/psk"
)

// MigrateReport says what Migrate copied.
type MigrateReport struct {
	From, To     string
	Devices      int
	StoredKeys   int    // random and imported keys copied (sealed in a PostgreSQL destination)
	AuditEntries uint64 // entries copied, the same hashes in the destination
	// Uncommitted counts entries of the source's log after the last one
	// its registry records (a file registry's interrupted write); they are
	// copied too, so the chain stays whole.
	Uncommitted uint64
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

// VerifyFailed marks a failed verification (exit code 3).
func (e *MigrateError) VerifyFailed() bool { return true }

// Migrate copies the registry of from into to, which must not exist yet
// (registry migrate --to URL): every record as it is (keys included,
// sealed by a PostgreSQL destination), and the audit log entry by entry,
// so the destination's chain has the same hashes. It holds the source's
// writer lock during the copy, so nothing is lost to a concurrent writer,
// and leaves the source as it is. Then it verifies the copy: the same
// devices with the same fields and keys (compared in constant time), the
// same audit hashes, and the destination's own audit verification.
func Migrate(ctx context.Context, from, to Store) (*MigrateReport, error) {
	rep := &MigrateReport{From: from.Location(), To: to.Location()}
	// A destination that exists is refused before the source is locked.
	err := to.View(ctx, func(Reader) error { return nil })
	switch {
	case err == nil:
		return nil, &RegistryError{Location: to.Location(), Err: ErrRegistryExists, Hint: "migrate only into a registry that does not exist yet (another database, or another schema: ?options=-csearch_path%3DSCHEMA)"}
	case !errors.Is(err, ErrNoRegistry):
		return nil, err
	}
	err = from.Update(ctx, UpdateOptions{}, func(src Tx) error {
		srcAudit, err := from.VerifyAudit(ctx)
		if err != nil {
			return err
		}
		rep.Uncommitted = srcAudit.Uncommitted
		entries, err := auditEntries(ctx, from)
		if err != nil {
			return err
		}
		var recs []*Record
		src.Range(func(r *Record) bool {
			recs = append(recs, r)
			return true
		})
		err = to.Update(ctx, UpdateOptions{Create: true, Exclusive: true}, func(dst Tx) error {
			if !dst.Created() {
				return &RegistryError{Location: to.Location(), Err: ErrRegistryExists}
			}
			for _, r := range recs {
				if err := dst.Put(r.Clone()); err != nil {
					return err
				}
			}
			for _, e := range entries {
				dst.Log(e.AuditEvent)
			}
			return nil
		})
		if err != nil {
			return err
		}
		rep.Devices, rep.AuditEntries = len(recs), uint64(len(entries))
		for _, r := range recs {
			if r.Key != nil {
				rep.StoredKeys++
			}
		}
		return verifyCopy(ctx, to, recs, entries)
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// verifyCopy compares the destination with the source's records and log.
func verifyCopy(ctx context.Context, to Store, recs []*Record, entries []AuditEntry) error {
	bad := func(dev, msg string) error { return &MigrateError{To: to.Location(), Device: dev, Msg: msg} }
	err := to.View(ctx, func(rd Reader) error {
		if n := rd.Len(); n != len(recs) {
			return bad("", fmt.Sprintf("%d devices, the source has %d", n, len(recs)))
		}
		for _, want := range recs {
			got, ok := rd.Get(want.ID)
			if !ok {
				return bad(want.ID, "missing")
			}
			if !sameDevice(&got.Device, &want.Device) {
				return bad(want.ID, "the fields differ")
			}
			if (got.Key == nil) != (want.Key == nil) || want.Key != nil && !got.Key.Equal(want.Key) {
				return bad(want.ID, "the stored key differs (KCV "+want.KCV+")")
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	got, err := auditEntries(ctx, to)
	if err != nil {
		return err
	}
	if len(got) != len(entries) {
		return bad("", fmt.Sprintf("the audit log has %d entries, the source's %d", len(got), len(entries)))
	}
	for i := range got {
		if got[i].Hash != entries[i].Hash {
			return bad("", "audit entry "+strconv.Itoa(i+1)+" has another hash than the source's")
		}
	}
	if _, err := to.VerifyAudit(ctx); err != nil {
		return err
	}
	return nil
}

// sameDevice compares every field of two devices (times by instant).
func sameDevice(a, b *Device) bool {
	if a.ID != b.ID || a.Source != b.Source || a.Epoch != b.Epoch || a.Status != b.Status || !equalKCV(a.KCV, b.KCV) ||
		!a.Created.Equal(b.Created) || !a.Updated.Equal(b.Updated) || !a.Revoked.Equal(b.Revoked) ||
		a.RevokeReason != b.RevokeReason || len(a.History) != len(b.History) {
		return false
	}
	for i, h := range a.History {
		o := b.History[i]
		if h.KCV != o.KCV || h.Epoch != o.Epoch || h.Source != o.Source || h.Reason != o.Reason || !h.Retired.Equal(o.Retired) {
			return false
		}
	}
	return true
}

// auditEntries returns the verified audit log of a store.
func auditEntries(ctx context.Context, s Store) ([]AuditEntry, error) {
	switch st := s.(type) {
	case *FileStore:
		if _, err := os.Lstat(st.AuditPath()); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return ReadAudit(st.AuditPath())
	case *PGStore:
		return st.auditEntries(ctx)
	}
	return nil, fmt.Errorf("registry %s: reading the audit log of this kind of store is not supported", s.Location())
}

// AuditEntries returns the registry's audit log, verified (every entry's
// hash and chain).
func (r *Registry) AuditEntries(ctx context.Context) ([]AuditEntry, error) {
	return auditEntries(ctx, r.store)
}

// AuditLocation names the registry's audit log in messages: the
// ".audit.jsonl" file next to a registry file, the table of a PostgreSQL
// registry.
func (r *Registry) AuditLocation() string {
	if s, ok := r.store.(*PGStore); ok {
		return s.AuditLocation()
	}
	return AuditPath(r.store.Location())
}

// IsPostgres reports whether the registry is on PostgreSQL.
func (r *Registry) IsPostgres() bool {
	_, ok := r.store.(*PGStore)
	return ok
}

// Rekey seals every stored key of a PostgreSQL registry again under
// newKey (rotation of $USMP_REGISTRY_KEY): one transaction under the
// writer lock; afterwards every station needs newKey. It returns how many
// keys were sealed again. The caller keeps newKey and destroys it.
func (r *Registry) Rekey(ctx context.Context, newKey *psk.Secret) (int, error) {
	s, ok := r.store.(*PGStore)
	if !ok {
		return 0, &psk.InputError{Source: r.store.Location(), Msg: "only a PostgreSQL registry has a registry key (a registry file is protected by its mode, 0600)"}
	}
	return s.Rekey(ctx, newKey)
}
