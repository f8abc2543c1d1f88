package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

type deriveOptions struct {
	IO     *IOStreams
	Master func() (*psk.Secret, error)
	// OpenRegistry and RegistryPath are the registry the device is checked
	// against (issue 14 item 5): --registry, and its opener.
	OpenRegistry func() (*registry.Registry, error)
	RegistryPath func() string

	out      keyOutput
	deviceID string
	epoch    uint32
	encoding string
}

func newDeriveCmd(f *Factory, root *rootOptions, runF func(*deriveOptions) error) *cobra.Command {
	opts := &deriveOptions{IO: f.IO, Master: f.masterLoader(root), OpenRegistry: f.registryOpener(root),
		RegistryPath: func() string { return root.registry }, out: keyOutput{fileOptions: f.fileOptionsFor(root)}}
	cmd := &cobra.Command{
		Use:   "derive DEVICE_ID [--epoch N] [-o FILE] [--encoding hex|base64|raw|c] [--force]",
		Short: "Derive a device's PSK from the master secret",
		Long: `Derive the PSK of a device exactly as the gateway does:
HMAC-SHA256(master, device_id) at epoch 0, and
HMAC-SHA256(master, device_id || 0x00 || uint32_be(epoch)) after a rotation.

The master secret comes from --master-file, else $USMP_MASTER_SECRET, else a
prompt on the terminal. The key goes to -o FILE (0600) or to a pipe; a terminal
is refused. Standard error reports the path, the length and the KCV.

No registry is needed. Where the registry (--registry, ./usmp-registry.db by
default) knows the device, derive warns when --epoch is not the device's
current epoch (a retired key, or one not in use yet: 'registry show DEVICE_ID'
shows the epoch), when the device is revoked or its key is not derived, and
when the master secret does not reproduce the registry's KCV. It writes the
key all the same.`,
		Example: `  # the key the gateway will accept for device-id-1
  $ usmp-psk derive device-id-1 -o device-id-1.psk

  # after one rotation
  $ usmp-psk derive device-id-1 --epoch 1 -o device-id-1.psk --force

  # master secret from a systemd credential
  $ usmp-psk derive 24:6F:28:AA --master-file "$CREDENTIALS_DIRECTORY/usmp-master" | flash-tool`,
		Args: exactArgs(1, "DEVICE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := psk.ValidateDeviceID(args[0]); err != nil {
				return err
			}
			enc, err := psk.ParseEncoding(settingBy(f, "encoding"), opts.encoding, false)
			if err != nil {
				return err
			}
			opts.deviceID = args[0]
			opts.out.encoding = enc
			if runF != nil {
				return runF(opts)
			}
			return runDerive(cmd.Context(), opts)
		},
	}
	addKeyOutputFlags(cmd, &opts.out, &opts.encoding)
	cmd.Flags().Uint32Var(&opts.epoch, "epoch", 0, "key epoch `N` (0 = the gateway's original derivation; raised by rotate)")
	return cmd
}

func runDerive(ctx context.Context, opts *deriveOptions) error {
	if err := checkKeyOutput(opts.IO, opts.out); err != nil {
		return err
	}
	master, err := opts.Master()
	if err != nil {
		return err
	}
	defer master.Destroy()
	key := psk.Derive(master, opts.deviceID, opts.epoch)
	defer key.Destroy()
	warnDeriveAgainstRegistry(ctx, opts, master, key)
	epoch := int64(opts.epoch)
	return writeKey(opts.IO, key, opts.out, keyReport{DeviceID: opts.deviceID, Epoch: &epoch})
}
