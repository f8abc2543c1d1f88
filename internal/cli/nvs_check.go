package cli

// nvs check: the integrity report of an image, like nvs_tool.py -i. Findings
// name pages, entries, namespaces and keys, never stored values (R9).
// Exit 0 when the image has no errors, 3 when it has (design §7).

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/nvs"
)

type nvsCheckOptions struct {
	nvsDeps

	image string
	json  bool
	keys  nvsKeySource
	size  partitionSizeFlags
}

func newNVSCheckCmd(f *Factory, runF func(*nvsCheckOptions) error) *cobra.Command {
	opts := &nvsCheckOptions{nvsDeps: newNVSDeps(f)}
	cmd := &cobra.Command{
		Use:   "check IMAGE [--size SIZE | --partition-table TABLE] [--json] [--keys KEYS.bin | --hmac-key FILE]",
		Short: "Check the integrity of an NVS image (like nvs_tool.py -i)",
		Long: `Check an NVS partition image the way nvs_tool.py -i does, and more: image
size, page headers, states and CRCs, entry states in the bitmaps, entry and
data CRCs, impossible entries, duplicate keys, orphaned and missing blob
chunks, blob indexes and namespaces. Each finding names its page and entry.

An image cut short is an error: empty, not whole 4096-byte pages, fewer than
the 3 pages of a read-write partition, or shorter than its partition's size
as --size, --partition-table or the manifest.json of the batch that wrote it
(in the same directory) gives it. An image of a read-only partition (0x1000
or 0x2000 bytes) needs its size.

Leftovers of a power loss that the device repairs at start-up are warnings:
an interrupted garbage collection (a FREEING page), a key stored twice by an
overwrite that was cut before the old copy was erased.

Findings are errors (the device loses data or cannot mount the partition),
warnings (states the device repairs or ignores at start-up, such as the
leftovers of a power loss) and notes. The exit code is 0 when there is no
error and 3 when there is one.

An encrypted image needs its keys (--keys or --hmac-key); keys that do not
decrypt it are an error finding (wrong-key).

With --json the output is
  {"image","findings":[{"severity","kind","page","entry","detail"}],
   "errors","warnings","notes"}
where page and entry are null for findings about the whole image or page.`,
		Example: `  $ usmp-psk nvs check nvs.bin
  $ usmp-psk nvs check read-off-device.bin --keys keys/nvs_keys.bin --json
  $ usmp-psk nvs check readonly.bin --size 0x2000`,
		Args: exactArgs(1, "IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			if err := opts.keys.validate(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runNVSCheck(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the findings as JSON")
	addKeySourceFlags(cmd, &opts.keys)
	opts.size.add(cmd, func(name string) string { return settingBy(f, name) })
	return cmd
}

type checkFinding struct {
	Severity string `json:"severity"`
	Kind     string `json:"kind"`
	Page     *int   `json:"page"`
	Entry    *int   `json:"entry"`
	Detail   string `json:"detail"`
}

type checkOutput struct {
	Image    string         `json:"image"`
	Findings []checkFinding `json:"findings"`
	Errors   int            `json:"errors"`
	Warnings int            `json:"warnings"`
	Notes    int            `json:"notes"`
}

func (o *checkOutput) add(sev nvs.Severity, kind string, page, entry int, detail string) {
	cf := checkFinding{Severity: sev.String(), Kind: kind, Detail: safeText(detail)}
	if page >= 0 {
		cf.Page = &page
	}
	if entry >= 0 {
		cf.Entry = &entry
	}
	o.Findings = append(o.Findings, cf)
	switch sev {
	case nvs.SeverityError:
		o.Errors++
	case nvs.SeverityWarning:
		o.Warnings++
	default:
		o.Notes++
	}
}

func runNVSCheck(ctx context.Context, opts *nvsCheckOptions) error {
	out := checkOutput{Image: opts.image, Findings: []checkFinding{}}
	partSize, source, err := opts.size.partitionSize(ctx, opts.image)
	if err != nil {
		return err
	}
	note := ""
	l, err := loadNVSImage(ctx, opts.ReadKeyFile, opts.image, &opts.keys)
	var wk *wrongKeyError
	switch {
	case errors.As(err, &wk):
		out.add(nvs.SeverityError, "wrong-key", -1, -1, fmt.Sprintf("%v (keys kcv %s)", wk.err, wk.kcv))
	case err != nil:
		return err
	default:
		defer l.wipe()
		fds := nvs.CheckImage(l.plain, nvs.CheckOptions{PartitionSize: partSize})
		for _, fd := range fds {
			out.add(fd.Severity, string(fd.Kind), fd.Page, fd.Entry, fd.Detail)
		}
		note = sizeNote(fds, source)
		if l.looksEncrypted() {
			opts.IO.Warnf("%s", encryptedHint(opts.image))
		}
	}
	if opts.json {
		if err := printJSON(opts.IO, out); err != nil {
			return err
		}
	} else if len(out.Findings) > 0 {
		if err := printFindings(opts.IO, out.Findings); err != nil {
			return err
		}
	}
	summary := fmt.Sprintf("%s: %s, %s, %s", opts.image, plural(out.Errors, "error"), plural(out.Warnings, "warning"), plural(out.Notes, "note"))
	if out.Errors > 0 {
		msg := summary + note
		if wk != nil {
			msg += "\nhint: check that " + wk.keysFile + " holds the keys this image was encrypted with"
		}
		return &mismatchError{msg: msg}
	}
	switch {
	case len(out.Findings) == 0:
		opts.IO.Infof("%s: no problems found", opts.image)
	case out.Warnings > 0:
		opts.IO.Infof("%s (the device repairs or ignores warnings at start-up)", summary)
	default:
		opts.IO.Infof("%s", summary)
	}
	return nil
}

// checkColumns are the columns of nvs check's findings.
var checkColumns = []column{{header: "SEVERITY"}, {header: "PAGE", cut: keepWhole}, {header: "ENTRY", cut: keepWhole}, {header: "KIND"}, {header: "DETAIL", cut: cutFirst}}

func printFindings(ios *IOStreams, findings []checkFinding) error {
	rows := make([][]string, 0, len(findings))
	for _, fd := range findings {
		page, entry := "-", "-"
		if fd.Page != nil {
			page = strconv.Itoa(*fd.Page)
		}
		if fd.Entry != nil {
			entry = strconv.Itoa(*fd.Entry)
		}
		rows = append(rows, []string{fd.Severity, page, entry, fd.Kind, fd.Detail})
	}
	return printTable(ios, ios.Out, checkColumns, rows)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// safeText escapes what could move a terminal's cursor in a text that names
// keys read from an untrusted image.
func safeText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == unicode.ReplacementChar:
			b.WriteString(`\ufffd`)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	return b.String()
}
