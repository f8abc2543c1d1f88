//go:build linux

package main

// Signals with a real process: Ctrl-C during a factory batch (issue #7 item
// 4): exit 130, a consistent registry, and a re-run that finishes the
// batch; SIGINT, SIGTERM and SIGQUIT during a read from a FIFO or a pipe
// that never delivers (issue 13 item 6).

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestBatchInterruptExits130AndResumes interrupts a batch between its
// chunks: the test binary's step hook (USMP_PSK_TEST_HOLD_AT, see
// usmpPSKTestMain) holds the batch before the images of its second chunk
// (s-000513 on) until the interrupt has cancelled the run, so the signal
// always arrives mid-batch, after the first chunk's images exist, and
// never after the batch is done.
func TestBatchInterruptExits130AndResumes(t *testing.T) {
	t.Parallel()
	base := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "usmp-sigint-") //nolint:usetesting // on tmpfs on purpose: t.TempDir may be on a slow disk
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	env := []string{"PATH=" + os.Getenv("PATH"), "USMP_MASTER_SECRET=" + canary(t)}
	run := func(args ...string) *exec.Cmd {
		cmd := exec.Command(binary(t), args...)
		cmd.Dir, cmd.Env = dir, env
		return cmd
	}
	args := []string{"batch", "--count", "200000", "--prefix", "s-", "--out", "out", "--random"}
	cmd := run(args...)
	cmd.Env = append(cmd.Env[:len(cmd.Env):len(cmd.Env)], "USMP_PSK_TEST_HOLD_AT=before-images:s-000513.bin", "USMP_PSK_TEST_HOLD_READY="+filepath.Join(dir, "held"))
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait for the hold, polling the condition, not a clock.
	for held := filepath.Join(dir, "held"); ; time.Sleep(2 * time.Millisecond) {
		if _, err := os.Stat(held); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the batch ended (%v) before its hold point; stderr %q", err, stderr.String())
		default:
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "s-000001.bin")); err != nil {
		t.Fatalf("the first chunk's images are not written: %v", err)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Fatalf("err %v, want exit 130; stderr %q", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("still running 60 s after the interrupt; stderr %q", stderr.String())
	}
	checkInterruptedStderr(t, stderr.String())
	if _, err := os.Stat(filepath.Join(dir, "out", "manifest.json")); err == nil {
		t.Fatal("an interrupted batch published a manifest")
	}
	// It says how to finish (issue 14 item 9).
	if !regexp.MustCompile(`usmp-psk: interrupted; re-run the same command to finish: \d+ of 200000 done`).MatchString(stderr.String()) {
		t.Errorf("stderr %q does not say how to finish", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "s-000513.bin")); err == nil {
		t.Fatal("the batch wrote images after the interrupt")
	}
	// The registry is consistent: check and audit pass.
	for _, a := range [][]string{{"registry", "check"}, {"registry", "audit"}} {
		if out, err := run(a...).CombinedOutput(); err != nil {
			t.Fatalf("%v after the interrupt: %v\n%s", a, err, out)
		}
	}
	// A re-run of one shard of the same batch completes and reuses the
	// devices the interrupted run recorded (shard 1/100 holds s-000001,
	// s-000101, …; the first chunk of 512 was recorded before any image).
	small := append(args, "--shard", "1/100", "--json")
	out, err := run(small...).Output()
	if err != nil {
		t.Fatalf("re-run: %v\n%s", err, out)
	}
	var sum struct {
		Devices, New, Existing int
	}
	if err := json.Unmarshal(out, &sum); err != nil || sum.Devices != 2000 || sum.Existing < 5 {
		t.Fatalf("re-run summary %s (%v)", out, err)
	}
}

// exitWithin waits at most d for cmd to exit (exited gets its Wait
// result) and returns its exit code (-1 when it was killed by a signal, as
// SIGQUIT's default action does).
func exitWithin(t *testing.T, cmd *exec.Cmd, exited <-chan error, d time.Duration) int {
	t.Helper()
	select {
	case err := <-exited:
		return exitCode(t, err)
	case <-time.After(d):
		_ = cmd.Process.Kill()
		err := <-exited
		t.Fatalf("still running after %v: it did not give way (killed: %v)", d, err)
	}
	return 0
}

// waitAsync returns a channel that gets cmd's Wait result.
func waitAsync(cmd *exec.Cmd) <-chan error {
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return exited
}

// openWhenRead opens the write end of fifo once a reader has it open —
// which means the process under test is in, or past, its open of the FIFO,
// so its interrupt handling is in place — and holds it open so that the
// reader blocks in read(2) for ever. It polls the condition, not a clock.
func openWhenRead(t *testing.T, fifo string, cmd *exec.Cmd) *os.File {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		fd, err := syscall.Open(fifo, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err == nil {
			w := os.NewFile(uintptr(fd), fifo)
			t.Cleanup(func() { w.Close() })
			return w
		}
		if !errors.Is(err, syscall.ENXIO) {
			t.Fatalf("open %s: %v", fifo, err)
		}
		if cmd.ProcessState != nil || time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the process never opened %s", fifo)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestInterruptFIFORead: a file named on the command line (or found from
// one) that is a FIFO nobody writes to does not hold up SIGINT, SIGTERM or
// SIGQUIT: exit 130 at once, "interrupted", no goroutine dump, and nothing
// written (issue 13 item 6). One case for every read of such a file.
func TestInterruptFIFORead(t *testing.T) {
	t.Parallel()
	provision := []string{"provision", "dev-a", "--psk-file", "key.psk", "-o", "a.bin"}
	tests := []struct {
		name string
		fifo string // the FIFO's name; "in" when empty
		args []string
		sig  syscall.Signal
	}{
		{"master file, SIGINT", "", []string{"derive", "dev-a", "-o", "k.psk", "--master-file", "in"}, syscall.SIGINT},
		{"master file, SIGTERM", "", []string{"derive", "dev-a", "-o", "k.psk", "--master-file", "in"}, syscall.SIGTERM},
		{"master file, SIGQUIT", "", []string{"derive", "dev-a", "-o", "k.psk", "--master-file", "in"}, syscall.SIGQUIT},
		{"key file, SIGINT", "", []string{"fingerprint", "in"}, syscall.SIGINT},
		{"psk file, SIGTERM", "", []string{"provision", "dev-a", "--psk-file", "in", "-o", "a.bin"}, syscall.SIGTERM},
		{"nvs keys file, SIGQUIT", "", []string{"nvs", "generate-key", "--keyfile", "k.bin", "--key_protect_hmac", "--kp_hmac_inputkey", "in"}, syscall.SIGQUIT},
		{"registry import file, SIGINT", "", []string{"registry", "import", "in"}, syscall.SIGINT},
		{"nvs check image, SIGTERM", "", []string{"nvs", "check", "in"}, syscall.SIGTERM},
		{"partition show table, SIGQUIT", "", []string{"partition", "show", "in"}, syscall.SIGQUIT},
		{"config file, SIGINT", "", []string{"--config", "in", "version"}, syscall.SIGINT},
		{"provision base, SIGTERM", "", append(provision, "--base", "in"), syscall.SIGTERM},
		{"provision partition table, SIGQUIT", "", append(provision, "--partition-table", "in"), syscall.SIGQUIT},
		{"legacy registry, SIGINT", "in.json", []string{"--registry", "in.json", "registry", "migrate", "--to", "x.db"}, syscall.SIGINT},
		{"legacy audit log, SIGQUIT", "leg.audit.jsonl", []string{"--registry", "leg.json", "registry", "migrate", "--to", "x.db"}, syscall.SIGQUIT},
		{"flash image, SIGTERM", "", []string{"flash", "in", "--port", "/dev/null"}, syscall.SIGTERM},
		{"verify image, SIGQUIT", "", []string{"verify", "in"}, syscall.SIGQUIT},
		{"verify partition table, SIGINT", "", []string{"verify", "img.bin", "--partition-table", "in"}, syscall.SIGINT},
		{"nvs check partition table, SIGTERM", "", []string{"nvs", "check", "img.bin", "--partition-table", "in"}, syscall.SIGTERM},
		{"nvs generate csv, SIGINT", "", []string{"nvs", "generate", "in", "out.bin", "0x6000"}, syscall.SIGINT},
		{"nvs generate file row, SIGTERM", "", []string{"nvs", "generate", "gen.csv", "out.bin", "0x6000"}, syscall.SIGTERM},
		{"nvs encrypt csv, SIGQUIT", "", []string{"nvs", "encrypt", "in", "out.bin", "0x6000", "--keygen"}, syscall.SIGQUIT},
		{"nvs dump image, SIGTERM", "", []string{"nvs", "dump", "in"}, syscall.SIGTERM},
		{"nvs decrypt image, SIGQUIT", "in.bin", []string{"nvs", "decrypt", "in.bin", "keys.bin", "out.bin"}, syscall.SIGQUIT},
		{"nvs set image, SIGINT", "", []string{"nvs", "set", "in", "--namespace", "a", "--key", "b", "--type", "u8", "--value", "1", "-o", "x.bin"}, syscall.SIGINT},
		{"export recipients file, SIGINT", "", []string{"--registry", "r.db", "registry", "export", "--recipients-file", "in", "-o", "e.age"}, syscall.SIGINT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFIFOFixtures(t, dir)
			name := tt.fifo
			if name == "" {
				name = "in"
			}
			fifo := filepath.Join(dir, name)
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Skipf("no FIFOs here: %v", err)
			}
			before := dirNames(t, dir)
			cmd, stderr := startIn(t, dir, tt.args...)
			openWhenRead(t, fifo, cmd)
			_ = cmd.Process.Signal(tt.sig)
			if code := exitWithin(t, cmd, waitAsync(cmd), 10*time.Second); code != 130 {
				t.Fatalf("exit %d, want 130; stderr %q", code, stderr.String())
			}
			checkInterruptedStderr(t, stderr.String())
			if after := dirNames(t, dir); after != before {
				t.Errorf("files after the interrupt: %s, before: %s", after, before)
			}
		})
	}
}

// TestFIFOThatIsNoInput: a FIFO where a database or a batch manifest is
// looked for is refused or ignored without being read, so the run ends on
// its own instead of waiting in open(2) for a writer that never comes (issue
// 13 item 6). Nobody opens the FIFOs for writing here.
func TestFIFOThatIsNoInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, fifo string
		args       []string
		code       int
		stderr     string
	}{
		{"registry", "in.db", []string{"--registry", "in.db", "registry", "list"}, 1, "usmp-psk: in.db: not a usmp-psk registry (not a regular file)\n"},
		{"batch manifest", "manifest.json", []string{"nvs", "check", "img.bin"}, 0, "usmp-psk: img.bin: no problems found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFIFOFixtures(t, dir)
			if err := syscall.Mkfifo(filepath.Join(dir, tt.fifo), 0o600); err != nil {
				t.Skipf("no FIFOs here: %v", err)
			}
			cmd, stderr := startIn(t, dir, tt.args...)
			if code := exitWithin(t, cmd, waitAsync(cmd), 10*time.Second); code != tt.code || stderr.String() != tt.stderr {
				t.Fatalf("exit %d, stderr %q; want %d, %q", code, stderr.String(), tt.code, tt.stderr)
			}
		})
	}
}

// startIn starts usmp-psk in dir with only PATH in its environment, its
// stderr collected.
func startIn(t *testing.T, dir string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir, cmd.Env = dir, []string{"PATH=" + os.Getenv("PATH")}
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stderr
}

// writeFIFOFixtures writes the regular files TestInterruptFIFORead's
// commands read besides the FIFO: a key, a blank image, an nvs_keys
// partition, a legacy registry and an NVS CSV whose file row names the
// FIFO.
func writeFIFOFixtures(t *testing.T, dir string) {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"key.psk":  []byte(hex.EncodeToString(key) + "\n"),
		"img.bin":  bytes.Repeat([]byte{0xff}, 0x6000),
		"keys.bin": bytes.Repeat(key, 2),
		"leg.json": []byte(`{"version": 1, "audit": {"seq": 0, "hash": ""}, "devices": []}` + "\n"),
		"gen.csv":  []byte("key,type,encoding,value\nns,namespace,,\nk,file,binary,in\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// dirNames lists a directory's names, leaving out lock files (a legacy
// registry's is created before it is read) and the test binary's hold file.
func dirNames(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") && e.Name() != "held" {
			names = append(names, e.Name())
		}
	}
	return strings.Join(names, " ")
}

// checkInterruptedStderr: the run said it was interrupted, and nothing
// else a signal could cause (a goroutine dump, an empty-key error).
func checkInterruptedStderr(t *testing.T, stderr string) {
	t.Helper()
	if !strings.Contains(stderr, "usmp-psk: interrupted") {
		t.Errorf("stderr %q lacks 'usmp-psk: interrupted'", stderr)
	}
	for _, bad := range []string{"goroutine", "SIGQUIT", "empty", "runtime."} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr has %q: %q", bad, stderr)
		}
	}
}

// TestInterruptStdinRead: --psk-file - and registry import - from a pipe.
// A writer that never delivers does not hold up SIGINT; and when Ctrl-C
// kills the writer too, the EOF that can reach us before our own SIGINT is
// an interrupt (130), not "the key is empty" (issue 13 item 6). The run is
// ready once stderr announces a setting from the environment: that line is
// printed after the interrupt handlers are installed, before the input is
// read. When the writer dies first, the test binary's hold
// (USMP_PSK_TEST_HOLD_AT=interrupt-grace) keeps the run where it has read
// the EOF and waits for an interrupt, and the signal is sent only then: it
// arrives after the EOF however slow the machine, with no race against
// interruptGrace.
func TestInterruptStdinRead(t *testing.T) {
	t.Parallel()
	commands := []struct {
		name, env, announced string
		args                 []string
	}{
		{"psk file", "USMP_PSK_FORCE=true", "usmp-psk: force: true from $USMP_PSK_FORCE\n",
			[]string{"provision", "dev-a", "--psk-file", "-", "-o", "a.bin"}},
		{"registry import", "USMP_PSK_REGISTRY=reg.db", "usmp-psk: registry: reg.db from $USMP_PSK_REGISTRY\n",
			[]string{"registry", "import", "-"}},
	}
	for _, c := range commands {
		for _, writerDies := range []bool{false, true} {
			name := c.name + ", " + map[bool]string{false: "writer hangs", true: "writer killed by the same Ctrl-C"}[writerDies]
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				held := filepath.Join(dir, "held")
				cmd := exec.Command(binary(t), c.args...)
				cmd.Dir = dir
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), c.env}
				if writerDies {
					cmd.Env = append(cmd.Env, "USMP_PSK_TEST_HOLD_AT=interrupt-grace", "USMP_PSK_TEST_HOLD_READY="+held)
				}
				pr, pw, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer pw.Close()
				cmd.Stdin = pr
				stderr := &lineWatcher{want: c.announced, ready: make(chan struct{})}
				cmd.Stderr = stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				pr.Close()
				exited := waitAsync(cmd)
				waitFor(t, exited, stderr, "the announcement on stderr", stderr.appeared)
				if writerDies {
					pw.Close() // EOF first, as when the writer dies first
					waitFor(t, exited, stderr, "the hold after the EOF", func() bool { _, err := os.Stat(held); return err == nil })
				}
				_ = cmd.Process.Signal(syscall.SIGINT)
				if code := exitWithin(t, cmd, exited, 10*time.Second); code != 130 {
					t.Fatalf("exit %d, want 130; stderr %q", code, stderr.String())
				}
				checkInterruptedStderr(t, stderr.String())
				if names := dirNames(t, dir); names != "" {
					t.Errorf("files after the interrupt: %s", names)
				}
			})
		}
	}
}

// lockedBuffer is a bytes.Buffer that a process's output goroutine may
// write while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lineWatcher collects a process's stderr and closes ready once want has
// appeared in it.
type lineWatcher struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	want  string
	ready chan struct{}
	seen  bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.seen && strings.Contains(w.buf.String(), w.want) {
		w.seen = true
		close(w.ready)
	}
	return len(p), nil
}

// appeared reports whether want has appeared.
func (w *lineWatcher) appeared() bool {
	select {
	case <-w.ready:
		return true
	default:
		return false
	}
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestSignalBeforeMainIsHeld: a signal that comes after the packages are
// initialised but before cli.MainWith has installed its handler — a few
// milliseconds after start, more on a loaded machine — is held (package
// early, which main.go imports) and stops the run with 130 like any
// interrupt: no goroutine dump from SIGQUIT, no death by SIGINT or SIGTERM,
// nothing run, nothing written (issue 13 item 6). The test binary's hold
// (USMP_PSK_TEST_HOLD_AT=start, see holdAtStart) keeps the process in that
// window until the signal is held.
func TestSignalBeforeMainIsHeld(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGQUIT, syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			held := filepath.Join(dir, "held")
			cmd := exec.Command(binary(t), "generate", "-o", "k.psk")
			cmd.Dir = dir
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "USMP_PSK_TEST_HOLD_AT=start", "USMP_PSK_TEST_HOLD_READY=" + held}
			var stdout bytes.Buffer
			stderr := &lockedBuffer{}
			cmd.Stdout, cmd.Stderr = &stdout, stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := waitAsync(cmd)
			waitFor(t, exited, stderr, "its hold at start", func() bool { _, err := os.Stat(held); return err == nil })
			_ = cmd.Process.Signal(sig)
			if code := exitWithin(t, cmd, exited, 20*time.Second); code != 130 {
				t.Fatalf("exit %d, want 130; stderr %q", code, stderr.String())
			}
			checkInterruptedStderr(t, stderr.String())
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			if _, err := os.Stat(filepath.Join(dir, "k.psk")); err == nil {
				t.Error("k.psk was written after the interrupt")
			}
		})
	}
}

// waitFor polls cond until it holds, failing when the process exits first
// (exited gets its Wait result) or after 20 s.
func waitFor(t *testing.T, exited <-chan error, stderr fmt.Stringer, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		select {
		case err := <-exited:
			t.Fatalf("the process ended (%v) before %s; stderr %q", err, what, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 20 s; stderr %q", what, stderr.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// exitCode is the exit code of a Wait result; -1 for a process killed by
// a signal.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("wait: %v", err)
	return 0
}
