package partition

import (
	"bytes"
	"crypto/md5" // the format's checksum, not a security measure
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/usmp/usmp-psk/internal/golden"
)

func TestParseNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		err  string // substring of the message; "" for success
	}{
		{"0", 0, ""},
		{"4096", 4096, ""},
		{"0x9000", 0x9000, ""},
		{"0X9000", 0x9000, ""},
		{"0x1A0000", 0x1a0000, ""},
		{"0o17", 15, ""},
		{"0b101", 5, ""},
		{"1_000", 1000, ""},
		{"24K", 24 << 10, ""},
		{"24k", 24 << 10, ""},
		{"1M", 1 << 20, ""},
		{"1m", 1 << 20, ""},
		{"1500K", 1536000, ""},
		{"0x10K", 0x10 << 10, ""},
		{"4 K", 4 << 10, ""},
		{"+8", 8, ""},
		{"-2M", -2 << 20, ""},
		{"00", 0, ""},
		{"010", 0, "leading zeros"},
		{"0_1", 0, "leading zeros"},
		{"", 0, "invalid number"},
		{"K", 0, "invalid number"},
		{"0x", 0, "invalid number"},
		{"12KB", 0, "invalid number"},
		{"1G", 0, "invalid number"},
		{"0xzz", 0, "invalid number"},
		{"1.5M", 0, "invalid number"},
		{"$NVS_OFFSET", 0, "environment variables are not expanded"},
		{"0x7fffffffffffffff", 1<<63 - 1, ""},
		{"0x7fffffffffffffffK", 0, "too large"},
		{"0x8000000000000000", 0, "invalid number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, msg := parseNumber(tt.in)
			if tt.err == "" {
				if msg != "" || got != tt.want {
					t.Errorf("parseNumber(%q) = %d, %q; want %d", tt.in, got, msg, tt.want)
				}
				return
			}
			if !strings.Contains(msg, tt.err) {
				t.Errorf("parseNumber(%q) = %d, %q; want an error containing %q", tt.in, got, msg, tt.err)
			}
		})
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ, sub         uint8
		typName, subName string
	}{
		{TypeApp, 0x00, "app", "factory"},
		{TypeApp, 0x10, "app", "ota_0"},
		{TypeApp, 0x1f, "app", "ota_15"},
		{TypeApp, 0x20, "app", "test"},
		{TypeApp, 0x30, "app", "tee_0"},
		{TypeApp, 0x31, "app", "tee_1"},
		{TypeApp, 0x32, "app", "50"},
		{TypeData, 0x00, "data", "ota"},
		{TypeData, 0x01, "data", "phy"},
		{TypeData, 0x02, "data", "nvs"},
		{TypeData, 0x03, "data", "coredump"},
		{TypeData, 0x04, "data", "nvs_keys"},
		{TypeData, 0x05, "data", "efuse"},
		{TypeData, 0x06, "data", "undefined"},
		{TypeData, 0x80, "data", "esphttpd"},
		{TypeData, 0x81, "data", "fat"},
		{TypeData, 0x82, "data", "spiffs"},
		{TypeData, 0x83, "data", "littlefs"},
		{TypeData, 0x90, "data", "tee_ota"},
		{TypeData, 0x91, "data", "tee_sec_stg"},
		{TypeData, 0x99, "data", "153"},
		{TypeBootloader, 0x00, "bootloader", "primary"},
		{TypeBootloader, 0x01, "bootloader", "ota"},
		{TypeBootloader, 0x02, "bootloader", "recovery"},
		{TypePartitionTable, 0x00, "partition_table", "primary"},
		{TypePartitionTable, 0x01, "partition_table", "ota"},
		{0x40, 0x02, "64", "2"},
	}
	for _, tt := range tests {
		p := Partition{Type: tt.typ, Subtype: tt.sub}
		if got := p.TypeName(); got != tt.typName {
			t.Errorf("TypeName(0x%x) = %q, want %q", tt.typ, got, tt.typName)
		}
		if got := p.SubtypeName(); got != tt.subName {
			t.Errorf("SubtypeName(0x%x/0x%x) = %q, want %q", tt.typ, tt.sub, got, tt.subName)
		}
	}
}

func TestFind(t *testing.T) {
	t.Parallel()
	tab, err := Options{}.ParseBinary(readTestdata(t, "custom_two_nvs.bin"))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := tab.Find("fctry")
	if !ok || p.Offset != 0xf000 || p.Size != 0x4000 || p.Subtype != SubtypeDataNVS {
		t.Errorf("Find(fctry) = %+v, %v", p, ok)
	}
	p.Size = 0x5000
	if tab.Partitions[1].Size != 0x5000 {
		t.Error("Find does not point into the table")
	}
	for _, name := range []string{"FCTRY", "fctr", ""} {
		if p, ok := tab.Find(name); ok {
			t.Errorf("Find(%q) = %+v", name, p)
		}
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	p := part("nvs", TypeData, SubtypeDataNVS, 0x9000, 0x6000, 0)
	if got, want := p.String(), "nvs (data/nvs) at 0x9000 size 0x6000"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	p := Partition{Flags: FlagEncrypted | FlagReadonly | 1<<7}
	if !p.Encrypted() || !p.Readonly() {
		t.Errorf("flags 0x%x: encrypted %v readonly %v", p.Flags, p.Encrypted(), p.Readonly())
	}
	if (Partition{}).Encrypted() || (Partition{}).Readonly() {
		t.Error("zero flags report a flag")
	}
}

// part is shorthand for a test partition.
func part(name string, typ, sub uint8, offset, size uint32, flags uint32) Partition {
	return Partition{Name: name, Type: typ, Subtype: sub, Offset: offset, Size: size, Flags: flags}
}

func TestParseCSV(t *testing.T) {
	t.Parallel()
	u32 := func(v uint32) *uint32 { return &v }
	tests := []struct {
		name string
		opts Options
		csv  string
		want []Partition
	}{
		{
			name: "computed offsets and alignment",
			csv:  "nvs,data,nvs,,0x5000\nfactory,app,factory,,1M\nstore,data,spiffs,,0x1800\nlast,data,fat,,4K\n",
			want: []Partition{
				part("nvs", 1, 2, 0x9000, 0x5000, 0),
				part("factory", 0, 0, 0x10000, 0x100000, 0),
				part("store", 1, 0x82, 0x110000, 0x1800, 0),
				part("last", 1, 0x81, 0x112000, 0x1000, 0),
			},
		},
		{
			name: "table offset option",
			opts: Options{TableOffset: 0x10000},
			csv:  "nvs,data,nvs,,24K\nphy_init,data,phy,,4K\nfactory,app,factory,,1M\n",
			want: []Partition{
				part("nvs", 1, 2, 0x11000, 0x6000, 0),
				part("phy_init", 1, 1, 0x17000, 0x1000, 0),
				part("factory", 0, 0, 0x20000, 0x100000, 0),
			},
		},
		{
			name: "comments, blank lines, CRLF, BOM, spaces, no final newline",
			csv:  "\xef\xbb\xbf# Name, Type\r\n\r\n   # indented comment\r\n  nvs ,  data , nvs , 0x9000 , 0x6000 , \r\n\tfactory,app,factory,0x10000,1M",
			want: []Partition{
				part("nvs", 1, 2, 0x9000, 0x6000, 0),
				part("factory", 0, 0, 0x10000, 0x100000, 0),
			},
		},
		{
			name: "keywords are case-insensitive, numbers allowed",
			csv:  "nvs,DATA,NVS,,0x6000\nota_0,0,0x10,,1M\nota_1,App,Ota_1,,1M\ncustom,0x40,0x01,,4K\n",
			want: []Partition{
				part("nvs", 1, 2, 0x9000, 0x6000, 0),
				part("ota_0", 0, 0x10, 0x10000, 0x100000, 0),
				part("ota_1", 0, 0x11, 0x110000, 0x100000, 0),
				part("custom", 0x40, 1, 0x210000, 0x1000, 0),
			},
		},
		{
			name: "flags",
			csv:  "nvs,data,nvs,,0x6000,\nkeys,data,nvs_keys,,4K,encrypted\nro,data,nvs,,4K,readonly\nboth,data,nvs,,4K,encrypted:readonly\nsp,data,nvs,,4K, readonly:encrypted \n",
			want: []Partition{
				part("nvs", 1, 2, 0x9000, 0x6000, 0),
				part("keys", 1, 4, 0xf000, 0x1000, 1),
				part("ro", 1, 2, 0x10000, 0x1000, 2),
				part("both", 1, 2, 0x11000, 0x1000, 3),
				part("sp", 1, 2, 0x12000, 0x1000, 3),
			},
		},
		{
			name: "missing fields and extra fields",
			csv:  "nvs,data,nvs,0x9000,0x6000,,extra,fields\nblob,data,,,4K\n",
			want: []Partition{
				part("nvs", 1, 2, 0x9000, 0x6000, 0),
				part("blob", 1, SubtypeDataUndefined, 0xf000, 0x1000, 0),
			},
		},
		{
			name: "negative size is an end address",
			csv:  "nvs,data,nvs,,0x6000\nstorage,data,fat,,-0x20000\n",
			want: []Partition{
				part("nvs", 1, 2, 0x9000, 0x6000, 0),
				part("storage", 1, 0x81, 0xf000, 0x11000, 0),
			},
		},
		{
			name: "explicit offsets may leave gaps",
			csv:  "factory,app,factory,0x10000,1M\nnvs,data,nvs,0x110000,0x6000\nphy,data,phy,,4K\n",
			want: []Partition{
				part("factory", 0, 0, 0x10000, 0x100000, 0),
				part("nvs", 1, 2, 0x110000, 0x6000, 0),
				part("phy", 1, 1, 0x116000, 0x1000, 0),
			},
		},
		{
			name: "partition table and bootloader rows",
			opts: Options{PrimaryBootloaderOffset: u32(0x1000), RecoveryBootloaderOffset: u32(0x200000)},
			csv: "bootloader,bootloader,primary,N/A,N/A\npartition_table,partition_table,primary,N/A,N/A\n" +
				"nvs,data,nvs,,24K\nfactory,app,factory,,1M\nrecovery,bootloader,recovery,N/A,N/A\n",
			want: []Partition{
				part("bootloader", 2, 0, 0x1000, 0x7000, 0),
				part("partition_table", 3, 0, 0x8000, 0x1000, 0),
				part("nvs", 1, 2, 0x9000, 0x6000, 0),
				part("factory", 0, 0, 0x10000, 0x100000, 0),
				part("recovery", 2, 2, 0x200000, 0x7000, 0),
			},
		},
		{
			name: "sixteen-byte name",
			csv:  "abcdefghijklmnop,data,nvs,,24K\n",
			want: []Partition{part("abcdefghijklmnop", 1, 2, 0x9000, 0x6000, 0)},
		},
		{
			name: "empty table",
			csv:  "# nothing here\n",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := tt.opts.parseCSV([]byte(tt.csv), "test.csv")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tab.Partitions, tt.want) {
				t.Errorf("got  %+v\nwant %+v", tab.Partitions, tt.want)
			}
			// What parses as CSV must survive the binary form.
			back, err := tt.opts.ParseBinary(tab.encode())
			if err != nil {
				t.Fatalf("ParseBinary(encode()): %v", err)
			}
			if !slices.Equal(back.Partitions, tab.Partitions) {
				t.Errorf("binary round trip: %+v", back.Partitions)
			}
		})
	}
}

func TestParseCSVErrors(t *testing.T) {
	t.Parallel()
	const head = "# Name, Type, SubType, Offset, Size, Flags\n"
	tests := []struct {
		name  string
		opts  Options
		csv   string
		kind  error // nil: only ErrInvalid
		line  int
		field string
		msg   string
	}{
		{"empty type", Options{}, head + "nvs,,nvs,,24K\n", ErrSyntax, 2, "type", "must not be empty"},
		{"unknown type", Options{}, head + "nvs,dta,nvs,,24K\n", ErrSyntax, 2, "type", `unknown type "dta"`},
		{"type out of range", Options{}, head + "nvs,256,0,,24K\n", ErrSyntax, 2, "type", "out of range"},
		{"unknown subtype", Options{}, head + "nvs,data,nvram,,24K\n", ErrSyntax, 2, "subtype", `unknown subtype "nvram"`},
		{"app subtype of data", Options{}, head + "nvs,data,factory,,24K\n", ErrSyntax, 2, "subtype", `unknown subtype "factory"`},
		{"custom type named subtype", Options{}, head + "x,0x40,nvs,,24K\n", ErrSyntax, 2, "subtype", "no named subtypes"},
		{"empty app subtype", Options{}, head + "factory,app,,,1M\n", ErrSyntax, 2, "subtype", "needs a subtype"},
		{"bad offset", Options{}, head + "nvs,data,nvs,0x9g00,24K\n", ErrSyntax, 2, "offset", `invalid number "0x9g00"`},
		{"negative offset", Options{}, head + "nvs,data,nvs,-0x9000,24K\n", ErrSyntax, 2, "offset", "negative"},
		{"empty size", Options{}, head + "nvs,data,nvs,0x9000\n", ErrSyntax, 2, "size", "must not be empty"},
		{"bad size", Options{}, head + "nvs,data,nvs,0x9000,24KB\n", ErrSyntax, 2, "size", `invalid number "24KB"`},
		{"size past 4 GiB", Options{}, head + "nvs,data,nvs,0x9000,0x100000000\n", nil, 2, "size", "beyond 4 GiB"},
		{"end past 4 GiB", Options{}, head + "nvs,data,fat,0x9000,0xfffff000\n", nil, 2, "size", "ends beyond 4 GiB"},
		{"negative size before offset", Options{}, head + "nvs,data,nvs,0x9000,24K\nfat,data,fat,,-0x8000\n", nil, 3, "size", "before its offset"},
		{"unknown flag", Options{}, head + "nvs,data,nvs,,24K,encrypt\n", ErrSyntax, 2, "flags", `unknown flag "encrypt"`},
		{"inline comment", Options{}, head + "nvs,data,nvs,,24K, # main nvs\n", ErrSyntax, 2, "flags", "unknown flag"},
		{"first offset in the table", Options{}, head + "nvs,data,nvs,0x8000,24K\n", ErrBelowTable, 2, "offset", "below the end of the partition table at 0x8000-0x8fff; use 0x9000"},
		{"below a moved table", Options{TableOffset: 0x10000}, head + "nvs,data,nvs,0x9000,24K\n", ErrBelowTable, 2, "offset", "use 0x11000"},
		{"overlap with previous", Options{}, head + "nvs,data,nvs,,24K\nphy,data,phy,0xe000,4K\n", ErrOverlap, 3, "offset", `overlaps the partition before it ("nvs"), which ends at 0xf000`},
		{"out of order", Options{}, head + "factory,app,factory,0x10000,1M\nnvs,data,nvs,0x9000,24K\n", ErrOverlap, 3, "offset", "overlaps"},
		{"misaligned app", Options{}, head + "nvs,data,nvs,,24K\nfactory,app,factory,0x18000,1M\n", ErrAlignment, 3, "offset", "0x18000 is not aligned to 0x10000"},
		{"misaligned data", Options{}, head + "nvs,data,nvs,0x9800,24K\n", ErrAlignment, 2, "offset", "not aligned to 0x1000"},
		{"app size", Options{}, head + "factory,app,factory,0x10000,1001K\n", ErrAlignment, 2, "size", "app size 0xfa400 is not aligned to 0x1000"},
		{"duplicate name", Options{}, head + "nvs,data,nvs,,24K\nnvs,data,nvs,,24K\n", ErrDuplicateName, 3, "name", `"nvs" is used twice (lines 2 and 3)`},
		{"empty name", Options{}, head + ",data,nvs,,24K\n", nil, 2, "name", "empty"},
		{"long name", Options{}, head + "abcdefghijklmnopq,data,nvs,,24K\n", nil, 2, "name", "17 bytes long; at most 16"},
		{"small nvs", Options{}, head + "nvs,data,nvs,,8K\n", nil, 2, "size", "must be flagged readonly"},
		{"readonly otadata", Options{}, head + "otadata,data,ota,,8K,readonly\n", nil, 2, "flags", "cannot be readonly"},
		{"readonly coredump", Options{}, head + "cd,data,coredump,,64K,readonly\n", nil, 2, "flags", "cannot be readonly"},
		{"otadata size", Options{}, head + "otadata,data,ota,,4K\n", nil, 2, "size", "must be 0x2000 bytes, not 0x1000"},
		{"two otadata", Options{}, head + "otadata,data,ota,,8K\nota2,data,ota,,8K\n", nil, 3, "subtype", `more than one otadata (data/ota) partition: "otadata" and "ota2"`},
		{"two tee otadata", Options{}, head + "a,data,tee_ota,,8K\nb,data,tee_ota,,8K\n", nil, 3, "subtype", "more than one TEE otadata"},
		{"type ff", Options{}, head + "x,0xff,0,,4K\n", nil, 2, "type", "reserved"},
		{"subtype ff", Options{}, head + "x,data,0xff,,4K\n", nil, 2, "subtype", "reserved"},
		{"bootloader without option", Options{}, head + "bootloader,bootloader,primary,N/A,N/A\n", ErrSyntax, 2, "offset", "needs the bootloader's offset"},
		{"environment variable", Options{}, head + "nvs,data,nvs,$NVS_OFFSET,24K\n", ErrSyntax, 2, "offset", "not expanded"},
		{"not utf-8", Options{}, head + "nv\xffs,data,nvs,,24K\n", ErrSyntax, 0, "", "not UTF-8"},
		{"utf-16", Options{}, "\xff\xfen\x00v\x00s\x00", ErrSyntax, 0, "", "UTF-16"},
		{"too many", Options{}, head + strings.Repeat("p,data,fat,,4K\n", 5*MaxPartitions), nil, 2 + 4*MaxPartitions + 1, "", "at most 94"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := tt.opts.parseCSV([]byte(tt.csv), "parts.csv")
			if err == nil {
				t.Fatalf("accepted: %+v", tab.Partitions)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if !errors.Is(err, ErrInvalid) || tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("error %q: kind %v, want %v", err, e.Kind, tt.kind)
			}
			if e.File != "parts.csv" || e.Line != tt.line || e.Field != tt.field {
				t.Errorf("error %q at %s:%d field %q, want parts.csv:%d field %q", err, e.File, e.Line, e.Field, tt.line, tt.field)
			}
			if !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if !e.BadInput() {
				t.Error("BadInput() is false")
			}
		})
	}
}

func TestTooManyPartitions(t *testing.T) {
	t.Parallel()
	lines := make([]string, MaxPartitions+1)
	for i := range lines {
		lines[i] = "p" + itoa(uint32(i)) + ",data,fat,,4K\n"
	}
	_, err := Options{}.parseCSV([]byte(strings.Join(lines, "")), "")
	if err == nil || !strings.Contains(err.Error(), "95 partitions; a table holds at most 94") {
		t.Errorf("95 partitions: %v", err)
	}
	// 94 is the most gen_esp32part writes: 94 entries, the MD5 record and
	// at least one 0xFF entry fit in 0xC00 bytes.
	tab, err := Options{}.parseCSV([]byte(strings.Join(lines[:MaxPartitions], "")), "")
	if err != nil {
		t.Fatal(err)
	}
	bin := tab.encode()
	if len(tab.Partitions) != MaxPartitions || len(bin) != MaxLength || !isEndMarker(bin[MaxLength-EntrySize:]) {
		t.Errorf("%d partitions, %d bytes", len(tab.Partitions), len(bin))
	}
	if back, err := (Options{}).ParseBinary(bin); err != nil || len(back.Partitions) != MaxPartitions {
		t.Errorf("ParseBinary: %v", err)
	}
}

func TestCSVTooLarge(t *testing.T) {
	t.Parallel()
	_, err := Options{}.parseCSV([]byte(strings.Repeat("#", maxCSVSize+1)), "big.csv")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big input: %v", err)
	}
}

// validateTable validates t with o, as the parsers do.
func validateTable(o Options, t Table) error {
	return o.validate(t.Partitions, nil, "")
}

// tableMD5 is the checksum encode stores in the MD5 record: the MD5 of all
// entries.
func tableMD5(t Table) [16]byte {
	return md5.Sum(t.appendEntries(nil))
}

// entry encodes one binary entry.
func entry(p Partition) []byte {
	return Table{Partitions: []Partition{p}}.appendEntries(nil)
}

func TestParseBinary(t *testing.T) {
	t.Parallel()
	nvs := part("nvs", 1, 2, 0x9000, 0x6000, 0)
	factory := part("factory", 0, 0, 0x10000, 0x100000, 0)
	ref := Table{Partitions: []Partition{nvs, factory}}.encode()
	ff := bytes.Repeat([]byte{0xff}, EntrySize)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	sector := cat(ref, bytes.Repeat([]byte{0x5a}, TableSize-MaxLength)) // a signature after the table
	weirdFlags := part("nvs", 1, 2, 0x9000, 0x6000, 0x80000001)
	long := part("abcdefghijklmnop", 1, 0x81, 0x20000, 0x1000, 0)
	garbageName := entry(nvs)
	garbageName[12+4] = 'x' // after the NUL: ignored, as ESP-IDF does

	good := []struct {
		name string
		in   []byte
		want []Partition
	}{
		{"reference", ref, []Partition{nvs, factory}},
		{"whole sector", sector, []Partition{nvs, factory}},
		{"no md5 record", cat(entry(nvs), entry(factory), ff), []Partition{nvs, factory}},
		{"just the end marker", ff, nil},
		{"unknown flag bits kept", Table{Partitions: []Partition{weirdFlags}}.encode(), []Partition{weirdFlags}},
		{"sixteen-byte name", Table{Partitions: []Partition{long}}.encode(), []Partition{long}},
		{"bytes after the name's NUL", cat(garbageName, ff), []Partition{nvs}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Options{}.ParseBinary(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tab.Partitions, tt.want) {
				t.Errorf("got %+v, want %+v", tab.Partitions, tt.want)
			}
		})
	}

	md5Of := func(parts ...Partition) []byte {
		sum := tableMD5(Table{Partitions: parts})
		return cat([]byte{0xeb, 0xeb}, bytes.Repeat([]byte{0xff}, 14), sum[:])
	}
	badMagic := entry(factory)
	badMagic[0] = 0x55
	badName := entry(nvs)
	copy(badName[12:], "n\xffs")
	overlapping := part("phy", 1, 1, 0xe000, 0x1000, 0)
	bad := []struct {
		name string
		in   []byte
		kind error
		msg  string
	}{
		{"empty", nil, ErrMalformed, "empty input"},
		{"no end marker", cat(entry(nvs), md5Of(nvs)), ErrMalformed, "without an end-of-table marker"},
		{"cut short", ref[:40], ErrMalformed, "cut short"},
		{"cut in the end marker", cat(entry(nvs), ff[:10]), ErrMalformed, "cut short"},
		{"no end marker in 0xC00", bytes.Repeat(entry(nvs), MaxLength/EntrySize+2), ErrMalformed, "no end-of-table marker in the first 0xc00 bytes"},
		{"entry after md5", cat(entry(nvs), md5Of(nvs), entry(factory), ff), ErrMalformed, "entry 2 at byte 0x40 follows the md5 record"},
		{"two md5 records", cat(entry(nvs), md5Of(nvs), md5Of(nvs), ff), ErrMalformed, "follows the md5 record"},
		{"bad md5", cat(entry(nvs), md5Of(factory), ff), ErrBadMD5, "md5 checksums don't match"},
		{"bad magic", cat(entry(nvs), badMagic, ff), ErrBadMagic, "entry 1 at byte 0x20: invalid magic bytes 55 50 (want aa 50)"},
		{"end marker with magic ff ff only", cat(entry(nvs), []byte{0xff, 0xff, 0xff, 0xff}, make([]byte, 28)), ErrBadMagic, "ff ff"},
		{"name not utf-8", cat(badName, ff), ErrMalformed, "not UTF-8"},
		{"overlap", cat(entry(nvs), entry(overlapping), ff), ErrOverlap, `partition "phy" at 0xe000 overlaps "nvs" at 0x9000-0xefff`},
		{"below table", cat(entry(part("nvs", 1, 2, 0x8000, 0x6000, 0)), ff), ErrBelowTable, "below the end of the partition table (0x9000)"},
		{"duplicate", cat(entry(nvs), entry(part("nvs", 1, 2, 0x20000, 0x6000, 0)), ff), ErrDuplicateName, "entries 0 and 1"},
		{"misaligned", cat(entry(part("nvs", 1, 2, 0x9800, 0x6000, 0)), ff), ErrAlignment, "not aligned"},
		{"empty name", cat(entry(part("", 1, 2, 0x9000, 0x6000, 0)), ff), nil, "name is empty"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Options{}.ParseBinary(tt.in)
			if err == nil {
				t.Fatalf("accepted: %+v", tab.Partitions)
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) || tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("error %q (%T), want kind %v", err, err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if e != nil && (e.Line != 0 || e.Field != "") {
				t.Errorf("binary error has CSV location: %+v", e)
			}
		})
	}
}

func TestTableOffsetOption(t *testing.T) {
	t.Parallel()
	bin := readTestdata(t, "partitions_singleapp.bin")
	_, err := Options{TableOffset: 0x10000}.ParseBinary(bin)
	if !errors.Is(err, ErrBelowTable) || !strings.Contains(err.Error(), "below the end of the partition table (0x11000)") {
		t.Errorf("nvs at 0x9000 with the table at 0x10000: %v", err)
	}
}

func TestParseDetectsForm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     []byte
		binary bool
	}{
		{readTestdata(t, "partitions_singleapp.bin"), true},
		{readTestdata(t, "partitions_singleapp.csv"), false},
		{[]byte{0xeb, 0xeb}, true},
		{[]byte{0xff, 0xff}, true},
		{[]byte{0x55, 0x50, 0x00}, true},
		{[]byte("nvs,data,nvs,,24K"), false},
		{nil, false},
		{[]byte{0xaa}, false},
	}
	for _, tt := range tests {
		if got := IsBinary(tt.in); got != tt.binary {
			t.Errorf("IsBinary(% x…) = %v", tt.in[:min(len(tt.in), 4)], got)
		}
	}
	_, err := Parse([]byte("nvs,data,nvs,,2K\n"), "t.csv")
	if err == nil || !strings.HasPrefix(err.Error(), "t.csv:1: size: ") {
		t.Errorf("CSV error: %v", err)
	}
	_, err = Parse(readTestdata(t, "bad_md5.bin"), "t.bin")
	if err == nil || !strings.HasPrefix(err.Error(), "t.bin: md5") {
		t.Errorf("binary error: %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "p.csv", Line: 3, Field: "size", Msg: "bad"}, "p.csv:3: size: bad"},
		{Error{File: "p.csv", Msg: "bad"}, "p.csv: bad"},
		{Error{Line: 3, Field: "size", Msg: "bad"}, "line 3: size: bad"},
		{Error{Msg: "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	good := Table{Partitions: []Partition{part("nvs", 1, 2, 0x9000, 0x6000, 0)}}
	if err := validateTable(Options{}, good); err != nil {
		t.Errorf("Validate: %v", err)
	}
	bad := Table{Partitions: []Partition{part("nvs", 1, 2, 0x9000, 0x6000, 0), part("phy", 1, 1, 0xe000, 0x1000, 0)}}
	if err := validateTable(Options{}, bad); !errors.Is(err, ErrOverlap) {
		t.Errorf("Validate: %v", err)
	}
	// encode writes what it is given, without checks.
	long := Table{Partitions: []Partition{part("abcdefghijklmnopqrstuvwxyz", 1, 2, 0x9000, 0x6000, 0)}}
	if err := validateTable(Options{}, long); err == nil {
		t.Error("Validate accepts a 26-byte name")
	}
	if b := long.encode(); string(b[12:28]) != "abcdefghijklmnop" {
		t.Errorf("encode name field %q", b[12:28])
	}
}

func TestMarshalJSON(t *testing.T) {
	t.Parallel()
	tab, err := Options{}.parseCSV(readTestdata(t, "partitions_two_ota_encr_nvs.csv"), "")
	if err != nil {
		t.Fatal(err)
	}
	tab.Partitions = append(tab.Partitions, part("custom", 0x40, 0x07, 0x400000, 0x1000, FlagReadonly))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(tab); err != nil {
		t.Fatal(err)
	}
	// A Table value encodes the same as a pointer.
	compact, err := json.Marshal(*tab)
	if err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, compact, "", "  "); err != nil || indented.String()+"\n" != buf.String() {
		t.Errorf("value and pointer encode differently: %v", err)
	}
	golden.Check(t, "testdata", buf.Bytes())

	empty, err := json.Marshal(Table{})
	if err != nil || string(empty) != `{"partitions":[]}` {
		t.Errorf("empty table: %s %v", empty, err)
	}
}

// TestBinaryLayout pins the byte layout of one entry and of the MD5 record.
func TestBinaryLayout(t *testing.T) {
	t.Parallel()
	p := part("nvs_key", TypeData, SubtypeDataNVSKeys, 0x110000, 0x1000, FlagEncrypted)
	b := Table{Partitions: []Partition{p}}.encode()
	if len(b) != MaxLength {
		t.Fatalf("length %d", len(b))
	}
	e := b[:EntrySize]
	if e[0] != 0xaa || e[1] != 0x50 || e[2] != 1 || e[3] != 4 ||
		binary.LittleEndian.Uint32(e[4:]) != 0x110000 || binary.LittleEndian.Uint32(e[8:]) != 0x1000 ||
		string(e[12:28]) != "nvs_key\x00\x00\x00\x00\x00\x00\x00\x00\x00" || binary.LittleEndian.Uint32(e[28:]) != 1 {
		t.Errorf("entry % x", e)
	}
	sum := tableMD5(Table{Partitions: []Partition{p}})
	want := append(append([]byte{0xeb, 0xeb}, bytes.Repeat([]byte{0xff}, 14)...), sum[:]...)
	if !bytes.Equal(b[EntrySize:2*EntrySize], want) {
		t.Errorf("md5 record % x", b[EntrySize:2*EntrySize])
	}
	if !bytes.Equal(b[2*EntrySize:], bytes.Repeat([]byte{0xff}, MaxLength-2*EntrySize)) {
		t.Error("padding is not 0xff")
	}
}
