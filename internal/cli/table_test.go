package cli

import (
	"bytes"
	"fmt"
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

// TestFitTable: the widest column is cut, with "…", so that the table fits;
// nothing is cut when it fits already.
func TestFitTable(t *testing.T) {
	header := []string{"ID", "SOURCE", "REASON"}
	rows := [][]string{
		{"device-id-1", "derived", "flash read out at the customer site"},
		{"dev-a", "random", "lost"},
	}
	tests := []struct {
		width int
		want  []string // the first row after fitting
	}{
		{200, []string{"device-id-1", "derived", "flash read out at the customer site"}},
		{40, []string{"device-id-1", "derived", "flash read out at…"}},
		{30, []string{"device-id-1", "derived", "flash r…"}},
		// only the widest column is cut, and not below 8 characters
		{5, []string{"device-id-1", "derived", "flash r…"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.width), func(t *testing.T) {
			h, r := fitTable(header, rows, tt.width)
			if strings.Join(r[0], "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q, want %q", r[0], tt.want)
			}
			if len(h) != len(header) || rows[0][2] != "flash read out at the customer site" {
				t.Fatal("fitTable changed its input")
			}
			var b bytes.Buffer
			if err := renderTable(&b, h, r); err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
				if n := utf8.RuneCountInString(l); n > tt.width && tt.width >= 30 {
					t.Errorf("line %q is %d wide, more than %d", l, n, tt.width)
				}
			}
		})
	}
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
	if strings.Contains(all.String(), "…") || !strings.Contains(all.String(), "ID\tSOURCE\tEPOCH") {
		t.Errorf("not tab-separated, or cut:\n%s", all.String())
	}
	golden.Check(t, testdataDir, all.Bytes())
}

// TestTablesFitTheTerminal is the golden of the same tables on a terminal
// 60 columns wide: the widest column is cut with "…".
func TestTablesFitTheTerminal(t *testing.T) {
	narrow := stdoutSpec{tty: true, width: 60}
	var all bytes.Buffer
	all.Write(registryTranscriptOn(t, narrow, []string{"registry", "list"}, []string{"registry", "show", "device-id-1"}))
	dir := partitionWorkdir(t)
	code, out, _ := runOn(t, narrow, dir, "partition", "show", partitionCases[0])
	fmt.Fprintf(&all, "$ usmp-psk partition show %s\n# exit %d\n%s", partitionCases[0], code, out)
	for _, l := range strings.Split(all.String(), "\n") {
		if !strings.HasPrefix(l, "$ ") && utf8.RuneCountInString(l) > 60 {
			t.Errorf("line wider than the terminal: %q", l)
		}
	}
	golden.Check(t, testdataDir, all.Bytes())
}
