package registry

import (
	"crypto/subtle"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
)

// Source says where a device's key comes from.
type Source string

// The key sources of a device.
const (
	// SourceDerived keys are HMAC-SHA256(master, id[, epoch]); the record
	// holds no key bytes.
	SourceDerived Source = "derived"
	// SourceRandom keys came from crypto/rand; the record holds the key.
	SourceRandom Source = "random"
	// SourceImported keys came from outside (--psk-file, registry import);
	// the record holds the key.
	SourceImported Source = "imported"
)

func (s Source) valid() bool {
	return s == SourceDerived || s == SourceRandom || s == SourceImported
}

// Stored reports whether records of this source hold key bytes.
func (s Source) Stored() bool { return s == SourceRandom || s == SourceImported }

// Status is the life-cycle state of a device.
type Status string

// The statuses of a device.
const (
	StatusActive  Status = "active"
	StatusRevoked Status = "revoked"
)

func (s Status) valid() bool { return s == StatusActive || s == StatusRevoked }

// Retired is a key that a device no longer uses: its KCV, epoch and source,
// why it was retired (the rotation reason) and when.
type Retired struct {
	KCV     string    `json:"kcv"`
	Epoch   uint32    `json:"epoch"`
	Source  Source    `json:"source"`
	Reason  string    `json:"reason,omitempty"`
	Retired time.Time `json:"retired"`
}

// Device is the public part of a record: everything but the key. It is
// safe to print and marshals to the JSON of 'registry show --json'. Times
// are UTC with whole seconds.
//
// For derived devices Epoch is the derivation parameter; for stored keys it
// counts the rotations.
type Device struct {
	ID      string    `json:"id"`
	Source  Source    `json:"source"`
	Epoch   uint32    `json:"epoch"`
	Status  Status    `json:"status"`
	KCV     string    `json:"kcv"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Revoked is when the device was revoked (zero while active).
	Revoked time.Time `json:"revoked,omitzero"`
	// RevokeReason is the reason given to revoke, if any.
	RevokeReason string `json:"revoke_reason,omitempty"`
	// History lists the retired keys, oldest first.
	History []Retired `json:"history,omitempty"`
}

// Summary is the row of 'registry list': {"id","source","epoch","status",
// "kcv","created","updated"}.
type Summary struct {
	ID      string    `json:"id"`
	Source  Source    `json:"source"`
	Epoch   uint32    `json:"epoch"`
	Status  Status    `json:"status"`
	KCV     string    `json:"kcv"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Summary returns the list row of d.
func (d *Device) Summary() Summary {
	return Summary{ID: d.ID, Source: d.Source, Epoch: d.Epoch, Status: d.Status, KCV: d.KCV, Created: d.Created, Updated: d.Updated}
}

// Record is one device with its key: Key is nil for derived devices (the
// key is recomputed from the master secret) and for revoked devices, whose
// stored key is dropped on revocation. The key never goes into JSON through
// Record (json:"-"; psk.Secret refuses anyway).
type Record struct {
	Device
	Key *psk.Secret `json:"-"`
}

// Info returns a copy of the public part of r.
func (r *Record) Info() Device {
	d := r.Device
	if r.History != nil {
		d.History = append([]Retired(nil), r.History...)
	}
	return d
}

// Destroy wipes the key of r (best effort, R26).
func (r *Record) Destroy() {
	if r != nil && r.Key != nil {
		r.Key.Destroy()
	}
}

// equalKCV compares two KCVs in constant time (R15).
func equalKCV(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// validKCV reports whether s has the form of a KCV: 8 lowercase hex digits.
func validKCV(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// validate checks the invariants of a record that a store is asked to keep
// (with keyRead: its key was read, and must match the record). The message
// names the field, never its content.
func (r *Record) validate(keyRead bool) (field, msg string) {
	if err := psk.ValidateDeviceID(r.ID); err != nil {
		return "id", "not a valid device id"
	}
	if !r.Source.valid() {
		return "source", "not one of derived, random, imported"
	}
	if !r.Status.valid() {
		return "status", "not one of active, revoked"
	}
	if !validKCV(r.KCV) {
		return "kcv", "not 8 lowercase hex digits"
	}
	switch {
	case r.Source == SourceDerived && r.Key != nil:
		return "psk", "a derived device must not hold key bytes"
	case !keyRead:
	case r.Source.Stored() && r.Status == StatusActive && r.Key.Len() == 0:
		return "psk", "missing: an active " + string(r.Source) + " device holds its key"
	case r.Key != nil && r.Key.Len() == 0:
		return "psk", "empty key"
	}
	if r.Key != nil && !equalKCV(psk.KCV(r.Key), r.KCV) {
		return "kcv", "does not match the stored key"
	}
	if r.Status == StatusActive && (!r.Revoked.IsZero() || r.RevokeReason != "") {
		return "revoked", "set on an active device"
	}
	if r.Status == StatusRevoked && r.Revoked.IsZero() {
		return "revoked", "missing on a revoked device"
	}
	return r.historyProblem()
}

// historyProblem checks the retired keys of a record, as validate does.
func (r *Record) historyProblem() (field, msg string) {
	for _, h := range r.History {
		if !validKCV(h.KCV) {
			return "history", "kcv is not 8 lowercase hex digits"
		}
		if !h.Source.valid() {
			return "history", "source is not one of derived, random, imported"
		}
	}
	return "", ""
}
