package provision

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

// RotateResult is a rotated device and, when asked for, its new image.
type RotateResult struct {
	registry.RotateResult
	Image []byte
}

// Rotate gives the device a new key in the registry (the old KCV goes to
// its history with the reason) and, when o is not nil, builds the image
// holding the new key and hands it to write (when not nil).
//
// The rotation is committed only once everything that can fail without side
// effects has passed: the base image is checked (CheckBase) and the image is
// built in memory first, so a base that cannot take the new key leaves the
// registry and its audit log as they were. A failure after the commit (the
// write) is an *UnwrittenError, which says that the rotation was recorded.
func Rotate(ctx context.Context, reg *registry.Registry, id string, ro registry.RotateOptions, o *ImageOptions, write WriteFunc) (*RotateResult, error) {
	var pre *prebuilt
	if o != nil {
		key, err := rotateKey(ctx, reg, id, ro)
		if err != nil {
			return nil, err
		}
		if pre, err = prebuild(id, key, *o); err != nil {
			return nil, fmt.Errorf("%w; the rotation was not recorded", err)
		}
	}
	res, err := reg.Rotate(ctx, id, ro)
	if err != nil {
		pre.discard()
		return nil, err
	}
	out := &RotateResult{RotateResult: *res}
	if o == nil {
		return out, nil
	}
	img, err := pre.image(id, res.Key, *o)
	if err == nil && write != nil {
		if err = write(img); err != nil {
			psk.Wipe(img)
		}
	}
	if err != nil {
		res.Key.Destroy()
		return nil, &UnwrittenError{Device: res.Device, Rotation: true, Err: err}
	}
	out.Image = img
	return out, nil
}

// rotateKey returns the key reg.Rotate will give the device, the way it
// chooses it: the imported key, the next epoch's derivation of a derived
// device (an unknown one is taken as derived at epoch 0), or — for a new
// random key, which the registry makes inside its transaction — a random
// stand-in of the same length (the editor's use of space depends on lengths
// only). A guess proved wrong by the commit (the record changed in between)
// costs a second build, nothing else.
func rotateKey(ctx context.Context, reg *registry.Registry, id string, ro registry.RotateOptions) (*psk.Secret, error) {
	if ro.NewKey.Len() > 0 {
		return psk.CopySecret(ro.NewKey.Expose()), nil
	}
	dev, err := reg.Show(ctx, id)
	switch {
	case errors.Is(err, registry.ErrUnknownDevice), errors.Is(err, registry.ErrNoRegistry):
		dev = registry.Device{ID: id, Source: registry.SourceDerived}
	case err != nil:
		return nil, err
	}
	n := psk.DefaultBytes
	switch {
	case dev.Source == registry.SourceDerived && !ro.Random:
		if ro.Master.Len() > 0 && dev.Epoch < math.MaxUint32 {
			return psk.Derive(ro.Master, id, dev.Epoch+1), nil
		}
	case dev.Source != registry.SourceDerived && dev.Status == registry.StatusActive:
		// The new random key is as long as the stored one, at least.
		if k, _, err := reg.Key(ctx, id, nil); err == nil {
			n = max(n, k.Len())
			k.Destroy()
		}
	}
	return standIn(n)
}
