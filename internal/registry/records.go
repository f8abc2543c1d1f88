package registry

// Reading and writing device records in a transaction. Key bytes are
// scanned into []byte (never a Go string), wrapped in a psk.Secret and
// wiped with the record; a sealed key is opened only where a command needs
// the key (withKey).

import (
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
)

const (
	deviceCols = `id, source, epoch, status, kcv, created, updated, revoked, revoke_reason`
	keyCols    = `, psk, psk_sealed`
)

// dbTime scans a time column: timestamptz (PostgreSQL) or RFC 3339 text
// (SQLite). A value that is neither marks it bad instead of failing the
// scan, so that one damaged row is a finding naming its device, not an
// error that stops the whole read (and repeats the value).
type dbTime struct {
	t          time.Time
	valid, bad bool
}

func (d *dbTime) Scan(v any) error {
	var s string
	switch x := v.(type) {
	case nil:
		d.valid = false
		return nil
	case time.Time:
		d.t, d.valid = x.UTC(), true
		return nil
	case string:
		s = x
	case []byte:
		s = string(x)
	default:
		d.bad = true
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.bad = true
		return nil
	}
	d.t, d.valid = t.UTC(), true
	return nil
}

// textCol and intCol scan a text or integer column into dst; a value of
// another type (SQLite keeps what it is given) marks the column bad rather
// than failing the scan with a message that quotes it.
type textCol struct {
	dst      *string
	bad      *bool
	nullable bool // NULL is "", not bad
}

func (c textCol) Scan(v any) error {
	switch x := v.(type) {
	case string:
		*c.dst = x
	case []byte:
		*c.dst = string(x)
	case nil:
		*c.dst, *c.bad = "", *c.bad || !c.nullable
	default:
		*c.bad = true
	}
	return nil
}

type intCol struct {
	dst *int64
	bad *bool
}

func (c intCol) Scan(v any) error {
	if x, ok := v.(int64); ok {
		*c.dst = x
	} else {
		*c.bad = true
	}
	return nil
}

// row is a device row as scanned.
type row struct {
	id, source, status, kcv, reason string
	epoch                           int64
	created, updated, revoked       dbTime
	plain, sealed                   []byte
	badID, badText, badEpoch        bool
}

func (r *row) dest(withKey bool) []any {
	d := []any{textCol{dst: &r.id, bad: &r.badID}, textCol{dst: &r.source, bad: &r.badText}, intCol{&r.epoch, &r.badEpoch},
		textCol{dst: &r.status, bad: &r.badText}, textCol{dst: &r.kcv, bad: &r.badText}, &r.created, &r.updated, &r.revoked,
		textCol{dst: &r.reason, bad: &r.badText}}
	if withKey {
		d = append(d, &r.plain, &r.sealed)
	}
	return d
}

// decode turns a row into a record, checking it. A damaged row is a
// *CorruptError naming the device and column, never content.
func (t *tx) decode(r *row, withKey bool) (*Record, error) {
	rec, err := t.decodeFields(r)
	if err != nil {
		psk.Wipe(r.plain)
		return nil, err
	}
	if withKey {
		return rec, t.withKey(rec, r)
	}
	if field, msg := rec.validate(false); msg != "" {
		return nil, t.corrupt(rec.ID, field, msg)
	}
	return rec, nil
}

func (t *tx) corrupt(id, field, msg string) error {
	dev := ""
	if psk.ValidateDeviceID(id) == nil {
		dev = id
	}
	return &CorruptError{Path: t.s.location(), Device: dev, Field: field, Msg: msg}
}

// decodeFields reads the columns of a row but its key.
func (t *tx) decodeFields(r *row) (*Record, error) {
	switch {
	case r.badID || psk.ValidateDeviceID(r.id) != nil:
		return nil, t.corrupt("", "id", "not a valid device id")
	case r.badEpoch:
		return nil, t.corrupt(r.id, "epoch", "not an integer")
	case r.epoch < 0 || r.epoch > 1<<32-1:
		return nil, t.corrupt(r.id, "epoch", "out of range")
	case r.badText:
		return nil, t.corrupt(r.id, "source, status, kcv or revoke_reason", "not text")
	case r.created.bad || r.updated.bad || r.revoked.bad:
		return nil, t.corrupt(r.id, "created, updated or revoked", "not a time")
	case !r.created.valid || !r.updated.valid:
		return nil, t.corrupt(r.id, "created", "missing")
	}
	return &Record{Device: Device{ID: r.id, Source: Source(r.source), Epoch: uint32(r.epoch), Status: Status(r.status),
		KCV: r.kcv, Created: r.created.t, Updated: r.updated.t, Revoked: r.revoked.t, RevokeReason: r.reason}}, nil
}

// withKey gives rec the key of its row and checks the whole record.
func (t *tx) withKey(rec *Record, r *row) error {
	key, err := t.openKey(r)
	if err != nil {
		psk.Wipe(r.plain)
		return err
	}
	rec.Key = key
	if field, msg := rec.validate(true); msg != "" {
		rec.Destroy()
		return t.corrupt(rec.ID, field, msg)
	}
	return nil
}

// openKey returns the key of a row: plain, or sealed and opened with the
// registry key. A missing or wrong registry key is a *KeyError (the
// operator's to fix); a damaged blob a *CorruptError.
func (t *tx) openKey(r *row) (*psk.Secret, error) {
	s := t.s
	kid := sealedKeyID(r.sealed)
	switch {
	case r.plain != nil && r.sealed != nil:
		return nil, t.corrupt(r.id, "psk", "both a plain and a sealed key")
	case r.plain != nil && len(r.plain) == 0:
		return nil, t.corrupt(r.id, "psk", "empty key")
	case r.plain != nil:
		k := psk.NewSecret(r.plain)
		r.plain = nil
		return k, nil
	case r.sealed == nil:
		return nil, nil
	case s.sealer == nil:
		return nil, &KeyError{Location: s.location(), Msg: "device " + strconv.Quote(r.id) + " holds an encrypted key (registry key " + kid + ") and $" + RegistryKeyEnv + " is not set",
			Hint: "set $" + RegistryKeyEnv + " to the registry key (64 hex digits; see docs/registry.md)"}
	case kid != "" && kid != s.sealer.id:
		return nil, &KeyError{Location: s.location(), Msg: "$" + RegistryKeyEnv + " (key " + s.sealer.id + ") is not the key of this registry (key " + kid + ")",
			Hint: "set $" + RegistryKeyEnv + " to this registry's key; after a rekey every station needs the new one"}
	}
	k, msg := s.sealer.open(r.id, r.sealed)
	if msg != "" {
		return nil, t.corrupt(r.id, "psk_sealed", msg)
	}
	return k, nil
}

// scanDevices reads the devices a query returns, calling fn for each.
func (t *tx) scanDevices(rows *sql.Rows, withKey bool, fn func(*Record) error) error {
	defer rows.Close()
	for rows.Next() {
		var r row
		if err := rows.Scan(r.dest(withKey)...); err != nil {
			psk.Wipe(r.plain)
			return t.s.eng.dbErr("read the devices", err)
		}
		rec, err := t.decode(&r, withKey)
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return t.s.eng.dbErr("read the devices", rows.Err())
}

func columns(withKey bool) string {
	if withKey {
		return deviceCols + keyCols
	}
	return deviceCols
}

// device returns the record of id, or nil when there is none.
func (t *tx) device(id string, withKey bool) (*Record, error) {
	rows, err := t.query("read device "+strconv.Quote(id), `SELECT `+columns(withKey)+` FROM usmp_devices WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	var out *Record
	err = t.scanDevices(rows, withKey, func(r *Record) error { out = r; return nil })
	return out, err
}

// devices returns the records of those of ids that exist, with one query.
func (t *tx) devices(ids []string, withKey bool) (map[string]*Record, error) {
	out := make(map[string]*Record, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := t.query("read the devices", `SELECT `+columns(withKey)+` FROM usmp_devices WHERE id IN (`+t.s.dia.idSet+`)`, t.s.dia.idSetArg(ids))
	if err != nil {
		return nil, err
	}
	err = t.scanDevices(rows, withKey, func(r *Record) error { out[r.ID] = r; return nil })
	if err != nil {
		for _, r := range out {
			r.Destroy()
		}
		return nil, err
	}
	return out, nil
}

// eachDevice calls fn for every record (where: an SQL condition, or "") in
// id order.
func (t *tx) eachDevice(where string, withKey bool, fn func(*Record) error) error {
	return t.selectDevices(where, withKey, 0, fn)
}

// eachDeviceLimit is eachDevice for the first n records, without keys.
func (t *tx) eachDeviceLimit(where string, n int, fn func(*Record) error) error {
	return t.selectDevices(where, false, n, fn)
}

func (t *tx) selectDevices(where string, withKey bool, limit int, fn func(*Record) error) error {
	q := `SELECT ` + columns(withKey) + ` FROM usmp_devices`
	if where != "" {
		q += ` WHERE ` + where
	}
	q += ` ORDER BY id`
	if limit > 0 {
		q += ` LIMIT ` + strconv.Itoa(limit)
	}
	rows, err := t.query("read the devices", q)
	if err != nil {
		return err
	}
	return t.scanDevices(rows, withKey, fn)
}

// logged returns those of ids that the audit log has entries for.
func (t *tx) logged(ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := t.query("read the audit log", `SELECT DISTINCT device FROM usmp_audit WHERE device IN (`+t.s.dia.idSet+`)`, t.s.dia.idSetArg(ids))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, t.s.eng.dbErr("read the audit log", err)
		}
		out[id] = true
	}
	return out, t.s.eng.dbErr("read the audit log", rows.Err())
}

// history returns the retired keys of a device, oldest first.
func (t *tx) history(id string) ([]Retired, error) {
	rows, err := t.query("read the history of device "+strconv.Quote(id),
		`SELECT kcv, epoch, source, reason, retired FROM usmp_history WHERE device = ? ORDER BY n`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Retired
	for rows.Next() {
		var h Retired
		var epoch int64
		var at dbTime
		if err := rows.Scan(&h.KCV, &epoch, &h.Source, &h.Reason, &at); err != nil {
			return nil, t.s.eng.dbErr("read the history of device "+strconv.Quote(id), err)
		}
		h.Epoch, h.Retired = uint32(epoch), at.t
		out = append(out, h)
	}
	return out, t.s.eng.dbErr("read the history", rows.Err())
}

// keyArgs returns the psk and psk_sealed values of a record: its key
// sealed with the registry key when there is one, else plain where the
// engine allows it (SQLite).
func (t *tx) keyArgs(rec *Record) (plain, sealed any, err error) {
	s, kid := t.s, t.meta.keyID
	switch {
	case rec.Key == nil:
		return nil, nil, nil
	case s.sealer != nil && kid != "" && kid != s.sealer.id:
		return nil, nil, &KeyError{Location: s.location(), Msg: "$" + RegistryKeyEnv + " (key " + s.sealer.id + ") is not the key of this registry (key " + kid + ")",
			Hint: "set $" + RegistryKeyEnv + " to this registry's key; after a rekey every station needs the new one"}
	case s.sealer != nil:
		blob, err := s.sealer.seal(rec.ID, rec.Key)
		t.sealed = err == nil
		return nil, blob, err
	case kid != "":
		return nil, nil, &KeyError{Location: s.location(), Msg: "the registry encrypts its stored keys (registry key " + kid + ") and $" + RegistryKeyEnv + " is not set",
			Hint: "set $" + RegistryKeyEnv + " to the registry key (64 hex digits; see docs/registry.md)"}
	case !s.plainKeys:
		return nil, nil, &KeyError{Location: s.location(), Msg: "device " + strconv.Quote(rec.ID) + " has a stored (" + string(rec.Source) + ") key: storing it needs $" + RegistryKeyEnv,
			Hint: "set $" + RegistryKeyEnv + " to the registry key (64 hex digits, e.g. from 'usmp-psk generate -o registry.key'; see docs/scale-out.md); derived devices need none"}
	}
	return rec.Key.Expose(), nil, nil
}

// recordArgs returns the column values of a record, in deviceCols+keyCols
// order.
func (t *tx) recordArgs(rec *Record) ([]any, error) {
	if field, msg := rec.validate(true); msg != "" {
		return nil, fmt.Errorf("registry: refusing to store device %q: %s: %s", rec.ID, field, msg)
	}
	plain, sealed, err := t.keyArgs(rec)
	if err != nil {
		return nil, err
	}
	var revoked any
	if !rec.Revoked.IsZero() {
		revoked = t.s.dia.timeArg(rec.Revoked)
	}
	d := t.s.dia
	return []any{rec.ID, string(rec.Source), int64(rec.Epoch), string(rec.Status), rec.KCV,
		d.timeArg(rec.Created), d.timeArg(rec.Updated), revoked, rec.RevokeReason, plain, sealed}, nil
}

// insertDevices inserts new records, many per statement.
func (t *tx) insertDevices(recs []*Record) error {
	rows := make([][]any, 0, len(recs))
	for _, rec := range recs {
		args, err := t.recordArgs(rec)
		if err != nil {
			return err
		}
		rows = append(rows, args)
		t.changed = append(t.changed, rec.ID)
	}
	return t.insert("record the devices", devicesTable, rows)
}

// updateDevice writes every column of an existing record.
func (t *tx) updateDevice(rec *Record) error {
	args, err := t.recordArgs(rec)
	if err != nil {
		return err
	}
	t.changed = append(t.changed, rec.ID)
	return t.exec("update device "+strconv.Quote(rec.ID), `UPDATE usmp_devices SET source = ?, epoch = ?, status = ?, kcv = ?,
		created = ?, updated = ?, revoked = ?, revoke_reason = ?, psk = ?, psk_sealed = ? WHERE id = ?`,
		append(args[1:], args[0])...)
}

// retire records a retired key of a device as its n-th (from 1).
func (t *tx) retire(id string, n int, h Retired) error {
	return t.exec("record the retired key of device "+strconv.Quote(id),
		`INSERT INTO usmp_history (device, n, kcv, epoch, source, reason, retired) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		id, n, h.KCV, int64(h.Epoch), string(h.Source), h.Reason, t.s.dia.timeArg(h.Retired))
}
