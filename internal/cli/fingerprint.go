package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/nvs/nvscrypt"
	"github.com/usmp/usmp-psk/internal/psk"
)

type fingerprintOptions struct {
	IO *IOStreams
	// ReadKey reads FILE (- for standard input); it returns the key's
	// bytes and the name of their source.
	ReadKey func(file string) ([]byte, string, error)

	file     string
	encoding psk.Encoding
	json     bool
}

func newFingerprintCmd(f *Factory, runF func(*fingerprintOptions) error) *cobra.Command {
	opts := &fingerprintOptions{IO: f.IO, ReadKey: func(file string) ([]byte, string, error) { return readKeyInput(f, file) }}
	var encoding string
	cmd := &cobra.Command{
		Use:   "fingerprint [FILE | -] [--encoding auto|hex|base64|raw|c]",
		Short: "Print the key check value (KCV) of a key",
		Long: `Print the key check value (KCV) of the key in FILE, or on standard input when
FILE is - or absent: the first 4 bytes of HMAC-SHA256(key, "usmp-psk kcv v1")
as 8 hex digits. Compare KCVs to check that a registry, an image and a device
hold the same key without showing it.

The key is read in any encoding generate and derive write — hex, base64, raw
or the C header — which is detected; --encoding names it when it cannot be
told. An NVS keys partition (nvs generate-key) gets the KCV of its XTS keys,
the one nvs generate-key and nvs encrypt report. A key typed on a terminal is
refused, because the terminal would echo it.`,
		Example: `  $ usmp-psk fingerprint device.psk
  73b52cac

  $ usmp-psk derive device-id-1 | usmp-psk fingerprint -

  # the C header that generate --encoding c writes
  $ usmp-psk fingerprint usmp_psk.h`,
		Args: maxArgs(1, "one FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			enc, err := psk.ParseEncoding(settingBy(f, "encoding"), encoding, true)
			if err != nil {
				return err
			}
			opts.encoding = enc
			opts.file = "-"
			if len(args) == 1 {
				opts.file = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return runFingerprint(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&encoding, "encoding", "auto", "`ENCODING` of the key: auto (detect it), hex, base64, raw or c")
	cmd.Flags().BoolVar(&opts.json, "json", false, "print {\"kcv\",\"bytes\",\"source\",\"encoding\"} as JSON")
	return cmd
}

func runFingerprint(_ context.Context, opts *fingerprintOptions) error {
	data, source, err := opts.ReadKey(opts.file)
	if err != nil {
		return err
	}
	defer psk.Wipe(data)
	enc := opts.encoding
	if enc == psk.Auto {
		if d, ok := psk.Detect(data); ok {
			enc = d
		}
	}
	key, err := psk.Decode(source, data, enc)
	if err != nil {
		return err
	}
	defer key.Destroy()
	if psk.IsPlaceholder(key.Expose()) || psk.IsPlaceholder(data) {
		opts.IO.Warnf("%s: %s", source, psk.PlaceholderRule)
	}
	if key.Len() < 32 {
		opts.IO.Warnf("%s: the key has only %d bytes; USMP keys should have 32", source, key.Len())
	}
	kcv, kind := psk.KCV(key), ""
	if enc == psk.Raw {
		if keys, err := nvscrypt.ParseKeysPartition(key.Expose()); err == nil {
			// The KCV nvs generate-key and nvs encrypt report for it, of
			// its XTS keys, not of the 4096-byte partition.
			kcv, kind = keys.KCV(), "nvs-keys"
			keys.Destroy()
			opts.IO.Infof("%s: an NVS keys partition (nvs generate-key): the KCV of its XTS keys", source)
		}
	}
	if opts.json {
		return printJSON(opts.IO, struct {
			KCV      string `json:"kcv"`
			Bytes    int    `json:"bytes"`
			Source   string `json:"source"`
			Encoding string `json:"encoding"`
			Kind     string `json:"kind,omitempty"`
		}{kcv, key.Len(), source, string(enc), kind})
	}
	_, err = fmt.Fprintln(opts.IO.Out, kcv)
	return err
}

// readPSKFile reads a key given with --psk-file (a file, or - for stdin) in
// the --psk-encoding encoding. Placeholders are refused later, by whoever
// records the key (design §3).
func readPSKFile(f *Factory, path, encoding string) (*psk.Secret, error) {
	enc, err := psk.ParseEncoding(settingBy(f, "psk-encoding"), encoding, true)
	if err != nil {
		return nil, err
	}
	data, source, err := readKeyInput(f, path)
	if err != nil {
		return nil, err
	}
	defer psk.Wipe(data)
	return psk.Decode(source, data, enc)
}
