package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

type registryRevokeOptions struct {
	IO           *IOStreams
	OpenRegistry func() (*registry.Registry, error)

	deviceID string
	reason   string
	json     bool
}

func newRegistryRevokeCmd(f *Factory, root *rootOptions, runF func(*registryRevokeOptions) error) *cobra.Command {
	opts := &registryRevokeOptions{IO: f.IO, OpenRegistry: f.registryOpener(root)}
	cmd := &cobra.Command{
		Use:   "revoke DEVICE_ID [--reason TEXT] [--json]",
		Short: "Revoke a device: the gateway stops accepting its key",
		Long: `Mark a device revoked, with --reason and the time. A stored key (random or
imported) is dropped from the registry. The export leaves a revoked device out,
and the gateway's get_psk raises KeyError for it, so it can no longer connect
once the gateway has reloaded its keys. A revoked device id is not used again;
the record and the audit log keep what happened.

To give a device a new key instead, use 'usmp-psk rotate'.`,
		Example: `  $ usmp-psk registry revoke 24:6F:28:AA --reason "device lost"
  $ usmp-psk registry export -o /etc/usmp/psk-registry.json --force   # then reload the gateway`,
		Args: exactArgs(1, "DEVICE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := psk.ValidateDeviceID(args[0]); err != nil {
				return err
			}
			opts.deviceID = args[0]
			if len(opts.reason) > 1024 {
				return registryUsage(cmd, "--reason is longer than 1024 bytes")
			}
			if runF != nil {
				return runF(opts)
			}
			return runRegistryRevoke(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.reason, "reason", "", "why the device is revoked, as `TEXT` (recorded with it)")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the revoked device as JSON")
	return cmd
}

func runRegistryRevoke(ctx context.Context, opts *registryRevokeOptions) error {
	reg, err := opts.OpenRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	dev, err := reg.Revoke(ctx, opts.deviceID, opts.reason)
	if err != nil {
		return err
	}
	if opts.json {
		return printJSON(opts.IO, dev)
	}
	reason := ""
	if opts.reason != "" {
		reason = "; reason: " + registryText(opts.reason)
	}
	opts.IO.Infof("revoked device %s in %s (%s%s)", dev.ID, reg.Location(), describeDevice(dev), reason)
	opts.IO.Infof("next: reload the gateway's keys (usmp-psk registry export, or nothing if it reads %s through make_get_psk); the device's key stops working then", reg.Location())
	return nil
}
