package cli

import (
	"time"

	"github.com/usmp/usmp-psk/internal/registry"
)

// openRegistry opens the registry named by --registry ($USMP_PSK_REGISTRY,
// config `registry`). Commands that record devices create a missing
// registry and say so on stderr (design §5).
func (f *Factory) openRegistry(root *rootOptions) (*registry.Registry, error) {
	return registry.Open(root.registry, f.registryOptions(root))
}

// registryOpener is openRegistry for a command's options: called at run
// time, once the global flags are parsed.
func (f *Factory) registryOpener(root *rootOptions) func() (*registry.Registry, error) {
	return func() (*registry.Registry, error) { return f.openRegistry(root) }
}

// registryOptions are the registry's options of this run.
func (f *Factory) registryOptions(root *rootOptions) registry.Options {
	return registry.Options{
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
	}
}

// addRegistryFlags adds the global registry flags.
func addRegistryFlags(root *rootOptions, pf interface {
	StringVar(*string, string, string, string)
	DurationVar(*time.Duration, string, time.Duration, string)
}) {
	pf.StringVar(&root.registry, "registry", registry.DefaultPath, "device registry: a SQLite database `PATH` or a postgres:// URL ($USMP_PSK_REGISTRY)")
	pf.DurationVar(&root.lockTimeout, "lock-timeout", registry.DefaultLockTimeout, "how long a writer waits for another to finish, a `DURATION` such as 30s or 2m")
}
