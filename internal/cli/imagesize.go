package cli

// The size an image read by verify or nvs check must have: an image shorter
// than its partition was cut short (a batch killed mid-write, a full disk)
// and must not pass as whole (issue 13 item 3).

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/provision"
)

// partitionSizeFlags name the partition an image is for.
type partitionSizeFlags struct {
	size           string
	partitionTable string
	partitionName  string
	// by names what set a flag, for messages (settingBy): "--size" when
	// typed, "size from $USMP_PSK_SIZE" otherwise; nil: the flag.
	by func(name string) string
}

func (fl *partitionSizeFlags) add(cmd *cobra.Command, by func(name string) string) {
	fl.by = by
	cmd.Flags().StringVar(&fl.size, "size", "", "`SIZE` of the image's partition (decimal, 0x, 0o or 0b); a shorter image was cut short")
	cmd.Flags().StringVar(&fl.partitionTable, "partition-table", "", "take the partition's size from this `TABLE` (CSV or binary)")
	cmd.Flags().StringVar(&fl.partitionName, "partition", provision.DefaultPartition, "partition `NAME` in --partition-table")
	cmd.MarkFlagsMutuallyExclusive("size", "partition-table")
}

// partitionSize returns the size of the partition image is for, and where
// that comes from: --size, --partition-table, or else the manifest.json of
// the batch that wrote image (in the same directory, listing it). 0 and ""
// when nothing says.
func (fl *partitionSizeFlags) partitionSize(ctx context.Context, image string) (int, string, error) {
	switch {
	case fl.size != "":
		what := "--size"
		if fl.by != nil {
			what = fl.by("size")
		}
		n, err := parseSize(what, fl.size)
		return n, what, err
	case fl.partitionTable != "":
		p, err := findPartition(ctx, fl.partitionTable, fl.partitionName)
		if err != nil {
			return 0, "", err
		}
		return int(p.Size), "partition " + p.Name + " of " + fl.partitionTable, nil
	}
	manifest := filepath.Join(filepath.Dir(image), "manifest.json")
	if n := manifestSize(manifest, filepath.Base(image)); n > 0 {
		return n, manifest, nil
	}
	return 0, "", nil
}

// maxManifest bounds what is read of a batch manifest (about 150 bytes a
// device: a million devices).
const maxManifest = 256 << 20

// manifestSize returns the image size a batch manifest (design §5) gives
// for the image named name, or 0 when path is no readable batch manifest or
// does not list the image. Anything else named manifest.json is none of
// our business: it is ignored without a word.
func manifestSize(path, name string) int {
	// A FIFO (or a device) is no manifest, and opening one could wait for
	// ever for a writer (issue 13 item 6).
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return 0
	}
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var m struct {
		Version int `json:"version"`
		Size    int `json:"size"`
		Devices []struct {
			Image string `json:"image"`
		} `json:"devices"`
	}
	if err := json.NewDecoder(io.LimitReader(f, maxManifest)).Decode(&m); err != nil || m.Version != 1 || m.Size <= 0 {
		return 0
	}
	for _, d := range m.Devices {
		if d.Image == name {
			return m.Size
		}
	}
	return 0
}

// imageLengthError returns the length problems of an image (nvs.CheckSize)
// as one message naming its length and its partition's size, or "" for a
// possible length.
func imageLengthError(length, partition int, source string) string {
	var msgs []string
	for _, fd := range nvs.CheckSize(length, partition) {
		if fd.Severity == nvs.SeverityError {
			msgs = append(msgs, fd.Detail)
		}
	}
	if len(msgs) == 0 {
		return ""
	}
	return strings.Join(msgs, "; ") + sizeNote(nvs.CheckSize(length, partition), source)
}

// sizeNote says, for findings about an image's length, where the partition
// size came from, and for whole pages too few for a read-write partition
// how to check an image of a read-only one.
func sizeNote(findings []nvs.Finding, source string) string {
	sizeErr, tooFew := false, false
	for _, fd := range findings {
		if fd.Severity == nvs.SeverityError {
			sizeErr = sizeErr || fd.Kind == nvs.KindSize
			tooFew = tooFew || fd.Kind == nvs.KindTooFewPages
		}
	}
	switch {
	case sizeErr && source != "":
		return " (partition size from " + source + ")"
	case tooFew && !sizeErr:
		return "\nhint: an image of a read-only partition (0x1000 or 0x2000 bytes) is checked with its size: --size 0x2000, or --partition-table TABLE"
	}
	return ""
}
