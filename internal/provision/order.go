package provision

// The order of provision and rotate: build first, record second, write last.
// An image is built in memory before the registry records a device or a
// rotation, so a failure there has no side effect; what can only fail after
// the commit (writing the file) is reported as an *UnwrittenError, which says
// that the registry did change and how to get the image without changing it
// again.

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
	"github.com/usmp/usmp-psk/internal/secfile"
)

// WriteFunc writes a finished image (in the CLI: the atomic 0600
// secret-file write). It is called after the registry commit.
type WriteFunc func(img []byte) error

// UnwrittenError reports an image that was not written although the
// registry recorded a new device or a rotation: the registry is right and
// the image is missing. The image of the recorded key can be written without
// recording anything again ('usmp-psk provision ID -o IMAGE' without a key
// source). Err is the cause.
type UnwrittenError struct {
	Device   registry.Device // the record as committed
	Rotation bool            // a rotation was recorded (else a new device)
	Err      error
}

func (e *UnwrittenError) Error() string {
	what := "device " + e.Device.ID
	if e.Rotation {
		what = "the rotation of device " + e.Device.ID
	}
	if e.Published() {
		return fmt.Sprintf("the registry recorded %s (now %s, epoch %d, kcv %s) and its image is in place, but it may not survive a power loss: %v",
			what, e.Device.Source, e.Device.Epoch, e.Device.KCV, e.Err)
	}
	return fmt.Sprintf("the registry recorded %s (now %s, epoch %d, kcv %s), but its image was not written: %v",
		what, e.Device.Source, e.Device.Epoch, e.Device.KCV, e.Err)
}

// Published reports that the image is at its path although a step after
// the rename (the directory's sync) failed.
func (e *UnwrittenError) Published() bool {
	var pe *secfile.PublishedError
	return errors.As(e.Err, &pe)
}

func (e *UnwrittenError) Unwrap() error { return e.Err }

// BadInput is false: the registry changed, so whatever the cause this is a
// failure (exit 1), not a usage error to fix and retry as it was.
func (e *UnwrittenError) BadInput() bool { return false }

// prebuilt is an image built before the registry commit, and the key (or
// stand-in) it holds.
type prebuilt struct {
	key *psk.Secret
	img []byte
}

// prebuild builds the image of id with key, taking ownership of key.
func prebuild(id string, key *psk.Secret, o ImageOptions) (*prebuilt, error) {
	img, err := BuildImage(id, key, o)
	if err != nil {
		key.Destroy()
		return nil, err
	}
	return &prebuilt{key: key, img: img}, nil
}

// image returns the image holding key and consumes p: the prebuilt image
// when it holds that key, else a new build (a random key, or a record that
// changed since the guess). p may be nil: then the image is built now.
func (p *prebuilt) image(id string, key *psk.Secret, o ImageOptions) ([]byte, error) {
	if p == nil {
		return BuildImage(id, key, o)
	}
	defer p.key.Destroy()
	if p.key.Len() > 0 && p.key.Equal(key) {
		return p.img, nil
	}
	psk.Wipe(p.img)
	return BuildImage(id, key, o)
}

// discard wipes an image that will not be used.
func (p *prebuilt) discard() {
	if p != nil {
		p.key.Destroy()
		psk.Wipe(p.img)
	}
}

// standIn is a random key of n bytes that is never recorded or written: it
// takes the place of a key the registry has not made yet.
func standIn(n int) (*psk.Secret, error) {
	return psk.Generate(rand.Reader, n)
}
