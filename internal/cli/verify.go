package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/provision"
	"github.com/usmp/usmp-psk/internal/psk"
)

type verifyOptions struct {
	image    string
	deviceID string
	json     bool
	flags    imageFlags
	size     partitionSizeFlags
}

func newVerifyCmd(f *Factory, root *rootOptions, runF func(*verifyOptions) error) *cobra.Command {
	opts := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify IMAGE [--device ID] [--size SIZE | --partition-table TABLE] [--keys KEYS.bin | --hmac-key FILE] [--json]",
		Short: "Check that a device image holds the key the gateway accepts",
		Long: `Read the device id and key from an NVS image (decrypting it with --keys or
--hmac-key) and compare the key, in constant time, with what the gateway
accepts for that device: the registry's current key, or — for a device the
registry does not know — its epoch-0 derived key. The registry must exist (an
empty one made with 'registry init' will do): a mistyped --registry must not
turn a retired key into a match.

An image cut short fails too, before anything else is read: empty, not
whole 4096-byte pages, fewer than the 3 pages of a read-write partition, or
shorter than its partition's size as --size, --partition-table or the
manifest.json of the batch that wrote it (in the same directory) gives it.
So does an image that holds no device: blank, not NVS, or without the id.

Prints the id, both KCVs and the verdict. Exit codes: 0 match; 3 mismatch
(also for a revoked device, a retired key, keys that do not decrypt the
image, an image cut short or holding no device); 2 no registry, or an image
that looks encrypted given without --keys/--hmac-key; 1 error
(unreadable image, no master secret when one is needed).`,
		Example: `  $ usmp-psk verify device-id-1.bin
  device-id-1  image 2637840a  expected 2637840a  (registry, epoch 0)  match

  # read back from a device and checked with its keys
  $ esptool.py read_flash 0x9000 0x6000 dev.bin
  $ usmp-psk verify dev.bin --device 24:6F:28:AA --keys nvs_keys.bin`,
		Args: exactArgs(1, "IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			if opts.deviceID != "" {
				if err := psk.ValidateDeviceID(opts.deviceID); err != nil {
					return err
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return runVerify(cmd, f, root, opts)
		},
	}
	cmd.Flags().StringVar(&opts.deviceID, "device", "", "the `ID` the image must belong to")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the verdict as JSON")
	opts.flags.addKeys(cmd)
	opts.size.add(cmd)
	return cmd
}

func runVerify(cmd *cobra.Command, f *Factory, root *rootOptions, opts *verifyOptions) error {
	img, err := os.ReadFile(opts.image)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer psk.Wipe(img)
	partSize, err := checkVerifiedImage(opts, img)
	if err != nil {
		return err
	}
	keys, err := loadNVSKeys(f, opts.flags.keys, opts.flags.hmacKey)
	if err != nil {
		return err
	}
	o := provision.ImageOptions{Layout: provision.Layout{Namespace: f.Config.NVSNamespace, IDKey: f.Config.NVSIDKey, PSKKey: f.Config.NVSPSKKey}, Keys: keys,
		ReadOnly: partSize > 0 && partSize < nvs.MinReadWriteSize}
	reg, err := f.openRegistry(root)
	if err != nil {
		return err
	}
	defer reg.Close()
	// A registry that does not exist is refused, as by every other command
	// that reads one: checking against the epoch-0 key of an unknown device
	// is right for the registry the gateway loads, but a mistyped --registry
	// or the wrong directory would turn a retired key into a "match".
	if err := reg.Exists(cmd.Context()); err != nil {
		return err
	}
	var master *psk.Secret
	defer func() { master.Destroy() }()
	loadMaster := func() (*psk.Secret, error) {
		if master == nil {
			m, err := f.Master(root.masterFile)
			if err != nil {
				return nil, err
			}
			master = m
		}
		return master, nil
	}
	v, err := provision.Verify(cmd.Context(), reg, img, o, opts.deviceID, loadMaster)
	if errors.Is(err, provision.ErrNoDevice) {
		// A blank image, or one that is no NVS, holds no key the gateway
		// could accept: that is a failed verification, not an I/O error.
		return &mismatchError{msg: "verification failed for " + opts.image + ": " + err.Error()}
	}
	if errors.Is(err, provision.ErrLooksEncrypted) {
		return fmt.Errorf("%s: %w", opts.image, err) // exit 2, as rotate and provision (issue 14)
	}
	if err != nil {
		return errWrongKeys(err)
	}
	if opts.json {
		if err := printJSON(f, v); err != nil {
			return err
		}
	} else {
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
		fmt.Fprintf(f.IO.Out, "%s  image %s  expected %s  (%s)  %s\n", id, orDash(v.ImageKCV), orDash(v.ExpectedKCV), basis, verdict)
	}
	if !v.Match {
		return &mismatchError{msg: "verification failed for " + opts.image + ": " + v.Reason}
	}
	return nil
}

// checkVerifiedImage fails the verification of an image cut short or not
// NVS at all, before anything else is read, and returns its partition size.
// A truncated image read as far as it goes can hold the whole id and key:
// it "matched" while the device would fail to mount it (issue 13 item 3).
func checkVerifiedImage(opts *verifyOptions, img []byte) (int, error) {
	partSize, source, err := opts.size.partitionSize(opts.image)
	if err != nil {
		return 0, err
	}
	if msg := imageLengthError(len(img), partSize, source); msg != "" {
		return 0, &mismatchError{msg: "verification failed for " + opts.image + ": " + msg}
	}
	if err := provision.CheckNVS(img); err != nil {
		return 0, &mismatchError{msg: "verification failed for " + opts.image + ": " + err.Error()}
	}
	return partSize, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
