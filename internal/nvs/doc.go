// Package nvs reads, checks, edits and generates ESP-IDF NVS (non-volatile
// storage) partition images.
//
// The generator side (ParseCSV, Generate, BuildUSMP) produces images that are
// byte-identical to Espressif's nvs_partition_gen.py 0.2.0 for the same CSV,
// partition size and format version, except where the reference is wrong:
// there it either does what ESP-IDF's library would store and read, or
// refuses the input with a typed error (see csv.go).
//
// format.go holds the on-flash constants and CRC helpers shared by the
// generator and the reader. The format is described in
// docs/nvs-format.md of the project's shared documentation.
//
// Errors never contain values read from a CSV, key file or image: they name
// the file, line, column, field, page or entry instead (security R9).
package nvs
