package registry

import (
	"context"
	"fmt"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
)

// RotateOptions controls Rotate.
type RotateOptions struct {
	// Reason is recorded with the retired KCV.
	Reason string
	// Master is the master secret; needed for derived devices.
	Master *psk.Secret
	// NewKey replaces the key with an imported one (copied).
	NewKey *psk.Secret
	// Random replaces the key with a new random one, whatever the source.
	Random bool
	// Register takes an unknown device as what the gateway assumes it is —
	// derived at epoch 0 — and rotates it to epoch 1, recording it.
	Register bool
}

// RotateResult is a rotated device, its previous KCV and epoch and its new
// key (a copy the caller owns and destroys).
type RotateResult struct {
	Device   Device
	OldKCV   string
	OldEpoch uint32
	Key      *psk.Secret
}

// Rotate gives a device a new key (rotate): a derived device moves to the
// next epoch, a random one gets a new random key, an imported one a new
// random key unless NewKey is given. The old KCV goes to the history with
// the reason and time.
func (r *Registry) Rotate(ctx context.Context, id string, opts RotateOptions) (*RotateResult, error) {
	if err := psk.ValidateDeviceID(id); err != nil {
		return nil, err
	}
	if err := checkReason(opts.Reason); err != nil {
		return nil, err
	}
	if opts.NewKey != nil {
		if err := r.checkImportedKey(id, opts.NewKey); err != nil {
			return nil, err
		}
	}
	var res *RotateResult
	var warnings []string
	o := writeOpts{create: opts.Register, storesKeys: r.rotationStores(ctx, id, opts)}
	err := r.update(ctx, o, func(t *tx, now time.Time) error {
		rec, known, err := r.rotating(t, id, opts, now)
		if err != nil {
			return err
		}
		defer rec.Destroy()
		res, err = r.rotateRecord(rec, opts, now)
		if err != nil {
			return err
		}
		if warnings, err = t.reusedKeys([]*Record{rec}); err != nil {
			return err
		}
		res.Device = rec.Info()
		t.log(r.event(now, EventRotate, rec))
		if !known {
			if err := t.insertDevices([]*Record{rec}); err != nil {
				return err
			}
		} else if err := t.updateDevice(rec); err != nil {
			return err
		}
		return t.retire(id, len(rec.History), rec.History[len(rec.History)-1])
	})
	if err != nil {
		if res != nil {
			res.Key.Destroy()
		}
		return nil, err
	}
	for _, w := range warnings {
		r.warn(w)
	}
	return res, nil
}

// rotating returns the record to rotate, with its key and history: the
// registry's, or for Register an unknown device as the gateway sees it
// (derived at epoch 0; known is false).
func (r *Registry) rotating(t *tx, id string, opts RotateOptions, now time.Time) (rec *Record, known bool, err error) {
	rec, err = t.device(id, true)
	switch {
	case err != nil:
		return nil, false, err
	case rec != nil && rec.Status == StatusRevoked:
		rec.Destroy()
		return nil, false, &DeviceError{ID: id, Err: ErrRevoked, Msg: "revoked; a revoked device is not rotated"}
	case rec != nil:
		if rec.History, err = t.history(id); err != nil {
			rec.Destroy()
			return nil, false, err
		}
		return rec, true, nil
	case !opts.Register:
		return nil, false, &DeviceError{ID: id, Err: ErrUnknownDevice}
	case opts.Master.Len() == 0:
		return nil, false, &DeviceError{ID: id, Err: ErrNeedMaster, Msg: "rotating an unregistered (derived) device needs the master secret"}
	}
	if err := r.refuseForgotten(t, []string{id}, map[string]*Record{}); err != nil {
		return nil, false, err
	}
	if err := verifyMaster(t, opts.Master); err != nil {
		return nil, false, err
	}
	k := psk.Derive(opts.Master, id, 0)
	defer k.Destroy()
	return &Record{Device: Device{ID: id, Source: SourceDerived, Status: StatusActive, KCV: psk.KCV(k), Created: now}}, false, nil
}

// rotateRecord gives rec its next key, source and epoch, and appends the
// retired key to its history; the result holds the new key.
func (r *Registry) rotateRecord(rec *Record, opts RotateOptions, now time.Time) (*RotateResult, error) {
	if rec.Epoch == 1<<32-1 {
		return nil, &DeviceError{ID: rec.ID, Err: ErrEpochLimit}
	}
	newSource := rec.Source
	switch {
	case opts.NewKey != nil:
		newSource = SourceImported
	case opts.Random || rec.Source == SourceImported:
		newSource = SourceRandom
	}
	key, err := r.nextKey(rec, newSource, opts)
	if err != nil {
		return nil, err
	}
	res := &RotateResult{OldKCV: rec.KCV, OldEpoch: rec.Epoch, Key: key}
	rec.History = append(rec.History, Retired{KCV: rec.KCV, Epoch: rec.Epoch, Source: rec.Source, Reason: opts.Reason, Retired: now})
	rec.Key.Destroy()
	rec.Key = nil
	if newSource.Stored() {
		rec.Key = psk.CopySecret(key.Expose())
	}
	rec.Source, rec.Epoch, rec.KCV, rec.Updated = newSource, rec.Epoch+1, psk.KCV(key), now
	return res, nil
}

// nextKey makes a rotated device's new key.
func (r *Registry) nextKey(rec *Record, source Source, opts RotateOptions) (*psk.Secret, error) {
	switch source {
	case SourceDerived:
		if opts.Master.Len() == 0 {
			return nil, &DeviceError{ID: rec.ID, Err: ErrNeedMaster, Msg: "rotating a derived device needs the master secret"}
		}
		if err := verifyDerived(rec, opts.Master); err != nil {
			return nil, err
		}
		return psk.Derive(opts.Master, rec.ID, rec.Epoch+1), nil
	case SourceRandom:
		k, err := psk.Generate(r.rand, max(psk.DefaultBytes, rec.Key.Len()))
		if err != nil {
			return nil, fmt.Errorf("generate a key for device %q: %w", rec.ID, err)
		}
		return k, nil
	}
	if rec.Key != nil && rec.Key.Equal(opts.NewKey) {
		return nil, &psk.InputError{Source: "device " + rec.ID, Msg: "the new key is the current key"}
	}
	return psk.CopySecret(opts.NewKey.Expose()), nil
}

// rotationStores reports whether rotating id stores a key (so that the
// location rules apply): a new random or imported key is stored, and so is
// the new random key of a random or imported device; only a derived
// device's rotation stores none. The source is read before the write; an
// error here (no such device) is the write's to report.
func (r *Registry) rotationStores(ctx context.Context, id string, opts RotateOptions) bool {
	if opts.Random || opts.NewKey != nil {
		return true
	}
	d, err := r.Show(ctx, id)
	return err == nil && d.Source != SourceDerived
}
