package nvs

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

const hdr = "key,type,encoding,value\n"

// parse is ParseCSV of a string.
func parse(t *testing.T, src string, opts CSVOptions) ([]Row, error) {
	t.Helper()
	return ParseCSV(strings.NewReader(src), "in.csv", opts)
}

func TestSplitCSV(t *testing.T) {
	t.Parallel()
	// Expected records follow Python's csv module on the same text (read
	// in text mode, '#' lines dropped), checked with python3 while
	// writing this parser.
	tests := []struct {
		name string
		src  string
		want [][]string
		line []int
	}{
		{"plain", "a,b\nc,d\n", [][]string{{"a", "b"}, {"c", "d"}}, []int{1, 2}},
		{"no final newline", "a,b", [][]string{{"a", "b"}}, []int{1}},
		{"crlf and cr", "a,b\r\nc\rd\n", [][]string{{"a", "b"}, {"c"}, {"d"}}, []int{1, 2, 3}},
		{"empty fields", ",a,,\n", [][]string{{"", "a", "", ""}}, nil},
		{"blank line", "a\n\nb\n", [][]string{{"a"}, {}, {"b"}}, []int{1, 2, 3}},
		{"spaces kept", " a , b \n", [][]string{{" a ", " b "}}, nil},
		{"quoted comma", `"a,b",c` + "\n", [][]string{{"a,b", "c"}}, nil},
		{"doubled quote", `"say ""hi""",x` + "\n", [][]string{{`say "hi"`, "x"}}, nil},
		{"quote inside field", `ab"c,d` + "\n", [][]string{{`ab"c`, "d"}}, nil},
		{"text after closing quote", `"ab"cd,e` + "\n", [][]string{{"abcd", "e"}}, nil},
		{"empty quoted", `"",""` + "\n", [][]string{{"", ""}}, nil},
		{"multi-line quoted", "k,\"a\r\nb\"\nnext\n", [][]string{{"k", "a\nb"}, {"next"}}, []int{1, 3}},
		{"comment lines", "# c\nk,v\n#x,y\n", [][]string{{"k", "v"}}, []int{2}},
		{"comment inside quoted", "k,\"a\n#dropped\nb\"\n", [][]string{{"k", "a\nb"}}, nil},
		{"hash not first", " #a,b\n", [][]string{{" #a", "b"}}, nil},
		{"utf-8", "é,ü\n", [][]string{{"é", "ü"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, _, err := splitCSV([]byte(tt.src), "x.csv")
			if err != nil {
				t.Fatal(err)
			}
			var got [][]string
			var lines []int
			for _, r := range recs {
				f := []string{}
				for _, b := range r.fields {
					f = append(f, string(b))
				}
				got = append(got, f)
				lines = append(lines, r.line)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("records %q, want %q", got, tt.want)
			}
			if tt.line != nil && !reflect.DeepEqual(lines, tt.line) {
				t.Errorf("lines %v, want %v", lines, tt.line)
			}
		})
	}
	if _, _, err := splitCSV([]byte("k,\"abc\n"), "x.csv"); err == nil || !strings.Contains(err.Error(), "x.csv:1:2: quoted field not terminated") {
		t.Errorf("unterminated quote: err = %v", err)
	}
	long := "k," + strings.Repeat("é", MaxCSVFieldLen) + "\n"
	if _, _, err := splitCSV([]byte(long), "x.csv"); err != nil {
		t.Errorf("field of %d characters: %v", MaxCSVFieldLen, err)
	}
	if _, _, err := splitCSV([]byte("k,\""+strings.Repeat("a", MaxCSVFieldLen)+"b\""), "x.csv"); err == nil {
		t.Error("field over the limit accepted")
	}
}

func TestParseCSVValues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, data := range map[string]string{
		"bin":    "\x00\x01\xff",
		"text":   "héllo\n",
		"hex":    " \tDEADbeef\r\n",
		"b64":    "3q2+7w==\n",
		"int":    " 42\n",
		"badutf": "\xff",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		row  string
		want Row
	}{
		{"namespace", "ns,namespace,,", Row{Kind: RowNamespace, Key: "ns"}},
		{"namespace short row", "ns,namespace", Row{Kind: RowNamespace, Key: "ns"}},
		{"u8", "k,data,u8,255", Row{Key: "k", Type: TypeU8, Uint: 255}},
		{"U8 upper case", "k,data,U8,7", Row{Key: "k", Type: TypeU8, Uint: 7}},
		{"i8", "k,data,i8,-128", Row{Key: "k", Type: TypeI8, Int: -128}},
		{"i64 min", "k,data,i64,-9223372036854775808", Row{Key: "k", Type: TypeI64, Int: -1 << 63}},
		{"u64 max", "k,data,u64,18446744073709551615", Row{Key: "k", Type: TypeU64, Uint: 1<<64 - 1}},
		{"string", "k,data,string,hello world", Row{Key: "k", Type: TypeString, Data: []byte("hello world")}},
		{"empty string", "k,data,string,", Row{Key: "k", Type: TypeString, Data: []byte{}}},
		{"hex2bin", "k,data,hex2bin,  0aFF\t", Row{Key: "k", Type: TypeBlob, Data: []byte{0x0a, 0xff}}},
		{"hex2bin empty", "k,data,hex2bin,", Row{Key: "k", Type: TypeBlob, Data: []byte{}}},
		{"base64", "k,data,base64,O+oyIqmp", Row{Key: "k", Type: TypeBlob, Data: []byte{0x3b, 0xea, 0x32, 0x22, 0xa9, 0xa9}}},
		{"binary utf-8", "k,data,binary,é", Row{Key: "k", Type: TypeBlob, Data: []byte("é")}},
		{"HEX2BIN decoded", "k,data,HEX2BIN,0a", Row{Key: "k", Type: TypeBlob, Data: []byte{0x0a}}},
		{"blob_fill", "k,data,blob_fill(5;0xee),ab", Row{Key: "k", Type: TypeBlob, Data: []byte{'a', 'b', 0xee, 0xee, 0xee}}},
		{"blob_fill empty", "k,data,blob_fill(2;0x00),", Row{Key: "k", Type: TypeBlob, Data: []byte{0, 0}}},
		{"blob_sz_fill", "k,data,blob_sz_fill(3;0xAA),x", Row{Key: "k", Type: TypeBlob, Data: []byte{1, 0, 0, 0, 'x', 0xaa, 0xaa}}},
		{"file binary", "k,file,binary,bin", Row{Key: "k", Type: TypeBlob, Data: []byte("\x00\x01\xff")}},
		{"file string", "k,file,string,text", Row{Key: "k", Type: TypeString, Data: []byte("héllo\n")}},
		{"file hex2bin", "k,file,hex2bin,hex", Row{Key: "k", Type: TypeBlob, Data: []byte{0xde, 0xad, 0xbe, 0xef}}},
		{"file base64", "k,file,base64,b64", Row{Key: "k", Type: TypeBlob, Data: []byte{0xde, 0xad, 0xbe, 0xef}}},
		{"file int", "k,file,u16,int", Row{Key: "k", Type: TypeU16, Uint: 42}},
		{"file blob_fill", "k,file,blob_fill(4;0x11),bin", Row{Key: "k", Type: TypeBlob, Data: []byte{0, 1, 0xff, 0x11}}},
		{"file absolute", "k,file,binary," + filepath.Join(dir, "bin"), Row{Key: "k", Type: TypeBlob, Data: []byte("\x00\x01\xff")}},
		{"extra empty fields", "k,data,u8,1,,", Row{Key: "k", Type: TypeU8, Uint: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := parse(t, hdr+tt.row+"\n", CSVOptions{BaseDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 {
				t.Fatalf("%d rows", len(rows))
			}
			got := rows[0]
			tt.want.File, tt.want.Line = "in.csv", 2
			got.keyCol, got.valueCol = 0, 0
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("row %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseCSVHeader(t *testing.T) {
	t.Parallel()
	// Columns are found by name, in any order; unknown columns are ignored.
	rows, err := parse(t, "value,note,encoding,key,type\n7,x,u8,k,data\n", CSVOptions{})
	if err != nil || len(rows) != 1 || rows[0].Key != "k" || rows[0].Uint != 7 {
		t.Errorf("reordered header: %+v, %v", rows, err)
	}
	// A BOM and blank lines before the header are skipped.
	rows, err = parse(t, "\ufeff\n\n"+hdr+"ns,namespace,,\n", CSVOptions{})
	if err != nil || len(rows) != 1 || rows[0].Line != 4 {
		t.Errorf("BOM: %+v, %v", rows, err)
	}
	// An empty file or a header alone give no rows, like the reference.
	for _, src := range []string{"", "# only a comment\n", hdr} {
		if rows, err := parse(t, src, CSVOptions{}); err != nil || len(rows) != 0 {
			t.Errorf("%q: %v, %v", src, rows, err)
		}
	}
}

// TestParseCSVErrors checks that bad rows give a *CSVError at the right
// place, and that the message never holds the value (R9).
func TestParseCSVErrors(t *testing.T) {
	t.Parallel()
	const secret = "S3cr3tV4lu3"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.txt"), []byte("\xff\xfe"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nul.txt"), []byte("a\x00b"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		src   string
		line  int
		col   int
		field string
		msg   string
		is    error
	}{
		{"missing header", "usmp,namespace,,\nk,data,u8,1\n", 1, 0, "", "missing header line", nil},
		{"duplicate header column", "key,type,encoding,value,key\n", 1, 5, "", "twice", nil},
		{"bad utf-8", hdr + "k,data,string,\xff" + secret + "\n", 2, 0, "", "invalid UTF-8", nil},
		{"empty key", hdr + ",data,u8,1\n", 2, 1, "key", "empty key", nil},
		{"long key", hdr + "key_is_16_chars_,data,u8,1\n", 2, 1, "key", "longer than 15 bytes", nil},
		{"long utf-8 key", hdr + "ääääääää,data,u8,1\n", 2, 1, "key", "longer than 15 bytes", nil},
		{"unknown type", hdr + "k,foo,u8,1\n", 2, 2, "type", "unknown type", nil},
		{"upper-case type", hdr + "k,DATA,u8,1\n", 2, 2, "type", "unknown type", nil},
		{"missing encoding", hdr + "k,data\n", 2, 3, "encoding", "missing encoding", nil},
		{"missing value", hdr + "k,data,u8\n", 2, 4, "value", "missing value", nil},
		{"unsupported encoding", hdr + "k,data,float,1.5\n", 2, 3, "encoding", "unsupported encoding", nil},
		{"bad fill", hdr + "k,data,blob_fill(4;ee),x\n", 2, 3, "encoding", "invalid encoding format", nil},
		{"fill trailing junk", hdr + "k,data,blob_fill(4;0xee)x,x\n", 2, 3, "encoding", "invalid encoding format", nil},
		{"fill too long value", hdr + "k,data,blob_fill(4;0xee)," + secret + "\n", 2, 4, "value", "longer than the fill length", nil},
		{"int syntax", hdr + "k,data,u32,0x10\n", 2, 4, "value", "not a base-10 integer", nil},
		{"int empty", hdr + "k,data,u8,\n", 2, 4, "value", "not a base-10 integer", nil},
		{"u8 range", hdr + "k,data,u8,256\n", 2, 4, "value", "out of range for u8", nil},
		{"u8 negative", hdr + "k,data,u8,-1\n", 2, 4, "value", "out of range for u8", nil},
		{"i16 range", hdr + "k,data,i16,32768\n", 2, 4, "value", "out of range for i16", nil},
		{"u64 range", hdr + "k,data,u64,18446744073709551616\n", 2, 4, "value", "out of range for u64", nil},
		{"i64 range", hdr + "k,data,i64,-9223372036854775809\n", 2, 4, "value", "out of range for i64", nil},
		{"odd hex", hdr + "k,data,hex2bin,abc" + secret + "x\n", 2, 4, "value", "odd number of hex digits", nil},
		{"bad hex", hdr + "k,data,hex2bin,zz" + secret + "x\n", 2, 4, "value", "invalid hex digit", nil},
		{"base64 padding", hdr + "k,data,base64,abc\n", 2, 4, "value", "incorrect padding", nil},
		{"base64 one extra", hdr + "k,data,base64,abcde\n", 2, 4, "value", "1 more than a multiple of 4", nil},
		{"base64 non-ascii", hdr + "k,data,base64,QUJD\u00e9\n", 2, 4, "value", "non-ASCII", nil},
		{"string nul", hdr + "k,data,string,a\x00" + secret + "\n", 2, 4, "value", "NUL", nil},
		{"too many fields", hdr + "k,data,string,a," + secret + "\n", 2, 5, "", "more fields than the header", nil},
		{"missing file", hdr + "k,file,binary," + secret + ".bin\n", 2, 4, "value", "cannot read the file", fs.ErrNotExist},
		{"empty file name", hdr + "k,file,binary,\n", 2, 4, "value", "cannot read the file", nil},
		{"file not utf-8", hdr + "k,file,string,bad.txt\n", 2, 4, "value", "not valid UTF-8", nil},
		{"file string nul", hdr + "k,file,string,nul.txt\n", 2, 4, "value", "NUL", nil},
		{"unterminated quote", hdr + "k,data,string,\"" + secret + "\n", 2, 4, "", "not terminated", nil},
		{"line numbers count comments", "#c\n" + hdr + "#c\n\nk,data,u8,x\n", 5, 4, "value", "not a base-10", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.src, CSVOptions{BaseDir: dir})
			var ce *CSVError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *CSVError", err)
			}
			if ce.File != "in.csv" || ce.Line != tt.line || ce.Column != tt.col || ce.Field != tt.field || !strings.Contains(ce.Msg, tt.msg) {
				t.Errorf("got %s:%d:%d field %q msg %q\nwant line %d col %d field %q msg %q", ce.File, ce.Line, ce.Column, ce.Field, ce.Msg, tt.line, tt.col, tt.field, tt.msg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.is)
			}
			// R9: the error never holds any part of the value.
			if leak := leaked(err.Error(), secret); leak != "" {
				t.Errorf("error %q leaks %q of the value", err, leak)
			}
		})
	}
}

// leaked returns a substring of secret of 4 or more bytes found in msg, or
// "".
func leaked(msg, secret string) string {
	for i := 0; i+4 <= len(secret); i++ {
		if strings.Contains(msg, secret[i:i+4]) {
			return secret[i : i+4]
		}
	}
	return ""
}

func TestCSVErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  CSVError
		want string
	}{
		{CSVError{File: "a.csv", Line: 3, Column: 4, Field: "value", Msg: "bad"}, "a.csv:3:4: value: bad"},
		{CSVError{File: "a.csv", Line: 3, Msg: "bad"}, "a.csv:3: bad"},
		{CSVError{Row: 2, Field: "key", Msg: "bad"}, "csv: row 2: key: bad"},
		{CSVError{File: "a.csv", Msg: "bad", Err: fs.ErrNotExist}, "a.csv: bad: file does not exist"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestParsePyInt(t *testing.T) {
	t.Parallel()
	// Python's int(s) on these, checked with python3 3.11.
	tests := []struct {
		in    string
		neg   bool
		mag   uint64
		state int
	}{
		{"0", false, 0, intOK},
		{"255", false, 255, intOK},
		{"+10718", false, 10718, intOK},
		{"-128", true, 128, intOK},
		{"000207", false, 207, intOK},
		{" \t42\n ", false, 42, intOK},
		{"1_000", false, 1000, intOK},
		{"0_1", false, 1, intOK},
		{"-0", true, 0, intOK},
		{"\u00a012\u3000", false, 12, intOK},       // Unicode spaces
		{"\u0663\u0661", false, 31, intOK},         // Arabic-Indic digits
		{"\U0001D7D0\U0001D7D7", false, 29, intOK}, // mathematical bold digits
		{"18446744073709551615", false, 1<<64 - 1, intOK},
		{"18446744073709551616", false, 0, intRange},
		{"99999999999999999999999", false, 0, intRange},
		{"", false, 0, intSyntax},
		{" ", false, 0, intSyntax},
		{"+", false, 0, intSyntax},
		{"0x10", false, 0, intSyntax},
		{"1.5", false, 0, intSyntax},
		{"1e3", false, 0, intSyntax},
		{"_1", false, 0, intSyntax},
		{"1_", false, 0, intSyntax},
		{"1__0", false, 0, intSyntax},
		{"+_1", false, 0, intSyntax},
		{"- 1", false, 0, intSyntax},
		{"1 2", false, 0, intSyntax},
		{"++1", false, 0, intSyntax},
		{"\x1c5", false, 0, intSyntax}, // int() does not strip U+001C
		{"½", false, 0, intSyntax},
	}
	for _, tt := range tests {
		neg, mag, st := parsePyInt([]byte(tt.in), false)
		if st != tt.state || st == intOK && (neg != tt.neg || mag != tt.mag) {
			t.Errorf("parsePyInt(%q) = %v, %d, %d; want %v, %d, %d", tt.in, neg, mag, st, tt.neg, tt.mag, tt.state)
		}
	}
	// int() of bytes (file rows) knows only ASCII.
	if _, _, st := parsePyInt([]byte("\u0663"), true); st != intSyntax {
		t.Error("ASCII-only parse accepted an Arabic-Indic digit")
	}
	if _, mag, st := parsePyInt([]byte(" 12\r\n"), true); st != intOK || mag != 12 {
		t.Error("ASCII-only parse failed on 12")
	}
}

func TestDecodePyBase64(t *testing.T) {
	t.Parallel()
	// binascii.a2b_base64 (non-strict) on these, checked with python3 3.11.
	tests := []struct {
		in   string
		want string // hex, or "err"
	}{
		{"QQ==", "41"},
		{"QUI=", "4142"},
		{"QUJD", "414243"},
		{"", ""},
		{"QQ=x==", "410c"},
		{"Q=Q==", "41"},
		{"QQ==QUI=", "41"},
		{"QUI=xx", "4142"},
		{"=QQ==", "41"},
		{"QQ\n==", "41"},
		{"Q Q==", "41"},
		{"Q!Q*==", "41"},
		{"Q===", "err"},
		{"QQ", "err"},
		{"QQ=", "err"},
		{"abc", "err"},
	}
	for _, tt := range tests {
		got, msg := decodePyBase64([]byte(tt.in))
		if tt.want == "err" {
			if msg == "" {
				t.Errorf("a2b_base64(%q) = %x, want an error", tt.in, got)
			}
			continue
		}
		if msg != "" || hex.EncodeToString(got) != tt.want {
			t.Errorf("a2b_base64(%q) = %x, %q; want %s", tt.in, got, msg, tt.want)
		}
	}
}

func TestParseCSVReadFileOption(t *testing.T) {
	t.Parallel()
	var asked string
	opts := CSVOptions{BaseDir: "base", ReadFile: func(name string) ([]byte, error) {
		asked = name
		return []byte("xyz"), nil
	}}
	rows, err := parse(t, hdr+"ns,namespace,,\nk,file,binary,sub/f.bin\n", opts)
	if err != nil || !bytes.Equal(rows[1].Data, []byte("xyz")) || asked != filepath.Join("base", "sub", "f.bin") {
		t.Errorf("rows %+v, err %v, asked %q", rows, err, asked)
	}
	opts.ReadFile = func(string) ([]byte, error) { return make([]byte, MaxValueFileSize+1), nil }
	if _, err := parse(t, hdr+"k,file,binary,f\n", opts); err == nil {
		t.Error("oversized file accepted")
	}
}

// FuzzParseCSV checks that ParseCSV never panics, and that its errors never
// hold a 4-byte piece of a secret-looking value (R9, R28).
func FuzzParseCSV(f *testing.F) {
	for _, name := range []string{"usmp_psk.csv", "csv_features.csv", "int_types.csv", "varlen_types.csv", "strings_keys.csv"} {
		b, err := os.ReadFile(filepath.Join(genDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), "")
	}
	f.Add(hdr+"k,data,hex2bin,", "zz")
	f.Add(hdr+"k,data,u8,", "9999")
	f.Add(hdr+"k,data,base64,", "Q===")
	f.Add(hdr+"k,data,\"blob_fill(3;0x00)\",", "abcd")
	f.Add(hdr+"k,data,string,\"", "x\n#y\n")
	const marker = "Qx7!Zq9#"
	f.Fuzz(func(t *testing.T, prefix, value string) {
		src := prefix + value + marker + value
		rows, err := ParseCSV(strings.NewReader(src), "f.csv", CSVOptions{
			ReadFile: func(string) ([]byte, error) { return []byte(value), nil },
		})
		if err != nil {
			var ce *CSVError
			if !errors.As(err, &ce) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if strings.Contains(prefix, marker[:4]) {
				return // the "secret" also appears outside the value
			}
			if leak := leaked(err.Error(), marker); leak != "" {
				t.Fatalf("error %q leaks %q", err, leak)
			}
			return
		}
		// Rows that parse must generate or fail cleanly.
		if _, err := Generate(rows, 0x6000, 2); err != nil {
			var ce *CSVError
			if !errors.As(err, &ce) {
				t.Fatalf("Generate error of type %T: %v", err, err)
			}
			if !strings.Contains(prefix, marker[:4]) && leaked(err.Error(), marker) != "" {
				t.Fatalf("Generate error %q leaks the value", err)
			}
		}
	})
}

func TestReadAllWiping(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789"), 2000)
	got, err := readAllWiping(iotest.OneByteReader(bytes.NewReader(data)), len(data))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if _, err := readAllWiping(bytes.NewReader(data), len(data)-1); !errors.Is(err, errTooLarge) {
		t.Errorf("over the limit: err = %v", err)
	}
	if _, err := readAllWiping(iotest.ErrReader(fs.ErrClosed), 10); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("read error: err = %v", err)
	}
	if _, err := ParseCSV(bytes.NewReader(make([]byte, MaxCSVSize+1)), "big.csv", CSVOptions{}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized CSV: err = %v", err)
	}
}

// TestWipeRows checks that each row owns its Data, so that WipeRows
// clears the values and nothing else (R26).
func TestWipeRows(t *testing.T) {
	t.Parallel()
	rows, err := parse(t, hdr+"ns,namespace,,\na,data,string,\"sec,ret\"\nb,data,binary,secret\nc,data,hex2bin,5ec2e7\n", CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keep := bytes.Clone(rows[2].Data)
	wipe(rows[1].Data)
	if !bytes.Equal(rows[2].Data, keep) {
		t.Error("rows share a buffer")
	}
	WipeRows(rows)
	for _, r := range rows {
		if len(r.Data) > 0 && !bytes.Equal(r.Data, make([]byte, len(r.Data))) {
			t.Errorf("row %s not wiped: % x", r.Key, r.Data)
		}
	}
}
