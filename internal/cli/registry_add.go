package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

type registryAddOptions struct {
	IO           *IOStreams
	OpenRegistry func() (*registry.Registry, error)
	Master       func() (*psk.Secret, error)
	// ReadKey reads --psk-file (- for standard input): its bytes and the
	// name of their source for messages.
	ReadKey func(file string) ([]byte, string, error)

	deviceID    string
	derive      bool
	epoch       uint32
	random      bool
	pskFile     string
	pskEncoding psk.Encoding
	json        bool
}

func newRegistryAddCmd(f *Factory, root *rootOptions, runF func(*registryAddOptions) error) *cobra.Command {
	opts := &registryAddOptions{IO: f.IO, OpenRegistry: f.registryOpener(root), Master: f.masterLoader(root),
		ReadKey: func(file string) ([]byte, string, error) { return readKeyInput(f, file) }}
	var encoding string
	cmd := &cobra.Command{
		Use:   "add DEVICE_ID {--derive [--epoch N] | --random | --psk-file FILE} [--json]",
		Short: "Record a device and the source of its key",
		Long: `Record a new device in the registry, with its key:

  --derive      derived from the master secret at --epoch (default 0, what the
                gateway's own get_psk uses); the record holds no key bytes
  --random      a new random 32-byte key, stored in the registry
  --psk-file    an existing key from FILE (- for standard input), in
                --psk-encoding (hex by default), stored in the registry

A registry that stores keys is a secret file (0600, refused where git would
not ignore it). The master secret comes from --master-file, else
$USMP_MASTER_SECRET, else a prompt; it is checked against the registry's
derived devices before anything is recorded. Example and placeholder keys of
the USMP documentation are refused; imported keys shorter than 32 bytes are
accepted with a warning.

Standard error reports the device, its source, epoch and KCV. A device that is
already recorded is an error: give it a new key with 'usmp-psk rotate'.`,
		Example: `  $ usmp-psk registry add device-id-1 --derive
  $ usmp-psk registry add 24:6F:28:AA --random
  $ usmp-psk registry add legacy-7 --psk-file legacy-7.psk`,
		Args: exactArgs(1, "DEVICE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := psk.ValidateDeviceID(args[0]); err != nil {
				return err
			}
			opts.deviceID = args[0]
			// Checked here rather than with MarkFlagsMutuallyExclusive, whose
			// error would not be a usage error (exit 2).
			switch n := countTrue(opts.derive, opts.random, opts.pskFile != ""); {
			case n == 0:
				return registryUsage(cmd, "one of --derive, --random or --psk-file FILE is required")
			case n > 1:
				return registryUsage(cmd, "--derive, --random and --psk-file exclude each other: give one")
			}
			// Typed without their key source they are a mistake; from the
			// environment or a config file they do not apply, as for
			// provision and rotate.
			if onCommandLine(f, cmd, "epoch") && !opts.derive {
				return registryUsage(cmd, "--epoch goes with --derive")
			}
			if onCommandLine(f, cmd, "psk-encoding") && opts.pskFile == "" {
				return registryUsage(cmd, "--psk-encoding goes with --psk-file")
			}
			if opts.pskFile != "" {
				enc, err := psk.ParseEncoding(settingBy(f, "psk-encoding"), encoding, true)
				if err != nil {
					return err
				}
				opts.pskEncoding = enc
			}
			if runF != nil {
				return runF(opts)
			}
			return runRegistryAdd(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.derive, "derive", false, "derive the key from the master secret (the record holds no key)")
	fl.Uint32Var(&opts.epoch, "epoch", 0, "key epoch `N` for --derive")
	fl.BoolVar(&opts.random, "random", false, "a new random 32-byte key")
	fl.StringVar(&opts.pskFile, "psk-file", "", "take the key from `FILE` (- for stdin)")
	fl.StringVar(&encoding, "psk-encoding", "hex", "`ENCODING` of --psk-file: auto (detect it), hex, base64, raw or c")
	fl.BoolVar(&opts.json, "json", false, `print the device as JSON ({"id","source","epoch","status","kcv","created","updated"})`)
	return cmd
}

func runRegistryAdd(ctx context.Context, opts *registryAddOptions) error {
	reg, err := opts.OpenRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	var spec registry.KeySpec
	switch {
	case opts.derive:
		master, err := opts.Master()
		if err != nil {
			return err
		}
		defer master.Destroy()
		spec = registry.Derived(master, opts.epoch)
	case opts.random:
		spec = registry.Random()
	default:
		data, source, err := opts.ReadKey(opts.pskFile)
		if err != nil {
			return err
		}
		// The documentation's placeholders are refused by their rule, also
		// as text that is not valid in the encoding (design §3).
		if psk.IsPlaceholder(data) {
			psk.Wipe(data)
			return &psk.InputError{Source: source, Msg: psk.PlaceholderRule}
		}
		key, err := psk.Decode(source, data, opts.pskEncoding)
		psk.Wipe(data)
		if err != nil {
			return err
		}
		defer key.Destroy()
		spec = registry.Imported(key)
	}
	res, err := reg.Add(ctx, opts.deviceID, spec)
	if err != nil {
		return err
	}
	res.Key.Destroy()
	dev := res.Device
	if opts.json {
		return printJSON(opts.IO, dev.Summary())
	}
	stored := ""
	if dev.Source.Stored() {
		stored = "; the registry holds its key"
	}
	opts.IO.Infof("added device %s to %s (%s%s)", dev.ID, reg.Location(), describeDevice(dev), stored)
	return nil
}
