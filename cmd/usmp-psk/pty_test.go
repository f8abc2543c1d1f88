//go:build linux

package main

// Real pseudo-terminal tests: testscript's ttyin makes only the controlling
// terminal (and optionally stdin) a terminal, so these check stdout on a pty
// (R10) and the prompt's echo and Ctrl-C handling (R3) for real.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usmp/usmp-psk/internal/leakcheck"
	"github.com/usmp/usmp-psk/internal/psk"
)

type pty struct {
	master, slave *os.File
	mu            sync.Mutex
	buf           bytes.Buffer
	done          chan struct{}
}

func openPTY(t *testing.T) *pty {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &pty{master: m, slave: s, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		b := make([]byte, 1024)
		for {
			n, err := m.Read(b)
			p.mu.Lock()
			p.buf.Write(b[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { m.Close(); s.Close() })
	return p
}

func (p *pty) transcript() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

func (p *pty) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.transcript(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q on the terminal; got %q", s, p.transcript())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitEchoOff waits until the program has turned the terminal's echo off
// (it prints the prompt first, then calls ReadPassword).
func (p *pty) waitEchoOff(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("echo is still on 10 s after the prompt")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func binary(t *testing.T) string {
	t.Helper()
	b, err := exec.LookPath("usmp-psk")
	if err != nil {
		t.Fatalf("usmp-psk not on PATH (testscript.Main puts it there): %v", err)
	}
	return b
}

// withCtty makes the pty the child's controlling terminal, like a login.
func withCtty(cmd *exec.Cmd, p *pty) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 3}
	cmd.ExtraFiles = []*os.File{p.slave}
}

func canary(*testing.T) string { return leakcheck.CanaryMaster() }

// TestRefuseKeyOnRealTerminal is R10 with stdout on a real pseudo-terminal.
func TestRefuseKeyOnRealTerminal(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"generate"}, {"derive", "device-id-1"}} {
		p := openPTY(t)
		dir := t.TempDir()
		cmd := exec.Command(binary(t), args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "USMP_MASTER_SECRET=" + canary(t)}
		cmd.Stdout = p.slave
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("%v: err %v, want exit 2", args, err)
		}
		if !strings.Contains(stderr.String(), "refusing to write key bytes to a terminal") {
			t.Fatalf("%v: stderr %q", args, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
		if got := p.transcript(); got != "" {
			t.Fatalf("%v: the terminal received %q", args, got)
		}
	}
}

// TestPromptNoEcho is R3: the master typed at the prompt is not echoed,
// the prompt is on the terminal and erased, nothing goes to stdout, and the
// derived key is right.
func TestPromptNoEcho(t *testing.T) {
	t.Parallel()
	p := openPTY(t)
	master := canary(t)
	dir := t.TempDir()
	cmd := exec.Command(binary(t), "derive", "device-id-1", "-o", "k.psk")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	withCtty(cmd, p)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "Master secret (USMP_MASTER_SECRET): ")
	// /proc/<pid>/cmdline holds no secret while it waits (R1).
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid)); err == nil && bytes.Contains(b, []byte(master)) {
		t.Fatal("master in cmdline")
	}
	p.waitEchoOff(t) // type only once ReadPassword has turned echo off
	if _, err := p.master.Write([]byte(master + "\n")); err != nil {
		t.Fatal(err)
	}
	// No registry checks it: asked twice (issue 14 item 13).
	p.waitFor(t, "Repeat the master secret: ")
	p.waitEchoOff(t)
	if _, err := p.master.Write([]byte(master + "\n")); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("derive: %v; stderr %q", err, stderr.String())
	}
	var s leakcheck.Scanner
	s.Add("master", []byte(master))
	key := psk.Derive(psk.CopySecret([]byte(master)), "device-id-1", 0)
	s.Add("derived key", key.Expose())
	time.Sleep(50 * time.Millisecond)
	for name, out := range map[string][]byte{"terminal": []byte(p.transcript()), "stdout": stdout.Bytes(), "stderr": stderr.Bytes()} {
		for _, f := range s.Scan(name, out) {
			t.Error(f)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: %q", stdout.String())
	}
	got, _ := os.ReadFile(filepath.Join(dir, "k.psk"))
	if string(got) != string(psk.Encode(key, psk.Hex)) {
		t.Fatal("wrong key derived from the prompted master")
	}
}

// TestPromptCtrlCRestoresEcho is R3's signal test: SIGINT at the prompt
// exits 130 and leaves the terminal with echo on (golang/go#31180).
func TestPromptCtrlCRestoresEcho(t *testing.T) {
	t.Parallel()
	p := openPTY(t)
	cmd := exec.Command(binary(t), "derive", "device-id-1", "-o", "k.psk")
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	withCtty(cmd, p)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "Master secret")
	p.waitEchoOff(t)
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("err %v, want exit 130", err)
	}
	tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&unix.ECHO == 0 {
		t.Fatal("echo left off after Ctrl-C")
	}
	if _, err := os.Stat(filepath.Join(cmd.Dir, "k.psk")); err == nil {
		t.Fatal("key file written after Ctrl-C")
	}
}

// TestPromptCtrlBackslash: Ctrl-\ typed at the prompt (SIGQUIT from the
// terminal) restores echo and exits 130 like Ctrl-C, with no goroutine
// dump on stderr or the terminal (issue 13 item 6).
func TestPromptCtrlBackslash(t *testing.T) {
	t.Parallel()
	p := openPTY(t)
	cmd := exec.Command(binary(t), "derive", "device-id-1", "-o", "k.psk")
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	withCtty(cmd, p)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "Master secret")
	p.waitEchoOff(t)
	if _, err := p.master.Write([]byte{0x1c}); err != nil { // VQUIT, ^\
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("err %v, want exit 130; stderr %q", err, stderr.String())
	}
	tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&unix.ECHO == 0 {
		t.Fatal("echo left off after Ctrl-\\")
	}
	for name, out := range map[string]string{"stderr": stderr.String(), "terminal": p.transcript()} {
		if strings.Contains(out, "goroutine") || strings.Contains(out, "SIGQUIT") {
			t.Fatalf("%s shows a goroutine dump: %q", name, out)
		}
	}
	if !strings.Contains(stderr.String(), "usmp-psk: interrupted") {
		t.Fatalf("stderr %q", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(cmd.Dir, "k.psk")); err == nil {
		t.Fatal("key file written after Ctrl-\\")
	}
}
