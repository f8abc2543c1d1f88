package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseEsptoolVersion(t *testing.T) {
	tests := []struct {
		out     string
		major   int
		version string
	}{
		{"esptool.py v4.8.1\n4.8.1\n", 4, "4.8.1"},
		{"esptool v5.1.0\n5.1.0\n", 5, "5.1.0"},
		{"esptool.py v3.3.4\n3.3.4\n", 3, "3.3.4"},
		{"esptool v5.0.dev3\n5.0.dev3\n", 5, "5.0"},
		{"5.2.0\n", 5, "5.2.0"},
		{"Warning: DEPRECATED: 'esptool.py' is deprecated. Please use 'esptool' instead.\nesptool v5.0.2\n5.0.2\n", 5, "5.0.2"},
		{"no idea\n", 0, ""},
		{"", 0, ""},
		{"v0.1\n", 0, ""},
	}
	for _, tt := range tests {
		major, v, ok := parseEsptoolVersion([]byte(tt.out))
		if major != tt.major || v != tt.version || ok != (tt.major != 0) {
			t.Errorf("%q: got %d %q %v, want %d %q", tt.out, major, v, ok, tt.major, tt.version)
		}
	}
}

// TestEsptoolArgs is the argv each esptool version accepts: the global
// connection options first, then the command as that version spells it.
func TestEsptoolArgs(t *testing.T) {
	conn := &esptoolFlags{port: "/dev/ttyUSB0", baud: 460800, chip: "auto"}
	tests := []struct {
		major       int
		write, read string
	}{
		{5, "--chip auto --port /dev/ttyUSB0 --baud 460800 write-flash 0xd000 d1.bin", "--chip auto --port /dev/ttyUSB0 --baud 460800 read-flash 0xd000 0x6000 /t/nvs.bin"},
		{6, "--chip auto --port /dev/ttyUSB0 --baud 460800 write-flash 0xd000 d1.bin", "--chip auto --port /dev/ttyUSB0 --baud 460800 read-flash 0xd000 0x6000 /t/nvs.bin"},
		{4, "--chip auto --port /dev/ttyUSB0 --baud 460800 write_flash 0xd000 d1.bin", "--chip auto --port /dev/ttyUSB0 --baud 460800 read_flash 0xd000 0x6000 /t/nvs.bin"},
		{3, "--chip auto --port /dev/ttyUSB0 --baud 460800 write_flash 0xd000 d1.bin", "--chip auto --port /dev/ttyUSB0 --baud 460800 read_flash 0xd000 0x6000 /t/nvs.bin"},
		{0, "--chip auto --port /dev/ttyUSB0 --baud 460800 write_flash 0xd000 d1.bin", "--chip auto --port /dev/ttyUSB0 --baud 460800 read_flash 0xd000 0x6000 /t/nvs.bin"},
	}
	for _, tt := range tests {
		e := &esptool{major: tt.major}
		if got := strings.Join(e.writeArgs(conn, 0xd000, "d1.bin"), " "); got != tt.write {
			t.Errorf("v%d write: %q, want %q", tt.major, got, tt.write)
		}
		if got := strings.Join(e.readArgs(conn, 0xd000, 0x6000, "/t/nvs.bin"), " "); got != tt.read {
			t.Errorf("v%d read: %q, want %q", tt.major, got, tt.read)
		}
	}
}

// TestEsptoolEnv: the child's environment is an allow-list (R4).
func TestEsptoolEnv(t *testing.T) {
	vars := map[string]string{"PATH": "/usr/bin", "HOME": "/home/u", "USMP_MASTER_SECRET": "canary", "USMP_REGISTRY_KEY": "k", "AWS_SECRET_ACCESS_KEY": "x", "PGPASSWORD": "p", "TMPDIR": "/tmp/x"}
	got := esptoolEnv(func(k string) string { return vars[k] })
	want := []string{"PATH=/usr/bin", "HOME=/home/u", "TMPDIR=/tmp/x"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// fakeTool writes an executable shell script standing in for esptool.
func fakeTool(t *testing.T, dir, name, body string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("shell scripts stand in for esptool")
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFindEsptool: esptool before esptool.py; its version asked once;
// an unknown version falls back to the v4 names with a warning.
func TestFindEsptool(t *testing.T) {
	dir := t.TempDir()
	v5 := fakeTool(t, dir, "esptool", `echo "esptool v5.1.0"; echo 5.1.0; echo x >> "$0.calls"`)
	v4 := fakeTool(t, dir, "esptool.py", `echo "esptool.py v4.8.1"; echo 4.8.1`)
	odd := fakeTool(t, dir, "odd", `echo "no idea"`)
	failing := fakeTool(t, dir, "failing", `exit 2`)
	tests := []struct {
		name  string
		found map[string]string
		path  string
		major int
		warn  bool
		err   error
	}{
		{"both", map[string]string{"esptool": v5, "esptool.py": v4}, v5, 5, false, nil},
		{"v4 only", map[string]string{"esptool.py": v4}, v4, 4, false, nil},
		{"unknown version", map[string]string{"esptool": odd}, odd, 0, true, nil},
		{"version fails", map[string]string{"esptool": failing}, failing, 0, true, nil},
		{"none", map[string]string{}, "", 0, false, errNoEsptool},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var warns []string
			deps := esptoolDeps{
				lookPath: func(name string) (string, error) {
					if p, ok := tt.found[name]; ok {
						return p, nil
					}
					return "", exec.ErrNotFound
				},
				getenv: func(string) string { return "" },
				stderr: &bytes.Buffer{},
				warn:   func(m string) { warns = append(warns, m) },
			}
			e, err := findEsptool(context.Background(), deps)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if e.path != tt.path || e.major != tt.major || (len(warns) > 0) != tt.warn {
				t.Fatalf("found %s v%d, warnings %q; want %s v%d", e.path, e.major, warns, tt.path, tt.major)
			}
			if tt.warn && !strings.Contains(warns[0], "using the esptool v4 command names") {
				t.Fatalf("warning %q", warns[0])
			}
		})
	}
	if b, _ := os.ReadFile(v5 + ".calls"); strings.Count(string(b), "x") != 1 {
		t.Fatalf("esptool v5 asked its version %d times, want once", strings.Count(string(b), "x"))
	}
}

// readTool is an esptool whose read copies src into the output file after
// recording the modes of the file and its directory, and whose other
// behaviours a test chooses with $mode in body.
func readTool(t *testing.T, dir, body string) *esptool {
	t.Helper()
	p := fakeTool(t, dir, "esptool", `for a; do out=$a; done
stat -c '%a' "$out" > "`+dir+`/file-mode"
stat -c '%a' "$(dirname "$out")" > "`+dir+`/dir-mode"
echo "$out" > "`+dir+`/out-path"
`+body)
	base := filepath.Join(dir, "tmp")
	if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
	return &esptool{path: p, major: 5, stderr: &bytes.Buffer{}, tempBase: base}
}

// TestReadFlash: the read-back is a 0600 file in a 0700 directory, which
// is gone when readFlash returns: after a read, a failure, a short read
// and a cancellation.
func TestReadFlash(t *testing.T) {
	if _, err := exec.LookPath("stat"); err != nil {
		t.Skip("needs stat(1)")
	}
	conn := &esptoolFlags{port: "/dev/ttyUSB0", baud: 460800, chip: "auto"}
	data := bytes.Repeat([]byte{0xA5}, 0x2000)
	tests := []struct {
		name string
		body string
		err  string // "" succeeds
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"read", `cat "$SRC" > "$out"`, "", nil},
		{"esptool fails", `echo "A fatal error occurred" >&2; exit 2`, "esptool failed: exit status 2", nil},
		{"short read", `head -c 100 "$SRC" > "$out"`, "esptool read 100 bytes at 0x9000 from /dev/ttyUSB0, not the 8192 asked for", nil},
		{"interrupted", `exec sleep 30`, context.DeadlineExceeded.Error(), func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src.bin")
			if err := os.WriteFile(src, data, 0o600); err != nil {
				t.Fatal(err)
			}
			e := readTool(t, dir, tt.body)
			e.env = []string{"PATH=" + os.Getenv("PATH"), "SRC=" + src}
			ctx, cancel := context.WithCancel(context.Background())
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			got, err := e.readFlash(ctx, conn, 0x9000, len(data))
			switch {
			case tt.err == "" && (err != nil || !bytes.Equal(got, data)):
				t.Fatalf("got %d bytes, %v", len(got), err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || got != nil):
				t.Fatalf("got %d bytes, %v; want %q", len(got), err, tt.err)
			}
			for name, want := range map[string]string{"file-mode": "600", "dir-mode": "700"} {
				if b, _ := os.ReadFile(filepath.Join(dir, name)); strings.TrimSpace(string(b)) != want {
					t.Errorf("%s %q, want %s", name, b, want)
				}
			}
			if entries, _ := os.ReadDir(e.tempBase); len(entries) != 0 {
				t.Errorf("left in the temporary directory: %v", entries)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "out-path")); !strings.HasPrefix(string(b), e.tempBase+"/usmp-psk-readback-") {
				t.Errorf("read into %q, not a read-back directory under %s", b, e.tempBase)
			}
		})
	}
}

func TestReadbackBase(t *testing.T) {
	if got := readbackBase(func(k string) string { return map[string]string{"TMPDIR": "/x/tmp"}[k] }); got != "/x/tmp" {
		t.Errorf("with $TMPDIR: %q", got)
	}
	want := os.TempDir()
	if fi, err := os.Stat("/dev/shm"); runtime.GOOS == "linux" && err == nil && fi.IsDir() {
		want = "/dev/shm"
	}
	if got := readbackBase(func(string) string { return "" }); got != want {
		t.Errorf("without $TMPDIR: %q, want %q", got, want)
	}
}
