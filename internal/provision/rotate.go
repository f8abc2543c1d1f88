package provision

import (
	"context"

	"github.com/usmp/usmp-psk/internal/registry"
)

// RotateResult is a rotated device and, when asked for, its new image.
type RotateResult struct {
	registry.RotateResult
	Image []byte
}

// Rotate gives the device a new key in the registry (the old KCV goes to
// its history with the reason) and, when o is not nil, builds the image
// holding the new key.
func Rotate(ctx context.Context, reg *registry.Registry, id string, ro registry.RotateOptions, o *ImageOptions) (*RotateResult, error) {
	res, err := reg.Rotate(ctx, id, ro)
	if err != nil {
		return nil, err
	}
	out := &RotateResult{RotateResult: *res}
	if o != nil {
		img, err := BuildImage(id, res.Key, *o)
		if err != nil {
			res.Key.Destroy()
			return nil, err
		}
		out.Image = img
	}
	return out, nil
}
