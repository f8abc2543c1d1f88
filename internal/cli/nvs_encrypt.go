package cli

// nvs encrypt and nvs generate-key: the drop-ins for nvs_partition_gen.py's
// encrypt and generate-key. Keys come only from the Factory's Rand, which is
// crypto/rand in production (R26; the reference uses Python's random).
// Key files and HMAC keys are secret files; reports show their paths and
// KCVs, never their bytes (R10, R14).

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/nvs/nvscrypt"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/secfile"
)

// nvsKeyGenOptions are the key-generation flags of encrypt --keygen and
// generate-key.
type nvsKeyGenOptions struct {
	keyfile        string // --keyfile as given, "" for the dated default
	hmac           bool   // --key_protect_hmac
	hmacKeygen     bool   // --kp_hmac_keygen
	hmacKeyfile    string // --kp_hmac_keyfile
	hmacInputkey   string // --kp_hmac_inputkey
	hmacInputGiven bool
	force          bool // --force: replace existing key files
}

func addKeyGenFlags(cmd *cobra.Command, o *nvsKeyGenOptions) {
	fl := cmd.Flags()
	fl.StringVar(&o.keyfile, "keyfile", "", "`NAME` of the keys file, under DIR/keys/ unless absolute (default keys-MM-DD_HH-MM.bin)")
	fl.BoolVar(&o.hmac, "key_protect_hmac", false, "use the HMAC-based scheme: derive the XTS keys from an HMAC key (also --key-protect-hmac)")
	fl.BoolVar(&o.hmacKeygen, "kp_hmac_keygen", false, "generate the HMAC key as well, written to keys/hmac-KEYFILE")
	fl.StringVar(&o.hmacKeyfile, "kp_hmac_keyfile", "", "`NAME` of the generated HMAC key file, under DIR/keys/ unless absolute")
	fl.StringVar(&o.hmacInputkey, "kp_hmac_inputkey", "", "read the 32-byte HMAC key from `FILE`")
	fl.BoolVar(&o.force, "force", false, "replace an existing keys file (nvs_partition_gen.py does so silently; usmp-psk never does without --force)")
	fl.SetNormalizeFunc(nvsNormalizeFlag)
}

// validate refuses the combinations the reference silently ignores or
// crashes on.
func (o *nvsKeyGenOptions) validate(cmd *cobra.Command) error {
	changed := cmd.Flags().Changed
	o.hmacInputGiven = changed("kp_hmac_inputkey")
	if !o.hmac {
		for _, n := range []string{"kp_hmac_keygen", "kp_hmac_keyfile", "kp_hmac_inputkey"} {
			if changed(n) {
				return flagErrorf("--" + n + " needs --key_protect_hmac\nhint: nvs_partition_gen.py ignores it and makes random keys; add --key_protect_hmac for the HMAC scheme")
			}
		}
	} else {
		if o.hmacKeygen == o.hmacInputGiven {
			return flagErrorf("--key_protect_hmac needs exactly one of --kp_hmac_keygen and --kp_hmac_inputkey FILE")
		}
		if changed("kp_hmac_keyfile") && !o.hmacKeygen {
			return flagErrorf("--kp_hmac_keyfile names the generated HMAC key file: it needs --kp_hmac_keygen")
		}
		if o.hmacInputGiven && o.hmacInputkey == "" {
			return flagErrorf("--kp_hmac_inputkey needs a FILE")
		}
	}
	if o.keyfile != "" {
		if _, err := keyFileName("--keyfile", o.keyfile); err != nil {
			return err
		}
	}
	if o.hmacKeyfile != "" {
		if _, err := keyFileName("--kp_hmac_keyfile", o.hmacKeyfile); err != nil {
			return err
		}
	}
	return nil
}

// paths returns where the keys file and a generated HMAC key go: under
// dir/keys/ unless absolute, named as the reference names them (the
// default name from now).
func (o *nvsKeyGenOptions) paths(now func() time.Time, dir string) (keysPath, hmacPath string) {
	keysDir := filepath.Join(dir, "keys")
	keyfile := o.keyfile
	if keyfile == "" {
		keyfile = "keys-" + now().Format("01-02_15-04") + ".bin"
	}
	name, _ := keyFileName("--keyfile", keyfile)
	keysPath, _ = target(keysDir, name)
	if o.hmac && o.hmacKeygen {
		hname := o.hmacKeyfile
		if hname == "" {
			// The reference prefixes the whole --keyfile argument; with
			// a directory in it that makes a directory "hmac-DIR". We
			// prefix the base name, which is the same for plain names.
			d, b := filepath.Split(keyfile)
			hname = d + "hmac-" + b
		}
		hname, _ = keyFileName("--kp_hmac_keyfile", hname)
		hmacPath, _ = target(keysDir, hname)
	}
	return keysPath, hmacPath
}

// nvsNewKeys makes the XTS keys: random, from rnd, or derived from an HMAC
// key that is read or generated. A generated HMAC key is returned for
// writing.
func nvsNewKeys(rnd io.Reader, readKeyFile keyFileReader, o *nvsKeyGenOptions) (*nvscrypt.Keys, *nvscrypt.HMACKey, error) {
	if !o.hmac {
		k, err := nvscrypt.GenerateKeys(rnd)
		return k, nil, err
	}
	var hk *nvscrypt.HMACKey
	if o.hmacKeygen {
		var err error
		if hk, err = nvscrypt.GenerateHMACKey(rnd); err != nil {
			return nil, nil, err
		}
	} else {
		data, err := readKeyFile("--kp_hmac_inputkey", o.hmacInputkey)
		if err != nil {
			return nil, nil, err
		}
		hk, err = nvscrypt.ParseHMACKey(data)
		psk.Wipe(data)
		if err != nil {
			return nil, nil, badInputf("--kp_hmac_inputkey %s: %w (an HMAC key file holds exactly 32 bytes)", o.hmacInputkey, err)
		}
	}
	k, err := hk.DeriveKeys()
	if err != nil || !o.hmacKeygen {
		hk.Destroy()
		hk = nil
	}
	return k, hk, err
}

// keyOutputs lists the key files of a key-generation run, in the order the
// reference writes them, with their reports.
func keyOutputs(keys *nvscrypt.Keys, hk *nvscrypt.HMACKey, keysPath, hmacPath string, force bool) ([]nvsOutput, []fileReport) {
	var outs []nvsOutput
	var reports []fileReport
	if hk != nil {
		kcv := hk.KCV()
		outs = append(outs, nvsOutput{path: hmacPath, data: hk.File(), keep: !force})
		reports = append(reports, fileReport{Path: hmacPath, Kind: "hmac-key", Bytes: nvscrypt.HMACKeySize, KCV: kcv,
			text: fmt.Sprintf("wrote HMAC key to %s (%d bytes, kcv %s); burn it into an eFuse key block with purpose HMAC_UP", hmacPath, nvscrypt.HMACKeySize, kcv)})
	}
	kcv := keys.KCV()
	outs = append(outs, nvsOutput{path: keysPath, data: keys.Partition(), keep: !force})
	reports = append(reports, fileReport{Path: keysPath, Kind: "nvs-keys", Bytes: nvscrypt.KeysPartitionSize, KCV: kcv,
		text: fmt.Sprintf("wrote NVS encryption keys to %s (nvs_keys partition, %d bytes, kcv %s)", keysPath, nvscrypt.KeysPartitionSize, kcv)})
	return outs, reports
}

func wipeOutputs(outs []nvsOutput) {
	for _, o := range outs {
		psk.Wipe(o.data)
	}
}

type nvsEncryptOptions struct {
	nvsImageOptions
	// Rand is the source of new keys (crypto/rand, R26).
	Rand io.Reader
	// Now names the keys file by default.
	Now func() time.Time

	keygen   bool
	inputkey string
	gen      nvsKeyGenOptions
}

func newNVSEncryptCmd(f *Factory, root *rootOptions, runF func(*nvsEncryptOptions) error) *cobra.Command {
	opts := &nvsEncryptOptions{nvsImageOptions: newNVSImageOptions(f, root), Rand: f.Rand, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "encrypt INPUT.csv... OUTPUT.bin SIZE (--inputkey KEYS.bin | --keygen [--keyfile NAME] [--key_protect_hmac (--kp_hmac_inputkey FILE | --kp_hmac_keygen [--kp_hmac_keyfile NAME])]) [--version 1|2] [--outdir DIR]",
		Short: "Build an XTS-AES encrypted NVS image (nvs_partition_gen.py encrypt)",
		Long: `Build an NVS partition image from CSV files and encrypt it with NVS encryption
(XTS-AES-256), byte-identical to nvs_partition_gen.py encrypt.

The keys come from an nvs_keys partition file (--inputkey; its first 64 bytes
are used) or are made with --keygen and written to DIR/keys/KEYFILE (default
keys-MM-DD_HH-MM.bin). With --key_protect_hmac they are derived from an HMAC
key (the HMAC-based scheme): read with --kp_hmac_inputkey, or generated with
--kp_hmac_keygen and written to DIR/keys/hmac-KEYFILE. New keys come from the
operating system's cryptographic random source, not Python's random module.

Every output is a secret file: written 0600 and atomically, and refused inside
a git work tree that does not ignore it. The image replaces an existing file
like the reference; a keys file made with --keygen does not, unlike the
reference, without --force (losing it makes every image encrypted with it
unreadable). Standard error names the files and their key check values.
The dash spellings --key-protect-hmac, --kp-hmac-keygen, --kp-hmac-keyfile and
--kp-hmac-inputkey are accepted too.`,
		Example: `  # new random keys in keys/device-keys.bin, the image in nvs.bin
  $ usmp-psk nvs encrypt device.csv nvs.bin 0x6000 --keygen --keyfile device-keys.bin

  # with an existing nvs_keys partition
  $ usmp-psk nvs encrypt device.csv nvs.bin 0x6000 --inputkey keys/device-keys.bin

  # HMAC scheme with the eFuse HMAC key in a file
  $ usmp-psk nvs encrypt device.csv nvs.bin 0x6000 --keygen --key_protect_hmac --kp_hmac_inputkey hmac.bin`,
		Args: nvsMinArgs(3, "INPUT.csv... OUTPUT.bin SIZE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.keygen && cmd.Flags().Changed("inputkey") {
				return flagErrorf("--keygen and --inputkey exclude each other\nhint: --inputkey KEYS.bin encrypts with existing keys; --keygen makes new ones")
			}
			if !opts.keygen && !cmd.Flags().Changed("inputkey") {
				return flagErrorf("encrypt needs --keygen or --inputkey KEYS.bin")
			}
			if err := opts.fill(f, cmd, args); err != nil {
				return err
			}
			if cmd.Flags().Changed("inputkey") {
				if opts.gen.hmac {
					return flagErrorf("--key_protect_hmac derives new keys: it needs --keygen, not --inputkey\nhint: nvs_partition_gen.py ignores it here and encrypts with the --inputkey keys")
				}
				if err := checkBinExt("--inputkey", opts.inputkey); err != nil {
					return err
				}
			}
			if err := opts.gen.validate(cmd); err != nil {
				return err
			}
			if !opts.keygen && cmd.Flags().Changed("keyfile") {
				f.IO.Warnf("--keyfile is ignored with --inputkey (no keys file is written)")
			}
			if runF != nil {
				return runF(opts)
			}
			return runNVSEncrypt(cmd.Context(), opts)
		},
	}
	addImageFlags(cmd, &opts.nvsImageOptions)
	cmd.Flags().BoolVar(&opts.keygen, "keygen", false, "generate new encryption keys (written under DIR/keys/)")
	cmd.Flags().StringVar(&opts.inputkey, "inputkey", "", "encrypt with the keys of the nvs_keys partition `FILE` (.bin)")
	addKeyGenFlags(cmd, &opts.gen)
	return cmd
}

func runNVSEncrypt(ctx context.Context, opts *nvsEncryptOptions) error {
	plain, _, err := buildNVSImage(ctx, &opts.nvsImageOptions)
	if err != nil {
		return err
	}
	defer psk.Wipe(plain)
	var keys *nvscrypt.Keys
	var hk *nvscrypt.HMACKey
	if opts.keygen {
		keys, hk, err = nvsNewKeys(opts.Rand, opts.ReadKeyFile, &opts.gen)
	} else {
		keys, err = opts.readInputKeys("--inputkey", opts.inputkey)
	}
	if err != nil {
		return err
	}
	defer keys.Destroy()
	if hk != nil {
		defer hk.Destroy()
	}
	enc, err := nvscrypt.EncryptImage(plain, keys)
	if err != nil {
		return err
	}
	out := opts.outdir.outputPath(opts.IO, opts.output)
	var outs []nvsOutput
	var reports []fileReport
	if opts.keygen {
		// The reference puts the keys under the output's directory, or
		// under ./keys when OUTPUT is absolute.
		dir := ""
		if opts.outdir.set && !filepath.IsAbs(opts.output) {
			dir = opts.outdir.dir
		}
		keysPath, hmacPath := opts.gen.paths(opts.Now, dir)
		outs, reports = keyOutputs(keys, hk, keysPath, hmacPath, opts.gen.force)
	}
	outs = append(outs, nvsOutput{path: out, data: enc})
	defer wipeOutputs(outs)
	if err := writeNVSOutputs(opts.FileOptions, outs); err != nil {
		return err
	}
	reports = append(reports, fileReport{Path: out, Kind: "encrypted-image", Bytes: len(enc), FormatVersion: opts.version, KeysKCV: keys.KCV(),
		text: fmt.Sprintf("wrote encrypted NVS image %s (%d bytes, format version %d, keys kcv %s)", out, len(enc), opts.version, keys.KCV())})
	return reportFiles(opts.IO, opts.json, reports...)
}

type nvsGenerateKeyOptions struct {
	nvsDeps
	// FileOptions are the secret-file options of the key files.
	FileOptions func(replace bool) secfile.Options
	// Rand is the source of new keys (crypto/rand, R26).
	Rand io.Reader
	// Now names the keys file by default.
	Now func() time.Time

	gen    nvsKeyGenOptions
	json   bool
	outdir nvsOutdir
}

func newNVSGenerateKeyCmd(f *Factory, root *rootOptions, runF func(*nvsGenerateKeyOptions) error) *cobra.Command {
	opts := &nvsGenerateKeyOptions{nvsDeps: newNVSDeps(f), FileOptions: f.fileOptionsFor(root), Rand: f.Rand, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "generate-key [--keyfile NAME] [--key_protect_hmac (--kp_hmac_inputkey FILE | --kp_hmac_keygen [--kp_hmac_keyfile NAME])] [--outdir DIR]",
		Short: "Make an nvs_keys partition for NVS encryption (nvs_partition_gen.py generate-key)",
		Long: `Make the XTS-AES-256 keys of NVS encryption and write them as an nvs_keys
partition image (64 key bytes, their CRC, 0xFF padding to 4096 bytes) to
DIR/keys/KEYFILE (default keys-MM-DD_HH-MM.bin), as nvs_partition_gen.py
generate-key does.

The keys are random, from the operating system's cryptographic random source
(the reference uses Python's random module). With --key_protect_hmac they are
derived from an HMAC key instead: read with --kp_hmac_inputkey, or generated
with --kp_hmac_keygen and written to DIR/keys/hmac-KEYFILE.

Key files are secret files: 0600, atomic, refused inside a git work tree that
does not ignore them. Unlike nvs_partition_gen.py, an existing keys file is
never replaced without --force: losing it makes every image encrypted with it
unreadable. Standard error names them with their key check values, never
their bytes.`,
		Example: `  # keys/nvs_keys.bin
  $ usmp-psk nvs generate-key --keyfile nvs_keys.bin

  # HMAC scheme: a new HMAC key and the nvs_keys partition derived from it
  $ usmp-psk nvs generate-key --key-protect-hmac --kp-hmac-keygen --outdir secrets`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.gen.validate(cmd); err != nil {
				return err
			}
			opts.outdir.fill(f, cmd)
			if runF != nil {
				return runF(opts)
			}
			return runNVSGenerateKey(cmd.Context(), opts)
		},
	}
	addKeyGenFlags(cmd, &opts.gen)
	addOutdirFlag(cmd, &opts.outdir)
	addReportJSONFlag(cmd, &opts.json)
	return cmd
}

func runNVSGenerateKey(_ context.Context, opts *nvsGenerateKeyOptions) error {
	keys, hk, err := nvsNewKeys(opts.Rand, opts.ReadKeyFile, &opts.gen)
	if err != nil {
		return err
	}
	defer keys.Destroy()
	if hk != nil {
		defer hk.Destroy()
	}
	dir := ""
	if opts.outdir.set {
		dir = opts.outdir.dir
	}
	keysPath, hmacPath := opts.gen.paths(opts.Now, dir)
	outs, reports := keyOutputs(keys, hk, keysPath, hmacPath, opts.gen.force)
	defer wipeOutputs(outs)
	if err := writeNVSOutputs(opts.FileOptions, outs); err != nil {
		return err
	}
	return reportFiles(opts.IO, opts.json, reports...)
}
