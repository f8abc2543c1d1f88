package nvs

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

const genDir = "testdata/gen"

// genArgs is the part of a reference command line that Generate needs.
type genArgs struct {
	inputs  []string
	size    string
	version int
}

// parseArgv reads `generate|encrypt INPUT... OUTPUT SIZE [--opt [val]]...`.
func parseArgv(t *testing.T, argv []string) genArgs {
	t.Helper()
	a := genArgs{version: 2}
	var pos []string
	for i := 1; i < len(argv); i++ {
		switch argv[i] {
		case "--keygen", "--key_protect_hmac", "--kp_hmac_keygen":
		case "--version":
			i++
			if _, err := fmt.Sscan(argv[i], &a.version); err != nil {
				t.Fatalf("argv %q: --version: %v", argv, err)
			}
		default:
			if strings.HasPrefix(argv[i], "--") {
				i++ // an option with a value
				continue
			}
			pos = append(pos, argv[i])
		}
	}
	if len(pos) < 3 {
		t.Fatalf("argv %q: want INPUT... OUTPUT SIZE", argv)
	}
	a.inputs, a.size = pos[:len(pos)-2], pos[len(pos)-1]
	return a
}

// generateFiles runs ParseSize, ParseCSV and Generate like the reference's
// command line, with dir as the working directory.
func generateFiles(dir string, a genArgs) ([]byte, error) {
	size, err := ParseSize(a.size)
	if err != nil {
		return nil, err
	}
	var rows []Row
	for _, in := range a.inputs {
		f, err := os.Open(filepath.Join(dir, in))
		if err != nil {
			return nil, err
		}
		r, err := ParseCSV(f, in, CSVOptions{BaseDir: dir})
		f.Close()
		if err != nil {
			return nil, err
		}
		rows = append(rows, r...)
	}
	return Generate(rows, size, a.version)
}

// TestGenerateGolden checks byte equality with the reference for every
// vector of the manifest. For the enc_* vectors it compares with the
// reference's decrypted image, which equals `generate` of the same CSV.
func TestGenerateGolden(t *testing.T) {
	t.Parallel()
	var m struct {
		Vectors []struct {
			Name    string
			Argv    []string
			Encrypt any
			Outputs map[string]string
		}
	}
	b, err := os.ReadFile(filepath.Join(genDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Vectors) < 20 {
		t.Fatalf("manifest has %d vectors", len(m.Vectors))
	}
	for _, v := range m.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			a := parseArgv(t, v.Argv)
			want := v.Name + ".bin"
			if v.Encrypt != nil || v.Argv[0] == "encrypt" {
				want = v.Name + ".decrypted.bin"
			}
			wantImg, err := os.ReadFile(filepath.Join(genDir, want))
			if err != nil {
				t.Fatal(err)
			}
			got, err := generateFiles(genDir, a)
			if err != nil {
				t.Fatalf("generate: %v", err)
			}
			compareImages(t, got, wantImg)
		})
	}
}

// compareImages reports the first differing entries of two images.
func compareImages(t *testing.T, got, want []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("image is %#x bytes, want %#x", len(got), len(want))
	}
	diffs := 0
	for off := 0; off < min(len(got), len(want)); off += EntrySize {
		g, w := got[off:off+EntrySize], want[off:off+EntrySize]
		if !bytes.Equal(g, w) {
			t.Errorf("page %d slot %d (offset %#x):\n got % x\nwant % x", off/PageSize, off%PageSize/EntrySize, off, g, w)
			if diffs++; diffs == 5 {
				t.Fatal("too many differences")
			}
		}
	}
}

// TestGenerateReferenceErrors runs every case of the reference's errors/
// directory and asserts what we do: the reference's image where it is right,
// the corrected image where it is wrong, or a typed error naming the place
// (R9: never the value).
func TestGenerateReferenceErrors(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(genDir, "errors")
	var cases []struct {
		Name string
		Argv []string
	}
	b, err := os.ReadFile(filepath.Join(dir, "errors.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	type want struct {
		golden bool // output equals NAME.bin
		check  func(t *testing.T, img []byte)
		size   bool   // a size error
		line   int    // a *CSVError at this line
		field  string // ... in this field
		is     error  // ... wrapping this
	}
	wants := map[string]want{
		"key_too_long":            {line: 3, field: "key"},
		"namespace_too_long":      {line: 2, field: "key"},
		"size_not_multiple":       {size: true},
		"size_zero":               {size: true},
		"size_0x2000_readonly":    {golden: true},
		"size_non_numeric":        {size: true},
		"size_decimal":            {golden: true},
		"hex_invalid_chars":       {line: 3, field: "value"},
		"hex_odd_length":          {line: 3, field: "value"},
		"base64_invalid":          {line: 3, field: "value"},
		"unknown_type":            {line: 3, field: "type"},
		"unknown_encoding":        {line: 3, field: "encoding"},
		"duplicate_keys":          {line: 4, field: "key"},
		"too_large_for_partition": {line: 33, is: ErrNoSpace},
		"u8_out_of_range":         {line: 3, field: "value"},
		"u8_negative":             {line: 3, field: "value"},
		"i8_out_of_range":         {line: 3, field: "value"},
		"u64_out_of_range":        {line: 3, field: "value"},
		"int_hex_literal":         {line: 3, field: "value"},
		"int_empty":               {line: 3, field: "value"},
		"string_4000_chars":       {line: 3, field: "value"},
		"string_3968_chars":       {check: checkString3968},
		"blob_v1_too_large":       {line: 3, field: "value"},
		"blob_v1_multipage_data":  {line: 3, field: "value"},
		"missing_file":            {line: 3, field: "value", is: fs.ErrNotExist},
		"blank_line":              {golden: true},
		"no_namespace_first":      {line: 2, field: "key"},
		"namespace_reentry":       {check: checkNamespaceReentry},
		"too_many_namespaces":     {line: 510, field: "key"},
		"wifi_magic_keys":         {check: checkWifiExactRows},
		"blob_zero_length_chunk":  {golden: true},
		"missing_header":          {line: 1},
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			w, ok := wants[c.Name]
			if !ok {
				t.Fatalf("no expectation for case %s", c.Name)
			}
			img, err := generateFiles(dir, parseArgv(t, c.Argv))
			switch {
			case w.golden:
				if err != nil {
					t.Fatalf("generate: %v", err)
				}
				ref, err := os.ReadFile(filepath.Join(dir, c.Name+".bin"))
				if err != nil {
					t.Fatal(err)
				}
				compareImages(t, img, ref)
			case w.check != nil:
				if err != nil {
					t.Fatalf("generate: %v", err)
				}
				w.check(t, img)
			case w.size:
				if !errors.Is(err, ErrInvalidSize) {
					t.Fatalf("err = %v, want ErrInvalidSize", err)
				}
			default:
				var ce *CSVError
				if !errors.As(err, &ce) {
					t.Fatalf("err = %v, want a *CSVError", err)
				}
				if ce.Line != w.line || ce.Field != w.field {
					t.Errorf("error at line %d field %q, want line %d field %q (%v)", ce.Line, ce.Field, w.line, w.field, err)
				}
				if ce.File == "" {
					t.Errorf("error names no file: %v", err)
				}
				if w.is != nil && !errors.Is(err, w.is) {
					t.Errorf("err = %v, want it to wrap %v", err, w.is)
				}
				if img != nil {
					t.Errorf("image returned with an error")
				}
			}
		})
	}
}

// entryAt returns slot i of page p.
func entryAt(img []byte, p, i int) []byte {
	off := p*PageSize + FirstEntryOffset + i*EntrySize
	return img[off : off+EntrySize]
}

// checkString3968 checks that a 3968-character string (the reference
// crashes) takes a whole fresh page, readable by the device.
func checkString3968(t *testing.T, img []byte) {
	if got := binary.LittleEndian.Uint32(img); got != PageStateFull {
		t.Errorf("page 0 state %#x, want FULL", got)
	}
	h := entryAt(img, 1, 0)
	if Type(h[1]) != TypeString || h[2] != 126 || binary.LittleEndian.Uint16(h[24:]) != 3969 {
		t.Fatalf("page 1 slot 0 = % x, want a string of span 126 and size 3969", h)
	}
	if EntryCRC(h) != binary.LittleEndian.Uint32(h[4:]) {
		t.Error("bad entry CRC")
	}
	payload := img[PageSize+FirstEntryOffset+EntrySize:][:3969]
	if CRC32(payload) != binary.LittleEndian.Uint32(h[28:]) || payload[3968] != 0 {
		t.Error("bad payload")
	}
	for i := range EntriesPerPage {
		if EntryState(img[PageSize+BitmapOffset:], i) != EntryWritten {
			t.Fatalf("page 1 entry %d not written", i)
		}
	}
	if got := binary.LittleEndian.Uint32(img[PageSize:]); got != PageStateActive {
		t.Errorf("page 1 state %#x, want ACTIVE", got)
	}
}

// checkNamespaceReentry checks that re-entering namespace "first" puts key
// c in it (index 1): the reference's image with that one entry fixed.
func checkNamespaceReentry(t *testing.T, img []byte) {
	ref, err := os.ReadFile(filepath.Join(genDir, "errors", "namespace_reentry.bin"))
	if err != nil {
		t.Fatal(err)
	}
	fixed := 0
	for i := range EntriesPerPage {
		e := entryAt(ref, 0, i)
		if e[0] != 0 && string(bytes.TrimRight(e[8:24], "\x00")) == "c" {
			if e[0] != 2 {
				t.Fatalf("reference wrote c in namespace %d; the test expects its bug (2)", e[0])
			}
			e[0] = 1
			binary.LittleEndian.PutUint32(e[4:], EntryCRC(e))
			fixed++
		}
	}
	if fixed != 1 {
		t.Fatalf("found %d entries for c", fixed)
	}
	compareImages(t, img, ref)
}

// checkWifiExactRows checks that sta.ssid is written as given, with no
// hidden entries: the reference's first three slots and nothing else.
func checkWifiExactRows(t *testing.T, img []byte) {
	ref, err := os.ReadFile(filepath.Join(genDir, "errors", "wifi_magic_keys.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range EntriesPerPage {
		got := entryAt(img, 0, i)
		if i < 3 {
			if !bytes.Equal(got, entryAt(ref, 0, i)) {
				t.Errorf("slot %d differs from the reference", i)
			}
		} else if !bytes.Equal(got, bytes.Repeat([]byte{0xFF}, EntrySize)) {
			t.Errorf("slot %d written: % x", i, got)
		}
		want := EntryEmpty
		if i < 3 {
			want = EntryWritten
		}
		if EntryState(img[BitmapOffset:], i) != want {
			t.Errorf("slot %d state %d, want %d", i, EntryState(img[BitmapOffset:], i), want)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0x6000", 0x6000, true},
		{"0X6000", 0x6000, true},
		{"24576", 24576, true},
		{"12288", 0x3000, true},
		{" 0x3000\n", 0x3000, true},
		{"+0x3000", 0x3000, true},
		{"0o30000", 0x3000, true},
		{"0b11000000000000", 0x3000, true},
		{"0x_3000", 0x3000, true},
		{"12_288", 0x3000, true},
		{"0x1000", 0x1000, true},
		{"0x2000", 0x2000, true},
		{"0x4000000", 64 << 20, true},
		{"\u0661\u0662\u0662\u0668\u0668", 12288, true}, // Arabic-Indic digits, as Python
		{"12k", 0, false},
		{"", 0, false},
		{"0x", 0, false},
		{"012288", 0, false}, // int("012288", 0) is a syntax error
		{"0x3100", 0, false}, // not a multiple of 4096
		{"0x0", 0, false},
		{"0", 0, false},
		{"00", 0, false},
		{"-0x3000", 0, false},
		{"0x4001000", 0, false}, // over MaxSize
		{"0x__3000", 0, false},
		{"12__288", 0, false},
		{"12288_", 0, false},
		{"0x3000 0", 0, false},
		{"1e4", 0, false},
		{"0x99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.ok {
				if err != nil || got != tt.want {
					t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidSize) {
				t.Errorf("ParseSize(%q) = %d, %v; want an ErrInvalidSize error", tt.in, got, err)
			}
		})
	}
}

func TestGenerateSizeAndVersion(t *testing.T) {
	t.Parallel()
	rows := []Row{{Kind: RowNamespace, Key: "ns"}, {Key: "k", Type: TypeU8, Uint: 1}}
	for _, size := range []int{0, 100, 0x3100, -0x3000, MaxSize + PageSize} {
		if _, err := Generate(rows, size, 2); !errors.Is(err, ErrInvalidSize) {
			t.Errorf("Generate(size %#x) err = %v, want ErrInvalidSize", size, err)
		}
	}
	for _, v := range []int{0, 3, -1} {
		if _, err := Generate(rows, 0x3000, v); !errors.Is(err, ErrInvalidVersion) {
			t.Errorf("Generate(version %d) err = %v, want ErrInvalidVersion", v, err)
		}
	}
	// Read-only sizes hold only the used pages; others the whole size.
	for _, tt := range []struct{ size, want int }{{0x1000, 0x1000}, {0x2000, 0x1000}, {0x3000, 0x3000}, {0x8000, 0x8000}} {
		img, err := Generate(rows, tt.size, 1)
		if err != nil || len(img) != tt.want {
			t.Errorf("Generate(size %#x) = %#x bytes, %v; want %#x", tt.size, len(img), err, tt.want)
		}
	}
	// An empty CSV still gives an active page 0, like the reference.
	img, err := Generate(nil, 0x3000, 2)
	if err != nil || binary.LittleEndian.Uint32(img) != PageStateActive || img[8] != VersionByte2 {
		t.Errorf("Generate(nil) = % x, %v", img[:32], err)
	}
}

// TestGenerateRowChecks covers the rules Generate enforces on rows built in
// code, which do not come through ParseCSV.
func TestGenerateRowChecks(t *testing.T) {
	t.Parallel()
	ns := Row{Kind: RowNamespace, Key: "ns"}
	tests := []struct {
		name    string
		rows    []Row
		version int
		want    string // substring of the error, "" for success
	}{
		{"ok", []Row{ns, {Key: "a", Type: TypeI8, Int: -128}, {Key: "b", Type: TypeU16, Uint: 65535}}, 2, ""},
		{"i8 low", []Row{ns, {Key: "a", Type: TypeI8, Int: -129}}, 2, "out of range for i8"},
		{"u32 high", []Row{ns, {Key: "a", Type: TypeU32, Uint: 1 << 32}}, 2, "out of range for u32"},
		{"empty key", []Row{ns, {Key: "", Type: TypeU8}}, 2, "empty key"},
		{"long key", []Row{ns, {Key: "0123456789abcdef", Type: TypeU8}}, 2, "longer than 15 bytes"}, // gitleaks:allow (a 16-byte key name, not a secret)
		{"long utf8 key", []Row{ns, {Key: "ääääääää", Type: TypeU8}}, 2, "longer than 15 bytes"},
		{"long namespace", []Row{{Kind: RowNamespace, Key: "0123456789abcdef"}}, 2, "longer than 15 bytes"}, // gitleaks:allow (a 16-byte namespace name, not a secret)
		{"nul key", []Row{ns, {Key: "a\x00b", Type: TypeU8}}, 2, "NUL"},
		{"no namespace", []Row{{Key: "a", Type: TypeU8}}, 2, "before any namespace"},
		{"duplicate", []Row{ns, {Key: "a", Type: TypeU8}, {Key: "a", Type: TypeString}}, 2, "duplicate key"},
		{"same key other namespace", []Row{ns, {Key: "a", Type: TypeU8}, {Kind: RowNamespace, Key: "n2"}, {Key: "a", Type: TypeU8}}, 2, ""},
		{"duplicate after reentry", []Row{ns, {Key: "a", Type: TypeU8}, {Kind: RowNamespace, Key: "n2"}, ns, {Key: "a", Type: TypeU8}}, 2, "duplicate key"},
		{"string 3999", []Row{ns, {Key: "s", Type: TypeString, Data: bytes.Repeat([]byte("x"), 3999)}}, 2, ""},
		{"string 4000", []Row{ns, {Key: "s", Type: TypeString, Data: bytes.Repeat([]byte("x"), 4000)}}, 2, "string longer than 3999"},
		{"string v1 1983", []Row{ns, {Key: "s", Type: TypeString, Data: bytes.Repeat([]byte("x"), 1983)}}, 1, ""},
		{"string v1 1984", []Row{ns, {Key: "s", Type: TypeString, Data: bytes.Repeat([]byte("x"), 1984)}}, 1, "string longer than 1983"},
		{"string nul", []Row{ns, {Key: "s", Type: TypeString, Data: []byte("a\x00")}}, 2, "NUL"},
		{"blob v1 1984", []Row{ns, {Key: "b", Type: TypeBlob, Data: make([]byte, 1984)}}, 1, ""},
		{"blob v1 1985", []Row{ns, {Key: "b", Type: TypeBlob, Data: make([]byte, 1985)}}, 1, "blob longer than 1984"},
		{"blob_data type", []Row{ns, {Key: "b", Type: TypeBlobData}}, 2, "unsupported item type"},
		{"no space", []Row{ns, {Key: "b", Type: TypeBlob, Data: make([]byte, 9000)}}, 2, "no room left"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Generate(tt.rows, 0x3000, tt.version)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var ce *CSVError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a *CSVError containing %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "row ") {
				t.Errorf("error %q does not name the row", err)
			}
		})
	}
	// 254 namespaces are fine, 255 are not (index 255 is reserved).
	var rows []Row
	for i := range 255 {
		rows = append(rows, Row{Kind: RowNamespace, Key: fmt.Sprintf("n%d", i)})
	}
	if _, err := Generate(rows[:254], 0x6000, 2); err != nil {
		t.Errorf("254 namespaces: %v", err)
	}
	if _, err := Generate(rows, 0x6000, 2); err == nil || !strings.Contains(err.Error(), "254") {
		t.Errorf("255 namespaces: err = %v", err)
	}
}

// TestGenerateBlobChunking checks the v2 chunking rule of nvs-format.md §3
// on its documented examples, and the chunk limit.
func TestGenerateBlobChunking(t *testing.T) {
	t.Parallel()
	ns := Row{Kind: RowNamespace, Key: "ns"}
	chunks := func(img []byte) (sizes []int, index []byte) {
		for p := 0; p < len(img)/PageSize; p++ {
			for i := 0; i < EntriesPerPage; i++ {
				e := entryAt(img, p, i)
				if EntryState(img[p*PageSize+BitmapOffset:], i) != EntryWritten {
					continue
				}
				switch Type(e[1]) {
				case TypeBlobData:
					if int(e[3]) != len(sizes) {
						t.Errorf("chunk index %d, want %d", e[3], len(sizes))
					}
					sizes = append(sizes, int(binary.LittleEndian.Uint16(e[24:])))
					i += int(e[2]) - 1
				case TypeBlobIndex:
					index = e
				}
			}
		}
		return sizes, index
	}
	// A 9000-byte blob after 2 entries: 3936 + 4000 + 1064.
	img, err := Generate([]Row{ns, {Key: "u", Type: TypeU8}, {Key: "b", Type: TypeBlob, Data: make([]byte, 9000)}}, 0x10000, 2)
	if err != nil {
		t.Fatal(err)
	}
	sizes, idx := chunks(img)
	if fmt.Sprint(sizes) != "[3936 4000 1064]" || binary.LittleEndian.Uint32(idx[24:]) != 9000 || idx[28] != 3 || idx[29] != 0 {
		t.Errorf("chunks %v, index % x", sizes, idx)
	}
	// A blob needing 129 chunks is refused; 128 are fine.
	big := Row{Key: "b", Type: TypeBlob, Data: make([]byte, 3968+127*4000)}
	if _, err := Generate([]Row{ns, big}, 0x90000, 2); err != nil {
		t.Errorf("128 chunks: %v", err)
	}
	big.Data = make([]byte, 3968+127*4000+1)
	if _, err := Generate([]Row{ns, big}, 0x90000, 2); err == nil || !strings.Contains(err.Error(), "128 chunks") {
		t.Errorf("129 chunks: err = %v", err)
	}
}

// TestAppendPartition checks that a failed append leaves dst as it was and
// clears what it wrote (images hold secrets).
func TestAppendPartition(t *testing.T) {
	t.Parallel()
	prefix := []byte("prefix")
	dst := make([]byte, len(prefix), 0x10000)
	copy(dst, prefix)
	rows := []Row{{Kind: RowNamespace, Key: "ns"}, {Key: "b", Type: TypeBlob, Data: bytes.Repeat([]byte{0xAB}, 20000)}}
	out, err := AppendPartition(dst, rows, 0x3000, 2)
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("err = %v, want ErrNoSpace", err)
	}
	if !bytes.Equal(out, prefix) {
		t.Errorf("dst changed: %q", out)
	}
	if bytes.Contains(out[:cap(out)], []byte{0xAB, 0xAB, 0xAB, 0xAB}) {
		t.Error("blob bytes left in the buffer after an error")
	}
	out, err = AppendPartition(out, rows[:1], 0x3000, 2)
	if err != nil || !bytes.Equal(out[:len(prefix)], prefix) || len(out) != len(prefix)+0x3000 {
		t.Errorf("append: %d bytes, %v", len(out), err)
	}
	want, _ := Generate(rows[:1], 0x3000, 2)
	if !bytes.Equal(out[len(prefix):], want) {
		t.Error("appended image differs from Generate's")
	}
}

// walked is one item found by walkImage.
type walked struct {
	ns   uint8
	key  string
	typ  Type // TypeBlob for v1 blobs and reassembled v2 blobs
	bits uint64
	data []byte
}

// walkImage reads a generated image back (pages in order, items by span),
// checking every CRC and the bitmap, and returns the items: namespace
// definitions as u8 items of namespace 0. It is a minimal reader for round
// trips, independent of the package's own reader.
func walkImage(t *testing.T, img []byte, version int) []walked {
	t.Helper()
	if len(img)%PageSize != 0 {
		t.Fatalf("image length %#x", len(img))
	}
	w := &imageWalker{t: t, chunks: map[string][]byte{}}
	for p := 0; p < len(img)/PageSize; p++ {
		pg := img[p*PageSize : (p+1)*PageSize]
		if w.page(p, pg, version) {
			w.entries(p, pg)
		}
	}
	if len(w.chunks) != 0 {
		t.Fatalf("blob chunks without an index")
	}
	return w.items
}

// imageWalker is walkImage's state: the items read so far, and the blob
// chunks waiting for their index.
type imageWalker struct {
	t      *testing.T
	items  []walked
	chunks map[string][]byte
}

// page checks page p's header and reports whether it holds entries (an
// uninitialised page must be erased).
func (w *imageWalker) page(p int, pg []byte, version int) bool {
	w.t.Helper()
	state := binary.LittleEndian.Uint32(pg)
	if state == PageStateUninit {
		if !bytes.Equal(pg, bytes.Repeat([]byte{0xFF}, PageSize)) {
			w.t.Fatalf("page %d: uninitialised but not erased", p)
		}
		return false
	}
	if state != PageStateActive && state != PageStateFull {
		w.t.Fatalf("page %d: state %#x", p, state)
	}
	if binary.LittleEndian.Uint32(pg[4:]) != uint32(p) || HeaderCRC(pg) != binary.LittleEndian.Uint32(pg[28:]) {
		w.t.Fatalf("page %d: bad sequence number or header CRC", p)
	}
	wantVer := VersionByte2
	if version == 1 {
		wantVer = VersionByte1
	}
	if pg[8] != wantVer {
		w.t.Fatalf("page %d: version byte %#x", p, pg[8])
	}
	return true
}

// entries walks the slots of page p, following each item's span; empty
// slots must be erased.
func (w *imageWalker) entries(p int, pg []byte) {
	w.t.Helper()
	bm := pg[BitmapOffset : BitmapOffset+BitmapSize]
	for i := 0; i < EntriesPerPage; {
		if EntryState(bm, i) == EntryEmpty {
			if !bytes.Equal(pg[FirstEntryOffset+i*EntrySize:][:EntrySize], bytes.Repeat([]byte{0xFF}, EntrySize)) {
				w.t.Fatalf("page %d slot %d: empty but written", p, i)
			}
			i++
			continue
		}
		i += w.item(p, i, pg, bm)
	}
}

// item checks the item in slot i of page p (CRC, span, bitmap), reads it
// and returns its span.
func (w *imageWalker) item(p, i int, pg, bm []byte) int {
	w.t.Helper()
	e := pg[FirstEntryOffset+i*EntrySize:][:EntrySize]
	if EntryCRC(e) != binary.LittleEndian.Uint32(e[4:]) {
		w.t.Fatalf("page %d slot %d: bad entry CRC", p, i)
	}
	span := int(e[2])
	if span < 1 || i+span > EntriesPerPage {
		w.t.Fatalf("page %d slot %d: span %d", p, i, span)
	}
	for j := i; j < i+span; j++ {
		if EntryState(bm, j) != EntryWritten {
			w.t.Fatalf("page %d slot %d: not marked written", p, j)
		}
	}
	it := walked{ns: e[0], key: string(bytes.TrimRight(e[8:24], "\x00")), typ: Type(e[1])}
	switch t2 := Type(e[1]); {
	case t2.IsInt():
		it.bits = binary.LittleEndian.Uint64(e[24:])
		if n := t2.IntSize(); n < 8 {
			it.bits &= 1<<(8*n) - 1
			if !bytes.Equal(e[24+n:32], bytes.Repeat([]byte{0xFF}, 8-n)) {
				w.t.Fatalf("page %d slot %d: unused value bytes not 0xFF", p, i)
			}
		}
		w.items = append(w.items, it)
	case t2 == TypeString || t2 == TypeBlob || t2 == TypeBlobData:
		w.payload(p, i, span, pg, it)
	case t2 == TypeBlobIndex:
		id := string(rune(e[0])) + it.key
		data := w.chunks[id]
		if data == nil {
			data = []byte{}
		}
		if binary.LittleEndian.Uint32(e[24:]) != uint32(len(data)) {
			w.t.Fatalf("page %d slot %d: index size %d, chunks hold %d", p, i, binary.LittleEndian.Uint32(e[24:]), len(data))
		}
		delete(w.chunks, id)
		it.typ, it.data = TypeBlob, data
		w.items = append(w.items, it)
	default:
		w.t.Fatalf("page %d slot %d: type %#x", p, i, e[1])
	}
	return span
}

// payload reads a variable-length item: a string, a version 1 blob, or a
// chunk of a version 2 blob (kept until its index).
func (w *imageWalker) payload(p, i, span int, pg []byte, it walked) {
	w.t.Helper()
	e := pg[FirstEntryOffset+i*EntrySize:][:EntrySize]
	size := int(binary.LittleEndian.Uint16(e[24:]))
	if 1+(size+31)/32 != span {
		w.t.Fatalf("page %d slot %d: size %d with span %d", p, i, size, span)
	}
	payload := pg[FirstEntryOffset+(i+1)*EntrySize:][:size]
	if CRC32(payload) != binary.LittleEndian.Uint32(e[28:]) {
		w.t.Fatalf("page %d slot %d: bad data CRC", p, i)
	}
	switch it.typ {
	case TypeString:
		if size == 0 || payload[size-1] != 0 {
			w.t.Fatalf("page %d slot %d: string without NUL", p, i)
		}
		it.data = append([]byte{}, payload[:size-1]...)
		w.items = append(w.items, it)
	case TypeBlob:
		it.data = append([]byte{}, payload...)
		w.items = append(w.items, it)
	default:
		id := string(rune(e[0])) + it.key
		if int(e[3]) != 0 && w.chunks[id] == nil {
			w.t.Fatalf("page %d slot %d: chunk %d without chunk 0", p, i, e[3])
		}
		w.chunks[id] = append(append([]byte{}, w.chunks[id]...), payload...)
	}
}

// expectItems is what walkImage should find for rows.
func expectItems(rows []Row) []walked {
	var items []walked
	var names []string
	var cur uint8
	for _, r := range rows {
		if r.Kind == RowNamespace {
			if i := slices.Index(names, r.Key); i >= 0 {
				cur = uint8(i + 1)
				continue
			}
			names = append(names, r.Key)
			cur = uint8(len(names))
			items = append(items, walked{ns: 0, key: r.Key, typ: TypeU8, bits: uint64(cur)})
			continue
		}
		w := walked{ns: cur, key: r.Key, typ: r.Type}
		switch {
		case r.Type.IsInt():
			w.bits = r.Uint
			if r.Type.Signed() {
				w.bits = uint64(r.Int) & (1<<(8*r.Type.IntSize()) - 1)
				if r.Type.IntSize() == 8 {
					w.bits = uint64(r.Int)
				}
			}
		default:
			w.data = append([]byte{}, r.Data...)
		}
		items = append(items, w)
	}
	return items
}

// TestGenerateRoundTrip reads every golden CSV's image back and finds
// exactly its rows (R28 round trips).
func TestGenerateRoundTrip(t *testing.T) {
	t.Parallel()
	csvs, _ := filepath.Glob(filepath.Join(genDir, "*.csv"))
	for _, path := range csvs {
		for _, version := range []int{1, 2} {
			name := filepath.Base(path)
			t.Run(fmt.Sprintf("%s/v%d", name, version), func(t *testing.T) {
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				rows, err := ParseCSV(f, name, CSVOptions{BaseDir: genDir})
				if err != nil {
					t.Fatal(err)
				}
				img, err := Generate(rows, 0x20000, version)
				if err != nil {
					if version == 1 && strings.Contains(err.Error(), "version 1") {
						return // blobs over the v1 limit
					}
					t.Fatal(err)
				}
				got, want := walkImage(t, img, version), expectItems(rows)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("read back %d items, want %d", len(got), len(want))
				}
			})
		}
	}
}

// FuzzGenerate builds rows from fuzz bytes and checks that Generate never
// panics, and that what it writes reads back as the rows with valid CRCs
// (R28).
func FuzzGenerate(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, uint8(3), true)
	f.Add(bytes.Repeat([]byte{0x31, 0x07, 0xff, 0x80}, 64), uint8(6), false)
	f.Add(bytes.Repeat([]byte{0x22, 0xf0}, 300), uint8(16), true)
	f.Fuzz(func(t *testing.T, in []byte, pages uint8, v2 bool) {
		version := 1
		if v2 {
			version = 2
		}
		size := (int(pages)%32 + 1) * PageSize
		next := func() int {
			if len(in) == 0 {
				return 0
			}
			b := in[0]
			in = in[1:]
			return int(b)
		}
		types := []Type{TypeU8, TypeI8, TypeU16, TypeI16, TypeU32, TypeI32, TypeU64, TypeI64, TypeString, TypeBlob}
		var rows []Row
		for len(in) > 0 && len(rows) < 400 {
			op := next()
			key := fmt.Sprintf("k%d", next()%40)
			if op%8 == 0 {
				rows = append(rows, Row{Kind: RowNamespace, Key: fmt.Sprintf("n%d", next()%4)})
				continue
			}
			r := Row{Key: key, Type: types[op%len(types)]}
			switch {
			case r.Type.IsInt():
				v := uint64(next())<<56 | uint64(next())<<8 | uint64(next())
				r.Uint, r.Int = v, int64(v)
			default:
				n := next() * (next()%40 + 1)
				r.Data = bytes.Repeat([]byte{byte(op) | 1}, n)
			}
			rows = append(rows, r)
		}
		img, err := Generate(rows, size, version)
		if err != nil {
			var ce *CSVError
			if !errors.As(err, &ce) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if size >= MinReadWriteSize && len(img) != size || len(img) > size {
			t.Fatalf("image of %#x bytes for size %#x", len(img), size)
		}
		if got, want := walkImage(t, img, version), expectItems(rows); !reflect.DeepEqual(got, want) {
			t.Fatalf("read back %d items, want %d", len(got), len(want))
		}
	})
}

// TestBuildUSMP checks that the fast path gives the reference's bytes for
// every USMP-shaped vector (namespace, device_id string, psk hex2bin).
func TestBuildUSMP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		csv, bin string
		size     int
		version  int
	}{
		{"usmp_psk.csv", "usmp_psk.bin", 0x6000, 2},
		{"usmp_psk_v1.csv", "usmp_psk_v1.bin", 0x6000, 1},
		{"usmp_psk_3000.csv", "usmp_psk_3000.bin", 0x3000, 2},
		{"usmp_psk_10000.csv", "usmp_psk_10000.bin", 0x10000, 2},
		{"readonly_1000.csv", "readonly_1000.bin", 0x1000, 2},
		{"enc_usmp.csv", "enc_usmp.decrypted.bin", 0x6000, 2},
		{"enc_v1.csv", "enc_v1.decrypted.bin", 0x3000, 1},
		{"enc_hmac.csv", "enc_hmac.decrypted.bin", 0x6000, 2},
	}
	buf := make([]byte, 0, 0x10000)
	for _, tt := range tests {
		t.Run(tt.csv, func(t *testing.T) {
			f, err := os.Open(filepath.Join(genDir, tt.csv))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rows, err := ParseCSV(f, tt.csv, CSVOptions{})
			if err != nil || len(rows) != 3 {
				t.Fatalf("rows %d, %v", len(rows), err)
			}
			want, err := os.ReadFile(filepath.Join(genDir, tt.bin))
			if err != nil {
				t.Fatal(err)
			}
			got, err := BuildUSMP(USMPImage{USMPLayout: USMPLayout{Namespace: rows[0].Key, IDKey: rows[1].Key, PSKKey: rows[2].Key}, DeviceID: string(rows[1].Data), PSK: rows[2].Data, Size: tt.size, Version: tt.version})
			if err != nil {
				t.Fatal(err)
			}
			compareImages(t, got, want)
			buf, err = AppendUSMP(buf[:0], USMPImage{USMPLayout: USMPLayout{Namespace: rows[0].Key, IDKey: rows[1].Key, PSKKey: rows[2].Key}, DeviceID: string(rows[1].Data), PSK: rows[2].Data, Size: tt.size, Version: tt.version})
			if err != nil || !bytes.Equal(buf, want) {
				t.Errorf("AppendUSMP differs (%v)", err)
			}
		})
	}
}

func TestBuildUSMPErrors(t *testing.T) {
	t.Parallel()
	const id = "SECRETdeviceID"
	psk := []byte("SECRETpskSECRETpskSECRETpsk12345")
	tests := []struct {
		name              string
		ns, idKey, pskKey string
		deviceID          string
		psk               []byte
		size, version     int
		want              string
		is                error
	}{
		{"empty namespace", "", "device_id", "psk", id, psk, 0x6000, 2, "namespace: empty key", nil},
		{"long id key", "usmp", "device_id_too_long", "psk", id, psk, 0x6000, 2, "device ID key: key longer", nil},
		{"same keys", "usmp", "k", "k", id, psk, 0x6000, 2, "different keys", nil},
		{"nul in id", "usmp", "device_id", "psk", "a\x00" + id, psk, 0x6000, 2, "NUL", nil},
		{"long id", "usmp", "device_id", "psk", strings.Repeat(id, 300), psk, 0x6000, 2, "device ID longer than 3999", nil},
		{"long id v1", "usmp", "device_id", "psk", strings.Repeat(id, 150), psk, 0x6000, 1, "device ID longer than 1983", nil},
		{"empty psk", "usmp", "device_id", "psk", id, nil, 0x6000, 2, "empty PSK", nil},
		{"long psk v1", "usmp", "device_id", "psk", id, bytes.Repeat(psk, 70), 0x6000, 1, "1984", nil},
		{"bad size", "usmp", "device_id", "psk", id, psk, 0x6100, 2, "multiple of 4096", ErrInvalidSize},
		{"bad version", "usmp", "device_id", "psk", id, psk, 0x6000, 3, "version", ErrInvalidVersion},
		{"no space", "usmp", "device_id", "psk", id, bytes.Repeat(psk, 300), 0x3000, 2, "does not fit", ErrNoSpace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]byte, 2, 0x10000)
			out, err := AppendUSMP(dst, USMPImage{USMPLayout: USMPLayout{Namespace: tt.ns, IDKey: tt.idKey, PSKKey: tt.pskKey}, DeviceID: tt.deviceID, PSK: tt.psk, Size: tt.size, Version: tt.version})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.is)
			}
			if len(out) != 2 {
				t.Errorf("dst grew to %d bytes on error", len(out))
			}
			if bytes.Contains(out[:cap(out)], []byte("SECRET")) {
				t.Error("secret left in the buffer after an error")
			}
			// R9: no part of the device ID or PSK in the message.
			if strings.Contains(err.Error(), "SECR") || leaked(err.Error(), string(psk)) != "" {
				t.Errorf("error %q leaks a value", err)
			}
			if img, err := BuildUSMP(USMPImage{USMPLayout: USMPLayout{Namespace: tt.ns, IDKey: tt.idKey, PSKKey: tt.pskKey}, DeviceID: tt.deviceID, PSK: tt.psk, Size: tt.size, Version: tt.version}); err == nil || img != nil {
				t.Errorf("BuildUSMP = %d bytes, %v", len(img), err)
			}
		})
	}
}

// TestBuildUSMPAllocs checks the fast path's allocations: the image only,
// or nothing when the buffer is reused (design §8).
func TestBuildUSMPAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceBuild() {
		t.Skip("allocation counts differ under coverage and the race detector")
	}
	var err error
	if n := testing.AllocsPerRun(100, func() {
		_, err = BuildUSMP(USMPImage{USMPLayout: DefaultUSMPLayout(), DeviceID: "usmp-0001-a1b2c3", PSK: benchPSK, Size: 0x6000, Version: 2})
	}); n > 1 {
		t.Errorf("BuildUSMP: %v allocations, want 1", n)
	}
	if err != nil {
		t.Fatalf("BuildUSMP: %v", err)
	}
	buf := make([]byte, 0, 0x6000)
	if n := testing.AllocsPerRun(100, func() {
		buf, err = AppendUSMP(buf[:0], USMPImage{USMPLayout: DefaultUSMPLayout(), DeviceID: "usmp-0001-a1b2c3", PSK: benchPSK, Size: 0x6000, Version: 2})
	}); n != 0 {
		t.Errorf("AppendUSMP: %v allocations, want 0", n)
	}
	if err != nil {
		t.Fatalf("AppendUSMP: %v", err)
	}
}

// raceBuild reports whether the test binary was built with -race.
func raceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// ExampleGenerate shows the drop-in `nvs generate` path: parse the size and
// each CSV (relative `file` values resolve against the working directory),
// then generate.
func ExampleGenerate() {
	csv := "key,type,encoding,value\n" +
		"usmp,namespace,,\n" +
		"device_id,data,string,usmp-0001-a1b2c3\n" +
		"psk,data,hex2bin,82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a\n"
	size, err := ParseSize("0x6000")
	if err != nil {
		fmt.Println(err)
		return
	}
	rows, err := ParseCSV(strings.NewReader(csv), "usmp.csv", CSVOptions{BaseDir: "."})
	if err != nil {
		fmt.Println(err) // e.g. usmp.csv:4:4: value: odd number of hex digits
		return
	}
	defer WipeRows(rows)
	img, err := Generate(rows, size, 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d bytes, header CRC %#x\n", len(img), binary.LittleEndian.Uint32(img[28:]))
	// Output: 24576 bytes, header CRC 0xb9ba2d84
}

// ExampleAppendUSMP builds many USMP images with one buffer.
func ExampleAppendUSMP() {
	psk := make([]byte, 32)
	buf := make([]byte, 0, 0x6000)
	for i := range 3 {
		var err error
		buf, err = AppendUSMP(buf[:0], USMPImage{USMPLayout: DefaultUSMPLayout(), DeviceID: fmt.Sprintf("dev-%d", i), PSK: psk, Size: 0x6000, Version: 2})
		if err != nil {
			fmt.Println(err)
			return
		}
		// write buf to the device's image file here
	}
	fmt.Println(len(buf))
	// Output: 24576
}
