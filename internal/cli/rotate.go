package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/provision"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
	"github.com/usmp/usmp-psk/internal/secfile"
)

type rotateOptions struct {
	IO           *IOStreams
	OpenRegistry func() (*registry.Registry, error)
	Master       func() (*psk.Secret, error)
	// Image resolves the image flags: partition table, base, NVS keys.
	Image func() (*resolvedImage, error)
	// ReadPSK reads --psk-file (- for standard input) in its encoding.
	ReadPSK func(path, encoding string) (*psk.Secret, error)
	// FileOptions are the secret-file options of the image's write.
	FileOptions func(replace bool) secfile.Options
	// RegistryPath is --registry, for the hints of errors.
	RegistryPath func() string

	deviceID    string
	reason      string
	output      string
	random      bool
	pskFile     string
	pskEncoding string
	force       bool
	json        bool
	image       imageFlags
}

func newRotateCmd(f *Factory, root *rootOptions, runF func(*rotateOptions) error) *cobra.Command {
	opts := &rotateOptions{IO: f.IO, OpenRegistry: f.registryOpener(root), Master: f.masterLoader(root),
		ReadPSK:      func(path, encoding string) (*psk.Secret, error) { return readPSKFile(f, path, encoding) },
		FileOptions:  f.fileOptionsFor(root),
		RegistryPath: func() string { return root.registry }}
	opts.Image = func() (*resolvedImage, error) { return opts.image.resolve(f) }
	cmd := &cobra.Command{
		Use:   "rotate DEVICE_ID [--reason TEXT] [-o IMAGE] [--base IMAGE] [--keys KEYS.bin | --hmac-key FILE] [--random | --psk-file FILE]",
		Short: "Give a compromised device a new key",
		Long: `Give a device a new key in the registry: a derived device moves to the next
epoch, a random one gets a new random key (--random makes any device random,
--psk-file imports a given key). The old KCV goes to the device's history with
--reason, and the audit log records the rotation. A device the registry does not
know is taken as what the gateway assumes — derived, epoch 0 — recorded, and
moved to epoch 1.

With -o the new image is written too (same options as provision). The base
image, the output path and the new image are checked before the rotation is
recorded: if any fails, nothing changes. Then flash the image and let the
gateway load the new key; the old one stops working as soon as the gateway
does. See docs/rotation.md.`,
		Example: `  # a stolen device: new key, new image, in one step
  $ usmp-psk rotate device-id-1 --reason "device stolen" -o device-id-1.bin --keys nvs_keys.bin

  # keep the device's other entries
  $ usmp-psk rotate 24:6F:28:AA --reason leak --base dev.bin -o dev-new.bin`,
		Args: exactArgs(1, "DEVICE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := psk.ValidateDeviceID(args[0]); err != nil {
				return err
			}
			opts.deviceID = args[0]
			if onCommandLine(f, cmd, "psk-encoding") && opts.pskFile == "" {
				return flagErrorf("--psk-encoding goes with --psk-file")
			}
			if opts.output == "" && (opts.image.base != "" || opts.image.keys != "" || opts.image.hmacKey != "" || opts.image.size != "" || opts.image.partitionTable != "") {
				return flagErrorf("image options need -o IMAGE")
			}
			if runF != nil {
				return runF(opts)
			}
			return runRotate(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.reason, "reason", "", "why the key is retired, as `TEXT` (recorded in the history and audit log)")
	fl.StringVarP(&opts.output, "output", "o", "", "also write the new image to `IMAGE` (0600)")
	fl.BoolVar(&opts.random, "random", false, "a new random key, whatever the device's source")
	fl.StringVar(&opts.pskFile, "psk-file", "", "import the new key from `FILE` (- for stdin)")
	fl.StringVar(&opts.pskEncoding, "psk-encoding", "hex", "`ENCODING` of --psk-file: auto (detect it), hex, base64, raw or c")
	fl.BoolVar(&opts.force, "force", false, "replace an existing image file")
	fl.BoolVar(&opts.json, "json", false, "print the result as JSON")
	cmd.MarkFlagsMutuallyExclusive("random", "psk-file")
	opts.image.addLayout(cmd)
	opts.image.addKeys(cmd)
	opts.image.addBase(cmd)
	return cmd
}

type rotateReport struct {
	DeviceID string          `json:"device_id"`
	Source   registry.Source `json:"source"`
	OldKCV   string          `json:"old_kcv"`
	OldEpoch uint32          `json:"old_epoch"`
	KCV      string          `json:"kcv"`
	Epoch    uint32          `json:"epoch"`
	Image    string          `json:"image,omitempty"`
	Registry string          `json:"registry"`
}

func runRotate(ctx context.Context, opts *rotateOptions) error {
	var imgOpts *provision.ImageOptions
	wopts := opts.FileOptions(opts.force)
	if opts.output != "" {
		img, err := opts.Image()
		if err != nil {
			return err
		}
		if img.opts.Keys != nil {
			defer img.opts.Keys.Destroy()
		}
		// Before the rotation is committed: the base was checked by
		// resolve, the output is checked here, and provision.Rotate builds
		// the image first.
		if err := checkImageOutput(opts.output, wopts); err != nil {
			return err
		}
		imgOpts = &img.opts
	}
	reg, err := opts.OpenRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	ro, known, err := opts.rotateOptions(ctx, reg)
	defer ro.NewKey.Destroy()
	defer ro.Master.Destroy()
	if err != nil {
		return err
	}
	var write provision.WriteFunc
	if opts.output != "" {
		write = func(b []byte) error { return secfile.WriteFile(opts.output, b, wopts) }
	}
	res, err := provision.Rotate(ctx, reg, opts.deviceID, ro, imgOpts, write)
	if err != nil {
		return errWrongKeys(unwrittenErr(err, opts.deviceID, opts.output, &opts.image, opts.RegistryPath()))
	}
	defer res.Key.Destroy()
	defer psk.Wipe(res.Image)
	if !known {
		opts.IO.Infof("device %s was not in the registry: recorded it as the gateway assumes (derived, epoch 0) before rotating", opts.deviceID)
	}
	rep := rotateReport{DeviceID: opts.deviceID, Source: res.Device.Source, OldKCV: res.OldKCV, OldEpoch: res.OldEpoch,
		KCV: res.Device.KCV, Epoch: res.Device.Epoch, Registry: reg.Location()}
	if opts.output != "" {
		rep.Image = opts.output
		if imgOpts.Keys == nil {
			warnPlaintextImage(opts.IO, opts.output)
		}
	}
	if opts.json {
		return printJSON(opts.IO, rep)
	}
	printRotateReport(opts.IO, rep)
	return nil
}

// rotateOptions are the registry's rotate options: the reason, the key of
// --psk-file, and the master secret when the device is derived (or
// unknown, and so taken as derived). known says whether the registry had
// the device. The caller destroys NewKey and Master, also on error.
func (opts *rotateOptions) rotateOptions(ctx context.Context, reg *registry.Registry) (ro registry.RotateOptions, known bool, err error) {
	ro = registry.RotateOptions{Reason: opts.reason, Random: opts.random, Register: true}
	if opts.pskFile != "" {
		if ro.NewKey, err = opts.ReadPSK(opts.pskFile, opts.pskEncoding); err != nil {
			return ro, false, err
		}
	}
	dev, showErr := reg.Show(ctx, opts.deviceID)
	known = showErr == nil
	if showErr != nil && !notFound(showErr) {
		return ro, known, showErr
	}
	// A derived device (or an unknown one, taken as derived) needs the
	// master to move to the next epoch; verifying an unknown device's
	// registration needs it as well.
	if !known || (dev.Source == registry.SourceDerived && !opts.random && opts.pskFile == "") {
		if ro.Master, err = opts.Master(); err != nil {
			return ro, known, err
		}
	}
	return ro, known, nil
}

// printRotateReport says what rotate did and what to do next.
func printRotateReport(ios *IOStreams, rep rotateReport) {
	ios.Infof("rotated device %s: kcv %s (epoch %d) retired, new kcv %s (%s, epoch %d)", rep.DeviceID, rep.OldKCV, rep.OldEpoch, rep.KCV, rep.Source, rep.Epoch)
	if rep.Image != "" {
		ios.Infof("next: flash %s to the device (usmp-psk flash %s --port PORT)", rep.Image, rep.Image)
	} else {
		ios.Infof("next: write the device's image (usmp-psk provision %s -o IMAGE) and flash it", rep.DeviceID)
	}
	ios.Infof("next: reload the gateway's keys (usmp-psk registry export, or nothing if it reads %s through make_get_psk); the old key stops working then", rep.Registry)
}
