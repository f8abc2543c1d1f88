package cli

// partition show: an ESP-IDF partition table (CSV or binary) as a table or
// as JSON. Partition tables hold no secrets.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/partition"
)

type partitionShowOptions struct {
	IO *IOStreams

	table string
	json  bool
}

func newPartitionShowCmd(f *Factory, runF func(*partitionShowOptions) error) *cobra.Command {
	opts := &partitionShowOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "show TABLE [--json]",
		Short: "Show an ESP-IDF partition table (CSV or binary)",
		Long: `Show the partitions of an ESP-IDF partition table, given as the CSV that
gen_esp32part.py reads or as the binary it writes (for example read off a
device at 0x8000). Offsets that a CSV leaves out are computed the way
gen_esp32part.py computes them.

The table is checked as gen_esp32part.py checks it (magic bytes, MD5 record,
alignment, overlaps, duplicate names); a bad table exits with code 2.
docs/partitions.md lists where usmp-psk is stricter ($VARIABLES, names over
16 bytes, small read/write NVS partitions, …).

With --json the output is {"partitions":[{"name","type","subtype","offset",
"size","flags","type_name","subtype_name"}]}, with type, subtype, offset, size
and flags as integers.`,
		Example: `  $ usmp-psk partition show partitions.csv
  NAME      TYPE  SUBTYPE  OFFSET   SIZE      FLAGS
  nvs       data  nvs      0x9000   0x6000    -
  phy_init  data  phy      0xf000   0x1000    -
  factory   app   factory  0x10000  0x100000  -

  # the nvs partition's offset, for a script
  $ usmp-psk partition show build/partition_table/partition-table.bin --json | jq '.partitions[] | select(.name=="nvs") | .offset'`,
		Args: exactArgs(1, "TABLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.table = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runPartitionShow(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, `print {"partitions":[…]} as JSON`)
	return cmd
}

// maxTableFile bounds what is read as a partition table.
const maxTableFile = 1 << 20

func runPartitionShow(ctx context.Context, opts *partitionShowOptions) error {
	t, err := readPartitionTable(ctx, opts.table)
	if err != nil {
		return err
	}
	if opts.json {
		return printJSON(opts.IO, t)
	}
	return printPartitionTable(opts.IO, t)
}

// readPartitionTable reads and checks a table in either form; a pipe or
// FIFO that never delivers does not hold up an interrupt (issue 13 item 6).
func readPartitionTable(ctx context.Context, path string) (*partition.Table, error) {
	data, err := readFileInterruptibly(ctx, path, func() ([]byte, error) { return readTableBytes(path) })
	if err != nil {
		return nil, err
	}
	// An empty file, or a table without a single partition (a CSV of only
	// comments, a flash region read off a device where no table was
	// written), would show an empty table with exit 0: it is the wrong file,
	// not a table (issue 13 item 8).
	if len(data) == 0 {
		return nil, badInputf("%s: empty file (0 bytes); not a partition table%s", path, tableHint)
	}
	t, err := partition.Parse(data, path)
	if errors.Is(err, partition.ErrSyntax) || errors.Is(err, partition.ErrBadMagic) || errors.Is(err, partition.ErrMalformed) {
		err = fmt.Errorf("%w%s", err, tableHint)
	}
	if err != nil {
		return nil, badInput(err)
	}
	if len(t.Partitions) == 0 {
		return nil, badInputf("%s: holds no partitions%s", path, tableHint)
	}
	return t, nil
}

// readTableBytes does the reading for readPartitionTable.
func readTableBytes(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, badInput(err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxTableFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxTableFile {
		return nil, badInputf("%s: larger than 1 MiB; not a partition table", path)
	}
	return data, nil
}

// tableHint says what partition show reads.
const tableHint = "\nhint: TABLE is the partitions CSV or the binary table (partition-table.bin, or 0xC00 bytes read at 0x8000)"

func printPartitionTable(s *IOStreams, t *partition.Table) error {
	rows := make([][]string, 0, len(t.Partitions))
	for _, p := range t.Partitions {
		rows = append(rows, []string{
			cellText(p.Name), cellText(p.TypeName()), cellText(p.SubtypeName()),
			fmt.Sprintf("%#x", p.Offset), fmt.Sprintf("%#x", p.Size), partitionFlags(p),
		})
	}
	return printTable(s, s.Out, []column{
		{header: "NAME", cut: keepWhole}, {header: "TYPE"}, {header: "SUBTYPE"},
		{header: "OFFSET", cut: keepWhole}, {header: "SIZE", cut: keepWhole}, {header: "FLAGS"},
	}, rows)
}

// partitionFlags names the flags as gen_esp32part's CSV does.
func partitionFlags(p partition.Partition) string {
	var fl []string
	if p.Encrypted() {
		fl = append(fl, "encrypted")
	}
	if p.Readonly() {
		fl = append(fl, "readonly")
	}
	if other := p.Flags &^ (partition.FlagEncrypted | partition.FlagReadonly); other != 0 {
		fl = append(fl, fmt.Sprintf("%#x", other))
	}
	if len(fl) == 0 {
		return "-"
	}
	return strings.Join(fl, ",")
}
