package partition

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The reference tables in testdata/: CSVs, the binaries ESP-IDF's
// gen_esp32part.py made from them, and the parsed content (manifest.json,
// *.expected.json).

type manifest struct {
	Tables []struct {
		Name       string            `json:"name"`
		Kind       string            `json:"kind"`
		Partitions int               `json:"partitions"`
		BinSize    int               `json:"bin_size"`
		Files      map[string]string `json:"files"`
	} `json:"tables"`
}

// expected is a NAME.expected.json. Partition has no JSON tags; the field
// names match the file's keys case-insensitively.
type expected struct {
	TableOffset uint32      `json:"table_offset"`
	MD5         *string     `json:"md5"`
	Partitions  []Partition `json:"partitions"`
	Valid       *bool       `json:"valid"`
	Errors      []string    `json:"gen_esp32part_error"`
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadManifest(t *testing.T) manifest {
	t.Helper()
	var m manifest
	if err := json.Unmarshal(readTestdata(t, "manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Tables) == 0 {
		t.Fatal("manifest lists no tables")
	}
	return m
}

func loadExpected(t *testing.T, name string) expected {
	t.Helper()
	var e expected
	if err := json.Unmarshal(readTestdata(t, name+".expected.json"), &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestTestdataIntact checks the copied files against the manifest's hashes.
func TestTestdataIntact(t *testing.T) {
	t.Parallel()
	for _, tab := range loadManifest(t).Tables {
		for file, want := range tab.Files {
			sum := sha256.Sum256(readTestdata(t, file))
			if got := hex.EncodeToString(sum[:]); got != want {
				t.Errorf("%s: sha256 %s, manifest says %s", file, got, want)
			}
		}
	}
}

func TestReferenceTables(t *testing.T) {
	t.Parallel()
	valid := 0
	for _, tab := range loadManifest(t).Tables {
		if tab.Kind != "valid" {
			continue
		}
		valid++
		t.Run(tab.Name, func(t *testing.T) {
			want := loadExpected(t, tab.Name)
			if want.TableOffset != DefaultTableOffset {
				t.Fatalf("expected.json has table_offset 0x%x; the tests assume the default", want.TableOffset)
			}
			if len(want.Partitions) != tab.Partitions {
				t.Fatalf("expected.json has %d partitions, manifest says %d", len(want.Partitions), tab.Partitions)
			}
			csvName := tab.Name + ".csv"
			bin := readTestdata(t, tab.Name+".bin")
			if len(bin) != tab.BinSize || len(bin) != MaxLength {
				t.Fatalf("%s.bin is %d bytes, manifest says %d", tab.Name, len(bin), tab.BinSize)
			}

			fromCSV, err := Options{}.parseCSV(readTestdata(t, csvName), csvName)
			if err != nil {
				t.Fatalf("parseCSV: %v", err)
			}
			if !slices.Equal(fromCSV.Partitions, want.Partitions) {
				t.Errorf("parseCSV:\n got %+v\nwant %+v", fromCSV.Partitions, want.Partitions)
			}

			fromBin, err := Options{}.ParseBinary(bin)
			if err != nil {
				t.Fatalf("ParseBinary: %v", err)
			}
			if !slices.Equal(fromBin.Partitions, want.Partitions) {
				t.Errorf("ParseBinary:\n got %+v\nwant %+v", fromBin.Partitions, want.Partitions)
			}

			if got := fromCSV.encode(); !bytes.Equal(got, bin) {
				t.Errorf("encode() differs from %s.bin at byte 0x%x", tab.Name, firstDiff(got, bin))
			}
			if got := fromBin.encode(); !bytes.Equal(got, bin) {
				t.Errorf("encode() of the parsed binary differs from %s.bin at byte 0x%x", tab.Name, firstDiff(got, bin))
			}

			if want.MD5 == nil {
				t.Fatal("expected.json has no md5")
			}
			if sum := tableMD5(*fromCSV); hex.EncodeToString(sum[:]) != *want.MD5 {
				t.Errorf("MD5 of the entries = %x, want %s", sum, *want.MD5)
			}

			// Parse detects the form by itself.
			for _, in := range []struct {
				name string
				data []byte
			}{{csvName, readTestdata(t, csvName)}, {tab.Name + ".bin", bin}} {
				got, err := Parse(in.data, in.name)
				if err != nil || !slices.Equal(got.Partitions, want.Partitions) {
					t.Errorf("Parse(%s): err %v, partitions %+v", in.name, err, got)
				}
			}

			checkJSON(t, fromBin, want.Partitions)
		})
	}
	if valid == 0 {
		t.Fatal("no valid tables in the manifest")
	}
}

// checkJSON decodes the table's JSON and compares it with the expected
// partitions and with TypeName/SubtypeName.
func checkJSON(t *testing.T, tab *Table, want []Partition) {
	t.Helper()
	data, err := json.Marshal(tab)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Partitions []map[string]any `json:"partitions"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got.Partitions) != len(want) {
		t.Fatalf("JSON has %d partitions, want %d", len(got.Partitions), len(want))
	}
	keys := []string{"name", "type", "subtype", "offset", "size", "flags", "type_name", "subtype_name"}
	for i, p := range want {
		g := got.Partitions[i]
		if len(g) != len(keys) {
			t.Errorf("partition %d has keys %v, want %v", i, g, keys)
		}
		wantVals := map[string]string{
			"name": p.Name, "type": itoa(p.Type), "subtype": itoa(p.Subtype),
			"offset": itoa(p.Offset), "size": itoa(p.Size), "flags": itoa(p.Flags),
			"type_name": p.TypeName(), "subtype_name": p.SubtypeName(),
		}
		for _, k := range keys {
			v, ok := g[k]
			if !ok {
				t.Errorf("partition %d: no key %q", i, k)
				continue
			}
			if s, isNum := v.(json.Number); isNum != (k != "name" && k != "type_name" && k != "subtype_name") {
				t.Errorf("partition %d: %q is %T", i, k, v)
			} else if isNum && string(s) != wantVals[k] || !isNum && v != wantVals[k] {
				t.Errorf("partition %d: %q = %v, want %s", i, k, v, wantVals[k])
			}
		}
	}
}

func itoa[T uint8 | uint32](v T) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestBadReferenceTables checks that the invalid tables are refused for the
// reason gen_esp32part gives, with the same numbers in the message.
func TestBadReferenceTables(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		kind error
		// wants turns gen_esp32part's message into substrings our message
		// must contain.
		wants func(ref string) []string
	}{
		"bad_md5": {ErrBadMD5, func(ref string) []string {
			m := regexp.MustCompile(`computed: 0x([0-9a-f]{32}), parsed: 0xb'([0-9a-f]{32})'`).FindStringSubmatch(ref)
			if m == nil {
				return nil
			}
			return []string{"computed " + m[1], "stored " + m[2]}
		}},
		"bad_magic_middle": {ErrBadMagic, func(ref string) []string {
			if !strings.Contains(ref, "(b'UP')") {
				return nil
			}
			return []string{"entry 1 ", "invalid magic bytes 55 50"}
		}},
		"bad_overlap": {ErrOverlap, func(ref string) []string {
			m := regexp.MustCompile(`Partition at (0x[0-9a-f]+) overlaps (0x[0-9a-f]+-0x[0-9a-f]+)`).FindStringSubmatch(ref)
			if m == nil {
				return nil
			}
			return []string{"at " + m[1] + " overlaps", "at " + m[2]}
		}},
	}
	seen := 0
	for _, tab := range loadManifest(t).Tables {
		if tab.Kind != "invalid" {
			continue
		}
		seen++
		t.Run(tab.Name, func(t *testing.T) {
			c, ok := cases[tab.Name]
			if !ok {
				t.Fatalf("no test case for invalid table %s", tab.Name)
			}
			want := loadExpected(t, tab.Name)
			if want.Valid == nil || *want.Valid || len(want.Errors) != 1 {
				t.Fatalf("unexpected expected.json: %+v", want)
			}
			subs := c.wants(want.Errors[0])
			if subs == nil {
				t.Fatalf("cannot read gen_esp32part's message %q", want.Errors[0])
			}
			bin := readTestdata(t, tab.Name+".bin")
			for _, parse := range []func() (*Table, error){
				func() (*Table, error) { return Options{}.ParseBinary(bin) },
				func() (*Table, error) { return Parse(bin, tab.Name+".bin") },
			} {
				got, err := parse()
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				if !errors.Is(err, c.kind) || !errors.Is(err, ErrInvalid) {
					t.Errorf("error %q is not %v and ErrInvalid", err, c.kind)
				}
				for _, s := range subs {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q (gen_esp32part: %s)", err, s, want.Errors[0])
					}
				}
			}
		})
	}
	if seen != len(cases) {
		t.Errorf("manifest has %d invalid tables, the test knows %d", seen, len(cases))
	}
}
