package cli

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
)

// TestVerifyPortFlags: verify takes IMAGE or --port, never both; the
// device-reading flags need --port; --offset excludes --partition-table.
func TestVerifyPortFlags(t *testing.T) {
	t.Chdir(t.TempDir())
	var got *verifyOptions
	build := func(f *Factory, r *rootOptions) *cobra.Command {
		return newVerifyCmd(f, r, func(o *verifyOptions) error { got = o; return nil })
	}
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"d.bin"}, exitOK},
		{[]string{"--port", "/dev/ttyUSB0"}, exitOK},
		{[]string{"--port", "/dev/ttyUSB0", "--offset", "0xd000", "--size", "0x6000", "--baud", "115200", "--chip", "esp32", "--keys", "k.bin", "--device", "dev-a"}, exitOK},
		{[]string{"--port", "/dev/ttyUSB0", "d.bin"}, exitUsage},
		{[]string{}, exitUsage},
		{[]string{"d.bin", "--offset", "0x9000"}, exitUsage},
		{[]string{"d.bin", "--baud", "115200"}, exitUsage},
		{[]string{"d.bin", "--chip", "esp32"}, exitUsage},
		{[]string{"--port", "/dev/ttyUSB0", "--offset", "0x9000", "--partition-table", "p.csv"}, exitUsage},
		{[]string{"--port", "/dev/ttyUSB0", "--size", "0x6000", "--partition-table", "p.csv"}, exitUsage},
		{[]string{"--port", "/dev/ttyUSB0", "--device", "bad id"}, exitUsage},
	}
	for _, tt := range tests {
		got = nil
		code := withRunF(t, []string{"verify"}, build, append([]string{"verify"}, tt.args...)...)
		if code != tt.want || (code == exitOK) != (got != nil) {
			t.Errorf("%v: exit %d (ran: %v), want %d", tt.args, code, got != nil, tt.want)
		}
	}
	got = nil
	withRunF(t, []string{"verify"}, build, "verify", "--port", "COM3", "--offset", "0xd000", "--baud", "115200", "--chip", "esp32")
	if got == nil || got.esp.port != "COM3" || got.offset != "0xd000" || got.esp.baud != 115200 || got.esp.chip != "esp32" || got.image != "" {
		t.Fatalf("options %+v", got)
	}
}

// TestVerifyPortRegion: where verify --port reads, and how bad input is
// refused (exit 2) before esptool runs.
func TestVerifyPortRegion(t *testing.T) {
	dir := t.TempDir()
	table := filepath.Join(dir, "parts.csv")
	if err := os.WriteFile(table, []byte("nvs, data, nvs, 0xd000, 0x5000,\nfactory, app, factory, 0x20000, 1M,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		opts   verifyOptions
		offset int64
		size   int
		source string
		code   int
	}{
		{"defaults", verifyOptions{}, 0x9000, 0x6000, "the default 0x6000", exitOK},
		{"offset", verifyOptions{offset: "0x10000"}, 0x10000, 0x6000, "the default 0x6000", exitOK},
		{"offset and size", verifyOptions{offset: "0x10000", size: partitionSizeFlags{size: "0x3000"}}, 0x10000, 0x3000, "--size", exitOK},
		{"table", verifyOptions{size: partitionSizeFlags{partitionTable: table, partitionName: "nvs"}}, 0xd000, 0x5000, "partition nvs of " + table, exitOK},
		{"bad offset", verifyOptions{offset: "0x9000zz"}, 0, 0, "", exitUsage},
		{"unaligned offset", verifyOptions{offset: "0x9001"}, 0, 0, "", exitUsage},
		{"bad size", verifyOptions{size: partitionSizeFlags{size: "lots"}}, 0, 0, "", exitUsage},
		{"no such partition", verifyOptions{size: partitionSizeFlags{partitionTable: table, partitionName: "nvs2"}}, 0, 0, "", exitUsage},
		{"no table", verifyOptions{size: partitionSizeFlags{partitionTable: filepath.Join(dir, "none.csv"), partitionName: "nvs"}}, 0, 0, "", exitUsage},
	}
	for _, tt := range tests {
		offset, size, source, err := tt.opts.portRegion(context.Background())
		if exitCodeFor(err) != tt.code {
			t.Errorf("%s: %v (exit %d), want exit %d", tt.name, err, exitCodeFor(err), tt.code)
			continue
		}
		if err == nil && (offset != tt.offset || size != tt.size || source != tt.source) {
			t.Errorf("%s: 0x%x 0x%x %q, want 0x%x 0x%x %q", tt.name, offset, size, source, tt.offset, tt.size, tt.source)
		}
	}
}
