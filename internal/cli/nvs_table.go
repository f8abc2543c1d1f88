package cli

// The cells of the tables of nvs dump, nvs check and partition show: names
// read from files, shown safely (the tables themselves are table.go's).

import (
	"strconv"
	"unicode"
)

// cellText makes a name read from a file safe to show in a table: names of
// printable characters without spaces are shown as they are, anything else
// quoted, so a hostile image or table cannot move the terminal's cursor or
// misalign the columns.
func cellText(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '"' {
			return strconv.Quote(s)
		}
	}
	return s
}
