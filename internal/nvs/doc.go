// Package nvs reads, checks, edits and generates ESP-IDF NVS (non-volatile
// storage) partition images.
//
// format.go holds the on-flash constants and CRC helpers shared by the
// generator and the reader. The format is described in docs/nvs-format.md
// of the project's shared documentation.
//
// # Generating images
//
// The generator produces images byte-identical to Espressif's
// nvs_partition_gen.py 0.2.0 for the same CSV, partition size and format
// version, except where the reference is wrong: there it either does what
// ESP-IDF's library would store and read, or refuses the input with a typed
// error (the list is at the top of csv.go and generate.go). The drop-in
// `nvs generate INPUT... OUTPUT SIZE [--version 1|2]` is:
//
//	size, err := nvs.ParseSize(sizeArg)       // decimal, 0x, 0o, 0b like int(s, 0)
//	var rows []nvs.Row
//	for _, in := range inputs {               // the reference takes several CSVs
//		r, err := nvs.ParseCSV(f, in, nvs.CSVOptions{BaseDir: cwd})
//		rows = append(rows, r...)         // namespaces carry over
//	}
//	img, err := nvs.Generate(rows, size, version) // version 1 or 2
//	nvs.WipeRows(rows)
//
// Errors about the input are *CSVError (file, line, column, field; never the
// value), or wrap ErrInvalidSize, ErrInvalidVersion or ErrNoSpace. All of
// them mean bad input. Keys named sta.* or ap.* are written as given: the
// reference's hidden WiFi entries are not added.
//
// BuildUSMP and AppendUSMP build the USMP image (namespace, device ID string,
// PSK blob) directly, with one allocation or none, for provisioning and
// batches.
//
// Errors never contain values read from a CSV, key file or image: they name
// the file, line, column, field, page or entry instead (security R9).
package nvs
