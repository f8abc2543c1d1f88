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

// validate checks parts as gen_esp32part's verify step does: offsets aligned
// (0x10000 for app partitions, 0x1000 for the others), app sizes aligned to
// 0x1000, unique names, no partition below the table's sector or
// overlapping another, at most one otadata and one tee_ota partition of
// 0x2000 bytes each, read/write NVS partitions of at least 0x3000 bytes,
// otadata and coredump never readonly. It also refuses what the generator
// would write wrongly: empty names or names longer than 16 bytes, type or
// subtype 0xff (ESP-IDF's "any"), partitions ending past 4 GiB and more
// than MaxPartitions partitions. The error is an *Error. lines, when not
// nil, holds each partition's CSV line so that errors point at it.
func (o Options) validate(parts []Partition, lines []int, file string) error {
	c := tableCheck{parts: parts, lines: lines, file: file}
	if err := c.eachPartition(); err != nil {
		return err
	}
	if err := c.uniqueNames(); err != nil {
		return err
	}
	if err := c.noOverlap(uint64(o.tableOffset()) + TableSize); err != nil {
		return err
	}
	if err := c.otadata(); err != nil {
		return err
	}
	if len(parts) > MaxPartitions {
		return c.at(-1, "", nil, "%d partitions; a table holds at most %d", len(parts), MaxPartitions)
	}
	return nil
}

// tableCheck is one validation: the partitions, each one's CSV line when
// known (nil otherwise), and the file, for errors.
type tableCheck struct {
	parts []Partition
	lines []int
	file  string
}

// at is an error about partition i (-1: the table), at its line.
func (c *tableCheck) at(i int, field string, kind error, format string, args ...any) error {
	e := newError(kind, format, args...)
	e.File = c.file
	if c.lines != nil && i >= 0 {
		e.Line, e.Field = c.lines[i], field
	}
	return e
}

// eachPartition checks what each partition must be on its own: a name, a
// type and subtype that are not "any", aligned offset and app size, an end
// within 4 GiB, and the flags of otadata, coredump and small NVS.
func (c *tableCheck) eachPartition() error {
	for i, p := range c.parts {
		if err := c.name(i, p); err != nil {
			return err
		}
		switch {
		case p.Type == 0xff:
			return c.at(i, "type", nil, "partition %q: type 0xff is reserved (it means any type)", p.Name)
		case p.Subtype == 0xff:
			return c.at(i, "subtype", nil, "partition %q: subtype 0xff is reserved (it means any subtype)", p.Name)
		case p.Offset%offsetAlignment(p.Type) != 0:
			return c.at(i, "offset", ErrAlignment, "partition %q: offset 0x%x is not aligned to 0x%x", p.Name, p.Offset, offsetAlignment(p.Type))
		case p.Type == TypeApp && p.Size%0x1000 != 0:
			return c.at(i, "size", ErrAlignment, "partition %q: app size 0x%x is not aligned to 0x1000", p.Name, p.Size)
		case p.End() > 1<<32:
			return c.at(i, "size", nil, "partition %q: 0x%x+0x%x ends beyond 4 GiB", p.Name, p.Offset, p.Size)
		case p.Type == TypeData && (p.Subtype == SubtypeDataOTA || p.Subtype == SubtypeDataCoredump) && p.Readonly():
			return c.at(i, "flags", nil, "partition %q: a data/%s partition is always read-write and cannot be readonly",
				p.Name, p.SubtypeName())
		case p.Type == TypeData && p.Subtype == SubtypeDataNVS && p.Size < nvsMinReadWriteSize && !p.Readonly():
			return c.at(i, "size", nil, "partition %q: an NVS partition of 0x%x bytes must be flagged readonly (read/write NVS needs at least 0x%x)",
				p.Name, p.Size, nvsMinReadWriteSize)
		}
	}
	return nil
}

// name checks a partition's name: not empty, NUL-free UTF-8 that fits.
func (c *tableCheck) name(i int, p Partition) error {
	switch {
	case p.Name == "":
		return c.at(i, "name", nil, "partition name is empty")
	case len(p.Name) > MaxNameLength:
		return c.at(i, "name", nil, "partition name %q is %d bytes long; at most %d fit", p.Name, len(p.Name), MaxNameLength)
	case strings.IndexByte(p.Name, 0) >= 0 || !utf8.ValidString(p.Name):
		return c.at(i, "name", nil, "partition name %q is not NUL-free UTF-8 text", p.Name)
	}
	return nil
}

// uniqueNames refuses a name used twice.
func (c *tableCheck) uniqueNames() error {
	seen := make(map[string]int, len(c.parts))
	for i, p := range c.parts {
		if j, ok := seen[p.Name]; ok {
			return c.at(i, "name", ErrDuplicateName, "partition name %q is used twice (%s)", p.Name, where(j, i, c.lines))
		}
		seen[p.Name] = i
	}
	return nil
}

// noOverlap sorts the partitions by offset, keeping table order for equal
// offsets as Python's sorted does, and refuses one below the end of the
// partition table (tableEnd) or overlapping the one before it.
func (c *tableCheck) noOverlap(tableEnd uint64) error {
	parts := c.parts
	order := make([]int, len(parts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(parts[a].Offset, parts[b].Offset)
	})
	last := -1
	for _, i := range order {
		p := parts[i]
		if uint64(p.Offset) < tableEnd && !placedByOptions(p) {
			return c.at(i, "offset", ErrBelowTable, "partition %q at 0x%x is below the end of the partition table (0x%x)",
				p.Name, p.Offset, tableEnd)
		}
		if last >= 0 {
			if q := parts[last]; uint64(p.Offset) < q.End() {
				return c.at(i, "offset", ErrOverlap, "partition %q at 0x%x overlaps %q at 0x%x-0x%x",
					p.Name, p.Offset, q.Name, q.Offset, q.End()-1)
			}
		}
		last = i
	}
	return nil
}

// otadata allows at most one otadata and one TEE otadata partition, each
// of otadataSize bytes.
func (c *tableCheck) otadata() error {
	for _, ota := range []struct {
		subtype uint8
		what    string
	}{{SubtypeDataOTA, "otadata (data/ota)"}, {SubtypeDataTEEOTA, "TEE otadata (data/tee_ota)"}} {
		first := -1
		for i, p := range c.parts {
			if p.Type != TypeData || p.Subtype != ota.subtype {
				continue
			}
			if first >= 0 {
				return c.at(i, "subtype", nil, "more than one %s partition: %q and %q", ota.what, c.parts[first].Name, p.Name)
			}
			first = i
			if p.Size != otadataSize {
				return c.at(i, "size", nil, "%s partition %q must be 0x%x bytes, not 0x%x", ota.what, p.Name, otadataSize, p.Size)
			}
		}
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
