package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/registry"
)

type registryMigrateOptions struct {
	to   string
	json bool
}

func newRegistryMigrateCmd(f *Factory, root *rootOptions, runF func(*registryMigrateOptions) error) *cobra.Command {
	opts := &registryMigrateOptions{}
	cmd := &cobra.Command{
		Use:   "migrate --to REGISTRY [--json]",
		Short: "Copy the registry and its audit log into a new registry (file or PostgreSQL) and verify the copy",
		Long: `Copy the registry named by --registry into a new registry at --to — for
example a registry file into PostgreSQL when several stations must share it, or
back. Every record is copied as it is (stored keys are sealed on the way into
PostgreSQL, so $USMP_REGISTRY_KEY must be set when the registry holds any), the
audit log entry by entry with the same hashes, and then the copy is verified:
the same devices, fields and keys, the same audit hashes, an intact chain.

The destination must not exist yet. The source keeps its writer lock during the
copy and is left as it is; keep it as a backup, out of use. Exit 3 when the
copy does not verify. See docs/scale-out.md.`,
		Example: `  $ export PGPASSWORD=…   # or ~/.pgpass; never in the URL
  $ usmp-psk registry migrate --registry ./usmp-registry.json --to postgres://usmp@db.factory/usmp`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.to == "" {
				return flagErrorf("--to REGISTRY is required (a file path or a postgres:// URL)")
			}
			if opts.to == root.registry {
				return flagErrorf("--to names the registry itself")
			}
			if runF != nil {
				return runF(opts)
			}
			return runRegistryMigrate(cmd, f, root, opts)
		},
	}
	cmd.Flags().StringVar(&opts.to, "to", "", "the new `REGISTRY` (path or postgres:// URL)")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the report as JSON")
	return cmd
}

func runRegistryMigrate(cmd *cobra.Command, f *Factory, root *rootOptions, opts *registryMigrateOptions) error {
	src, err := f.openRegistry(root)
	if err != nil {
		return err
	}
	dstRoot := *root
	dstRoot.registry = opts.to
	dst, err := f.openRegistry(&dstRoot)
	if err != nil {
		return err
	}
	rep, err := registry.Migrate(cmd.Context(), src.Store(), dst.Store())
	if err != nil {
		var failed interface{ VerifyFailed() bool }
		if errors.As(err, &failed) && failed.VerifyFailed() {
			return &mismatchError{msg: err.Error()}
		}
		return registryErr(err)
	}
	if opts.json {
		return printJSON(f, struct {
			From         string `json:"from"`
			To           string `json:"to"`
			Devices      int    `json:"devices"`
			StoredKeys   int    `json:"stored_keys"`
			AuditEntries uint64 `json:"audit_entries"`
			Verified     bool   `json:"verified"`
		}{rep.From, rep.To, rep.Devices, rep.StoredKeys, rep.AuditEntries, true})
	}
	f.IO.Infof("migrated %d devices (%d stored keys) and %d audit entries from %s to %s; the copy verifies", rep.Devices, rep.StoredKeys, rep.AuditEntries, rep.From, rep.To)
	f.IO.Infof("next: point every station at %s (--registry or USMP_PSK_REGISTRY) and keep %s as a backup, out of use", rep.To, rep.From)
	return nil
}
