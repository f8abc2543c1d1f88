package cli

// Tables as gh prints them (issue 14 item 7): on a terminal, aligned
// columns that fit its width, cut with "…"; in a pipe or a file,
// tab-separated values, nothing cut, so that cut, awk and sort see every
// byte; --json is the format for programs. The header row is kept in both:
// nvs dump prints two tables, and `tail -n +2` drops it.
//
// Fitting never cuts what identifies a row or is compared by eye — ids,
// KCVs, offsets (columns marked keepWhole): it cuts free text, paths and
// dates first, then short values, widest column first, each down to a
// minimum. A table that cannot fit without cutting more than that is
// printed whole, for the terminal to wrap, rather than lose those.

import (
	"io"
	"strings"
	"unicode/utf8"

	"github.com/olekukonko/tablewriter/pkg/twwidth"
)

// defaultTerminalWidth is assumed when a terminal does not say its width.
const defaultTerminalWidth = 80

// minColumnWidth is the narrowest a cut column gets ("2026-11…"), unless
// its header is wider or the column says otherwise (column.min).
const minColumnWidth = 8

// tableGap is the space between columns.
const tableGap = 2

// cutOrder is how a column gives way when a table is too wide.
type cutOrder int

const (
	// cutLast: short values (kinds, states, sources, flags), cut only
	// when the cutFirst columns are at their minimum.
	cutLast cutOrder = iota
	// cutFirst: free text, paths and dates.
	cutFirst
	// keepWhole: never cut — ids, KCVs, offsets and sizes.
	keepWhole
)

// column is one column of a table: its header, and how it fits a terminal.
type column struct {
	header string
	cut    cutOrder
	// min is the narrowest a cut leaves the column (0: minColumnWidth),
	// as for nvs dump's VALUE, whose KCV cells must stay whole.
	min int
}

// headers returns the columns' headers.
func headers(cols []column) []string {
	h := make([]string, len(cols))
	for i, c := range cols {
		h[i] = c.header
	}
	return h
}

// printTable writes a table to w, which is standard output or part of it:
// fitted to the terminal when stdout is one, tab-separated otherwise.
func printTable(s *IOStreams, w io.Writer, cols []column, rows [][]string) error {
	if !s.IsStdoutTTY() {
		return writeTSV(w, headers(cols), rows)
	}
	return renderFitted(w, cols, rows, terminalWidth(s))
}

// terminalWidth is the terminal's width, or the usual 80 columns when it
// does not say.
func terminalWidth(s *IOStreams) int {
	if w := s.TerminalWidth(); w > 0 {
		return w
	}
	return defaultTerminalWidth
}

// renderFitted renders the table aligned, fitted to width columns.
func renderFitted(w io.Writer, cols []column, rows [][]string, width int) error {
	natural := make([]int, len(cols))
	measureRow(natural, headers(cols))
	for _, r := range rows {
		measureRow(natural, r)
	}
	l := fitColumns(cols, natural, width)
	var b strings.Builder
	b.WriteString(l.row(headers(cols)))
	for _, r := range rows {
		b.WriteString(l.row(r))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTSV writes the rows as tab-separated values. A tab or a newline in
// a cell (cellText quotes those from files already) is written as a space.
func writeTSV(w io.Writer, header []string, rows [][]string) error {
	var b strings.Builder
	for _, r := range append([][]string{header}, rows...) {
		b.WriteString(tsvRow(r))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var tsvClean = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")

// tsvRow is one row of tab-separated values, with its newline.
func tsvRow(r []string) string {
	var b strings.Builder
	for i, c := range r {
		if i > 0 {
			b.WriteByte('\t')
		}
		b.WriteString(tsvClean.Replace(c))
	}
	b.WriteByte('\n')
	return b.String()
}

// cellWidth is the width of a cell on a terminal, in columns.
func cellWidth(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf || s[i] < ' ' {
			return twwidth.WidthNoCache(s)
		}
	}
	return len(s)
}

// measureRow widens widths to the cells of r.
func measureRow(widths []int, r []string) {
	for i := 0; i < len(widths) && i < len(r); i++ {
		widths[i] = max(widths[i], cellWidth(r[i]))
	}
}

// tableLayout is the width of each column of a fitted table.
type tableLayout struct{ widths []int }

// fitColumns chooses the widths of columns whose widest cells (header
// included) are natural so that the table is at most width wide: the
// widest cutFirst column gives a character, then the next widest, down to
// their minimum; then the cutLast ones. A column is not cut below its
// header, and keepWhole columns not at all. When that is not enough the
// table keeps its natural widths: nothing is cut.
func fitColumns(cols []column, natural []int, width int) tableLayout {
	widths := append([]int(nil), natural...)
	total := tableGap * (len(widths) - 1)
	floor := make([]int, len(widths))
	least := total
	for i, c := range cols {
		total += widths[i]
		floor[i] = widths[i]
		if c.cut != keepWhole {
			m := c.min
			if m == 0 {
				m = minColumnWidth
			}
			floor[i] = min(widths[i], max(m, cellWidth(c.header)))
		}
		least += floor[i]
	}
	if total <= width || least > width {
		return tableLayout{widths}
	}
	for _, order := range []cutOrder{cutFirst, cutLast} {
		for total > width {
			j := -1
			for i, c := range cols {
				// the widest, the rightmost of equals: text is on the right
				if c.cut == order && widths[i] > floor[i] && (j < 0 || widths[i] >= widths[j]) {
					j = i
				}
			}
			if j < 0 {
				break
			}
			widths[j]--
			total--
		}
	}
	return tableLayout{widths}
}

// row is one row of the table, with its newline: cells cut to their
// column's width with "…", padded, two spaces apart, without trailing
// spaces.
func (l tableLayout) row(r []string) string {
	var line strings.Builder
	for i, c := range r {
		if i >= len(l.widths) {
			break
		}
		if i > 0 {
			line.WriteString(strings.Repeat(" ", tableGap))
		}
		c = cutCell(c, l.widths[i])
		line.WriteString(c)
		if i < len(r)-1 {
			line.WriteString(strings.Repeat(" ", max(0, l.widths[i]-cellWidth(c))))
		}
	}
	return strings.TrimRight(line.String(), " ") + "\n"
}

// cutCell cuts c to width columns, the last of them "…".
func cutCell(c string, width int) string {
	if cellWidth(c) <= width {
		return c
	}
	var out strings.Builder
	used := 0
	for _, r := range c {
		rw := cellWidth(string(r))
		if used+rw > width-1 {
			break
		}
		out.WriteRune(r)
		used += rw
	}
	return out.String() + "…"
}
