package registry

// The state the audit log implies: replaying its entries gives, for every
// device it mentions, the status, epoch, KCV and (in entries of this
// version) source it must have now. A record that contradicts it was
// changed outside usmp-psk: deleted, un-revoked, given another epoch or
// key, or added without an entry.

import (
	"fmt"
	"slices"

	"github.com/usmp/usmp-psk/internal/psk"
)

// implied is a device as the log leaves it.
type implied struct {
	status Status
	kcv    string
	epoch  uint32
	source Source // "" where the log does not say (entries of earlier versions)
	seq    uint64 // the last entry about the device
	seen   bool   // the registry has a record of it
	// retired are the keys its rotations retired, oldest first: what
	// usmp_history must hold.
	retired []retiredKey
}

// retiredKey is a key as a rotation retired it; kcv is "" for the key a
// registering rotation retired, which the log never saw.
type retiredKey struct {
	kcv    string
	epoch  uint32
	source Source // "" where the log does not say
}

// replay is the state the log implies, entry by entry.
type replay struct {
	devices map[string]*implied
}

func newReplay() *replay { return &replay{devices: map[string]*implied{}} }

// apply takes the next entry of the log.
func (p *replay) apply(e *AuditEntry) {
	if e.Device == "" {
		return
	}
	d := p.devices[e.Device]
	if d == nil || e.Event == EventAdd || e.Event == EventBatch || e.Event == EventImport {
		d = &implied{}
		p.devices[e.Device] = d
	}
	if e.Event == EventRotate {
		// A rotation retires the key before it; the first entry of a
		// device registered by its rotation (rotate --register) retires
		// a key the log never saw.
		d.retired = append(d.retired, retiredKey{d.kcv, d.epoch, d.source})
	}
	switch e.Event {
	case EventAdd, EventBatch, EventImport, EventRotate:
		d.status = StatusActive
		d.source = e.Source // unknown ("") when the entry does not say
	case EventRevoke:
		d.status = StatusRevoked
		if e.Source != "" {
			d.source = e.Source
		}
	default:
		return
	}
	d.kcv, d.epoch, d.seq = e.KCV, e.Epoch, e.Seq
}

// compare returns what rec contradicts in the log.
func (p *replay) compare(rec *Record) []Finding {
	return p.compareKnown(rec, known{epoch: true, text: true})
}

// known says which of a record's columns could be read: a damaged row is
// still compared on the others, so one bad column cannot hide a change to
// another (an un-revoked device whose revocation time was left in place).
type known struct{ epoch, text bool }

// compareKnown returns what rec contradicts in the log, in the columns
// that could be read.
func (p *replay) compareKnown(rec *Record, k known) []Finding {
	d := p.devices[rec.ID]
	if d == nil {
		return []Finding{{Device: rec.ID, Field: "audit", Problem: "the audit log never recorded this device: it was added outside usmp-psk"}}
	}
	d.seen = true
	entry := fmt.Sprintf(" (audit entry %d)", d.seq)
	var out []Finding
	add := func(field, problem string) {
		out = append(out, Finding{Device: rec.ID, Field: field, Problem: problem + entry})
	}
	switch {
	case !k.text:
	case d.status == StatusRevoked && rec.Status != StatusRevoked:
		add("status", "active, but the audit log revoked it: it was un-revoked outside usmp-psk")
	case d.status != rec.Status:
		add("status", "revoked, but the audit log has no revocation of it")
	}
	if k.epoch && d.epoch != rec.Epoch {
		add("epoch", fmt.Sprintf("is %d, the audit log says %d", rec.Epoch, d.epoch))
	}
	if k.text && !equalKCV(d.kcv, rec.KCV) {
		add("kcv", fmt.Sprintf("is %s, the audit log says %s: the key was changed outside usmp-psk", rec.KCV, d.kcv))
	}
	if k.text && d.source != "" && d.source != rec.Source {
		add("source", fmt.Sprintf("is %s, the audit log says %s", rec.Source, d.source))
	}
	return out
}

// compareDamaged returns what a row that could not be decoded still
// contradicts in the log; nil when even its id is unreadable.
func (p *replay) compareDamaged(r *row) []Finding {
	if r.badID || psk.ValidateDeviceID(r.id) != nil {
		return nil
	}
	k := known{epoch: !r.badEpoch && r.epoch >= 0 && r.epoch <= 1<<32-1, text: !r.badText}
	rec := &Record{Device: Device{ID: r.id, Source: Source(r.source), Status: Status(r.status), KCV: r.kcv}}
	if k.epoch {
		rec.Epoch = uint32(r.epoch)
	}
	return p.compareKnown(rec, k)
}

// deleted returns the devices the log records and the registry has no
// record of, in id order.
func (p *replay) deleted() []Finding {
	var ids []string
	for id, d := range p.devices {
		if !d.seen {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := make([]Finding, 0, len(ids))
	for _, id := range ids {
		d := p.devices[id]
		out = append(out, Finding{Device: id, Field: "audit", Problem: fmt.Sprintf("the audit log records this device (%s, epoch %d, KCV %s; audit entry %d), but the registry has no record of it: it was deleted outside usmp-psk", d.status, d.epoch, d.kcv, d.seq)})
	}
	return out
}

// compareHistory returns what the retired keys the registry keeps for id
// (oldest first) contradict in the log's rotations.
func (p *replay) compareHistory(id string, got []retiredKey) []Finding {
	d := p.devices[id]
	if d == nil || !d.seen {
		return nil // reported as never logged, or as deleted
	}
	want := d.retired
	if len(got) != len(want) {
		return []Finding{{Device: id, Field: "history", Problem: fmt.Sprintf("the registry keeps %d retired keys, but the audit log's rotations retired %d: retired keys were deleted or added outside usmp-psk", len(got), len(want))}}
	}
	var out []Finding
	for i, g := range got {
		w := want[i]
		if w.kcv == "" {
			continue // retired by a registering rotation: not in the log
		}
		if !equalKCV(g.kcv, w.kcv) || g.epoch != w.epoch || (w.source != "" && g.source != w.source) {
			out = append(out, Finding{Device: id, Field: "history", Problem: fmt.Sprintf("retired key %d is KCV %s (epoch %d), but the audit log says KCV %s (epoch %d): the history was edited outside usmp-psk", i+1, g.kcv, g.epoch, w.kcv, w.epoch)})
		}
	}
	return out
}

// withRetired returns the ids of the devices with records whose rotations
// retired keys, in id order.
func (p *replay) withRetired() []string {
	var ids []string
	for id, d := range p.devices {
		if d.seen && len(d.retired) > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
