package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/golden"
)

// partitionCases are the tables of the partition show goldens.
var partitionCases = []string{
	"partitions_singleapp_encr_nvs.csv",
	"partitions_two_ota.bin",
	"custom_readonly_nvs.csv",
	"bad_md5.bin",
	"bad_overlap.bin",
}

func partitionWorkdir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(testdataAbs(t, "partitions"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		copyTestdata(t, dir, "partitions", e.Name())
	}
	return dir
}

func runPartitionCases(t *testing.T, extra ...string) []byte {
	t.Helper()
	dir := partitionWorkdir(t)
	var all bytes.Buffer
	for _, c := range partitionCases {
		args := append([]string{"partition", "show", c}, extra...)
		code, out, errOut := runOn(t, wideTerminal, dir, args...)
		fmt.Fprintf(&all, "$ usmp-psk %s\n# exit %d\n%s", strings.Join(args, " "), code, out)
		for _, l := range strings.SplitAfter(errOut, "\n") {
			if l != "" {
				all.WriteString("# stderr: " + l)
			}
		}
		all.WriteString("\n")
	}
	return all.Bytes()
}

// TestPartitionShowTable is the golden of the table (issue 6 item 1); bad
// tables exit 2 with the table's error.
func TestPartitionShowTable(t *testing.T) { golden.Check(t, testdataDir, runPartitionCases(t)) }

// TestPartitionShowJSON is the golden of --json.
func TestPartitionShowJSON(t *testing.T) {
	golden.Check(t, testdataDir, runPartitionCases(t, "--json"))
}

// TestPartitionShowJSONMatchesReference: the partitions of --json equal
// those of gen_esp32part's tables (testdata/partitions/*.expected.json),
// with integer fields, and the output has exactly one key, "partitions".
func TestPartitionShowJSONMatchesReference(t *testing.T) {
	dir := partitionWorkdir(t)
	for _, name := range []string{"partitions_singleapp_encr_nvs", "partitions_two_ota"} {
		exp, err := os.ReadFile(filepath.Join(dir, name+".expected.json"))
		if err != nil {
			t.Fatal(err)
		}
		table := name + ".csv"
		if _, err := os.Stat(filepath.Join(dir, table)); err != nil {
			table = name + ".bin"
		}
		code, out, errOut := runNVS(t, dir, "partition", "show", table, "--json")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", table, code, errOut)
		}
		var got map[string][]map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
			t.Fatalf("%s: %v, keys %d:\n%s", table, err, len(got), out)
		}
		var want struct{ Partitions []map[string]any }
		if err := json.Unmarshal(exp, &want); err != nil {
			t.Fatal(err)
		}
		if len(got["partitions"]) != len(want.Partitions) {
			t.Fatalf("%s: %d partitions, want %d", table, len(got["partitions"]), len(want.Partitions))
		}
		for i, w := range want.Partitions {
			g := got["partitions"][i]
			for k, v := range w {
				if g[k] != v {
					t.Errorf("%s partition %d %s: %v, want %v", table, i, k, g[k], v)
				}
			}
			if g["type_name"] == "" || g["subtype_name"] == "" {
				t.Errorf("%s partition %d: no type or subtype name", table, i)
			}
		}
	}
}

// TestPartitionShowFlagParsing captures the options through runF (house
// style §20) and checks the usage errors.
func TestPartitionShowFlagParsing(t *testing.T) {
	var got *partitionShowOptions
	build := func(f *Factory, _ *rootOptions) *cobra.Command {
		return newPartitionShowCmd(f, func(o *partitionShowOptions) error { got = o; return nil })
	}
	if code := withRunF(t, []string{"partition", "show"}, build, "partition", "show", "t.csv", "--json"); code != 0 || got.table != "t.csv" || !got.json {
		t.Fatalf("exit %d, options %+v", code, got)
	}
	for _, bad := range [][]string{{}, {"a.csv", "b.csv"}, {"a.csv", "--jsn"}} {
		got = nil
		if code := withRunF(t, []string{"partition", "show"}, build, append([]string{"partition", "show"}, bad...)...); code != exitUsage || got != nil {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	// A missing or unreadable table is bad input too.
	if code, _, errOut := runNVS(t, t.TempDir(), "partition", "show", "missing.csv"); code != exitUsage || !strings.Contains(errOut, "missing.csv") {
		t.Errorf("missing table: exit %d: %s", code, errOut)
	}
}

// TestPartitionShowNoPartitions: an empty file, a CSV of only comments and
// an erased table region (0xC00 bytes of 0xFF) are not tables: exit 2 with
// the file named, nothing on stdout (issue 13 item 8: an empty file showed
// an empty table with exit 0).
func TestPartitionShowNoPartitions(t *testing.T) {
	erased := bytes.Repeat([]byte{0xff}, 0xC00)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty file", nil, "t.bin: empty file (0 bytes); not a partition table"},
		{"comments only", []byte("# Name, Type, SubType, Offset, Size, Flags\n\n"), "t.bin: holds no partitions"},
		{"erased flash", erased, "t.bin: holds no partitions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "t.bin"), tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"partition", "show", "t.bin"}, {"partition", "show", "t.bin", "--json"}} {
				code, out, errOut := runNVS(t, dir, args...)
				if code != exitUsage || out != "" || !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "hint: TABLE is") {
					t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", args, code, out, errOut, tt.want)
				}
			}
		})
	}
}
