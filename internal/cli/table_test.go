package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/usmp/usmp-psk/internal/golden"
)

// stdoutSpec is what stdout is in a test run: a pipe, or a terminal of a
// given width (issue 14 item 7: tables depend on it).
type stdoutSpec struct {
	tty   bool
	width int
}

var (
	// wideTerminal keeps the goldens of tables aligned and uncut.
	wideTerminal = stdoutSpec{tty: true, width: 10000}
	pipe         = stdoutSpec{}
)

func (s stdoutSpec) apply(f *Factory) {
	f.IO.SetStdoutTTY(s.tty)
	f.IO.SetTerminalWidth(s.width)
}

// runOn runs one command line with stdout as spec says.
func runOn(t testing.TB, spec stdoutSpec, dir string, args ...string) (int, string, string) {
	t.Helper()
	f, _, out, errOut := testFactory(t, "")
	spec.apply(f)
	code := runCLI(t, f, dir, args...)
	return code, out.String(), errOut.String()
}

// TestFitColumns: free text is cut first, widest column first, then short
// values; ids and KCVs never; a table that cannot fit without cutting
// more is left whole.
func TestFitColumns(t *testing.T) {
	cols := []column{{header: "ID", cut: keepWhole}, {header: "KIND"}, {header: "KCV", cut: keepWhole}, {header: "REASON", cut: cutFirst}}
	rows := [][]string{
		{"device-id-1", "header-crc-mismatch", "6b24a2b1", "flash read out at the customer site"},
		{"dev-a", "random", "0badf00d", "lost"},
	}
	whole := "device-id-1  header-crc-mismatch  6b24a2b1  flash read out at the customer site"
	tests := []struct {
		width int
		want  string // the first row after fitting
	}{
		{200, whole},
		{79, whole},
		// free text first…
		{70, "device-id-1  header-crc-mismatch  6b24a2b1  flash read out at the cus…"},
		{52, "device-id-1  header-crc-mismatch  6b24a2b1  flash r…"},
		// …down to 8, then the short values, down to 8
		{50, "device-id-1  header-crc-misma…  6b24a2b1  flash r…"},
		{41, "device-id-1  header-…  6b24a2b1  flash r…"},
		// no more to cut (ids and KCVs stay whole): whole rows, for the
		// terminal to wrap
		{40, whole},
		{5, whole},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.width), func(t *testing.T) {
			var b bytes.Buffer
			if err := renderFitted(&b, cols, rows, tt.width); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
			if lines[1] != tt.want {
				t.Fatalf("got  %q\nwant %q", lines[1], tt.want)
			}
			for _, l := range lines {
				if n := utf8.RuneCountInString(l); n > tt.width && strings.Contains(b.String(), "…") {
					t.Errorf("line %q is %d wide, more than %d", l, n, tt.width)
				}
			}
		})
	}
}

// planWorkdir is a directory with ids.txt, ids of a batch plan.
func planWorkdir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ids := "24:6F:28:AA\ndevice-id-1\nfactory-line-2-device-000123\n"
	if err := os.WriteFile(filepath.Join(dir, "ids.txt"), []byte(ids), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTablesInAPipe is the golden of the tables in a pipe: tab-separated,
// nothing cut (issue 14 item 7).
func TestTablesInAPipe(t *testing.T) {
	var all bytes.Buffer
	all.Write(registryTranscriptOn(t, pipe, []string{"registry", "list"}, []string{"registry", "show", "device-id-1"}))
	dir := partitionWorkdir(t)
	for _, args := range [][]string{{"partition", "show", partitionCases[0]}} {
		code, out, _ := runOn(t, pipe, dir, args...)
		fmt.Fprintf(&all, "$ usmp-psk %s\n# exit %d\n%s", strings.Join(args, " "), code, out)
	}
	args := []string{"batch", "--ids", "ids.txt", "--out", "dry", "--dry-run", "--encrypt-per-device"}
	code, out, _ := runOn(t, pipe, planWorkdir(t), args...)
	fmt.Fprintf(&all, "$ usmp-psk %s\n# exit %d\n%s", strings.Join(args, " "), code, out)
	if strings.Contains(all.String(), "…") || !strings.Contains(all.String(), "ID\tSOURCE\tEPOCH") {
		t.Errorf("not tab-separated, or cut:\n%s", all.String())
	}
	golden.Check(t, testdataDir, all.Bytes())
}

// cutKCV is a KCV or a hex value cut short, which a table must not show.
var cutKCV = regexp.MustCompile(`(^|\s)(kcv )?[0-9a-f]+…`)

// TestTablesFitTheTerminal is the golden of the tables on terminals 40 to
// 80 columns wide (issue 14 item 7): free text, paths and dates are cut
// first; ids, KCVs and offsets never; a table that cannot fit without
// cutting those is printed whole.
func TestTablesFitTheTerminal(t *testing.T) {
	for _, width := range []int{40, 50, 60, 80} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			term := stdoutSpec{tty: true, width: width}
			var all bytes.Buffer
			// each command's output, in paragraphs: one table each
			var tables []string
			for _, args := range [][]string{{"registry", "list"}, {"registry", "show", "device-id-1"}} {
				out := registryTranscriptOn(t, term, args)
				all.Write(out)
				tables = append(tables, strings.Split(string(out), "\n\n")...)
			}
			transcript := func(dir string, args ...string) {
				code, out, _ := runOn(t, term, dir, args...)
				fmt.Fprintf(&all, "$ usmp-psk %s\n# exit %d\n%s", strings.Join(args, " "), code, out)
				tables = append(tables, strings.Split(out, "\n\n")...)
			}
			transcript(partitionWorkdir(t), "partition", "show", partitionCases[0])
			nvsDir := nvsWorkdir(t)
			transcript(nvsDir, "nvs", "dump", "usmp_psk.bin")
			transcript(nvsDir, "nvs", "check", "corrupt_data_bitflip.bin")
			transcript(planWorkdir(t), "batch", "--ids", "ids.txt", "--out", "dry", "--dry-run", "--encrypt-per-device")
			for _, table := range tables {
				cut := strings.Contains(table, "…")
				for _, l := range strings.Split(table, "\n") {
					if cut && !strings.HasPrefix(l, "$ ") && utf8.RuneCountInString(l) > width {
						t.Errorf("a cut table is wider than the terminal: %q", l)
					}
					if cutKCV.MatchString(l) {
						t.Errorf("a KCV is cut: %q", l)
					}
				}
			}
			golden.Check(t, testdataDir, all.Bytes())
		})
	}
}
