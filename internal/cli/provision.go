package cli

import (
	"context"
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/provision"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
	"github.com/usmp/usmp-psk/internal/secfile"
)

type provisionOptions struct {
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
	output      string
	derive      bool
	epoch       uint32
	random      bool
	pskFile     string
	pskEncoding string
	force       bool
	json        bool
	image       imageFlags
}

func newProvisionCmd(f *Factory, root *rootOptions, runF func(*provisionOptions) error) *cobra.Command {
	opts := &provisionOptions{IO: f.IO, OpenRegistry: f.registryOpener(root), Master: f.masterLoader(root),
		ReadPSK:      func(path, encoding string) (*psk.Secret, error) { return readPSKFile(f, path, encoding) },
		FileOptions:  f.fileOptionsFor(root),
		RegistryPath: func() string { return root.registry }}
	opts.Image = func() (*resolvedImage, error) { return opts.image.resolve(f) }
	cmd := &cobra.Command{
		Use:   "provision DEVICE_ID -o IMAGE [--derive [--epoch N] | --random | --psk-file FILE] [--base IMAGE] [--size SIZE | --partition-table TABLE] [--keys KEYS.bin | --hmac-key FILE]",
		Short: "Write a device's NVS image with its id and key, and record it in the registry",
		Long: `Write the NVS partition image of one device: namespace usmp, the device id as a
string (device_id) and its key as a blob (psk), and record the device in the
registry first, so the gateway and the device hold the same key.

The key source must be given for a new device: --derive (from the master secret,
at --epoch), --random, or --psk-file. A device the registry knows uses its
recorded key; a source that conflicts with the record is an error (use rotate).

The image is 0x6000 bytes unless --size says otherwise, or the size of the
nvs partition of --partition-table. With --base, an image read off the device
(for example with esptool read_flash) keeps every other entry and gets the id
and key the way the device's own library writes them; an encrypted base needs
its keys. --keys or --hmac-key encrypt the image (NVS encryption); a plaintext
image gets a warning. The image is built before the device is recorded, so a
base that cannot take the key registers nothing.`,
		Example: `  # a derived device, plaintext image
  $ usmp-psk provision device-id-1 --derive -o device-id-1.bin

  # encrypted with the device's nvs_keys partition
  $ usmp-psk provision device-id-1 --derive --keys nvs_keys.bin -o device-id-1.bin

  # keep the WiFi credentials already on the device
  $ esptool.py read_flash 0x9000 0x6000 dev.bin
  $ usmp-psk provision 24:6F:28:AA --random --base dev.bin -o dev-new.bin`,
		Args: exactArgs(1, "DEVICE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := psk.ValidateDeviceID(args[0]); err != nil {
				return err
			}
			opts.deviceID = args[0]
			if opts.output == "" {
				return flagErrorf("-o IMAGE is required")
			}
			if onCommandLine(f, cmd, "epoch") && !opts.derive {
				return flagErrorf("--epoch goes with --derive")
			}
			if onCommandLine(f, cmd, "psk-encoding") && opts.pskFile == "" {
				return flagErrorf("--psk-encoding goes with --psk-file")
			}
			if runF != nil {
				return runF(opts)
			}
			return runProvision(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.output, "output", "o", "", "write the image to `IMAGE` (0600)")
	fl.BoolVar(&opts.derive, "derive", false, "derive the key from the master secret")
	fl.Uint32Var(&opts.epoch, "epoch", 0, "key epoch `N` for --derive")
	fl.BoolVar(&opts.random, "random", false, "a new random 32-byte key")
	fl.StringVar(&opts.pskFile, "psk-file", "", "take the key from `FILE` (- for stdin)")
	fl.StringVar(&opts.pskEncoding, "psk-encoding", "hex", "`ENCODING` of --psk-file: auto (detect it), hex, base64, raw or c")
	fl.BoolVar(&opts.force, "force", false, "replace an existing image file")
	fl.BoolVar(&opts.json, "json", false, "print the result as JSON")
	cmd.MarkFlagsMutuallyExclusive("derive", "random", "psk-file")
	opts.image.addLayout(cmd)
	opts.image.addKeys(cmd)
	opts.image.addBase(cmd)
	return cmd
}

// provisionReport is what provision says: never the key.
type provisionReport struct {
	DeviceID  string          `json:"device_id"`
	Image     string          `json:"image"`
	KCV       string          `json:"kcv"`
	Source    registry.Source `json:"source"`
	Epoch     uint32          `json:"epoch"`
	Size      int             `json:"size"`
	Offset    int64           `json:"offset"`
	Encrypted bool            `json:"encrypted"`
	Existing  bool            `json:"existing"`
	Registry  string          `json:"registry"`
}

func runProvision(ctx context.Context, opts *provisionOptions) error {
	img, err := opts.Image()
	if err != nil {
		return err
	}
	if img.opts.Keys != nil {
		defer img.opts.Keys.Destroy()
	}
	// Check the destination before anything is recorded (R6, R8); the
	// base was checked by resolve, and the image is built before the
	// device is recorded (provision.Provision).
	wopts := opts.FileOptions(opts.force)
	if err := checkImageOutput(opts.output, wopts); err != nil {
		return err
	}
	reg, err := opts.OpenRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	q, err := opts.request(ctx, reg)
	defer q.PSK.Destroy()
	defer q.Master.Destroy()
	if err != nil {
		return err
	}
	write := func(b []byte) error { return secfile.WriteFile(opts.output, b, wopts) }
	res, err := provision.Provision(ctx, reg, q, img.opts, write)
	if err != nil {
		return errWrongKeys(unwrittenErr(err, opts.deviceID, opts.output, &opts.image, opts.RegistryPath()))
	}
	defer res.Key.Destroy()
	defer psk.Wipe(res.Image)
	rep := provisionReport{
		DeviceID: opts.deviceID, Image: opts.output, KCV: res.Device.KCV, Source: res.Device.Source,
		Epoch: res.Device.Epoch, Size: len(res.Image), Offset: img.offset, Encrypted: img.opts.Keys != nil,
		Existing: res.Existing, Registry: reg.Location(),
	}
	return opts.report(rep)
}

// request is provision's request: the key source of the flags, the key
// of --psk-file, and the master secret when the key is derived, asked for
// or recorded so. The caller destroys PSK and Master, also on error.
func (opts *provisionOptions) request(ctx context.Context, reg *registry.Registry) (provision.Request, error) {
	q := provision.Request{ID: opts.deviceID, Epoch: opts.epoch}
	switch {
	case opts.derive:
		q.Source = provision.Derive
	case opts.random:
		q.Source = provision.Random
	case opts.pskFile != "":
		q.Source = provision.Imported
		key, err := opts.ReadPSK(opts.pskFile, opts.pskEncoding)
		if err != nil {
			return q, err
		}
		q.PSK = key
	}
	// The master is needed to derive, or for a recorded derived device.
	needMaster := opts.derive
	if q.Source == provision.FromRegistry {
		dev, err := reg.Show(ctx, opts.deviceID)
		needMaster = err == nil && dev.Source == registry.SourceDerived
	}
	if needMaster {
		m, err := opts.Master()
		if err != nil {
			return q, err
		}
		q.Master = m
	}
	return q, nil
}

// report says what provision did: stderr, or JSON on stdout; a plaintext
// image gets the warning of design §6.
func (opts *provisionOptions) report(rep provisionReport) error {
	if !rep.Encrypted {
		warnPlaintextImage(opts.IO, opts.output)
	}
	if opts.json {
		return printJSON(opts.IO, rep)
	}
	state := "recorded"
	if rep.Existing {
		state = "already recorded"
	}
	opts.IO.Infof("provisioned device %s into %s (0x%x bytes, %s, kcv %s; %s %s, epoch %d, in %s)",
		rep.DeviceID, rep.Image, rep.Size, map[bool]string{true: "encrypted", false: "plaintext"}[rep.Encrypted], rep.KCV, state, rep.Source, rep.Epoch, rep.Registry)
	return nil
}

// warnPlaintextImage is the one-line warning of design §6.
func warnPlaintextImage(ios *IOStreams, path string) {
	ios.Warnf("%s holds the key in clear: encrypt it with --keys KEYS.bin or --hmac-key FILE (NVS encryption) and enable flash encryption on the device", path)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// notFound reports whether err says a device or the registry is missing.
func notFound(err error) bool {
	return errors.Is(err, registry.ErrUnknownDevice) || errors.Is(err, registry.ErrNoRegistry)
}
