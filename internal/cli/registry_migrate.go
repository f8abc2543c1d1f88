package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/registry"
)

type registryMigrateOptions struct {
	IO *IOStreams
	// From is the registry migrated (--registry) and its options.
	From func() (string, registry.Options)
	// OpenTo opens (creating) the destination.
	OpenTo func(to string) (*registry.Registry, error)

	to   string
	json bool
}

func newRegistryMigrateCmd(f *Factory, root *rootOptions, runF func(*registryMigrateOptions) error) *cobra.Command {
	opts := &registryMigrateOptions{IO: f.IO,
		From: func() (string, registry.Options) { return root.registry, f.registryOptions(root) },
		OpenTo: func(to string) (*registry.Registry, error) {
			dst := *root
			dst.registry = to
			return f.openRegistry(&dst)
		}}
	cmd := &cobra.Command{
		Use:   "migrate --to REGISTRY [--json]",
		Short: "Copy a registry (or a legacy JSON registry) into a new one and verify the copy",
		Long: `Copy the registry named by --registry into a new registry at --to: the JSON
registry file of an earlier usmp-psk (usmp-registry.json, with its audit log
usmp-registry.audit.jsonl beside it) into a SQLite database, or a SQLite
registry into PostgreSQL when several stations must share it, or back. Every
record is copied as it is (stored keys are sealed on the way where the
destination seals them: always into PostgreSQL, so $USMP_REGISTRY_KEY must be
set when the registry holds any), the audit log entry by entry with the same
hashes, and then the copy is verified: the same devices, fields and keys, the
same audit hashes, an intact chain.

The destination must not exist yet. The source's writers wait during the copy,
and the source is left as it is; keep it as a backup, out of use. Exit 3 when
the copy does not verify. See docs/registry.md and docs/scale-out.md.`,
		Example: `  # from the JSON registry of an earlier usmp-psk
  $ usmp-psk registry migrate --registry usmp-registry.json --to usmp-registry.db

  # to PostgreSQL for many stations
  $ export PGPASSWORD=…   # or ~/.pgpass; never in the URL
  $ usmp-psk registry migrate --registry usmp-registry.db --to postgres://usmp@db.factory/usmp`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.to == "" {
				return flagErrorf("--to REGISTRY is required (a file path or a postgres:// URL)")
			}
			if registry.IsLegacyPath(opts.to) {
				return flagErrorf("--to names a JSON file: registries are databases now (a .db path or a postgres:// URL)")
			}
			if opts.to == root.registry {
				return flagErrorf("--to names the registry itself")
			}
			if runF != nil {
				return runF(opts)
			}
			return runRegistryMigrate(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.to, "to", "", "the new `REGISTRY` (path or postgres:// URL)")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the report as JSON")
	return cmd
}

func runRegistryMigrate(ctx context.Context, opts *registryMigrateOptions) error {
	dst, err := opts.OpenTo(opts.to)
	if err != nil {
		return err
	}
	defer dst.Close()
	from, fromOpts := opts.From()
	rep, err := registry.Migrate(ctx, from, fromOpts, dst)
	if err != nil {
		// A damaged source (its audit chain) or a copy that does not
		// verify: the verification failed (exit 3).
		return auditFailed(opts.IO, registryAuditReport{}, err, auditErrorOnly)
	}
	for _, fd := range rep.Findings {
		opts.IO.Warnf("the copy contradicts its audit log (as the source did): %s", registryText(fd.String()))
	}
	if opts.json {
		return printJSON(opts.IO, struct {
			From         string `json:"from"`
			To           string `json:"to"`
			Devices      int    `json:"devices"`
			StoredKeys   int    `json:"stored_keys"`
			AuditEntries uint64 `json:"audit_entries"`
			Verified     bool   `json:"verified"`
			Findings     int    `json:"findings"`
		}{rep.From, rep.To, rep.Devices, rep.StoredKeys, rep.AuditEntries, true, len(rep.Findings)})
	}
	opts.IO.Infof("migrated %s (%s) and %s from %s to %s; the copy verifies", registryCount(rep.Devices, "device"),
		registryCount(rep.StoredKeys, "stored key"), registryCount(int(rep.AuditEntries), "audit entry"), rep.From, rep.To)
	opts.IO.Infof("next: point every station at %s (--registry or USMP_PSK_REGISTRY) and keep %s as a backup, out of use", rep.To, rep.From)
	return nil
}
