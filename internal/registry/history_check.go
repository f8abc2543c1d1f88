package registry

// Comparing what the registry keeps beside its records with the audit log:
// the retired keys of usmp_history against the rotations the log records,
// and, when the chain is broken, the records against the log as it stands.

import (
	"database/sql"

	"github.com/usmp/usmp-psk/internal/psk"
)

// compareHistory compares every device's retired keys with the keys its
// logged rotations retired.
func (t *tx) compareHistory(p *replay, find func(Finding)) error {
	rows, err := t.query("read the history", `SELECT device, n, kcv, epoch, source FROM usmp_history ORDER BY device, n`)
	if err != nil {
		return err
	}
	defer rows.Close()
	visited := map[string]bool{}
	var id string
	var keys []retiredKey
	var damaged bool
	flush := func() {
		if id != "" && !damaged {
			for _, f := range p.compareHistory(id, keys) {
				find(f)
			}
		}
		visited[id] = true
	}
	for rows.Next() {
		h, dev, bad, err := scanRetired(rows)
		if err != nil {
			return t.s.eng.dbErr("read the history", err)
		}
		if dev != id {
			flush()
			id, keys, damaged = dev, nil, false
		}
		if bad && !damaged {
			damaged = true
			find(Finding{Device: deviceOrEmpty(dev), Field: "history", Problem: "damaged: a retired key has a field that is not of its type"})
		}
		keys = append(keys, h)
	}
	if err := rows.Err(); err != nil {
		return t.s.eng.dbErr("read the history", err)
	}
	flush()
	for _, dev := range p.withRetired() {
		if !visited[dev] {
			for _, f := range p.compareHistory(dev, nil) {
				find(f)
			}
		}
	}
	return nil
}

// scanRetired scans one history row; bad reports a column of the wrong
// type (never its value).
func scanRetired(rows *sql.Rows) (h retiredKey, dev string, bad bool, err error) {
	var n, epoch int64
	var kcv, source string
	err = rows.Scan(textCol{dst: &dev, bad: &bad}, intCol{&n, &bad}, textCol{dst: &kcv, bad: &bad}, intCol{&epoch, &bad}, textCol{dst: &source, bad: &bad})
	if epoch < 0 || epoch > 1<<32-1 {
		bad = true
	}
	return retiredKey{kcv: kcv, epoch: uint32(epoch), source: Source(source)}, dev, bad, err
}

// deviceOrEmpty is id when it is a valid device id: a damaged one is
// not repeated.
func deviceOrEmpty(id string) string {
	if psk.ValidateDeviceID(id) == nil {
		return id
	}
	return ""
}

// replayUnverified replays every entry that still parses, without the
// chain: what a broken log still says about the records. Findings against
// it carry unverifiedNote.
func (t *tx) replayUnverified() (*replay, error) {
	rows, err := t.query("read the audit log", `SELECT line FROM usmp_audit ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	p := newReplay()
	for rows.Next() {
		var line string
		var bad bool
		if err := rows.Scan(textCol{dst: &line, bad: &bad}); err != nil {
			return nil, t.s.eng.dbErr("read the audit log", err)
		}
		if e, msg := parseAuditFields([]byte(line)); msg == "" && !bad {
			p.apply(e)
		}
	}
	return p, t.s.eng.dbErr("read the audit log", rows.Err())
}

// unverifiedNote qualifies a finding against a broken log.
const unverifiedNote = " (compared with an audit log whose chain is broken: its entries may have been changed too)"

// noted returns find with unverifiedNote added to every problem.
func noted(find func(Finding)) func(Finding) {
	return func(f Finding) {
		f.Problem += unverifiedNote
		find(f)
	}
}
