package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

// Source is where a device's key comes from.
type Source int

// The key sources of provision (design §7).
const (
	// FromRegistry uses the registry's record (the device must be known).
	FromRegistry Source = iota
	// Derive derives the key from the master secret at Epoch.
	Derive
	// Random makes a new random key.
	Random
	// Imported takes the key given in PSK (--psk-file).
	Imported
)

// Request is one device to provision.
type Request struct {
	ID     string
	Source Source
	Epoch  uint32      // Derive
	PSK    *psk.Secret // Imported (the caller keeps ownership)
	// Master is the master secret; needed for derived devices (Derive, or
	// FromRegistry of a derived record).
	Master *psk.Secret
}

// ConflictError reports a key source that conflicts with the registry's
// record of the device: changing a recorded key is a rotation.
type ConflictError struct {
	ID     string
	Record registry.Device
	Err    error
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("device %s is already recorded (%s, epoch %d, kcv %s) with a different key source or epoch\nhint: to give it a new key run 'usmp-psk rotate %s'; to provision its recorded key, drop --derive/--random/--psk-file",
		e.ID, e.Record.Source, e.Record.Epoch, e.Record.KCV, e.ID)
}

func (e *ConflictError) Unwrap() error { return e.Err }

// BadInput marks the error as the user's to fix (exit code 2).
func (e *ConflictError) BadInput() bool { return true }

// NeedSourceError reports an unknown device provisioned without a source.
type NeedSourceError struct{ ID string }

func (e *NeedSourceError) Error() string {
	return "device " + e.ID + " is not in the registry\nhint: give its key source: --derive [--epoch N], --random or --psk-file FILE"
}

// BadInput marks the error as the user's to fix (exit code 2).
func (e *NeedSourceError) BadInput() bool { return true }

// KeyResult is a device's key as recorded in the registry.
type KeyResult struct {
	Device registry.Device
	Key    *psk.Secret // the caller destroys it
	// Existing is true when the registry already had the device.
	Existing bool
}

// Key returns the key of the device and makes sure the registry records
// it, durably, before any image exists (a random key must never exist only
// in an image or only in memory, issue #7). A known device keeps its record:
// a source that agrees with it is accepted, one that conflicts is a
// ConflictError pointing to rotate.
func Key(ctx context.Context, reg *registry.Registry, q Request) (*KeyResult, error) {
	if err := psk.ValidateDeviceID(q.ID); err != nil {
		return nil, err
	}
	if q.Source == FromRegistry {
		key, dev, err := reg.Key(ctx, q.ID, q.Master)
		if errors.Is(err, registry.ErrUnknownDevice) || errors.Is(err, registry.ErrNoRegistry) {
			return nil, &NeedSourceError{ID: q.ID}
		}
		if err != nil {
			return nil, err
		}
		return &KeyResult{Device: dev, Key: key, Existing: true}, nil
	}
	var spec registry.KeySpec
	switch q.Source {
	case Derive:
		spec = registry.Derived(q.Master, q.Epoch)
	case Random:
		spec = registry.Random()
	case Imported:
		spec = registry.Imported(q.PSK)
	default:
		return nil, fmt.Errorf("unknown key source %d", q.Source)
	}
	res, err := reg.AddMany(ctx, []registry.AddRequest{{ID: q.ID, Key: spec}}, registry.AddOptions{KeepExisting: true})
	if errors.Is(err, registry.ErrDeviceExists) {
		dev, serr := reg.Show(ctx, q.ID)
		if serr == nil {
			return nil, &ConflictError{ID: q.ID, Record: dev, Err: err}
		}
	}
	if err != nil {
		return nil, err
	}
	return &KeyResult{Device: res[0].Device, Key: res[0].Key, Existing: res[0].Existing}, nil
}

// Result is a provisioned device.
type Result struct {
	KeyResult
	// Image is the device's NVS image (a secret when not encrypted).
	Image []byte
}

// Provision records the device (when new), builds its image and, when
// write is not nil, writes it. Whatever can fail without side effects comes
// first: the base image is checked (CheckBase) and the image is built in
// memory before the registry records anything, so a base that cannot take
// the key (encrypted without keys, wrong keys, full, unmountable) registers
// no device. Only a failure after a new device was recorded is an
// *UnwrittenError; for a device the registry already had, nothing was
// recorded and the error is returned as it is.
func Provision(ctx context.Context, reg *registry.Registry, q Request, o ImageOptions, write WriteFunc) (*Result, error) {
	if err := psk.ValidateDeviceID(q.ID); err != nil {
		return nil, err
	}
	// Key records nothing for FromRegistry: the image is built after it.
	var pre *prebuilt
	if q.Source != FromRegistry {
		key, err := provisionKey(q)
		if err != nil {
			return nil, err
		}
		if pre, err = prebuild(q.ID, key, o); err != nil {
			return nil, fmt.Errorf("%w; nothing was recorded", err)
		}
	}
	kr, err := Key(ctx, reg, q)
	if err != nil {
		pre.discard()
		return nil, err
	}
	fail := func(err error) (*Result, error) {
		kr.Key.Destroy()
		if kr.Existing {
			return nil, err
		}
		return nil, &UnwrittenError{Device: kr.Device, Err: err}
	}
	img, err := pre.image(q.ID, kr.Key, o)
	if err != nil {
		return fail(err)
	}
	if write != nil {
		if err := write(img); err != nil {
			psk.Wipe(img)
			return fail(err)
		}
	}
	return &Result{KeyResult: *kr, Image: img}, nil
}

// provisionKey returns the key Key will record for q: the derivation or the
// imported key, or a random stand-in of the key's length for a new random
// key, which the registry makes inside its transaction (the editor's use of
// space depends on lengths only).
func provisionKey(q Request) (*psk.Secret, error) {
	switch {
	case q.Source == Derive && q.Master.Len() > 0:
		return psk.Derive(q.Master, q.ID, q.Epoch), nil
	case q.Source == Imported && q.PSK.Len() > 0:
		return psk.CopySecret(q.PSK.Expose()), nil
	}
	return standIn(psk.DefaultBytes)
}
