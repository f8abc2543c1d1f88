package registry

// The registry's operations, each one transaction on either engine.

import (
	"context"
	"fmt"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
)

// KeySpec says how a new device gets its key. Build it with Derived, Random
// or Imported.
type KeySpec struct {
	Source Source
	Master *psk.Secret // SourceDerived: used only to compute the KCV (and the returned key)
	Epoch  uint32      // SourceDerived
	Key    *psk.Secret // SourceImported: the key (copied; the caller keeps ownership)
	Bytes  int         // SourceRandom: key length, default psk.DefaultBytes
}

// Derived is a key derived from master at epoch (registry add --derive
// [--epoch N]). The record holds no key bytes.
func Derived(master *psk.Secret, epoch uint32) KeySpec {
	return KeySpec{Source: SourceDerived, Master: master, Epoch: epoch}
}

// Random is a new random key of psk.DefaultBytes bytes (registry add --random).
func Random() KeySpec { return KeySpec{Source: SourceRandom} }

// Imported is an existing key (registry add --psk-file FILE). Placeholders
// of the USMP documentation are refused; keys shorter than 32 bytes are
// accepted with a warning.
func Imported(key *psk.Secret) KeySpec { return KeySpec{Source: SourceImported, Key: key} }

// AddRequest is one device to record.
type AddRequest struct {
	ID  string
	Key KeySpec
}

// AddOptions controls AddMany.
type AddOptions struct {
	// Event is the audit event of each device (default EventAdd; batch
	// uses EventBatch).
	Event Event
	// KeepExisting accepts a device that is already active with the same
	// source (and epoch, for derived; and key, for imported): it is
	// returned with Existing set and its key, unchanged — so a batch can be
	// re-run. A device that exists otherwise is an error.
	KeepExisting bool
}

// AddResult is a recorded device and its key.
type AddResult struct {
	// Device is the record (without its history).
	Device Device
	// Key is the device's key, a copy the caller owns and destroys.
	Key *psk.Secret
	// Existing reports a device that was already recorded (KeepExisting).
	Existing bool
}

// Add records a new device (registry add). An existing device is an error
// wrapping ErrDeviceExists. The registry is created when missing.
func (r *Registry) Add(ctx context.Context, id string, spec KeySpec) (*AddResult, error) {
	res, err := r.AddMany(ctx, []AddRequest{{ID: id, Key: spec}}, AddOptions{})
	if err != nil {
		return nil, err
	}
	return &res[0], nil
}

// AddMany records several devices in one transaction (provision, a batch
// chunk): all are recorded, or none, with a constant number of statements
// whatever their number. The registry is created when missing.
func (r *Registry) AddMany(ctx context.Context, reqs []AddRequest, opts AddOptions) ([]AddResult, error) {
	if opts.Event == "" {
		opts.Event = EventAdd
	}
	ids := make([]string, len(reqs))
	stores := false
	seen := make(map[string]struct{}, len(reqs))
	for i, q := range reqs {
		if err := psk.ValidateDeviceID(q.ID); err != nil {
			return nil, err
		}
		if _, dup := seen[q.ID]; dup {
			return nil, &DeviceError{ID: q.ID, Err: ErrDeviceExists, Msg: "given twice"}
		}
		seen[q.ID] = struct{}{}
		if err := r.checkSpec(q.ID, q.Key); err != nil {
			return nil, err
		}
		ids[i], stores = q.ID, stores || q.Key.Source.Stored()
	}
	var results []AddResult
	var warnings []string
	err := r.update(ctx, writeOpts{create: true, storesKeys: stores}, func(t *tx, now time.Time) error {
		var err error
		results, warnings, err = r.addTx(t, now, reqs, ids, opts)
		return err
	})
	if err != nil {
		destroyResults(results)
		return nil, err
	}
	for _, w := range warnings {
		r.warn(w)
	}
	return results, nil
}

func destroyResults(res []AddResult) {
	for _, a := range res {
		a.Key.Destroy()
	}
}

// addTx is AddMany's transaction: the master checked once, the existing
// records read with one query, the new ones written with one statement per
// 500.
func (r *Registry) addTx(t *tx, now time.Time, reqs []AddRequest, ids []string, opts AddOptions) (results []AddResult, warnings []string, err error) {
	if err := r.verifyMasters(t, reqs); err != nil {
		return nil, nil, err
	}
	old, err := t.devices(ids, true)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		for _, rec := range old {
			rec.Destroy()
		}
	}()
	if err := r.refuseForgotten(t, ids, old); err != nil {
		return nil, nil, err
	}
	results = make([]AddResult, 0, len(reqs))
	var recs []*Record
	defer func() {
		for _, rec := range recs {
			rec.Destroy()
		}
	}()
	for _, q := range reqs {
		res, rec, err := r.addOne(q, old[q.ID], now, opts.KeepExisting)
		if err != nil {
			return results, nil, err
		}
		results = append(results, *res)
		if rec != nil {
			recs = append(recs, rec)
			t.log(r.event(now, opts.Event, rec))
		}
	}
	if warnings, err = t.reusedKeys(recs); err != nil {
		return results, nil, err
	}
	return results, warnings, t.insertDevices(recs)
}

// addOne makes the record of a new device, or checks an existing one.
func (r *Registry) addOne(q AddRequest, old *Record, now time.Time, keep bool) (*AddResult, *Record, error) {
	if old != nil {
		res, err := r.existing(old, q, keep)
		return res, nil, err
	}
	key, err := r.newKey(q.ID, q.Key)
	if err != nil {
		return nil, nil, err
	}
	rec := &Record{Device: Device{ID: q.ID, Source: q.Key.Source, Status: StatusActive, KCV: psk.KCV(key), Created: now, Updated: now}}
	if q.Key.Source == SourceDerived {
		rec.Epoch = q.Key.Epoch
	} else {
		rec.Key = psk.CopySecret(key.Expose())
	}
	return &AddResult{Device: rec.Info(), Key: key}, rec, nil
}

// verifyMasters checks each master secret of the requests once against the
// registry's first active derived device.
func (r *Registry) verifyMasters(t *tx, reqs []AddRequest) error {
	checked := map[*psk.Secret]bool{}
	for _, q := range reqs {
		if q.Key.Source == SourceDerived && !checked[q.Key.Master] {
			if err := verifyMaster(t, q.Key.Master); err != nil {
				return err
			}
			checked[q.Key.Master] = true
		}
	}
	return nil
}

// refuseForgotten refuses to record a device anew that has no record but
// entries in the audit log: its record was deleted (or a backup restored)
// outside usmp-psk, and recording it again could bring back a revoked key.
func (r *Registry) refuseForgotten(t *tx, ids []string, old map[string]*Record) error {
	var fresh []string
	for _, id := range ids {
		if old[id] == nil {
			fresh = append(fresh, id)
		}
	}
	logged, err := t.logged(fresh)
	if err != nil {
		return err
	}
	for _, id := range fresh {
		if logged[id] {
			return &DeviceError{ID: id, Err: ErrForgotten, Msg: "the audit log records this device, but the registry has no record of it: the record was deleted or an old backup restored; nothing was recorded\nhint: run 'usmp-psk registry check', and restore the record (or the whole registry) from a backup"}
		}
	}
	return nil
}

// checkSpec validates a key spec before any I/O.
func (r *Registry) checkSpec(id string, s KeySpec) error {
	switch s.Source {
	case SourceDerived:
		if s.Master.Len() == 0 {
			return &DeviceError{ID: id, Err: ErrNeedMaster, Msg: "a derived key needs the master secret"}
		}
	case SourceRandom:
		if s.Bytes != 0 && s.Bytes < psk.MinGeneratedBytes {
			return &psk.InputError{Source: "--bytes", Msg: "a generated key needs at least 32 bytes"}
		}
	case SourceImported:
		return r.checkImportedKey(id, s.Key)
	default:
		return fmt.Errorf("registry: unknown key source %q", s.Source)
	}
	return nil
}

// maxKeyBytes bounds stored keys.
const maxKeyBytes = 4096

// checkImportedKey refuses empty and placeholder keys and warns about short
// ones.
func (r *Registry) checkImportedKey(id string, key *psk.Secret) error {
	switch {
	case key.Len() == 0:
		return &psk.InputError{Source: "device " + id, Msg: "the key is empty"}
	case key.Len() > maxKeyBytes:
		return &psk.InputError{Source: "device " + id, Msg: "the key is longer than 4096 bytes"}
	case psk.IsPlaceholder(key.Expose()):
		return &psk.InputError{Source: "device " + id, Msg: psk.PlaceholderRule}
	case key.Len() < psk.MinGeneratedBytes:
		r.warn(fmt.Sprintf("device %q: the imported key has only %d bytes; generated keys have at least 32", id, key.Len()))
	}
	return nil
}

// newKey makes the key of a new device: derived, random or a copy of the
// imported one.
func (r *Registry) newKey(id string, s KeySpec) (*psk.Secret, error) {
	switch s.Source {
	case SourceDerived:
		return psk.Derive(s.Master, id, s.Epoch), nil
	case SourceRandom:
		n := s.Bytes
		if n == 0 {
			n = psk.DefaultBytes
		}
		k, err := psk.Generate(r.rand, n)
		if err != nil {
			return nil, fmt.Errorf("generate a key for device %q: %w", id, err)
		}
		return k, nil
	default:
		return psk.CopySecret(s.Key.Expose()), nil
	}
}

// existing handles AddMany of a device that is already recorded.
func (r *Registry) existing(old *Record, q AddRequest, keep bool) (*AddResult, error) {
	describe := fmt.Sprintf("already in the registry (%s, epoch %d, %s, KCV %s)", old.Source, old.Epoch, old.Status, old.KCV)
	if !keep {
		return nil, &DeviceError{ID: q.ID, Err: ErrDeviceExists, Msg: describe + "; use 'usmp-psk rotate' to give it a new key"}
	}
	if old.Status == StatusRevoked {
		return nil, &DeviceError{ID: q.ID, Err: ErrRevoked, Msg: "revoked; a revoked device id is not used again"}
	}
	same := old.Source == q.Key.Source
	switch {
	case !same:
	case old.Source == SourceDerived:
		same = old.Epoch == q.Key.Epoch
	case old.Source == SourceImported:
		same = old.Key.Equal(q.Key.Key)
	}
	if !same {
		return nil, &DeviceError{ID: q.ID, Err: ErrDeviceExists, Msg: describe + " with another key"}
	}
	var key *psk.Secret
	if old.Source == SourceDerived {
		key = psk.Derive(q.Key.Master, old.ID, old.Epoch)
		if kcv := psk.KCV(key); !equalKCV(kcv, old.KCV) {
			key.Destroy()
			return nil, &MismatchError{ID: old.ID, Epoch: old.Epoch, Registered: old.KCV, Derived: kcv}
		}
	} else {
		key = psk.CopySecret(old.Key.Expose())
	}
	return &AddResult{Device: old.Info(), Key: key, Existing: true}, nil
}

// verifyMaster checks master against the first active derived device of the
// registry, so that a wrong master secret is caught before it records
// anything (KCVs compare keys without revealing them).
func verifyMaster(t *tx, master *psk.Secret) error {
	var first *Record
	err := t.eachDeviceLimit(`source = 'derived' AND status = 'active'`, 1, func(rec *Record) error { first = rec; return nil })
	if err != nil || first == nil {
		return err
	}
	return verifyDerived(first, master)
}

// verifyDerived checks that master gives the KCV rec records.
func verifyDerived(rec *Record, master *psk.Secret) error {
	key := psk.Derive(master, rec.ID, rec.Epoch)
	defer key.Destroy()
	if kcv := psk.KCV(key); !equalKCV(kcv, rec.KCV) {
		return &MismatchError{ID: rec.ID, Epoch: rec.Epoch, Registered: rec.KCV, Derived: kcv}
	}
	return nil
}

// maxReason bounds free text (reasons) in bytes.
const maxReason = 1024

func checkReason(reason string) error {
	if len(reason) > maxReason {
		return &psk.InputError{Source: "--reason", Msg: "longer than 1024 bytes"}
	}
	return nil
}

// Revoke marks a device revoked (registry revoke). Its stored key, if any,
// is dropped from the registry: nothing may use it again. Export and the
// gateway leave it out.
func (r *Registry) Revoke(ctx context.Context, id, reason string) (Device, error) {
	if err := psk.ValidateDeviceID(id); err != nil {
		return Device{}, err
	}
	if err := checkReason(reason); err != nil {
		return Device{}, err
	}
	var out Device
	err := r.update(ctx, writeOpts{}, func(t *tx, now time.Time) error {
		rec, err := t.device(id, false)
		switch {
		case err != nil:
			return err
		case rec == nil:
			return &DeviceError{ID: id, Err: ErrUnknownDevice}
		case rec.Status == StatusRevoked:
			return &DeviceError{ID: id, Err: ErrRevoked, Msg: "already revoked"}
		}
		rec.Status, rec.Revoked, rec.RevokeReason, rec.Updated = StatusRevoked, now, reason, now
		if rec.History, err = t.history(id); err != nil {
			return err
		}
		out = rec.Info()
		t.log(r.event(now, EventRevoke, rec))
		return t.updateDevice(rec)
	})
	return out, err
}
