package cli

// Tables as gh prints them (issue 14 item 7): on a terminal, aligned
// columns that fit its width, the widest column cut with "…"; in a pipe or
// a file, tab-separated values, nothing cut, so that cut, awk and sort see
// every byte; --json is the format for programs. The header row is kept in
// both: nvs dump prints two tables, and `tail -n +2` drops it.

import (
	"io"
	"strings"
	"unicode/utf8"
)

// defaultTerminalWidth is assumed when a terminal does not say its width.
const defaultTerminalWidth = 80

// minColumnWidth is the narrowest a cut column gets ("2026-11…").
const minColumnWidth = 8

// printTable writes a table to w, which is standard output or part of it:
// fitted to the terminal when stdout is one, tab-separated otherwise.
func printTable(s *IOStreams, w io.Writer, header []string, rows [][]string) error {
	if !s.IsStdoutTTY() {
		return writeTSV(w, header, rows)
	}
	return renderFitted(w, header, rows, terminalWidth(s))
}

// terminalWidth is the terminal's width, or the usual 80 columns when it
// does not say.
func terminalWidth(s *IOStreams) int {
	if w := s.TerminalWidth(); w > 0 {
		return w
	}
	return defaultTerminalWidth
}

// renderFitted renders the table aligned, cut to width columns.
func renderFitted(w io.Writer, header []string, rows [][]string, width int) error {
	h, r := fitTable(header, rows, width)
	return renderTable(w, h, r)
}

// writeTSV writes the rows as tab-separated values. A tab or a newline in
// a cell (cellText quotes those from files already) is written as a space.
func writeTSV(w io.Writer, header []string, rows [][]string) error {
	clean := strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")
	var b strings.Builder
	for _, r := range append([][]string{header}, rows...) {
		for i, c := range r {
			if i > 0 {
				b.WriteByte('\t')
			}
			b.WriteString(clean.Replace(c))
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// tableGap is the space between columns (renderTable's).
const tableGap = 2

// fitTable cuts the widest column so that the table is at most width wide,
// as gh cuts a list's title column: a cut cell ends with "…". The column
// keeps at least minColumnWidth characters (or its header's width); what
// is still too wide then is left to the terminal to wrap, rather than cut
// every column into fragments — the KCVs a person compares stay whole
// unless they are the widest. It returns copies.
func fitTable(header []string, rows [][]string, width int) ([]string, [][]string) {
	n := len(header)
	widths := make([]int, n)
	for _, r := range append([][]string{header}, rows...) {
		for i := 0; i < n && i < len(r); i++ {
			widths[i] = max(widths[i], utf8.RuneCountInString(r[i]))
		}
	}
	total := tableGap * (n - 1)
	widest := 0
	for i, w := range widths {
		total += w
		if w > widths[widest] {
			widest = i
		}
	}
	if excess := total - width; excess > 0 && n > 0 {
		floor := min(widths[widest], max(minColumnWidth, utf8.RuneCountInString(header[widest])))
		widths[widest] = max(widths[widest]-excess, floor)
	}
	cut := func(r []string) []string {
		out := make([]string, len(r))
		for i, c := range r {
			out[i] = c
			if i < n && utf8.RuneCountInString(c) > widths[i] {
				out[i] = string([]rune(c)[:widths[i]-1]) + "…"
			}
		}
		return out
	}
	h := cut(header)
	rs := make([][]string, len(rows))
	for i, r := range rows {
		rs[i] = cut(r)
	}
	return h, rs
}
