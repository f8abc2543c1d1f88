package cli

import (
	"github.com/spf13/cobra"
)

type registryInitOptions struct {
	json bool
}

func newRegistryInitCmd(f *Factory, root *rootOptions, runF func(*registryInitOptions) error) *cobra.Command {
	opts := &registryInitOptions{}
	cmd := &cobra.Command{
		Use:   "init [--json]",
		Short: "Create an empty registry and its audit log",
		Long: `Create an empty registry at --registry (default ./usmp-registry.json) and its
audit log, whose first entry records the creation. An existing registry is
left as it is and is an error.

Commands that record devices (registry add, registry import, provision,
rotate) create a missing registry themselves; init makes it explicit.`,
		Example: `  $ usmp-psk registry init
  $ usmp-psk --registry /srv/usmp/registry.json registry init`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runRegistryInit(cmd, f, root, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, `print {"registry","audit_log"} as JSON`)
	return cmd
}

func runRegistryInit(cmd *cobra.Command, f *Factory, root *rootOptions, opts *registryInitOptions) error {
	reg, err := f.openRegistry(root)
	if err != nil {
		return err
	}
	if err := reg.Init(cmd.Context()); err != nil {
		return registryErr(err)
	}
	audit := reg.AuditLocation()
	if opts.json {
		return printJSON(f, struct {
			Registry string `json:"registry"`
			AuditLog string `json:"audit_log"`
		}{reg.Location(), audit})
	}
	f.IO.Infof("created registry %s (audit log %s)", reg.Location(), audit)
	return nil
}
