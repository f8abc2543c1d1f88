package partition

import (
	"bytes"
	"errors"
)

// Parse reads a table in either form with the default options; see
// Options.Parse.
func Parse(data []byte, name string) (*Table, error) {
	return Options{}.Parse(data, name)
}

// Parse reads a table in either form: binary when IsBinary says so, CSV
// otherwise. name is the file name used in error messages.
func (o Options) Parse(data []byte, name string) (*Table, error) {
	if !IsBinary(data) {
		return o.parseCSV(data, name)
	}
	t, err := o.ParseBinary(data)
	if e := (*Error)(nil); errors.As(err, &e) && e.File == "" {
		e.File = name
	}
	return t, err
}

// IsBinary reports whether data looks like a binary table rather than CSV
// text: it starts with an entry's magic bytes (AA 50, which is how
// gen_esp32part decides), the MD5 record's (EB EB) or the end marker's
// (FF FF), or it holds a NUL byte, which no CSV file does.
func IsBinary(data []byte) bool {
	if len(data) >= 2 {
		switch [2]byte{data[0], data[1]} {
		case entryMagic, md5Magic, [2]byte{0xff, 0xff}:
			return true
		}
	}
	return bytes.IndexByte(data[:min(len(data), MaxLength)], 0) >= 0
}
