package cli

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/psk"
)

type generateOptions struct {
	IO *IOStreams
	// Rand is the source of the key (crypto/rand, R26).
	Rand io.Reader

	out      keyOutput
	bytes    int
	encoding string
}

func newGenerateCmd(f *Factory, root *rootOptions, runF func(*generateOptions) error) *cobra.Command {
	opts := &generateOptions{IO: f.IO, Rand: f.Rand, out: keyOutput{fileOptions: f.fileOptionsFor(root)}}
	cmd := &cobra.Command{
		Use:   "generate [-o FILE] [--bytes N] [--encoding hex|base64|raw|c] [--force]",
		Short: "Generate a random PSK from crypto/rand",
		Long: `Generate a random pre-shared key (32 bytes unless --bytes says more) from the
operating system's cryptographic random source.

The key goes to -o FILE (created 0600, never overwriting without --force) or to
standard output when that is a pipe or file; a terminal is refused. Standard
error reports the path, the length and the key check value (KCV), never the key.`,
		Example: `  # a key for a device, in a 0600 file
  $ usmp-psk generate -o device.psk

  # as a C array for firmware that compiles the key in
  $ usmp-psk generate --encoding c -o usmp_psk.h

  # piped into another tool
  $ usmp-psk generate --encoding base64 | vault kv put secret/usmp psk=-`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			enc, err := psk.ParseEncoding(settingBy(f, "encoding"), opts.encoding, false)
			if err != nil {
				return err
			}
			if opts.bytes < psk.MinGeneratedBytes {
				return flagErrorf("--bytes must be at least 32")
			}
			opts.out.encoding = enc
			if runF != nil {
				return runF(opts)
			}
			return runGenerate(cmd.Context(), opts)
		},
	}
	addKeyOutputFlags(cmd, &opts.out, &opts.encoding)
	cmd.Flags().IntVar(&opts.bytes, "bytes", psk.DefaultBytes, "key length in `N` bytes (at least 32)")
	return cmd
}

// addKeyOutputFlags adds -o, --encoding, --force and --json.
func addKeyOutputFlags(cmd *cobra.Command, o *keyOutput, encoding *string) {
	cmd.Flags().StringVarP(&o.path, "output", "o", "", "write the key to `FILE` (0600); default: standard output if it is not a terminal")
	cmd.Flags().StringVar(encoding, "encoding", "hex", "key `ENCODING`: hex, base64, raw or c")
	cmd.Flags().BoolVar(&o.force, "force", false, "replace an existing output file")
	cmd.Flags().BoolVar(&o.json, "json", false, "report path, length and KCV as JSON on stdout (needs -o)")
}

func runGenerate(_ context.Context, opts *generateOptions) error {
	if err := checkKeyOutput(opts.IO, opts.out); err != nil {
		return err
	}
	key, err := psk.Generate(opts.Rand, opts.bytes)
	if err != nil {
		return err
	}
	defer key.Destroy()
	return writeKey(opts.IO, key, opts.out, keyReport{})
}
