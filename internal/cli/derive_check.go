package cli

// derive against the registry (issue 14 item 5): derive works without any
// registry, but where one knows the device, a key that is not the one the
// gateway accepts must not be written silently — a retired epoch is the
// compromised key a rotation replaced, and a master secret that does not
// reproduce the registry's KCVs is the wrong one (provision and registry add
// refuse it). derive warns on stderr and still writes the key: it is also
// how an operator reproduces an old key on purpose.

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

// warnDeriveAgainstRegistry compares the key derive is about to write with
// what the registry records for the device, when a registry exists and
// knows it, and warns about every difference; for a device it does not
// know (or whose key is not derived), it checks the master secret against
// the registry's derived devices, as add --derive does. It never fails: a
// registry that cannot be read is itself only a warning.
func warnDeriveAgainstRegistry(ctx context.Context, opts *deriveOptions, master, key *psk.Secret) {
	path := opts.RegistryPath()
	if path == "" {
		return
	}
	if path == registry.DefaultPath {
		// No registry in this directory: nothing to compare with, and
		// nothing to say (derive needs none).
		if _, err := os.Stat(registry.DefaultPath); err != nil {
			return
		}
	}
	reg, err := opts.OpenRegistry()
	if err != nil {
		opts.IO.Warnf("could not check device %s against the registry: %v", opts.deviceID, err)
		return
	}
	defer reg.Close()
	dev, err := reg.Show(ctx, opts.deviceID)
	switch {
	case errors.Is(err, registry.ErrNoRegistry):
		return
	case errors.Is(err, registry.ErrUnknownDevice):
	case err != nil:
		opts.IO.Warnf("could not check device %s against the registry %s: %v", opts.deviceID, reg.Location(), err)
		return
	default:
		for _, w := range deriveWarnings(dev, opts.epoch, psk.KCV(key), reg.Location()) {
			opts.IO.Warn(w)
		}
		if dev.Source == registry.SourceDerived {
			return
		}
	}
	var me *registry.MismatchError
	if err := reg.CheckMaster(ctx, master); errors.As(err, &me) {
		opts.IO.Warnf("the master secret does not reproduce the registry's derived devices (%s at epoch %d: registry kcv %s, derived kcv %s): is it the right master secret? (provision and registry add refuse it)",
			me.ID, me.Epoch, me.Registered, me.Derived)
	}
}

// deriveWarnings lists what is wrong with deriving device dev's key at
// epoch with a master secret that gives kcv, by the registry's record.
func deriveWarnings(dev registry.Device, epoch uint32, kcv, location string) []string {
	id := dev.ID
	if dev.Source != registry.SourceDerived {
		return []string{fmt.Sprintf("device %s is recorded in %s with a %s key (kcv %s), not a derived one: the key derived here is not the one the gateway accepts",
			id, location, dev.Source, dev.KCV)}
	}
	var out []string
	if dev.Status == registry.StatusRevoked {
		out = append(out, fmt.Sprintf("device %s is revoked in %s: the gateway accepts no key for it", id, location))
	}
	mismatch := func(recorded string) string {
		return fmt.Sprintf("the master secret does not reproduce the registry's key of device %s at epoch %d (registry kcv %s, derived kcv %s): is it the right master secret? (provision and registry add refuse it)",
			id, epoch, recorded, kcv)
	}
	switch {
	case epoch == dev.Epoch:
		if kcv != dev.KCV {
			out = append(out, mismatch(dev.KCV))
		}
	case epoch < dev.Epoch:
		w := fmt.Sprintf("device %s is at epoch %d in %s; epoch %d is a retired key", id, dev.Epoch, location, epoch)
		for _, h := range dev.History {
			if h.Epoch == epoch && h.Source == registry.SourceDerived {
				w += fmt.Sprintf(" (retired %s", h.Retired.UTC().Format("2006-01-02T15:04:05Z"))
				if h.Reason != "" {
					w += fmt.Sprintf(": %q", h.Reason)
				}
				w += ")"
				if kcv != h.KCV {
					out = append(out, mismatch(h.KCV))
				}
			}
		}
		out = append(out, w+fmt.Sprintf(" that the gateway no longer accepts\nhint: the current key is usmp-psk derive %s --epoch %d (usmp-psk registry show %s)", id, dev.Epoch, id))
	default:
		out = append(out, fmt.Sprintf("device %s is at epoch %d in %s; epoch %d is not in use yet, and the gateway does not accept it\nhint: the current key is usmp-psk derive %s --epoch %d; rotate moves a device to its next epoch",
			id, dev.Epoch, location, epoch, id, dev.Epoch))
	}
	return out
}
