package registry

import (
	"context"

	"github.com/usmp/usmp-psk/internal/psk"
)

// Key returns the current key of a device (a copy the caller destroys):
// derived from master at the device's epoch (checked against its KCV) or
// the stored key. An unknown device wraps ErrUnknownDevice (the gateway
// would use its epoch-0 derived key), a revoked one ErrRevoked.
func (r *Registry) Key(ctx context.Context, id string, master *psk.Secret) (*psk.Secret, Device, error) {
	if err := psk.ValidateDeviceID(id); err != nil {
		return nil, Device{}, err
	}
	var key *psk.Secret
	var dev Device
	err := r.st.read(ctx, func(t *tx) error {
		rec, err := t.device(id, true)
		switch {
		case err != nil:
			return err
		case rec == nil:
			return &DeviceError{ID: id, Err: ErrUnknownDevice}
		}
		defer rec.Destroy()
		dev = rec.Info()
		if rec.Status == StatusRevoked {
			return &DeviceError{ID: id, Err: ErrRevoked}
		}
		key, err = recordKey(rec, master)
		return err
	})
	return key, dev, err
}

// recordKey returns a copy of the key of an active record.
func recordKey(rec *Record, master *psk.Secret) (*psk.Secret, error) {
	if rec.Source != SourceDerived {
		return psk.CopySecret(rec.Key.Expose()), nil
	}
	if master.Len() == 0 {
		return nil, &DeviceError{ID: rec.ID, Err: ErrNeedMaster, Msg: "a derived device: the master secret is needed"}
	}
	key := psk.Derive(master, rec.ID, rec.Epoch)
	if kcv := psk.KCV(key); !equalKCV(kcv, rec.KCV) {
		key.Destroy()
		return nil, &MismatchError{ID: rec.ID, Epoch: rec.Epoch, Registered: rec.KCV, Derived: kcv}
	}
	return key, nil
}

// List returns every device in id order (registry list), without history.
func (r *Registry) List(ctx context.Context) ([]Device, error) {
	var out []Device
	err := r.st.read(ctx, func(t *tx) error {
		return t.eachDevice("", false, func(rec *Record) error {
			out = append(out, rec.Device)
			return nil
		})
	})
	return out, err
}

// Show returns one device, history included (registry show).
func (r *Registry) Show(ctx context.Context, id string) (Device, error) {
	if err := psk.ValidateDeviceID(id); err != nil {
		return Device{}, err
	}
	var dev Device
	err := r.st.read(ctx, func(t *tx) error {
		rec, err := t.device(id, false)
		switch {
		case err != nil:
			return err
		case rec == nil:
			return &DeviceError{ID: id, Err: ErrUnknownDevice}
		}
		dev = rec.Device
		dev.History, err = t.history(id)
		return err
	})
	return dev, err
}

// Stats counts the devices of a registry.
type Stats struct {
	Devices       int // all records
	Active        int
	Revoked       int
	ActiveDerived int // active derived devices: exporting them needs the master
	ActiveStored  int // active random or imported devices
}

// NeedsMaster reports whether exporting needs the master secret.
func (s Stats) NeedsMaster() bool { return s.ActiveDerived > 0 }

// CheckMaster checks master against the registry's derived devices, as
// add --derive does before it records anything: a *MismatchError when it
// does not reproduce the KCV of an active derived device, nil when it does
// or there is none to compare with (derive of an unrecorded device).
func (r *Registry) CheckMaster(ctx context.Context, master *psk.Secret) error {
	return r.st.read(ctx, func(t *tx) error { return verifyMaster(t, master) })
}

// Stats counts the devices (so the CLI asks for the master secret only when
// an export or check needs it).
func (r *Registry) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := r.st.read(ctx, func(t *tx) error {
		rows, err := t.query("count the devices", `SELECT status, source, count(*) FROM usmp_devices GROUP BY status, source`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var status, source string
			var n int
			if err := rows.Scan(&status, &source, &n); err != nil {
				return t.s.eng.dbErr("count the devices", err)
			}
			st.add(Status(status), Source(source), n)
		}
		return t.s.eng.dbErr("count the devices", rows.Err())
	})
	return st, err
}

func (s *Stats) add(status Status, source Source, n int) {
	s.Devices += n
	if status == StatusRevoked {
		s.Revoked += n
		return
	}
	s.Active += n
	if source == SourceDerived {
		s.ActiveDerived += n
	} else {
		s.ActiveStored += n
	}
}
