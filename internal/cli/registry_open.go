package cli

import (
	"errors"
	"strings"
	"time"

	"github.com/usmp/usmp-psk/internal/registry"
)

// defaultRegistry is the registry path when nothing else is configured
// (design §5).
const defaultRegistry = "./usmp-registry.json"

// openRegistry opens the registry named by --registry ($USMP_PSK_REGISTRY,
// config `registry`). Commands that record devices create a missing
// registry and say so on stderr (design §5).
func (f *Factory) openRegistry(root *rootOptions) (*registry.Registry, error) {
	return registry.Open(root.registry, registry.Options{
		LockTimeout:    root.lockTimeout,
		AllowUnignored: root.allowUnignored,
		Now:            f.Now,
		Rand:           f.Rand,
		Getenv:         f.Getenv,
		Warn:           f.IO.Warn,
		OnCreate: func(location string) {
			f.IO.Infof("created registry %s", location)
		},
		RegistryKey: func() (string, bool) { return f.registryKeyEnv, f.hasRegistryKeyEnv },
	})
}

// registryErr adds hints to registry errors an operator can act on.
func registryErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, registry.ErrLocked) && strings.Contains(err.Error(), "\nhint: "):
		// The registry's LockedError carries its own hint.
		return err
	case errors.Is(err, registry.ErrLocked):
		return errors.Join(err, errors.New("hint: another usmp-psk is writing the registry; wait, or raise --lock-timeout"))
	}
	return err
}

// addRegistryFlags adds the global registry flags.
func addRegistryFlags(root *rootOptions, pf interface {
	StringVar(*string, string, string, string)
	DurationVar(*time.Duration, string, time.Duration, string)
}) {
	pf.StringVar(&root.registry, "registry", defaultRegistry, "device registry `PATH` ($USMP_PSK_REGISTRY)")
	pf.DurationVar(&root.lockTimeout, "lock-timeout", registry.DefaultLockTimeout, "how long to wait for the registry lock")
}
