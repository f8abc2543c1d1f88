package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/nvs/nvscrypt"
	"github.com/usmp/usmp-psk/internal/provision"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

type verifyOptions struct {
	IO           *IOStreams
	OpenRegistry func() (*registry.Registry, error)
	Master       func() (*psk.Secret, error)
	// LoadKeys reads --keys or --hmac-key; nil keys for a plaintext image.
	LoadKeys func(keysPath, hmacPath string) (*nvscrypt.Keys, error)
	// Layout is where the image keeps the id and key (the nvs.* settings).
	Layout func() provision.Layout
	// Esptool finds and runs esptool, for --port.
	Esptool esptoolDeps

	image    string
	deviceID string
	json     bool
	flags    imageFlags
	size     partitionSizeFlags
	// esp and offset: verify --port reads the image off the device.
	esp    esptoolFlags
	offset string
}

func newVerifyCmd(f *Factory, root *rootOptions, runF func(*verifyOptions) error) *cobra.Command {
	opts := &verifyOptions{IO: f.IO, OpenRegistry: f.registryOpener(root), Master: f.masterLoader(root),
		LoadKeys: func(keysPath, hmacPath string) (*nvscrypt.Keys, error) { return loadNVSKeys(f, keysPath, hmacPath) },
		Layout:   f.layout,
		Esptool:  newEsptoolDeps(f)}
	cmd := &cobra.Command{
		Use:   "verify {IMAGE | --port PORT [--offset OFFSET]} [--device ID] [--size SIZE | --partition-table TABLE] [--keys KEYS.bin | --hmac-key FILE] [--json]",
		Short: "Check that a device image, or a device, holds the key the gateway accepts",
		Long: `Read the device id and key from an NVS image (decrypting it with --keys or
--hmac-key) and compare the key, in constant time, with what the gateway
accepts for that device: the registry's current key, or — for a device the
registry does not know — its epoch-0 derived key. The registry must exist (an
empty one made with 'registry init' will do): a mistyped --registry must not
turn a retired key into a match.

Without IMAGE, with --port PORT, the image is read off the device — the
end-of-line check of a factory: esptool (esptool, else esptool.py on PATH;
read-flash for v5, read_flash for v4) reads the nvs partition at --offset or
at the offset of the partition in --partition-table (default 0x9000), --size
or the partition's size bytes (default 0x6000), into a 0600 file in a
private 0700 temporary directory ($TMPDIR, else /dev/shm) that is removed at
once, also on an error or an interrupt. Then it is checked exactly as an
IMAGE is. esptool gets a minimal environment and no secret in its arguments.
A port from $USMP_PSK_PORT or the config file (a station set up for flash)
is used only when no IMAGE is given: 'verify IMAGE' always checks the file.

An image cut short fails too, before anything else is read: empty, not
whole 4096-byte pages, fewer than the 3 pages of a read-write partition, or
shorter than its partition's size as --size, --partition-table or the
manifest.json of the batch that wrote it (in the same directory) gives it.
So does an image that holds no device: blank, not NVS, or without the id.

Prints the id, both KCVs and the verdict, never a key. Exit codes: 0 match;
3 mismatch (also for a revoked device, a retired key, keys that do not
decrypt the image, an image cut short or holding no device, a blank
device); 2 no registry, or an image that looks encrypted given without
--keys/--hmac-key; 1 error (unreadable image, esptool missing or failing,
no master secret when one is needed).`,
		Example: `  $ usmp-psk verify device-id-1.bin
  device-id-1  image 2637840a  expected 2637840a  (registry, epoch 0)  match

  # end of line: read the device itself, with the factory's partition table
  $ usmp-psk verify --port /dev/ttyUSB0 --device 24:6F:28:AA --partition-table partitions.csv --keys nvs_keys.bin`,
		Args: verifyArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.image = args[0]
			} else if opts.esp.port == "" {
				return usageError(cmd, errors.New("give an IMAGE to check, or --port PORT to read the device"))
			}
			if opts.deviceID != "" {
				if err := psk.ValidateDeviceID(opts.deviceID); err != nil {
					return err
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return runVerify(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.deviceID, "device", "", "the `ID` the image must belong to")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the verdict as JSON")
	opts.flags.addKeys(cmd)
	opts.size.add(cmd, func(name string) string { return settingBy(f, name) })
	opts.esp.add(cmd)
	cmd.Flags().StringVar(&opts.offset, "offset", "", "with --port: flash `OFFSET` of the nvs partition (default 0x9000)")
	cmd.MarkFlagsMutuallyExclusive("offset", "partition-table")
	return cmd
}

func runVerify(ctx context.Context, opts *verifyOptions) error {
	if opts.image == "" {
		return runVerifyPort(ctx, opts)
	}
	// Read as nvs check reads an image: bounded, and one that cannot be
	// opened is bad input (exit 2), not a failure; interrupted, 130.
	img, err := readImageFile(ctx, opts.image)
	if err != nil {
		return err
	}
	defer psk.Wipe(img)
	partSize, source, err := opts.size.partitionSize(ctx, opts.image)
	if err != nil {
		return err
	}
	if err := checkVerifiedImage(opts.image, img, partSize, source); err != nil {
		return err
	}
	return verifyImage(ctx, opts, opts.image, partSize, func() ([]byte, error) { return img, nil })
}

// runVerifyPort is verify --port: the image is read off the device once
// the flags, esptool, the keys and the registry are known to be good.
func runVerifyPort(ctx context.Context, opts *verifyOptions) error {
	offset, size, source, err := opts.portRegion(ctx)
	if err != nil {
		return err
	}
	tool, err := findEsptool(ctx, opts.Esptool)
	if errors.Is(err, errNoEsptool) {
		return fmt.Errorf("%w; nothing was read\nhint: or read the partition with esptool yourself (read-flash 0x%x 0x%x FILE) and run 'usmp-psk verify FILE'", err, offset, size)
	}
	if err != nil {
		return err
	}
	name := "the device on " + opts.esp.port
	var img []byte
	defer func() { psk.Wipe(img) }()
	read := func() ([]byte, error) {
		opts.IO.Infof("reading the nvs partition of %s (0x%x bytes at 0x%x) with %s", opts.esp.port, size, offset, tool.describe())
		b, err := tool.readFlash(ctx, &opts.esp, offset, size)
		if err != nil {
			return nil, err
		}
		img = b
		if err := checkVerifiedImage(name, img, size, source); err != nil {
			return nil, err
		}
		return img, nil
	}
	return verifyImage(ctx, opts, name, size, read)
}

// verifyArgs takes one IMAGE, or none with --port PORT, and refuses the
// flags that read a device next to an IMAGE.
func verifyArgs(cmd *cobra.Command, args []string) error {
	// Args runs before the root's PersistentPreRunE copies the
	// environment and the config file into the flags, so Changed
	// here means given on the command line: a station's config
	// (port: /dev/ttyUSB0, for flash) must not make 'verify IMAGE'
	// read the device instead, nor refuse it.
	if len(args) > 1 {
		return exactArgs(1, "one IMAGE, or none with --port PORT")(cmd, args)
	}
	if len(args) == 1 {
		for _, name := range []string{"port", "offset", "baud", "chip"} {
			if cmd.Flags().Changed(name) {
				return usageError(cmd, errors.New("--"+name+" is for reading a device: give an IMAGE or --port PORT, not both"))
			}
		}
	}
	return nil
}

// portRegion is where verify --port reads: the offset from --offset or the
// partition table (default 0x9000), the size from --size or the partition
// table (default 0x6000), and what gave the size, for messages.
func (o *verifyOptions) portRegion(ctx context.Context) (offset int64, size int, source string, err error) {
	offset, size, source = provision.DefaultOffset, provision.DefaultSize, "the default 0x6000"
	if o.offset != "" {
		if offset, err = parseFlashOffset(o.offset); err != nil {
			return 0, 0, "", err
		}
	}
	switch {
	case o.size.size != "":
		if size, err = parseSize("--size", o.size.size); err != nil {
			return 0, 0, "", err
		}
		source = "--size"
	case o.size.partitionTable != "":
		p, err := findPartition(ctx, o.size.partitionTable, o.size.partitionName)
		if err != nil {
			return 0, 0, "", err
		}
		offset, size = int64(p.Offset), int(p.Size)
		source = "partition " + p.Name + " of " + o.size.partitionTable
	}
	return offset, size, source, nil
}

// verifyImage checks an image against the registry. load gives the image,
// once the keys and the registry are ready: for --port, reading the device
// is the slow part, so everything that can fail first does.
func verifyImage(ctx context.Context, opts *verifyOptions, name string, partSize int, load func() ([]byte, error)) error {
	keys, err := opts.LoadKeys(opts.flags.keys, opts.flags.hmacKey)
	if err != nil {
		return err
	}
	o := provision.ImageOptions{Layout: opts.Layout(), Keys: keys,
		ReadOnly: partSize > 0 && partSize < nvs.MinReadWriteSize}
	reg, err := opts.OpenRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	// A registry that does not exist is refused, as by every other command
	// that reads one: checking against the epoch-0 key of an unknown device
	// is right for the registry the gateway loads, but a mistyped --registry
	// or the wrong directory would turn a retired key into a "match".
	if err := reg.Exists(ctx); err != nil {
		return err
	}
	img, err := load()
	if err != nil {
		return err
	}
	var master *psk.Secret
	defer func() { master.Destroy() }()
	loadMaster := func() (*psk.Secret, error) {
		if master == nil {
			m, err := opts.Master()
			if err != nil {
				return nil, err
			}
			master = m
		}
		return master, nil
	}
	v, err := provision.Verify(ctx, reg, img, o, opts.deviceID, loadMaster)
	if errors.Is(err, provision.ErrNoDevice) {
		// A blank image, or one that is no NVS, holds no key the gateway
		// could accept: that is a failed verification, not an I/O error.
		return &mismatchError{msg: "verification failed for " + name + ": " + err.Error()}
	}
	if errors.Is(err, provision.ErrLooksEncrypted) {
		return fmt.Errorf("%s: %w", name, err) // exit 2, as rotate and provision (issue 14 item 3)
	}
	if err != nil {
		return errWrongKeys(err)
	}
	if err := printVerdict(opts.IO, opts.json, v); err != nil {
		return err
	}
	if !v.Match {
		return &mismatchError{msg: "verification failed for " + name + ": " + v.Reason}
	}
	return nil
}

// printVerdict prints the id, both KCVs and the verdict: one line, or JSON.
func printVerdict(ios *IOStreams, asJSON bool, v *provision.Verdict) error {
	if asJSON {
		return printJSON(ios, v)
	}
	basis := "registry, epoch " + fmt.Sprint(v.Epoch)
	if v.Basis == provision.BasisDerived0 {
		basis = "not in the registry: derived, epoch 0"
	}
	verdict := "match"
	if !v.Match {
		verdict = "MISMATCH"
	}
	id := v.ID
	if psk.ValidateDeviceID(id) != nil {
		id = "(invalid device id)" // never echo untrusted bytes to a terminal
	}
	fmt.Fprintf(ios.Out, "%s  image %s  expected %s  (%s)  %s\n", id, orDash(v.ImageKCV), orDash(v.ExpectedKCV), basis, verdict)
	return nil
}

// checkVerifiedImage fails the verification of an image cut short or not
// NVS at all, before anything else is read. A truncated image read as far
// as it goes can hold the whole id and key: it "matched" while the device
// would fail to mount it (issue 13 item 3). partSize and source say what
// size the partition has and where that came from (0, "": unknown).
func checkVerifiedImage(name string, img []byte, partSize int, source string) error {
	if msg := imageLengthError(len(img), partSize, source); msg != "" {
		return &mismatchError{msg: "verification failed for " + name + ": " + msg}
	}
	if err := provision.CheckNVS(img); err != nil {
		return &mismatchError{msg: "verification failed for " + name + ": " + err.Error()}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
