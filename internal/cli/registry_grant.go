package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/registry"
)

type registryGrantOptions struct {
	IO           *IOStreams
	OpenRegistry func() (*registry.Registry, error)

	role string
	json bool
}

func newRegistryGrantCmd(f *Factory, root *rootOptions, runF func(*registryGrantOptions) error) *cobra.Command {
	opts := &registryGrantOptions{IO: f.IO, OpenRegistry: f.registryOpener(root)}
	cmd := &cobra.Command{
		Use:   "grant-gateway ROLE [--json]",
		Short: "Give a PostgreSQL role exactly the read access a gateway needs",
		Long: `Grant a database role what a gateway's make_get_psk needs to read a PostgreSQL
registry, and nothing more: USAGE on the registry's schema and SELECT on the
columns of usmp_devices (id, source, epoch, status, kcv, psk_sealed) and
usmp_meta (id, schema_version). No history, no audit log, no writes. LISTEN
needs no grant. The statements run are printed; run them yourself instead if
you prefer (docs/gateway.md shows the whole set-up).

The role must exist (CREATE ROLE name LOGIN). Stored keys stay sealed: the
gateway also needs $USMP_REGISTRY_KEY to open them.`,
		Example: `  $ psql "$ADMIN_URL" -c "CREATE ROLE gateway LOGIN PASSWORD '…'"
  $ usmp-psk --registry postgres://usmp@db/usmp registry grant-gateway gateway`,
		Args: exactArgs(1, "expected ROLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.role = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runRegistryGrant(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, `print {"registry","role","statements"} as JSON`)
	return cmd
}

func runRegistryGrant(ctx context.Context, opts *registryGrantOptions) error {
	reg, err := opts.OpenRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	stmts, err := reg.GrantGateway(ctx, opts.role)
	if err != nil {
		return err
	}
	if opts.json {
		return printJSON(opts.IO, struct {
			Registry   string   `json:"registry"`
			Role       string   `json:"role"`
			Statements []string `json:"statements"`
		}{reg.Location(), opts.role, stmts})
	}
	for _, s := range stmts {
		if _, err := fmt.Fprintln(opts.IO.Out, s+";"); err != nil {
			return err
		}
	}
	opts.IO.Infof("granted role %s the read access of a gateway to %s", opts.role, reg.Location())
	return nil
}
