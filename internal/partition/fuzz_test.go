package partition

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Fuzz invariants (security.md R28): no panic, bounded memory, and what is
// accepted survives Binary and ParseBinary unchanged.

func addTestdataSeeds(f *testing.F, ext string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*"+ext))
	if err != nil || len(files) == 0 {
		f.Fatalf("no %s seeds: %v", ext, err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseBinary(f *testing.F) {
	addTestdataSeeds(f, ".bin")
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, EntrySize))
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := Options{}.ParseBinary(b)
		if err != nil {
			if tab != nil {
				t.Fatal("table and error")
			}
			if !isTableError(err) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			return
		}
		checkRoundTrip(t, Options{}, tab)
	})
}

func FuzzParseCSV(f *testing.F) {
	addTestdataSeeds(f, ".csv")
	f.Add([]byte("nvs,data,nvs,,-0x20000,readonly:encrypted\n"))
	f.Add([]byte("pt,partition_table,primary,,\nx,0x40,1,0x10000,1M,\n"))
	f.Add([]byte("\xef\xbb\xbfa,app,ota_15,0o200000,0b1_0000_0000_0000\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := Options{}.parseCSV(b, "fuzz.csv")
		if err != nil {
			if tab != nil {
				t.Fatal("table and error")
			}
			if !isTableError(err) || !strings.HasPrefix(err.Error(), "fuzz.csv") {
				t.Fatalf("error %q (%T) is not an *Error naming the file", err, err)
			}
			return
		}
		if len(tab.Partitions) > MaxPartitions {
			t.Fatalf("%d partitions accepted", len(tab.Partitions))
		}
		checkRoundTrip(t, Options{}, tab)
		// Parse (detecting the form) agrees with parseCSV when it sees text.
		if !IsBinary(b) {
			again, err := Parse(b, "fuzz.csv")
			if err != nil || !slices.Equal(again.Partitions, tab.Partitions) {
				t.Fatalf("Parse disagrees: %v", err)
			}
		}
	})
}

func isTableError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// checkRoundTrip checks that an accepted table is valid, encodes to
// MaxLength bytes and reads back the same.
func checkRoundTrip(t *testing.T, o Options, tab *Table) {
	t.Helper()
	if err := validateTable(o, *tab); err != nil {
		t.Fatalf("accepted table does not validate: %v", err)
	}
	bin := tab.encode()
	if len(bin) != MaxLength {
		t.Fatalf("encode() is %d bytes", len(bin))
	}
	back, err := o.ParseBinary(bin)
	if err != nil {
		t.Fatalf("ParseBinary(encode()): %v", err)
	}
	if !slices.Equal(back.Partitions, tab.Partitions) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back.Partitions, tab.Partitions)
	}
	if _, err := tab.MarshalJSON(); err != nil {
		t.Fatal(err)
	}
}
