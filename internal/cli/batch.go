package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/provision"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

type batchOptions struct {
	IO           *IOStreams
	OpenRegistry func() (*registry.Registry, error)
	Master       func() (*psk.Secret, error)
	// Image resolves the image flags: partition table, NVS keys.
	Image func() (*resolvedImage, error)
	// ReadIDs reads --ids FILE.
	ReadIDs func(path string) (provision.ListIDs, error)
	// Rand is the source of the per-device NVS keys.
	Rand io.Reader
	// AllowUnignored is --allow-unignored, for the git guard.
	AllowUnignored func() bool
	// StepHook is the test binary's (provision.BatchSpec.StepHook).
	StepHook func(step, path string)

	idsFile       string
	count         int
	prefix        string
	start         int
	out           string
	derive        bool
	random        bool
	perDeviceKeys bool
	jobs          int
	shard         string
	dryRun        bool
	json          bool
	image         imageFlags
}

func newBatchCmd(f *Factory, root *rootOptions, runF func(*batchOptions) error) *cobra.Command {
	opts := &batchOptions{IO: f.IO, OpenRegistry: f.registryOpener(root), Master: f.masterLoader(root),
		ReadIDs:        func(path string) (provision.ListIDs, error) { return readIDsFile(f, path) },
		Rand:           f.Rand,
		AllowUnignored: func() bool { return root.allowUnignored },
		StepHook:       f.fileStepHook()}
	opts.Image = func() (*resolvedImage, error) { return opts.image.resolve(f) }
	cmd := &cobra.Command{
		Use:   "batch (--ids FILE | --count N [--prefix P] [--start K]) --out DIR [--derive | --random] [--size SIZE | --partition-table TABLE] [--keys KEYS.bin | --hmac-key FILE | --encrypt-per-device] [--jobs N] [--shard I/N] [--dry-run] [--json]",
		Short: "Provision a factory batch: one NVS image per device, a manifest, the registry",
		Long: `Provision many devices at once. For each device: its key (derived from the
master secret by default, or --random) is recorded in the registry first, then
its NVS image is written to DIR/<id>.bin (0600; ':' in ids becomes %3A), and
DIR/manifest.json lists every device with its image, SHA-256, KCV, epoch,
source and flash offset — no key bytes, so it can be archived and shared.

Ids come from --ids FILE (one per line, or a CSV with an "id" column) or from
--count N [--prefix P] [--start K]: P (empty by default) followed by
K … K+N-1, zero-padded to the width of the largest. Every id is validated before anything is written.

A batch owns DIR: re-running it after a crash, a Ctrl-C or to completion
finishes what is missing, and images, manifest and registry come out byte for
byte the same. --shard I/N takes the devices whose position modulo N is I-1,
a deterministic split across CI runners (each with its own registry).
--dry-run prints the plan and writes nothing.`,
		Example: `  # 2000 derived devices fac-0001 … fac-2000, images encrypted with one keys partition
  $ usmp-psk batch --count 2000 --prefix fac- --out out/ --keys nvs_keys.bin

  # the second of four CI runners
  $ usmp-psk batch --ids devices.csv --out out/ --shard 2/4 --registry shard2.db --json

  # every device with its own nvs_keys partition in out/keys/
  $ usmp-psk batch --ids devices.txt --out out/ --random --encrypt-per-device`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.out == "" {
				return flagErrorf("--out DIR is required")
			}
			switch {
			case opts.idsFile == "" && !cmd.Flags().Changed("count"):
				return flagErrorf("give the devices with --ids FILE or --count N [--prefix P]")
			case opts.idsFile != "" && (cmd.Flags().Changed("count") || cmd.Flags().Changed("prefix") || cmd.Flags().Changed("start")):
				return flagErrorf("--ids and --count/--prefix/--start exclude each other")
			}
			if opts.perDeviceKeys && (opts.image.keys != "" || opts.image.hmacKey != "") {
				return flagErrorf("--encrypt-per-device and --keys/--hmac-key exclude each other")
			}
			if err := checkBatchLimits(cmd, opts); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runBatch(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.idsFile, "ids", "", "device ids from `FILE` (one per line, or CSV with an id column)")
	fl.IntVar(&opts.count, "count", 0, "number of devices `N` (at most 10000000)")
	fl.StringVar(&opts.prefix, "prefix", "", "id prefix `P` for --count (default: none, the ids are the numbers)")
	fl.IntVar(&opts.start, "start", 1, "first number `K` for --count")
	fl.StringVar(&opts.out, "out", "", "output `DIR` (owned by the batch)")
	fl.BoolVar(&opts.derive, "derive", false, "derive keys from the master secret (the default)")
	fl.BoolVar(&opts.random, "random", false, "random keys, kept in the registry")
	fl.BoolVar(&opts.perDeviceKeys, "encrypt-per-device", false, "give every device its own nvs_keys partition in DIR/keys/")
	fl.IntVar(&opts.jobs, "jobs", 0, "`N` parallel image writers, at most 256 (default: number of CPUs)")
	fl.StringVar(&opts.shard, "shard", "", "take only shard `I/N` of the batch")
	fl.BoolVar(&opts.dryRun, "dry-run", false, "print the plan and write nothing")
	fl.BoolVar(&opts.json, "json", false, "print the plan or summary as JSON")
	cmd.MarkFlagsMutuallyExclusive("derive", "random")
	opts.image.addLayout(cmd)
	opts.image.addKeys(cmd)
	return cmd
}

// Limits of a batch, documented in --help and docs/exit-codes.md. More
// writers than this only contend for the disk, and a run of more devices
// than this is split with --start or across runners with --shard.
const (
	maxBatchJobs  = 256
	maxBatchCount = 10_000_000
	maxBatchStart = 1_000_000_000_000
)

// checkBatchLimits refuses --jobs, --count and --start outside their
// documented ranges before anything is read or written.
func checkBatchLimits(cmd *cobra.Command, opts *batchOptions) error {
	switch {
	case opts.jobs < 0 || opts.jobs > maxBatchJobs:
		return flagErrorf(fmt.Sprintf("--jobs must be between 1 and %d (0 or unset: one per CPU)", maxBatchJobs))
	case cmd.Flags().Changed("count") && (opts.count < 1 || opts.count > maxBatchCount):
		return flagErrorf(fmt.Sprintf("--count must be between 1 and %d; split a larger run with --start", maxBatchCount))
	case opts.start < 0 || opts.start > maxBatchStart:
		return flagErrorf(fmt.Sprintf("--start must be between 0 and %d", maxBatchStart))
	}
	return nil
}

type batchSummary struct {
	provision.BatchResult
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"devices_per_second"`
	Encrypted string  `json:"encryption"`
}

// batchIDs reads --ids FILE, or makes the ids of --count and --prefix.
func batchIDs(opts *batchOptions) (provision.IDList, error) {
	if opts.idsFile == "" {
		return provision.NewCountIDs(opts.prefix, opts.start, opts.count)
	}
	return opts.ReadIDs(opts.idsFile)
}

func runBatch(ctx context.Context, opts *batchOptions) error {
	ids, err := batchIDs(opts)
	if err != nil {
		return err
	}
	shard := provision.Shard{I: 1, N: 1}
	if opts.shard != "" {
		s, err := provision.ParseShard(opts.shard)
		if err != nil {
			return err
		}
		shard = s
	}
	img, err := opts.Image()
	if err != nil {
		return err
	}
	if img.opts.Keys != nil {
		defer img.opts.Keys.Destroy()
	}
	spec := provision.BatchSpec{
		IDs: ids, Shard: shard, Source: provision.Derive, Out: opts.out, Image: img.opts,
		PerDeviceKeys: opts.perDeviceKeys, Offset: img.offset, Jobs: opts.jobs, Rand: opts.Rand,
		AllowUnignored: opts.AllowUnignored(), Warn: opts.IO.Warn, StepHook: opts.StepHook,
	}
	if opts.random {
		spec.Source = provision.Random
	}
	if opts.dryRun {
		return printPlan(ctx, spec, opts)
	}
	if spec.Source == provision.Derive {
		m, err := opts.Master()
		if err != nil {
			return err
		}
		defer m.Destroy()
		spec.Master = m
	}
	reg, err := opts.OpenRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	progress, finish := trackBatch(opts.IO, &spec, len(shard.Positions(ids.Len())))
	started := time.Now()
	res, err := provision.RunBatch(ctx, reg, spec)
	finish(err)
	if err != nil {
		return progress.interrupted(batchWriteErr(err, opts.out))
	}
	return reportBatch(opts, res, img.opts.Keys != nil, time.Since(started).Seconds())
}

// reportBatch prints a batch's summary, and warns when its images hold
// their keys in clear.
func reportBatch(opts *batchOptions, res *provision.BatchResult, sharedKeys bool, secs float64) error {
	sum := batchSummary{BatchResult: *res, Seconds: secs, PerSecond: float64(res.Devices) / max(secs, 1e-9), Encrypted: "none"}
	switch {
	case opts.perDeviceKeys:
		sum.Encrypted = "per-device-keys"
	case sharedKeys:
		sum.Encrypted = "shared-keys"
	default:
		opts.IO.Warnf("the images in %s hold their keys in clear: encrypt them with --keys KEYS.bin, --hmac-key FILE or --encrypt-per-device (NVS encryption)", opts.out)
	}
	if opts.json {
		return printJSON(opts.IO, sum)
	}
	opts.IO.Infof("batch: %d devices (%d new, %d already recorded) in %s, manifest %s, registry %s; %.2fs, %.0f devices/s",
		res.Devices, res.New, res.Existing, res.Out, res.Manifest, res.Registry, secs, sum.PerSecond)
	return nil
}

// batchWriteErr adds to the error of a file the batch failed to write in
// its directory (a full disk, an I/O error) what became of the images and
// how to finish: what was recorded stays recorded, and a re-run writes the
// images that are missing.
func batchWriteErr(err error, out string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && strings.HasPrefix(filepath.Clean(pe.Path), filepath.Clean(out)) {
		return fmt.Errorf("%w\nhint: the images the batch had not finished were removed; fix the cause and run the same batch command again to finish it", err)
	}
	return err
}

// newBatchBar is the progress bar a batch shows on a terminal's stderr.
func newBatchBar(ios *IOStreams, total int) *progressbar.ProgressBar {
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(ios.ErrOut),
		progressbar.OptionSetDescription("usmp-psk: batch"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("devices"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish())
}

// readIDsFile reads --ids; a FIFO that never delivers does not hold up an
// interrupt.
func readIDsFile(f *Factory, path string) (provision.ListIDs, error) {
	return readInterruptibly(f, func() (provision.ListIDs, error) {
		fh, err := os.Open(path)
		if err != nil {
			return nil, inputError(fmt.Errorf("--ids: %w", err))
		}
		defer fh.Close()
		return provision.ReadIDs(fh, path)
	}, func(provision.ListIDs) {}, nil)
}

// printPlan prints what a batch would do (--dry-run): nothing is written.
// The plan is printed a device at a time, as JSON too, so that a plan of
// millions of devices is not held in memory: --json writes its opening,
// each device and its closing; a table is measured in a first pass over
// the plan and printed in a second.
func printPlan(ctx context.Context, spec provision.BatchSpec, opts *batchOptions) error {
	// A plan of millions of lines takes seconds: Ctrl-C stops it at the
	// next buffer (exit 130), not once the whole plan is out.
	w := bufio.NewWriter(ctxWriter{ctx, opts.IO.Out})
	var err error
	switch {
	case opts.json:
		err = writePlanJSON(w, spec, opts.shard)
	case opts.IO.IsStdoutTTY():
		err = writePlanTable(w, spec, terminalWidth(opts.IO))
	default:
		err = writePlanRows(w, spec, tsvRow)
	}
	if err != nil {
		return err
	}
	return w.Flush()
}

// ctxWriter fails its writes once ctx is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// planHead is the plan's JSON before its devices.
type planHead struct {
	Out    string `json:"out"`
	Source string `json:"source"`
	Size   int    `json:"size"`
	Offset int64  `json:"offset"`
	Shard  string `json:"shard,omitempty"`
	Total  int    `json:"total"`
	Count  int    `json:"count"`
}

// writePlanJSON writes {…planHead, "devices": […]} as printJSON would
// write it whole.
func writePlanJSON(w io.Writer, spec provision.BatchSpec, shard string) error {
	source := "derived"
	if spec.Source == provision.Random {
		source = "random"
	}
	total := spec.IDs.Len()
	head, err := json.MarshalIndent(planHead{spec.Out, source, imageSize(spec.Image), spec.Offset, shard, total, spec.Shard.Count(total)}, "", "  ")
	if err != nil {
		return err
	}
	head = append(bytes.TrimSuffix(head, []byte("\n}")), `,
  "devices": [`...)
	if _, err := w.Write(head); err != nil {
		return err
	}
	sep := "\n    "
	err = provision.Plan(spec, func(d provision.PlannedDevice) error {
		b, err := json.MarshalIndent(d, "    ", "  ")
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, sep); err != nil {
			return err
		}
		sep = ",\n    "
		_, err = w.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	end := "\n  ]\n}\n"
	if sep == "\n    " { // no device
		end = "]\n}\n"
	}
	_, err = io.WriteString(w, end)
	return err
}

// planColumns are the columns of the plan's table, KEYS with
// --encrypt-per-device.
func planColumns(spec provision.BatchSpec) []column {
	cols := []column{{header: "POSITION", cut: keepWhole}, {header: "ID", cut: keepWhole}, {header: "IMAGE", cut: cutFirst}}
	if spec.PerDeviceKeys {
		cols = append(cols, column{header: "KEYS", cut: cutFirst})
	}
	return cols
}

// planRow is a device's row of the plan's table.
func planRow(d provision.PlannedDevice, row []string) []string {
	row = append(row[:0], strconv.Itoa(d.Position), d.ID, d.Image)
	if d.Keys != "" {
		row = append(row, d.Keys)
	}
	return row
}

// writePlanRows writes the plan's header and rows, each line made by line.
func writePlanRows(w io.Writer, spec provision.BatchSpec, line func([]string) string) error {
	if _, err := io.WriteString(w, line(headers(planColumns(spec)))); err != nil {
		return err
	}
	var row []string
	return provision.Plan(spec, func(d provision.PlannedDevice) error {
		row = planRow(d, row)
		_, err := io.WriteString(w, line(row))
		return err
	})
}

// writePlanTable writes the plan as a table fitted to width, as
// printTable does on a terminal: a first pass over the plan measures the
// columns.
func writePlanTable(w io.Writer, spec provision.BatchSpec, width int) error {
	cols := planColumns(spec)
	natural := make([]int, len(cols))
	measureRow(natural, headers(cols))
	var row []string
	err := provision.Plan(spec, func(d provision.PlannedDevice) error {
		row = planRow(d, row)
		measureRow(natural, row)
		return nil
	})
	if err != nil {
		return err
	}
	return writePlanRows(w, spec, fitColumns(cols, natural, width).row)
}

func imageSize(o provision.ImageOptions) int {
	if o.Size == 0 {
		return provision.DefaultSize
	}
	return o.Size
}
