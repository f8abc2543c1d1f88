package cli

// nvs decrypt: the drop-in for nvs_partition_gen.py decrypt. The decrypted
// image holds the PSK in clear: it is a secret file (R21), and a wrong key
// writes nothing instead of garbage.

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/nvs/nvscrypt"
	"github.com/usmp/usmp-psk/internal/provision"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/secfile"
)

type nvsDecryptOptions struct {
	nvsDeps
	// FileOptions are the secret-file options of the output.
	FileOptions func(replace bool) secfile.Options

	input  string
	keys   string
	output string
	json   bool
	outdir nvsOutdir
}

func newNVSDecryptCmd(f *Factory, root *rootOptions, runF func(*nvsDecryptOptions) error) *cobra.Command {
	opts := &nvsDecryptOptions{nvsDeps: newNVSDeps(f), FileOptions: f.fileOptionsFor(root)}
	cmd := &cobra.Command{
		Use:   "decrypt INPUT.bin KEYS.bin OUTPUT.bin [--outdir DIR]",
		Short: "Decrypt an encrypted NVS image (nvs_partition_gen.py decrypt)",
		Long: `Decrypt an NVS image encrypted with NVS encryption, using the first 64 bytes of
the nvs_keys partition file KEYS.bin, byte-identical to nvs_partition_gen.py
decrypt (so the result equals 'nvs generate' of the same CSV).

Unlike the reference, a wrong key is detected (no entry's CRC matches): then
nothing is written and the exit code is 3. OUTPUT.bin holds every value in
clear: it is written 0600 and atomically, replacing an existing file like the
reference, and refused inside a git work tree that does not ignore it. To read
an encrypted image without writing it in clear, use 'nvs dump --keys'.`,
		Example: `  $ usmp-psk nvs decrypt nvs.bin keys/device-keys.bin nvs-plain.bin`,
		Args:    exactArgs(3, "INPUT.bin KEYS.bin OUTPUT.bin"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.input, opts.keys, opts.output = args[0], args[1], args[2]
			for i, what := range []string{"INPUT", "KEYS", "OUTPUT"} {
				if err := checkBinExt(what, args[i]); err != nil {
					return err
				}
			}
			opts.outdir.fill(f, cmd)
			if runF != nil {
				return runF(opts)
			}
			return runNVSDecrypt(cmd.Context(), opts)
		},
	}
	addOutdirFlag(cmd, &opts.outdir)
	addReportJSONFlag(cmd, &opts.json)
	return cmd
}

func runNVSDecrypt(ctx context.Context, opts *nvsDecryptOptions) error {
	keys, err := opts.readInputKeys("KEYS", opts.keys)
	if err != nil {
		return err
	}
	defer keys.Destroy()
	enc, err := readImageFile(ctx, opts.input)
	if err != nil {
		return err
	}
	plain, err := nvscrypt.DecryptImage(enc, keys)
	if err != nil {
		return badInputf("%s: %w", opts.input, err)
	}
	defer psk.Wipe(plain)
	if err := nvscrypt.VerifyDecrypted(plain); err != nil {
		if errors.Is(err, nvscrypt.ErrWrongKey) {
			return &mismatchError{msg: opts.input + ": " + err.Error() + " (keys kcv " + keys.KCV() + ")\nhint: check that " + opts.keys + " is the keys file this image was encrypted with; nothing was written"}
		}
		return err
	}
	out := opts.outdir.outputPath(opts.IO, opts.output)
	if err := writeNVSOutputs(opts.FileOptions, []nvsOutput{{path: out, data: plain}}); err != nil {
		return err
	}
	if err := reportFiles(opts.IO, opts.json, fileReport{Path: out, Kind: "image", Bytes: len(plain), KeysKCV: keys.KCV(),
		text: fmt.Sprintf("wrote decrypted NVS image %s (%d bytes, keys kcv %s)", out, len(plain), keys.KCV())}); err != nil {
		return err
	}
	if l := opts.Layout(); imageHoldsPSK(l, plain) {
		opts.IO.Warnf("%s: image holds the key in clear (%s/%s); delete it when done, and flash only the encrypted image", out, l.Namespace, l.PSKKey)
	}
	return nil
}

// imageHoldsPSK reports whether a plaintext image has the configured PSK
// entry, as the device would read it.
func imageHoldsPSK(l provision.Layout, plain []byte) bool {
	img, err := nvs.ReadImage(plain, nvs.ReadOptions{ReadOnly: len(plain) < nvs.MinReadWriteSize})
	if err != nil {
		return false
	}
	return img.Lookup(l.Namespace, l.PSKKey) != nil
}
