package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseFlashOffset: --offset is the whole text as a number, the way
// esptool reads an address; fmt.Sscan took the leading digits of 0x9000zz
// and 36864.9 (issue 13 item 8). Errors never repeat the text (item 5).
func TestParseFlashOffset(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // -1: refused
	}{
		{"0x9000", 0x9000},
		{"0X9000", 0x9000},
		{"36864", 36864},
		{"0o110000", 0x9000},
		{"0b1001000000000000", 0x9000},
		{"0", 0},
		{"0xffff000", 0xffff000},
		{"0x9000zz", -1},
		{"36864.9", -1},
		{"36864 ", -1},
		{" 36864", -1},
		{"+36864", -1},
		{"-4096", -1},
		{"0x", -1},
		{"", -1},
		{"9000h", -1},
		{"0x9001", -1},
		{"0x100000000", -1},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseFlashOffset(tt.in)
			if tt.want < 0 {
				if err == nil {
					t.Fatalf("accepted as %#x", got)
				}
				if exitCodeFor(err) != exitUsage {
					t.Errorf("exit %d, want %d", exitCodeFor(err), exitUsage)
				}
				if len(strings.TrimSpace(tt.in)) >= 4 && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
					t.Errorf("error repeats the value: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %#x, %v; want %#x", got, err, tt.want)
			}
		})
	}
}

// TestFlashOffsetExitCodes runs flash --print with good and bad offsets:
// bad ones exit 2 and print no command. No esptool is on PATH, so the
// command is esptool v5's.
func TestFlashOffsetExitCodes(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", t.TempDir())
	if err := os.WriteFile(filepath.Join(dir, "d.bin"), make([]byte, 0x6000), 0o600); err != nil {
		t.Fatal(err)
	}
	for offset, want := range map[string]int{"0x9000": exitOK, "0xd000": exitOK, "0x9000zz": exitUsage, "36864.9": exitUsage} {
		f, _, out, errOut := testFactory(t, "")
		if code := runCLI(t, f, dir, "flash", "d.bin", "--port", "/dev/null", "--print", "--offset", offset); code != want {
			t.Errorf("--offset %s: exit %d, want %d; %s", offset, code, want, errOut)
		}
		if want == exitOK && out.String() != "esptool --chip auto --port /dev/null --baud 460800 write-flash "+offset+" d.bin\n" {
			t.Errorf("--offset %s: command %q", offset, out)
		}
		if want != exitOK && out.Len() != 0 {
			t.Errorf("--offset %s: printed %q", offset, out)
		}
	}
}
