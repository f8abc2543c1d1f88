package partition

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// nvsMinReadWriteSize is the smallest NVS partition ESP-IDF can write to;
// smaller ones must be flagged readonly.
const nvsMinReadWriteSize = 0x3000

// otadataSize is the required size of the data/ota and data/tee_ota
// partitions.
const otadataSize = 0x2000

// Validate checks the table with the default options, as gen_esp32part's
// verify step does. See Options.Validate.
func (t Table) Validate() error {
	return Options{}.Validate(t)
}

// Validate checks t as gen_esp32part's verify step does: offsets aligned
// (0x10000 for app partitions, 0x1000 for the others), app sizes aligned to
// 0x1000, unique names, no partition below the table's sector or
// overlapping another, at most one otadata and one tee_ota partition of
// 0x2000 bytes each, read/write NVS partitions of at least 0x3000 bytes,
// otadata and coredump never readonly. It also refuses what the generator
// would write wrongly: empty names or names longer than 16 bytes, type or
// subtype 0xff (ESP-IDF's "any"), partitions ending past 4 GiB and more
// than MaxPartitions partitions. The error is an *Error.
func (o Options) Validate(t Table) error {
	return o.validate(t.Partitions, nil, "")
}

// validate checks parts; lines, when not nil, holds each partition's CSV
// line so that errors point at it.
func (o Options) validate(parts []Partition, lines []int, file string) error {
	at := func(i int, field string, kind error, format string, args ...any) error {
		e := newError(kind, format, args...)
		e.File = file
		if lines != nil && i >= 0 {
			e.Line, e.Field = lines[i], field
		}
		return e
	}

	for i, p := range parts {
		switch {
		case p.Name == "":
			return at(i, "name", nil, "partition name is empty")
		case len(p.Name) > MaxNameLength:
			return at(i, "name", nil, "partition name %q is %d bytes long; at most %d fit", p.Name, len(p.Name), MaxNameLength)
		case strings.IndexByte(p.Name, 0) >= 0 || !utf8.ValidString(p.Name):
			return at(i, "name", nil, "partition name %q is not NUL-free UTF-8 text", p.Name)
		}
		if p.Type == 0xff {
			return at(i, "type", nil, "partition %q: type 0xff is reserved (it means any type)", p.Name)
		}
		if p.Subtype == 0xff {
			return at(i, "subtype", nil, "partition %q: subtype 0xff is reserved (it means any subtype)", p.Name)
		}
		if align := offsetAlignment(p.Type); p.Offset%align != 0 {
			return at(i, "offset", ErrAlignment, "partition %q: offset 0x%x is not aligned to 0x%x", p.Name, p.Offset, align)
		}
		if p.Type == TypeApp && p.Size%0x1000 != 0 {
			return at(i, "size", ErrAlignment, "partition %q: app size 0x%x is not aligned to 0x1000", p.Name, p.Size)
		}
		if p.End() > 1<<32 {
			return at(i, "size", nil, "partition %q: 0x%x+0x%x ends beyond 4 GiB", p.Name, p.Offset, p.Size)
		}
		if p.Type == TypeData && (p.Subtype == SubtypeDataOTA || p.Subtype == SubtypeDataCoredump) && p.Readonly() {
			return at(i, "flags", nil, "partition %q: a data/%s partition is always read-write and cannot be readonly",
				p.Name, p.SubtypeName())
		}
		if p.Type == TypeData && p.Subtype == SubtypeDataNVS && p.Size < nvsMinReadWriteSize && !p.Readonly() {
			return at(i, "size", nil, "partition %q: an NVS partition of 0x%x bytes must be flagged readonly (read/write NVS needs at least 0x%x)",
				p.Name, p.Size, nvsMinReadWriteSize)
		}
	}

	seen := make(map[string]int, len(parts))
	for i, p := range parts {
		if j, ok := seen[p.Name]; ok {
			return at(i, "name", ErrDuplicateName, "partition name %q is used twice (%s)", p.Name, where(j, i, lines))
		}
		seen[p.Name] = i
	}

	// Sort by offset, keeping table order for equal offsets as Python's
	// sorted does, and compare each partition with the one before it.
	order := make([]int, len(parts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(parts[a].Offset, parts[b].Offset)
	})
	tableEnd := uint64(o.tableOffset()) + TableSize
	last := -1
	for _, i := range order {
		p := parts[i]
		if uint64(p.Offset) < tableEnd && !placedByOptions(p) {
			return at(i, "offset", ErrBelowTable, "partition %q at 0x%x is below the end of the partition table (0x%x)",
				p.Name, p.Offset, tableEnd)
		}
		if last >= 0 {
			if q := parts[last]; uint64(p.Offset) < q.End() {
				return at(i, "offset", ErrOverlap, "partition %q at 0x%x overlaps %q at 0x%x-0x%x",
					p.Name, p.Offset, q.Name, q.Offset, q.End()-1)
			}
		}
		last = i
	}

	for _, ota := range []struct {
		subtype uint8
		what    string
	}{{SubtypeDataOTA, "otadata (data/ota)"}, {SubtypeDataTEEOTA, "TEE otadata (data/tee_ota)"}} {
		first := -1
		for i, p := range parts {
			if p.Type != TypeData || p.Subtype != ota.subtype {
				continue
			}
			if first >= 0 {
				return at(i, "subtype", nil, "more than one %s partition: %q and %q", ota.what, parts[first].Name, p.Name)
			}
			first = i
			if p.Size != otadataSize {
				return at(i, "size", nil, "%s partition %q must be 0x%x bytes, not 0x%x", ota.what, p.Name, otadataSize, p.Size)
			}
		}
	}

	if len(parts) > MaxPartitions {
		return at(-1, "", nil, "%d partitions; a table holds at most %d", len(parts), MaxPartitions)
	}
	return nil
}

// where names two entries for a message: CSV lines when known, else table
// entries (0-based, as ESP-IDF counts them).
func where(a, b int, lines []int) string {
	if lines != nil {
		return "lines " + strconv.Itoa(lines[a]) + " and " + strconv.Itoa(lines[b])
	}
	return "entries " + strconv.Itoa(a) + " and " + strconv.Itoa(b)
}

// placedByOptions reports whether p is a primary bootloader or primary
// partition table entry, which sit below the table by design.
func placedByOptions(p Partition) bool {
	return (p.Type == TypeBootloader && p.Subtype == SubtypeBootloaderPrimary) ||
		(p.Type == TypePartitionTable && p.Subtype == SubtypePartitionTablePrimary)
}
