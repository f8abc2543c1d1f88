package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyImageProblems: an image cut short, empty, blank or not NVS
// fails verification (exit 3) with a message naming the file and the
// sizes; these used to "match" (a truncated image still holds its id and
// key) or exit 1 (issue 13 items 3 and 8). A read-only image verifies with
// its partition size.
func TestVerifyImageProblems(t *testing.T) {
	master := canaryMaster(t)
	dir := t.TempDir()
	run := func(args ...string) (int, string, string) {
		t.Helper()
		f, _, out, errOut := testFactory(t, master)
		code := runCLI(t, f, dir, args...)
		return code, out.String(), errOut.String()
	}
	for _, args := range [][]string{
		{"provision", "dev-1", "--derive", "-o", "dev.bin"},
		{"provision", "dev-ro", "--derive", "--size", "0x2000", "-o", "ro.bin"},
		{"batch", "--count", "2", "--prefix", "b-", "--out", "out"},
	} {
		if code, _, errOut := run(args...); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	dev, err := os.ReadFile(filepath.Join(dir, "dev.bin"))
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, len(dev))
	for i := range random {
		random[i] = byte(i*7919 + i>>8)
	}
	for name, b := range map[string][]byte{
		"8k.bin": dev[:0x2000], "16k.bin": dev[:0x4000], "mid.bin": dev[:0x2800], "empty.bin": nil,
		"blank.bin": bytes.Repeat([]byte{0xff}, len(dev)), "zero.bin": make([]byte, len(dev)), "random.bin": random,
		"out/b-2.bin": dev[:0x4000], "t.csv": []byte("nvs, data, nvs, 0x9000, 0x6000,\n"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		args []string
		want int
		msg  string
	}{
		{[]string{"dev.bin"}, exitOK, ""},
		{[]string{"dev.bin", "--size", "0x6000"}, exitOK, ""},
		{[]string{"out/b-1.bin"}, exitOK, ""},
		{[]string{"ro.bin", "--size", "0x2000"}, exitOK, ""},
		{[]string{"8k.bin"}, exitMismatch, "verification failed for 8k.bin: 2 pages: a read-write partition has at least 3"},
		{[]string{"mid.bin"}, exitMismatch, "verification failed for mid.bin: size 10240 is not a multiple of 4096"},
		{[]string{"16k.bin", "--size", "0x6000"}, exitMismatch, "16k.bin: the image is 16384 bytes but its partition is 24576 bytes: it was cut short (partition size from --size)"},
		{[]string{"16k.bin", "--partition-table", "t.csv"}, exitMismatch, "(partition size from partition nvs of t.csv)"},
		{[]string{"out/b-2.bin"}, exitMismatch, "it was cut short (partition size from " + filepath.Join("out", "manifest.json") + ")"},
		{[]string{"dev.bin", "--size", "0x4000"}, exitMismatch, "the image is 24576 bytes, more than its 16384-byte partition"},
		{[]string{"ro.bin"}, exitMismatch, "hint: an image of a read-only partition"},
		{[]string{"empty.bin"}, exitMismatch, "verification failed for empty.bin: the image is empty (0 bytes)"},
		{[]string{"blank.bin"}, exitMismatch, "verification failed for blank.bin: no usmp/device_id string in the image"},
		{[]string{"zero.bin"}, exitMismatch, "verification failed for zero.bin: not an NVS partition image"},
		{[]string{"random.bin"}, exitMismatch, "verification failed for random.bin: not an NVS partition image"},
		{[]string{"dev.bin", "--size", "12k"}, exitUsage, "--size"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			for _, js := range []bool{false, true} {
				args := append([]string{"verify"}, tt.args...)
				if js {
					args = append(args, "--json")
				}
				code, out, errOut := run(args...)
				if code != tt.want || !strings.Contains(errOut, tt.msg) {
					t.Fatalf("%v: exit %d, stderr %q; want exit %d and %q", args, code, errOut, tt.want, tt.msg)
				}
				if tt.want != exitOK && out != "" {
					t.Errorf("%v: stdout %q", args, out)
				}
				for _, f := range newScanner(master, "dev-1", "dev-ro", "b-1", "b-2").Scan("verify", []byte(out+errOut)) {
					t.Error(f)
				}
			}
		})
	}
}
