package provision

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/usmp/usmp-psk/internal/psk"
)

// IDList is the ordered list of a batch's device ids.
type IDList interface {
	Len() int
	ID(i int) string
}

// CountIDs are P followed by the numbers Start … Start+Count−1, zero-padded
// to the width of the largest (issue #7: --count 2000 --prefix fac- gives
// fac-0001 … fac-2000). They are computed, not stored.
type CountIDs struct {
	Prefix string
	Start  int
	Count  int
	width  int
}

// NewCountIDs validates the prefix, start and count: every id must be a
// valid device id (design §3).
func NewCountIDs(prefix string, start, count int) (*CountIDs, error) {
	if count < 1 {
		return nil, &psk.InputError{Source: "--count", Msg: "must be at least 1"}
	}
	if start < 0 {
		return nil, &psk.InputError{Source: "--start", Msg: "must not be negative"}
	}
	if start > 1<<40 || count > 1<<30 {
		return nil, &psk.InputError{Source: "--count", Msg: "too large"}
	}
	c := &CountIDs{Prefix: prefix, Start: start, Count: count}
	c.width = len(strconv.Itoa(start + count - 1))
	// The shortest and the longest id decide validity: the characters are
	// the prefix's and digits.
	for _, id := range []string{c.ID(0), c.ID(count - 1)} {
		if err := psk.ValidateDeviceID(id); err != nil {
			return nil, &psk.InputError{Source: "--prefix", Msg: fmt.Sprintf("gives invalid device ids: %v", err)}
		}
	}
	return c, nil
}

// Len implements IDList.
func (c *CountIDs) Len() int { return c.Count }

// ID implements IDList.
func (c *CountIDs) ID(i int) string {
	n := strconv.Itoa(c.Start + i)
	if pad := c.width - len(n); pad > 0 {
		n = strings.Repeat("0", pad) + n
	}
	return c.Prefix + n
}

// ListIDs is an explicit list of ids.
type ListIDs []string

// Len implements IDList.
func (l ListIDs) Len() int { return len(l) }

// ID implements IDList.
func (l ListIDs) ID(i int) string { return l[i] }

// IDError reports a bad line of an ids file.
type IDError struct {
	File string
	Line int
	Msg  string
}

func (e *IDError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// BadInput marks the error as the user's to fix (exit code 2).
func (e *IDError) BadInput() bool { return true }

// ReadIDs reads an ids file: one id per line, or a CSV whose header has an
// "id" column. Blank lines and lines starting with # are skipped. Every id
// is validated and duplicates are refused, naming the file and line, before
// anything is written (issue #7).
func ReadIDs(r io.Reader, name string) (ListIDs, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var ids ListIDs
	seen := map[string]int{}
	col, ncols := -1, 0
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if col == -1 && len(ids) == 0 && (strings.Contains(text, ",") || strings.EqualFold(text, "id")) {
			// A CSV: the first row is the header and names the id column.
			fields := splitCSVLine(text)
			for i, h := range fields {
				if strings.EqualFold(strings.TrimSpace(h), "id") {
					col = i
				}
			}
			if col == -1 {
				return nil, &IDError{File: name, Line: line, Msg: "a CSV ids file needs an \"id\" column in its header"}
			}
			ncols = len(fields)
			continue
		}
		id := text
		if col >= 0 {
			fields := splitCSVLine(text)
			if len(fields) != ncols {
				return nil, &IDError{File: name, Line: line, Msg: fmt.Sprintf("%d fields, the header has %d", len(fields), ncols)}
			}
			id = strings.TrimSpace(fields[col])
		}
		if err := psk.ValidateDeviceID(id); err != nil {
			return nil, &IDError{File: name, Line: line, Msg: err.Error()}
		}
		if prev, dup := seen[id]; dup {
			return nil, &IDError{File: name, Line: line, Msg: fmt.Sprintf("device %s is listed twice (first on line %d)", id, prev)}
		}
		seen[id] = line
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, &IDError{File: name, Line: line + 1, Msg: "cannot read: " + err.Error()}
	}
	if len(ids) == 0 {
		return nil, &IDError{File: name, Line: line, Msg: "no device ids"}
	}
	return ids, nil
}

// splitCSVLine splits one CSV line, honouring double quotes.
func splitCSVLine(s string) []string {
	var out []string
	var b bytes.Buffer
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' && quoted && i+1 < len(s) && s[i+1] == '"':
			b.WriteByte('"')
			i++
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			out = append(out, b.String())
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	return append(out, b.String())
}

// Shard is the part I of N of a batch: positions p with p mod N == I−1.
type Shard struct{ I, N int }

// ParseShard reads "I/N" (1 ≤ I ≤ N).
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return Shard{}, &psk.InputError{Source: "--shard", Msg: "want I/N with 1 ≤ I ≤ N, like 2/4"}
	}
	return Shard{I: i, N: n}, nil
}

// Positions returns the batch positions of the shard, in order.
func (s Shard) Positions(total int) []int {
	out := make([]int, 0, s.Count(total))
	for p := s.first(); p < total; p += s.step() {
		out = append(out, p)
	}
	return out
}

// Count is the number of positions of the shard, len(Positions(total)),
// without making them.
func (s Shard) Count(total int) int {
	if total <= s.first() {
		return 0
	}
	return (total - s.first() + s.step() - 1) / s.step()
}

// first and step walk the shard's positions; the zero Shard is all of
// the batch.
func (s Shard) first() int {
	if s.N <= 1 {
		return 0
	}
	return s.I - 1
}

func (s Shard) step() int { return max(s.N, 1) }
