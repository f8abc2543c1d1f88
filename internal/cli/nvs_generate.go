package cli

// nvs generate: the drop-in for `nvs_partition_gen.py generate`. The CSV
// values may be secrets (the PSK, WiFi passwords): errors name the file,
// line, column and field, never a value (R9), and the rows are wiped once
// the image is built.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/provision"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/secfile"
)

// nvsImageOptions are the arguments generate and encrypt share, and what
// they use of the Factory.
type nvsImageOptions struct {
	nvsDeps
	// FileOptions are the secret-file options of the outputs.
	FileOptions func(replace bool) secfile.Options

	inputs  []string
	output  string // as given
	sizeArg string
	size    int
	version int
	json    bool
	outdir  nvsOutdir
}

func newNVSImageOptions(f *Factory, root *rootOptions) nvsImageOptions {
	return nvsImageOptions{nvsDeps: newNVSDeps(f), FileOptions: f.fileOptionsFor(root)}
}

type nvsGenerateOptions struct {
	nvsImageOptions
}

func newNVSGenerateCmd(f *Factory, root *rootOptions, runF func(*nvsGenerateOptions) error) *cobra.Command {
	opts := &nvsGenerateOptions{nvsImageOptions: newNVSImageOptions(f, root)}
	cmd := &cobra.Command{
		Use:   "generate INPUT.csv... OUTPUT.bin SIZE [--version 1|2] [--outdir DIR]",
		Short: "Build an NVS partition image from a CSV file (nvs_partition_gen.py generate)",
		Long: `Build an NVS partition image from CSV files, byte-identical to what Espressif's
nvs_partition_gen.py generate writes for the same arguments.

SIZE is the partition size in bytes, a multiple of 4096, in decimal, 0x, 0o or
0b. Sizes 0x1000 and 0x2000 give read-only images. Relative paths in CSV rows of
type file are read from the current directory, as the reference reads them.

Like the reference, generate replaces OUTPUT.bin if it exists; the image is
written 0600 and atomically, and refused inside a git work tree that does not
ignore it. Where the reference writes a broken image or crashes (namespace
re-entry, rows before any namespace, duplicate keys, over-long strings, values
out of range), generate does the right thing or refuses with the file, line and
column, and no file is written. Keys named sta.* and ap.* are written as given,
without the reference's hidden WiFi entries.

An image that holds the configured PSK entry (nvs.namespace/nvs.psk_key,
default usmp/psk) in clear gets a warning: use 'usmp-psk nvs encrypt'.`,
		Example: `  # the USMP image of one device, in the default 0x6000 nvs partition
  $ usmp-psk nvs generate device.csv nvs.bin 0x6000

  # legacy single-page blobs, into a build directory
  $ usmp-psk nvs generate --version 1 --outdir build settings.csv settings.bin 24576`,
		Args: nvsMinArgs(3, "INPUT.csv... OUTPUT.bin SIZE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.fill(f, cmd, args); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runNVSGenerate(cmd.Context(), opts)
		},
	}
	addImageFlags(cmd, &opts.nvsImageOptions)
	return cmd
}

// nvsMinArgs requires at least n positional arguments (a usage error).
func nvsMinArgs(n int, what string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError(cmd, fmt.Errorf("%s: expected %s, got %d arguments", subcommandPath(cmd), what, len(args)))
		}
		return nil
	}
}

func addImageFlags(cmd *cobra.Command, o *nvsImageOptions) {
	cmd.Flags().IntVar(&o.version, "version", 2, "NVS format version `N`: 1 (blobs on one page) or 2 (multi-page blobs)")
	addOutdirFlag(cmd, &o.outdir)
	addReportJSONFlag(cmd, &o.json)
}

// fill validates the positional arguments and flags shared by generate and
// encrypt.
func (o *nvsImageOptions) fill(f *Factory, cmd *cobra.Command, args []string) error {
	n := len(args)
	o.inputs = args[:n-2]
	o.output = args[n-2]
	o.sizeArg = args[n-1]
	if o.version != 1 && o.version != 2 {
		return flagErrorf("--version must be 1 or 2")
	}
	size, err := parseSize("SIZE", o.sizeArg)
	if err != nil {
		return err
	}
	o.size = size
	if err := checkBinExt("OUTPUT", o.output); err != nil {
		return err
	}
	o.outdir.fill(f, cmd)
	return nil
}

func runNVSGenerate(ctx context.Context, opts *nvsGenerateOptions) error {
	img, hasPSK, err := buildNVSImage(ctx, &opts.nvsImageOptions)
	if err != nil {
		return err
	}
	defer psk.Wipe(img)
	out := opts.outdir.outputPath(opts.IO, opts.output)
	if err := writeNVSOutputs(opts.FileOptions, []nvsOutput{{path: out, data: img}}); err != nil {
		return err
	}
	if err := reportFiles(opts.IO, opts.json, fileReport{Path: out, Kind: "image", Bytes: len(img), FormatVersion: opts.version,
		text: fmt.Sprintf("wrote NVS image %s (%d bytes, format version %d)", out, len(img), opts.version)}); err != nil {
		return err
	}
	if hasPSK {
		version := ""
		if opts.version != 2 {
			version = fmt.Sprintf(" --version %d", opts.version)
		}
		l := opts.Layout()
		opts.IO.Warnf("%s: image holds the key in clear (%s/%s); encrypt it: usmp-psk nvs encrypt %s %s %s%s --keygen, with flash encryption on the device",
			out, l.Namespace, l.PSKKey, strings.Join(opts.inputs, " "), opts.output, opts.sizeArg, version)
	}
	return nil
}

// buildNVSImage parses the CSV inputs and builds the plaintext image in
// memory. It refuses a documentation placeholder as the configured PSK
// entry (design §3) and reports whether the image holds that entry.
func buildNVSImage(ctx context.Context, o *nvsImageOptions) (img []byte, hasPSK bool, err error) {
	var rows []nvs.Row
	defer func() { nvs.WipeRows(rows) }()
	for _, in := range o.inputs {
		// A CSV, or a file its rows name, can be a pipe or FIFO that never
		// delivers (issue 13 item 6).
		stream := isStream(in)
		r, err := interruptibly(ctx, o.StepHook, func() ([]nvs.Row, error) { return parseCSVFile(in) }, nvs.WipeRows,
			func(r []nvs.Row, err error) bool { return stream && (err != nil || len(r) == 0) })
		rows = append(rows, r...)
		if err != nil {
			return nil, false, err
		}
	}
	hasPSK, err = checkPSKRows(o.Layout(), rows)
	if err != nil {
		return nil, false, badInput(err)
	}
	warnWiFiRows(o.IO, rows)
	if len(rows) == 0 {
		// The reference writes an empty image for an empty CSV, and build
		// scripts may rely on that; an empty input is still worth a word.
		o.IO.Warnf("%s: no rows (the input is empty or holds only a header and comments): the image holds no entries", strings.Join(o.inputs, ", "))
	}
	if o.size < nvs.MinReadWriteSize {
		o.IO.Warnf("partition size %#x is below 0x3000: the image is read-only and holds only the pages it uses; flag the partition readonly in the partition table", o.size)
	}
	img, err = nvs.Generate(rows, o.size, o.version)
	if err != nil {
		return nil, false, nvsGenerateError(err)
	}
	return img, hasPSK, nil
}

// parseCSVFile parses one CSV input.
func parseCSVFile(name string) ([]nvs.Row, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, badInput(err)
	}
	defer fh.Close()
	rows, err := nvs.ParseCSV(fh, name, nvs.CSVOptions{})
	if err != nil {
		return rows, nvsGenerateError(err)
	}
	return rows, nil
}

// nvsGenerateError maps the generator's errors: anything about the input is
// bad input (exit 2), with a hint for the common mistakes.
func nvsGenerateError(err error) error {
	var ce *nvs.CSVError
	switch {
	case errors.Is(err, nvs.ErrNoSpace):
		return badInputf("%w\nhint: give a larger SIZE (one page is always kept free, so the data may use SIZE/4096 - 1 pages)", err)
	case errors.As(err, &ce), errors.Is(err, nvs.ErrInvalidSize), errors.Is(err, nvs.ErrInvalidVersion):
		return badInput(err)
	}
	return err
}

// checkPSKRows finds the rows of the configured PSK entry: a documentation
// placeholder there is refused (design §3).
func checkPSKRows(l provision.Layout, rows []nvs.Row) (found bool, err error) {
	ns := ""
	for i := range rows {
		r := &rows[i]
		if r.Kind == nvs.RowNamespace {
			ns = r.Key
			continue
		}
		if ns != l.Namespace || r.Key != l.PSKKey {
			continue
		}
		found = true
		if psk.IsPlaceholder(r.Data) {
			return true, &nvs.CSVError{File: r.File, Line: r.Line, Field: "value", Msg: "the " + ns + "/" + r.Key + " entry: " + psk.PlaceholderRule}
		}
	}
	return found, nil
}

// warnWiFiRows says once that the reference would have added hidden WiFi
// entries for these keys, and that we do not.
func warnWiFiRows(ios *IOStreams, rows []nvs.Row) {
	for _, r := range rows {
		if r.Kind != nvs.RowData {
			continue
		}
		switch r.Key {
		case "sta.ssid", "sta.pswd", "ap.ssid", "ap.passwd", "ap.authmode":
			ios.Warnf("%s:%d: key %s: nvs_partition_gen.py 0.2.0 adds hidden WiFi entries (sta.apinfo, sta.pmk, sta.apsw, ap.pmk_info) for such keys; usmp-psk writes only the rows given", r.File, r.Line, r.Key)
			return
		}
	}
}
