package nvs

import (
	"bytes"
	"crypto/aes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/xts"
)

// deviceDir holds images written by ESP-IDF's own NVS library, with what
// that library reads back (testdata/device/README.md says how).
const deviceDir = "testdata/device"

// expectedType is the type name the device oracle's expected.txt uses.
func expectedType(t Type) string {
	if t == TypeString {
		return "str"
	}
	return t.String()
}

// expectedLines renders entries the way the oracle's expected.txt does:
// sorted "ns<TAB>key<TAB>type<TAB>value" lines, integers in decimal,
// strings and blobs in lowercase hex, failures as !ERR:<name>.
func expectedLines(entries []Entry) []string {
	var lines []string
	for i := range entries {
		e := &entries[i]
		var v string
		switch {
		case e.Err != nil:
			var de DeviceError
			if errors.As(e.Err, &de) {
				v = "!ERR:" + de.Name()
			} else {
				v = "!ERR:" + e.Err.Error()
			}
		case e.Type.Signed():
			v = strconv.FormatInt(e.Int(), 10)
		case e.Type.IsInt():
			v = strconv.FormatUint(e.Uint(), 10)
		default:
			v = hex.EncodeToString(e.Bytes())
		}
		lines = append(lines, e.Namespace+"\t"+e.Key+"\t"+expectedType(e.Type)+"\t"+v)
	}
	slices.Sort(lines)
	return lines
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines
}

// xtsDecrypter returns a Decrypt hook for the keys partition at path
// (XTS key eky‖tky in its first 64 bytes, nvs-format.md §6).
func xtsCipher(t testing.TB, path string) (dec, enc EntryCipher) {
	t.Helper()
	keys, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := xts.NewCipher(aes.NewCipher, keys[:64])
	if err != nil {
		t.Fatal(err)
	}
	dec = func(off int, e []byte) error { c.Decrypt(e, e, uint64(off)); return nil }
	enc = func(off int, e []byte) error { c.Encrypt(e, e, uint64(off)); return nil }
	return dec, enc
}

func diffLines(got, want []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			fmt.Fprintf(&b, "  missing: %.120s\n", l)
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			fmt.Fprintf(&b, "  extra:   %.120s\n", l)
		}
	}
	return b.String()
}

// TestReadDeviceImages checks every device-written image (including the
// power-loss and corrupted ones) against what ESP-IDF's NVS library read
// back from it, entry by entry (issue 3, "every device image").
func TestReadDeviceImages(t *testing.T) { testReadDeviceImages(t, false) }

// testReadDeviceImages is TestReadDeviceImages, with or without the page
// index on every image (TestIndexEquivalence).
func testReadDeviceImages(t *testing.T, indexAll bool) {
	files, err := filepath.Glob(filepath.Join(deviceDir, "*.expected.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no expected files: %v", err)
	}
	for _, exp := range files {
		name := strings.TrimSuffix(filepath.Base(exp), ".expected.txt")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(deviceDir, name+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			opts := ReadOptions{indexAll: indexAll}
			if keys := filepath.Join(deviceDir, name+".keys.bin"); fileExists(keys) {
				opts.Decrypt, _ = xtsCipher(t, keys)
			}
			before := slices.Clone(b)
			img, err := ReadImage(b, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(b, before) {
				t.Fatal("ReadImage modified its input")
			}
			want := readLines(t, exp)
			got := expectedLines(img.Entries)
			if len(want) == 0 && img.MountErr == nil && name == "corrupt_truncated" {
				t.Error("truncated image: want a mount error")
			}
			if !slices.Equal(got, want) {
				t.Errorf("entries differ from the library's read-back:\n%s", diffLines(got, want))
			}
		})
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestReadTruncated(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(deviceDir, "corrupt_truncated.bin"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := ReadImage(b, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(img.MountErr, DeviceNoFreePages) {
		t.Errorf("MountErr = %v, want %v", img.MountErr, DeviceNoFreePages)
	}
	if len(img.Pages) != 2 || img.Size != 0x2800 {
		t.Errorf("pages = %d, size = %#x; want 2 pages of a 0x2800-byte input", len(img.Pages), img.Size)
	}
}

// TestReadRepairsLikeDevice checks the start-up repairs byte by byte: the
// oracle reported, for each damaged image, which page the library's init
// and reads modified, how many bytes differ and where the first one is
// (manifest.json). The emulation must leave its flash copy the same way:
// erased duplicates and damaged entries are purged (zeroed), an
// interrupted garbage collection is finished.
func TestReadRepairsLikeDevice(t *testing.T) { testReadRepairsLikeDevice(t, false) }

// testReadRepairsLikeDevice is TestReadRepairsLikeDevice, with or without
// the page index.
func testReadRepairsLikeDevice(t *testing.T, indexAll bool) {
	tests := []struct {
		name         string
		page, n, off int // -1: image unchanged
	}{
		{"powerloss_freeing", 1, 3442, 0x0},
		{"powerloss_dup_samepage", 0, 20, 0x20},
		{"powerloss_dup_prevpage", 0, 24, 0x3f},
		{"corrupt_bitmap_ff", 0, 33, 0x27},
		{"corrupt_data_bitflip", 1, 52, 0x28},
		{"corrupt_page_crc", -1, 0, 0},
		{"spread_pages", -1, 0, 0},
		{"counters_gc", -1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(deviceDir, tt.name+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			_, e, err := readImage(b, ReadOptions{indexAll: indexAll})
			if err != nil {
				t.Fatal(err)
			}
			type diff struct{ page, n, off int }
			var got []diff
			for pg := 0; pg < len(b)/PageSize; pg++ {
				d := diff{pg, 0, -1}
				for i := 0; i < PageSize; i++ {
					if e.flash[pg*PageSize+i] != b[pg*PageSize+i] {
						if d.n == 0 {
							d.off = i
						}
						d.n++
					}
				}
				if d.n > 0 {
					got = append(got, d)
				}
			}
			var want []diff
			if tt.page >= 0 {
				want = []diff{{tt.page, tt.n, tt.off}}
			}
			if !slices.Equal(got, want) {
				t.Errorf("modified pages (page, bytes, first offset) = %v, want %v", got, want)
			}
		})
	}
}

// vectorDir holds images made by Espressif's generator with nvs_tool.py's
// dumps of them (testdata/device/generator/README.md).
const vectorDir = "testdata/device/generator"

// rdToolTypes maps nvs_tool's "encoding" names to item types.
var rdToolTypes = map[string]Type{
	"uint8_t": TypeU8, "int8_t": TypeI8, "uint16_t": TypeU16, "int16_t": TypeI16,
	"uint32_t": TypeU32, "int32_t": TypeI32, "uint64_t": TypeU64, "int64_t": TypeI64,
	"string": TypeString, "blob": TypeBlob, "blob_data": TypeBlob,
}

// minimalLines renders nvs_tool.py's "-d minimal -f json" dump in the
// format of expectedLines.
func minimalLines(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dump []struct {
		Namespace string          `json:"namespace"`
		Key       string          `json:"key"`
		Encoding  string          `json:"encoding"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &dump); err != nil {
		t.Fatal(err)
	}
	var lines []string
	blobs := map[string][]byte{} // nvs_tool lists a multi-page blob chunk by chunk
	var blobOrder []string
	for _, d := range dump {
		typ, ok := rdToolTypes[d.Encoding]
		if !ok {
			t.Fatalf("unknown encoding %q", d.Encoding)
		}
		var v string
		switch typ {
		case TypeString:
			var s string
			if err := json.Unmarshal(d.Data, &s); err != nil {
				t.Fatal(err)
			}
			v = hex.EncodeToString([]byte(s))
		case TypeBlob:
			var b []byte // base64 in the dump
			if err := json.Unmarshal(d.Data, &b); err != nil {
				t.Fatal(err)
			}
			k := d.Namespace + "\t" + d.Key
			if _, ok := blobs[k]; !ok {
				blobOrder = append(blobOrder, k)
			}
			blobs[k] = append(blobs[k], b...)
			continue
		default:
			v = string(d.Data)
		}
		lines = append(lines, d.Namespace+"\t"+d.Key+"\t"+expectedType(typ)+"\t"+v)
	}
	for _, k := range blobOrder {
		lines = append(lines, k+"\tblob\t"+hex.EncodeToString(blobs[k]))
	}
	slices.Sort(lines)
	return lines
}

// TestReadGeneratorVectors reads every generator-made reference image and
// compares it with nvs_tool.py's dump of the same image: the CSV's
// contents. Encrypted images are read through the Decrypt hook with their
// keys; the 1-page read-only images need ReadOptions.ReadOnly, as on a
// device.
func TestReadGeneratorVectors(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(vectorDir, "*.minimal.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dumps: %v", err)
	}
	for _, dump := range files {
		name := strings.TrimSuffix(filepath.Base(dump), ".minimal.json")
		t.Run(name, func(t *testing.T) {
			want := minimalLines(t, dump)
			b, err := os.ReadFile(filepath.Join(vectorDir, name+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			opts := ReadOptions{ReadOnly: len(b) < 3*PageSize}
			img, err := ReadImage(b, opts)
			if err != nil {
				t.Fatal(err)
			}
			if img.MountErr != nil {
				t.Fatalf("MountErr = %v", img.MountErr)
			}
			if got := expectedLines(img.Entries); !slices.Equal(got, want) {
				t.Errorf("entries differ from nvs_tool's dump:\n%s", diffLines(got, want))
			}
			for _, e := range img.Entries {
				if e.Err != nil {
					t.Errorf("%v: %v", e, e.Err)
				}
			}
			// The encrypted original reads the same through the hook.
			plain := strings.TrimSuffix(name, ".decrypted")
			if plain == name {
				return
			}
			enc, err := os.ReadFile(filepath.Join(vectorDir, plain+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			opts.Decrypt, _ = xtsCipher(t, filepath.Join(vectorDir, plain+".keys.bin"))
			img, err = ReadImage(enc, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := expectedLines(img.Entries); !slices.Equal(got, want) {
				t.Errorf("encrypted image: entries differ:\n%s", diffLines(got, want))
			}
		})
	}
}

// TestItemHash pins the hash list hash to the library's definition:
// CRC over namespace index, the 16 key bytes and the chunk index.
func TestItemHash(t *testing.T) {
	t.Parallel()
	it := rdNewItem(3, TypeBlobData, 2, []byte("psk"), 0x80)
	var b []byte
	b = append(b, it[0])
	b = append(b, it[8:24]...)
	b = append(b, it[3])
	if got, want := it.hash(), CRC32(b)&0xFFFFFF; got != want {
		t.Errorf("hash = %06x, want %06x", got, want)
	}
}

// TestIndexEquivalence runs the device, replay and round-trip suites with
// the page index on for every image size: looking up a key only in the
// pages whose hash lists hold its hash must change nothing.
func TestIndexEquivalence(t *testing.T) {
	t.Parallel()
	t.Run("read", func(t *testing.T) { testReadDeviceImages(t, true) })
	t.Run("repairs", func(t *testing.T) { testReadRepairsLikeDevice(t, true) })
	t.Run("replay", func(t *testing.T) { testEditReplaysDeviceSteps(t, true) })
	t.Run("roundtrip", func(t *testing.T) { testEditRoundTripRandom(t, true) })
}

// TestReadLargeImage reads a 4 MiB partition whose pages are full of keys:
// every key reads back and the time stays linear (a lookup visits only
// the pages that may hold the key).
func TestReadLargeImage(t *testing.T) {
	t.Parallel()
	const pages = 1024
	img := bytes.Repeat([]byte{0xFF}, pages*PageSize)
	n := 0
	for p := 0; p < pages-1; p++ {
		pg := img[p*PageSize:]
		binary.LittleEndian.PutUint32(pg[0:4], PageStateFull)
		binary.LittleEndian.PutUint32(pg[4:8], uint32(p))
		pg[8] = VersionByte2
		binary.LittleEndian.PutUint32(pg[28:32], HeaderCRC(pg[:HeaderSize]))
		for i := 0; i < EntriesPerPage; i++ {
			it := rdNewItem(1, TypeU32, 1, []byte("k"+strconv.Itoa(n)), rdChunkAny)
			binary.LittleEndian.PutUint32(it[24:28], uint32(n))
			n++
			if p == 0 && i == 0 {
				it = rdNewItem(0, TypeU8, 1, []byte("big"), rdChunkAny)
				it[24] = 1
				n--
			}
			it.setCRC()
			copy(pg[FirstEntryOffset+i*EntrySize:], it[:])
			SetEntryState(pg[BitmapOffset:BitmapOffset+BitmapSize], i, EntryWritten)
		}
	}
	img2, err := ReadImage(img, ReadOptions{})
	if err != nil || img2.MountErr != nil {
		t.Fatal(err, img2.MountErr)
	}
	if len(img2.Entries) != n {
		t.Fatalf("%d entries, want %d", len(img2.Entries), n)
	}
	for i, e := range img2.Entries {
		if e.Err != nil || e.Key != "k"+strconv.Itoa(i) || e.Uint() != uint64(i) {
			t.Fatalf("entry %d: %v %v", i, e, e.Err)
		}
	}
}

// TestReadLostNamespace: when the page holding a namespace definition has
// a bad header CRC, the namespace's keys are still listed, with the
// namespace name the iterator last reported ("" at first), and cannot be
// read (nvs-format.md §10).
func TestReadLostNamespace(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(deviceDir, "spread_pages.bin"))
	if err != nil {
		t.Fatal(err)
	}
	b[4] ^= 1 // page 0 holds namespace "log"
	img, err := ReadImage(b, ReadOptions{})
	if err != nil || img.MountErr != nil {
		t.Fatal(err, img.MountErr)
	}
	if len(img.Entries) == 0 {
		t.Fatal("no entries")
	}
	for _, e := range img.Entries {
		if !e.NoNamespace || e.Namespace != "" || !errors.Is(e.Err, DeviceNotFound) {
			t.Fatalf("%v: NoNamespace=%v err=%v", e, e.NoNamespace, e.Err)
		}
	}
}

// TestReadStaleNamespaceName: an entry of an undefined namespace listed
// after a normal entry gets that entry's namespace name, as the library's
// iterator never clears it, and its getter looks there.
func TestReadStaleNamespaceName(t *testing.T) {
	t.Parallel()
	ed, err := OpenEditor(mustRead(t, filepath.Join(deviceDir, "base_empty.bin")), EditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ ns, key string }{{"a", "x"}, {"b", "x"}, {"a", "y"}} {
		if err := ed.SetInt(s.ns, s.key, TypeU8, int64(len(s.ns)+len(s.key))); err != nil {
			t.Fatal(err)
		}
	}
	b := ed.Bytes()
	// Erase the definition of namespace "b" (entry 2: a, a/x, b, b/x, a/y).
	SetEntryState(b[BitmapOffset:BitmapOffset+BitmapSize], 2, EntryErased)
	img, err := ReadImage(b, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := expectedLines(img.Entries)
	want := []string{"a\tx\tu8\t2", "a\tx\tu8\t2", "a\ty\tu8\t2"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if !img.Entries[1].NoNamespace || img.Entries[1].NamespaceIndex != 2 {
		t.Errorf("entry 1 = %+v", img.Entries[1].NoNamespace)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEntryNeverPrintsValue: printing or marshalling entries (or a whole
// Image) never shows a string or blob value, whatever the verb (R10, R13):
// the PSK read from an image must not leak through a log line.
func TestEntryNeverPrintsValue(t *testing.T) {
	t.Parallel()
	img, err := ReadImage(mustRead(t, filepath.Join(vectorDir, "usmp_psk.bin")), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	psk := img.Lookup("usmp", "psk")
	if psk == nil || psk.Len() != 32 {
		t.Fatal("no 32-byte psk")
	}
	secret := psk.Bytes()
	forms := []string{string(secret[:6]), hex.EncodeToString(secret[:6]), strings.ToUpper(hex.EncodeToString(secret[:6])),
		fmt.Sprint(secret[:3])[1:8], "usmp-0001", "0x82, 0xf1"}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b"} {
		outs = append(outs, fmt.Sprintf(verb, *psk), fmt.Sprintf(verb, psk), fmt.Sprintf(verb, img.Entries), fmt.Sprintf(verb, img))
	}
	j, err := json.Marshal(img)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	for _, o := range outs {
		for _, f := range forms {
			if strings.Contains(o, f) {
				t.Fatalf("value leaked (%q) in %.200s", f, o)
			}
		}
	}
	if got := fmt.Sprint(*psk); got != "usmp/psk blob (32 bytes)" {
		t.Errorf("Sprint = %q", got)
	}
}
