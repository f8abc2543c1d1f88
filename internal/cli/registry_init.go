package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/registry"
)

type registryInitOptions struct {
	IO           *IOStreams
	OpenRegistry func() (*registry.Registry, error)

	json bool
}

func newRegistryInitCmd(f *Factory, root *rootOptions, runF func(*registryInitOptions) error) *cobra.Command {
	opts := &registryInitOptions{IO: f.IO, OpenRegistry: f.registryOpener(root)}
	cmd := &cobra.Command{
		Use:   "init [--json]",
		Short: "Create an empty registry (or upgrade an older one's schema)",
		Long: `Create an empty registry at --registry: a SQLite database (default
./usmp-registry.db, 0600) or the tables of a PostgreSQL registry (the database
must exist). Its audit log's first entry records the creation. An existing
registry is left as it is and is an error — unless its schema is older than this
usmp-psk's: then init upgrades it, keeping every device and the audit log.

Commands that record devices (registry add, registry import, provision,
rotate, batch) create a missing registry themselves; init makes it explicit.`,
		Example: `  $ usmp-psk registry init
  $ usmp-psk --registry /srv/usmp/registry.db registry init
  $ usmp-psk --registry postgres://usmp@db.factory/usmp registry init`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runRegistryInit(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, `print {"registry","audit_log"} as JSON`)
	return cmd
}

func runRegistryInit(ctx context.Context, opts *registryInitOptions) error {
	reg, err := opts.OpenRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	upgraded, err := reg.Init(ctx)
	if err != nil {
		return err
	}
	audit := reg.AuditLocation()
	if upgraded > 0 {
		opts.IO.Infof("upgraded the schema of registry %s from version %d; every device and the audit log are kept", reg.Location(), upgraded)
		return nil
	}
	if opts.json {
		return printJSON(opts.IO, struct {
			Registry string `json:"registry"`
			AuditLog string `json:"audit_log"`
		}{reg.Location(), audit})
	}
	opts.IO.Infof("created registry %s", reg.Location())
	return nil
}
