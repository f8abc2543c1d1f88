package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/registry"
)

// registryNewKeyEnv holds the new registry key for 'registry rekey'. Like
// the master secret it is read once at start-up and removed from the
// environment (R1: a secret value is never a flag; R4).
const registryNewKeyEnv = "USMP_REGISTRY_NEW_KEY"

type registryRekeyOptions struct {
	IO           *IOStreams
	OpenRegistry func() (*registry.Registry, error)
	// NewKey is $USMP_REGISTRY_NEW_KEY as it was at start-up, and whether
	// it was set.
	NewKey func() (string, bool)

	json bool
}

func newRegistryRekeyCmd(f *Factory, root *rootOptions, runF func(*registryRekeyOptions) error) *cobra.Command {
	opts := &registryRekeyOptions{IO: f.IO, OpenRegistry: f.registryOpener(root),
		NewKey: func() (string, bool) { return f.registryNewKeyEnv, f.hasRegistryNewKeyEnv }}
	cmd := &cobra.Command{
		Use:   "rekey [--json]",
		Short: "Seal the stored keys of the registry under a new $USMP_REGISTRY_KEY",
		Long: `Seal the stored device keys (random and imported) under a new registry key:
every stored key is opened (with $USMP_REGISTRY_KEY where it is sealed) and
sealed again with $USMP_REGISTRY_NEW_KEY (64 hex digits), in one transaction.
From then on every station needs the new key. Device keys do not change.

A SQLite registry made without a registry key holds its stored keys in its
0600 file; rekey seals them, and from then on it needs the key like a
PostgreSQL registry does.`,
		Example: `  $ usmp-psk generate -o registry-new.key
  $ USMP_REGISTRY_KEY="$(cat registry.key)" USMP_REGISTRY_NEW_KEY="$(cat registry-new.key)" \
      usmp-psk --registry postgres://usmp@db/usmp registry rekey`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runRegistryRekey(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the report as JSON")
	return cmd
}

func runRegistryRekey(ctx context.Context, opts *registryRekeyOptions) error {
	env, ok := opts.NewKey()
	if !ok {
		return flagErrorf("set $" + registryNewKeyEnv + " to the new registry key (64 hex digits)")
	}
	newKey, err := registry.ParseRegistryKey("$"+registryNewKeyEnv, env)
	if err != nil {
		return err
	}
	defer newKey.Destroy()
	reg, err := opts.OpenRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	n, err := reg.Rekey(ctx, newKey)
	if err != nil {
		return err
	}
	if opts.json {
		return printJSON(opts.IO, struct {
			Registry string `json:"registry"`
			Resealed int    `json:"resealed"`
		}{reg.Location(), n})
	}
	opts.IO.Infof("sealed %d stored keys of %s under the new registry key; every station now needs $USMP_REGISTRY_KEY set to it", n, reg.Location())
	return nil
}
