package cli

// nvs dump: what the device's NVS library reads from an image, and the
// page map. Blob values and the configured PSK entry are never printed:
// they show as their length and key check value (design §3, R10, R14).

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/provision"
	"github.com/usmp/usmp-psk/internal/psk"
)

type nvsDumpOptions struct {
	nvsDeps

	image string
	json  bool
	keys  nvsKeySource
}

func newNVSDumpCmd(f *Factory, runF func(*nvsDumpOptions) error) *cobra.Command {
	opts := &nvsDumpOptions{nvsDeps: newNVSDeps(f)}
	cmd := &cobra.Command{
		Use:   "dump IMAGE [--json] [--keys KEYS.bin | --hmac-key FILE]",
		Short: "Show the entries and page map of an NVS image, as the device reads it",
		Long: `Show what ESP-IDF's NVS library reads from a partition image, generator-made
or read off a device: every entry its iterator lists (namespace, key, type,
value), sorted by namespace and key, then the page map (state, sequence number,
format version, written, erased and empty entry slots of each page).

Blob values and the configured PSK entry (nvs.namespace/nvs.psk_key, default
usmp/psk) are never printed: they show as their length and key check value
(KCV). A value the device lists but cannot read shows the device's error.

An encrypted image needs its keys: --keys with the nvs_keys partition file, or
--hmac-key with the HMAC key of the HMAC scheme. Keys that do not decrypt the
image are reported (exit code 3); nothing is shown then. Images smaller than
0x3000 bytes made of whole pages are read as read-only partitions, like the
generator's images for sizes 0x1000 and 0x2000.

With --json the output is
  {"entries":[{"namespace","key","type","value"}],
   "pages":[{"index","state","seq","version","written","erased","empty"}]}
with integers as JSON numbers, and "length" and "kcv" instead of "value" for
blobs and the PSK entry.`,
		Example: `  $ usmp-psk nvs dump nvs.bin
  NAMESPACE  KEY        TYPE    VALUE
  usmp       device_id  string  usmp-0001-a1b2c3
  usmp       psk        blob    32 bytes, kcv 73b52cac

  PAGE  STATE   SEQ  VERSION  WRITTEN  ERASED  EMPTY
  0     ACTIVE  0    2        6        0       120
  1     EMPTY   -    -        0        0       126
  …

  # an encrypted image
  $ usmp-psk nvs dump nvs-enc.bin --keys keys/nvs_keys.bin --json`,
		Args: exactArgs(1, "IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			if err := opts.keys.validate(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runNVSDump(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, `print {"entries":[…],"pages":[…]} as JSON`)
	addKeySourceFlags(cmd, &opts.keys)
	return cmd
}

// dumpEntry is one entry of nvs dump --json.
type dumpEntry struct {
	Namespace string `json:"namespace"`
	Key       string `json:"key"`
	Type      string `json:"type"`
	// Value is a number or a string; absent for blobs, the PSK entry and
	// values the device cannot read.
	Value  any    `json:"value,omitempty"`
	Length *int   `json:"length,omitempty"`
	KCV    string `json:"kcv,omitempty"`
	Legacy bool   `json:"legacy,omitempty"`       // a version 1 blob (the iterator skips it)
	NoNS   bool   `json:"no_namespace,omitempty"` // its namespace definition is lost
	Error  string `json:"error,omitempty"`        // the device's error reading it
	cell   string // the VALUE cell of the table
}

// dumpPage is one page of the page map.
type dumpPage struct {
	Index        int     `json:"index"`
	State        string  `json:"state"`
	Seq          *uint32 `json:"seq"`
	Version      *int    `json:"version"`
	Written      int     `json:"written"`
	Erased       int     `json:"erased"`
	Empty        int     `json:"empty"`
	Illegal      int     `json:"illegal,omitempty"`
	BadHeaderCRC bool    `json:"bad_header_crc,omitempty"`
}

type dumpOutput struct {
	Entries    []dumpEntry `json:"entries"`
	Pages      []dumpPage  `json:"pages"`
	MountError string      `json:"mount_error,omitempty"`
}

func runNVSDump(ctx context.Context, opts *nvsDumpOptions) error {
	l, err := loadNVSImage(ctx, opts.ReadKeyFile, opts.image, &opts.keys)
	if err != nil {
		return err
	}
	defer l.wipe()
	img, err := nvs.ReadImage(l.plain, nvs.ReadOptions{ReadOnly: l.readOnly})
	if err != nil {
		return badInputf("%s: %w", opts.image, err)
	}
	out := dumpImage(opts.Layout(), img)
	if l.readOnly {
		opts.IO.Infof("%s: %d bytes, read as a read-only partition (fewer than 3 pages)", opts.image, len(l.plain))
	}
	if l.looksEncrypted() {
		opts.IO.Warnf("%s", encryptedHint(opts.image))
	}
	if img.MountErr != nil {
		opts.IO.Warnf("%s: the device cannot mount this image (%v): it reads no entries", opts.image, img.MountErr)
	}
	if size := len(l.plain); size%nvs.PageSize != 0 {
		opts.IO.Warnf("%s: size %d is not a multiple of 4096: the last %d bytes are ignored, as on the device", opts.image, size, size%nvs.PageSize)
	}
	if opts.json {
		return printJSON(opts.IO, out)
	}
	return printDump(opts.IO, out)
}

// dumpImage turns what the reader found into the report, hiding blob
// values and the PSK entry of layout l.
func dumpImage(l provision.Layout, img *nvs.Image) dumpOutput {
	entries := append([]nvs.Entry(nil), img.Entries...)
	nvs.SortEntries(entries)
	out := dumpOutput{Entries: make([]dumpEntry, 0, len(entries)), Pages: make([]dumpPage, 0, len(img.Pages))}
	if img.MountErr != nil {
		out.MountError = img.MountErr.Error()
	}
	for i := range entries {
		out.Entries = append(out.Entries, dumpOne(l, &entries[i]))
	}
	for _, p := range img.Pages {
		dp := dumpPage{Index: p.Index, State: p.State.String(), Written: p.Written, Erased: p.Erased, Empty: p.Empty, Illegal: p.Illegal}
		if !p.Blank && p.State != nvs.PageEmpty {
			if p.HeaderOK {
				seq, v := p.Seq, 256-int(p.Version)
				dp.Seq, dp.Version = &seq, &v
			} else {
				dp.BadHeaderCRC = true
			}
		}
		out.Pages = append(out.Pages, dp)
	}
	return out
}

func dumpOne(l provision.Layout, e *nvs.Entry) dumpEntry {
	d := dumpEntry{Namespace: e.Namespace, Key: e.Key, Type: e.Type.String(), Legacy: e.Legacy, NoNS: e.NoNamespace}
	isPSK := e.Namespace == l.Namespace && e.Key == l.PSKKey
	switch {
	case e.Err != nil:
		d.Error = deviceErrName(e.Err)
		d.cell = "error: " + d.Error
	case e.Type.IsInt() && !isPSK:
		if e.Type.Signed() {
			d.Value, d.cell = e.Int(), strconv.FormatInt(e.Int(), 10)
		} else {
			d.Value, d.cell = e.Uint(), strconv.FormatUint(e.Uint(), 10)
		}
	case e.Type == nvs.TypeString && !isPSK:
		s := string(e.Bytes())
		d.Value, d.cell = s, cellText(s)
	default: // blobs and the PSK entry: length and KCV only
		n := e.Len()
		d.Length = &n
		k := psk.CopySecret(e.Bytes())
		d.KCV = psk.KCV(k)
		k.Destroy()
		d.cell = fmt.Sprintf("%s, kcv %s", plural(n, "byte"), d.KCV)
	}
	if e.Legacy {
		d.cell += " (version 1 blob)"
	}
	return d
}

// deviceErrName names the device's error for a value it cannot read.
func deviceErrName(err error) string {
	var de nvs.DeviceError
	if errors.As(err, &de) {
		return de.Name()
	}
	return err.Error()
}

func printDump(ios *IOStreams, out dumpOutput) error {
	rows := make([][]string, 0, len(out.Entries))
	for _, e := range out.Entries {
		ns := cellText(e.Namespace)
		if e.NoNS {
			ns += " (lost)"
		}
		rows = append(rows, []string{ns, cellText(e.Key), e.Type, e.cell})
	}
	// A KCV is never cut: VALUE is cut no shorter than its cells with one.
	value := column{header: "VALUE", cut: cutFirst}
	for _, e := range out.Entries {
		if e.KCV != "" {
			value.min = max(value.min, cellWidth(e.cell))
		}
	}
	if len(rows) > 0 {
		cols := []column{{header: "NAMESPACE", cut: keepWhole}, {header: "KEY", cut: keepWhole}, {header: "TYPE"}, value}
		if err := printTable(ios, ios.Out, cols, rows); err != nil {
			return err
		}
		fmt.Fprintln(ios.Out)
	}
	return printPageMap(ios, out.Pages)
}

func printPageMap(ios *IOStreams, pages []dumpPage) error {
	rows := make([][]string, 0, len(pages))
	for _, p := range pages {
		seq, ver, state := "-", "-", p.State
		if p.Seq != nil {
			seq = strconv.FormatUint(uint64(*p.Seq), 10)
		}
		if p.Version != nil {
			ver = strconv.Itoa(*p.Version)
		}
		if p.BadHeaderCRC {
			state += " (bad header CRC: ignored)"
		}
		empty := strconv.Itoa(p.Empty)
		if p.Illegal > 0 {
			empty += fmt.Sprintf(" (+%d illegal)", p.Illegal)
		}
		rows = append(rows, []string{strconv.Itoa(p.Index), state, seq, ver, strconv.Itoa(p.Written), strconv.Itoa(p.Erased), empty})
	}
	return printTable(ios, ios.Out, []column{
		{header: "PAGE", cut: keepWhole}, {header: "STATE", cut: cutFirst}, {header: "SEQ", cut: keepWhole}, {header: "VERSION"},
		{header: "WRITTEN"}, {header: "ERASED"}, {header: "EMPTY"},
	}, rows)
}
