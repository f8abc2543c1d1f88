// Package partition reads and checks ESP-IDF partition tables, in their CSV
// form and in the binary form that sits in flash at
// CONFIG_PARTITION_TABLE_OFFSET (0x8000 by default).
//
// The behaviour follows ESP-IDF's components/partition_table/gen_esp32part.py
// with its default options (table at 0x8000, MD5 record on, no secure boot):
//
//   - Parse reads either form, telling them apart with IsBinary.
//   - A CSV table is read in ESP-IDF's dialect, and omitted offsets are
//     filled in the way the generator does (after the table, app partitions
//     aligned to 0x10000, everything else to 0x1000).
//   - A binary table (Options.ParseBinary) is read as 32-byte entries, with
//     the MD5 record checked, up to the 0xFF end marker.
//   - Every table read is checked as gen_esp32part checks it (alignment,
//     overlaps, offsets below the table, duplicate names, otadata rules, NVS
//     size), and for a few things where the generator would silently write
//     a broken table (over-long names, entries past 4 GiB, too many
//     entries).
//
// The tests check the reader against the bytes gen_esp32part writes (the
// entries, the MD5 record and 0xFF padding up to 0xC00 bytes), which
// Table.encode reproduces.
//
// docs/partitions.md lists every deliberate difference from gen_esp32part;
// scripts/partition-diff-reference.py tests for the others at random.
//
// Every problem with a table's content is an *Error, which matches
// ErrInvalid and one of the more precise sentinels (ErrBadMagic, ErrBadMD5,
// ErrOverlap, …) with errors.Is. Partition tables hold no secrets, so errors
// quote the offending values.
//
// The reference tables are in testdata/.
package partition
