package cli

// Espressif's esptool, for flash and verify --port (issue 15 part 3). It is
// looked up on PATH once per command — esptool before esptool.py: v5 named
// its command esptool and keeps esptool.py only as a deprecated wrapper —
// and asked its version once, because v5 spells its commands write-flash
// and read-flash where v4 has write_flash and read_flash (v5 still takes
// those, with a deprecation warning on every run).
//
// The child gets an explicit environment (R4) and only paths and numbers in
// its arguments (R27). Key bytes go to it, and come back from it, only as
// files: a read-back lands in a 0600 file in a private 0700 directory that
// is removed before readFlash returns, also on error and on an interrupt.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/psk"
)

// esptoolFlags are the connection flags of flash and verify --port.
type esptoolFlags struct {
	port string
	baud int
	chip string
}

func (fl *esptoolFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&fl.port, "port", "", "serial `PORT` of the device")
	cmd.Flags().IntVar(&fl.baud, "baud", 460800, "serial speed `RATE` in bits per second")
	cmd.Flags().StringVar(&fl.chip, "chip", "auto", "`CHIP` for esptool --chip (esp32, esp32s3, …; auto detects it)")
}

// args are esptool's global options for the connection.
func (fl *esptoolFlags) args() []string {
	return []string{"--chip", fl.chip, "--port", fl.port, "--baud", strconv.Itoa(fl.baud)}
}

// esptoolEnv is the explicit environment of esptool (R4, R27): what Python
// and a serial port need, nothing else — never a secret.
func esptoolEnv(getenv func(string) string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV", "PYTHONPATH", "IDF_PATH", "ESPTOOL_CFGFILE"} {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// esptoolDeps are what finding and running esptool need from outside:
// the test seams.
type esptoolDeps struct {
	lookPath func(string) (string, error)
	getenv   func(string) string
	stderr   io.Writer // esptool's output, both streams: stdout keeps our results
	warn     func(string)
}

func newEsptoolDeps(f *Factory) esptoolDeps {
	return esptoolDeps{lookPath: exec.LookPath, getenv: f.Getenv, stderr: &childOutput{s: f.IO}, warn: f.IO.Warn}
}

// esptool is one esptool found on PATH, with its version.
type esptool struct {
	path    string
	major   int    // major version; 0 when it could not be told
	version string // "4.8.1", or ""
	env     []string
	stderr  io.Writer
	// tempBase is where read-back directories are made.
	tempBase string
}

// errNoEsptool says esptool is not on PATH (exit 1, docs/exit-codes.md).
var errNoEsptool = errors.New("esptool not found on PATH (install it with 'pip install esptool')")

// findEsptool looks esptool up and asks its version, once. Without one it
// returns errNoEsptool.
func findEsptool(ctx context.Context, d esptoolDeps) (*esptool, error) {
	for _, name := range []string{"esptool", "esptool.py"} {
		p, err := d.lookPath(name)
		if err != nil {
			continue
		}
		t := &esptool{path: p, env: esptoolEnv(d.getenv), stderr: d.stderr, tempBase: readbackBase(d.getenv)}
		if err := t.detectVersion(ctx, d.warn); err != nil {
			return nil, err
		}
		return t, nil
	}
	return nil, errNoEsptool
}

// detectVersion runs "esptool version" (v4 and v5 both have it: a header
// line and the bare version). When that fails or says nothing we know,
// the v4 spelling is used: v5 accepts it too, with a warning.
func (t *esptool) detectVersion(ctx context.Context, warn func(string)) error {
	vctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := exec.CommandContext(vctx, t.path, "version")
	c.Env = t.env
	out, err := c.Output()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		if major, v, ok := parseEsptoolVersion(out); ok {
			t.major, t.version = major, v
			return nil
		}
	}
	if warn != nil {
		warn(fmt.Sprintf("could not tell the version of %s; using the esptool v4 command names (read_flash, write_flash), which v5 also accepts", t.path))
	}
	return nil
}

var esptoolVersionRE = regexp.MustCompile(`\bv?(\d+)\.(\d+)(?:\.\d+)?`)

// parseEsptoolVersion finds the first version number in the output of
// "esptool version": "esptool.py v4.8.1\n4.8.1" or "esptool v5.1.0\n5.1.0".
func parseEsptoolVersion(out []byte) (major int, version string, ok bool) {
	m := esptoolVersionRE.FindSubmatch(out)
	if m == nil {
		return 0, "", false
	}
	major, err := strconv.Atoi(string(m[1]))
	if err != nil || major == 0 {
		return 0, "", false
	}
	return major, strings.TrimPrefix(string(m[0]), "v"), true
}

// op spells a command ("read-flash", "write-flash") the way this esptool
// takes it: with hyphens from v5 on, underscores before (and when the
// version is unknown).
func (t *esptool) op(name string) string {
	if t.major >= 5 {
		return name
	}
	return strings.ReplaceAll(name, "-", "_")
}

// writeArgs is the argv (without the program) that writes image at offset.
func (t *esptool) writeArgs(conn *esptoolFlags, offset int64, image string) []string {
	return append(conn.args(), t.op("write-flash"), fmt.Sprintf("0x%x", offset), image)
}

// readArgs is the argv (without the program) that reads size bytes at
// offset into out.
func (t *esptool) readArgs(conn *esptoolFlags, offset int64, size int, out string) []string {
	return append(conn.args(), t.op("read-flash"), fmt.Sprintf("0x%x", offset), fmt.Sprintf("0x%x", size), out)
}

// describe is "esptool v5.1.0 (/usr/bin/esptool)" for reports.
func (t *esptool) describe() string {
	if t.version == "" {
		return t.path
	}
	return filepath.Base(t.path) + " v" + t.version
}

// run runs esptool with args. An interrupt (ctx cancelled) sends it
// SIGINT, so that it closes the port, and kills it if it is still there
// three seconds later; run then returns ctx's error (exit 130).
func (t *esptool) run(ctx context.Context, args []string) error {
	c := exec.CommandContext(ctx, t.path, args...)
	c.Env = t.env
	c.Stdout, c.Stderr = t.stderr, t.stderr
	if fl, ok := t.stderr.(interface{ Flush() }); ok {
		defer fl.Flush() // the last line, if esptool did not end it
	}
	c.Cancel = func() error {
		if runtime.GOOS == "windows" {
			return c.Process.Kill()
		}
		return c.Process.Signal(os.Interrupt)
	}
	c.WaitDelay = 3 * time.Second
	err := c.Run()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("esptool failed: %w", err)
	}
	return nil
}

// readFlash reads size bytes at offset from the device into memory. esptool
// writes them to a file created 0600 (it opens the file for writing, which
// keeps the mode) in a private 0700 directory; the directory is removed
// before readFlash returns, whatever happens. The caller wipes the bytes.
func (t *esptool) readFlash(ctx context.Context, conn *esptoolFlags, offset int64, size int) (data []byte, err error) {
	dir, err := os.MkdirTemp(t.tempBase, "usmp-psk-readback-")
	if err != nil {
		return nil, fmt.Errorf("read-back directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			psk.Wipe(data)
			data, err = nil, fmt.Errorf("remove the read-back directory %s: %w", dir, rerr)
		}
	}()
	// MkdirTemp's 0700 is masked by the umask; make it exactly 0700.
	if err := os.Chmod(dir, 0o700); err != nil { //nolint:gosec // G302 is for files; a directory needs its x bit, and 0700 is private
		return nil, fmt.Errorf("read-back directory: %w", err)
	}
	out := filepath.Join(dir, "nvs.bin")
	fh, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("read-back file: %w", err)
	}
	_ = fh.Close()
	if err := t.run(ctx, t.readArgs(conn, offset, size, out)); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("read-back file: %w", err)
	}
	if len(b) != size {
		psk.Wipe(b)
		return nil, fmt.Errorf("esptool read %d bytes at 0x%x from %s, not the %d asked for", len(b), offset, conn.port, size)
	}
	return b, nil
}

// readbackBase is where read-back directories go: $TMPDIR when set, else
// /dev/shm where there is one (a RAM file system: the key bytes never reach
// a disk), else the system's temporary directory.
func readbackBase(getenv func(string) string) string {
	if v := getenv("TMPDIR"); v != "" {
		return v
	}
	if runtime.GOOS == "linux" {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			return "/dev/shm"
		}
	}
	return os.TempDir()
}
