package provision

import (
	"context"
	"crypto/subtle"
	"errors"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

// Verdict is the outcome of Verify: what the image holds, what the gateway
// expects, and whether they agree. It holds KCVs, never keys.
type Verdict struct {
	ID       string `json:"device_id"`
	ImageKCV string `json:"image_kcv"`
	// ExpectedKCV is the KCV the gateway would accept ("" when none: a
	// revoked device).
	ExpectedKCV string `json:"expected_kcv"`
	// Basis says where the expectation comes from: "registry" or
	// "derived-epoch-0" (a device the registry does not know, checked
	// against what the gateway would accept for it).
	Basis  string          `json:"basis"`
	Epoch  uint32          `json:"epoch"`
	Status registry.Status `json:"status,omitempty"`
	// Match is true when the image's key is the one the gateway accepts.
	Match bool `json:"match"`
	// Reason explains a mismatch.
	Reason string `json:"reason,omitempty"`
}

// Verdict bases.
const (
	BasisRegistry = "registry"
	BasisDerived0 = "derived-epoch-0"
)

// Verify reads the device id and key from img and compares the key, in
// constant time (R15), with what the gateway accepts for that device: the
// registry's current key, or the epoch-0 derived key of a device the
// registry does not know. wantID, when set, must be the image's id. master
// is called only when a derived key is needed.
func Verify(ctx context.Context, reg *registry.Registry, img []byte, o ImageOptions, wantID string, master func() (*psk.Secret, error)) (*Verdict, error) {
	di, err := ReadImage(img, o)
	if err != nil {
		return nil, err
	}
	defer di.Key.Destroy()
	v := &Verdict{ID: di.ID}
	if err := psk.ValidateDeviceID(di.ID); err != nil {
		v.Reason = "the image's device id is not a valid id"
		return v, nil
	}
	if di.Key == nil {
		v.Reason = "the image holds no " + o.Namespace + "/" + o.PSKKey + " blob"
		return v, nil
	}
	v.ImageKCV = psk.KCV(di.Key)
	if wantID != "" && wantID != di.ID {
		v.Reason = "the image belongs to device " + di.ID + ", not " + wantID
		return v, nil
	}
	dev, err := reg.Show(ctx, di.ID)
	var expected *psk.Secret
	switch {
	case errors.Is(err, registry.ErrUnknownDevice), errors.Is(err, registry.ErrNoRegistry):
		m, err := master()
		if err != nil {
			return nil, err
		}
		expected = psk.Derive(m, di.ID, 0)
		v.Basis = BasisDerived0
	case err != nil:
		return nil, err
	default:
		v.Basis, v.Epoch, v.Status = BasisRegistry, dev.Epoch, dev.Status
		if dev.Status == registry.StatusRevoked {
			v.Reason = "the device is revoked"
			return v, nil
		}
		var m *psk.Secret
		if dev.Source == registry.SourceDerived {
			if m, err = master(); err != nil {
				return nil, err
			}
		}
		key, _, err := reg.Key(ctx, di.ID, m)
		if err != nil {
			return nil, err
		}
		expected = key
	}
	defer expected.Destroy()
	v.ExpectedKCV = psk.KCV(expected)
	v.Match = di.Key.Equal(expected)
	if !v.Match {
		v.Reason = "the image's key is not the one the gateway accepts"
		if v.Basis == BasisRegistry {
			for _, h := range dev.History {
				if subtle.ConstantTimeCompare([]byte(h.KCV), []byte(v.ImageKCV)) == 1 {
					v.Reason = "the image holds a retired key (rotated away; flash the current image)"
				}
			}
		}
	}
	return v, nil
}
