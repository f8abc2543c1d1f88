//go:build linux

package main

// Ctrl-C while verify --port reads the device (issue 15 part 3): esptool is
// stopped, the private read-back directory is removed, and the exit code is
// 130.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestVerifyPortInterruptRemovesReadBack(t *testing.T) {
	t.Parallel()
	fake, err := fakeEsptoolPath()
	if err != nil {
		t.Fatalf("fake-esptool not on PATH (testscript.Main puts it there): %v", err)
	}
	dir := t.TempDir()
	for _, d := range []string{"bin", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	script := fmt.Sprintf("#!/bin/sh\nexec '%s' -version 5.1.0 -flash '%s/flash.bin' -log '%s/esptool' -hang -- \"$@\"\n", fake, dir, dir)
	if err := os.WriteFile(filepath.Join(dir, "bin", "esptool"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + filepath.Join(dir, "bin") + ":" + os.Getenv("PATH"), "USMP_MASTER_SECRET=" + canary(t), "TMPDIR=" + filepath.Join(dir, "tmp")}
	run := func(args ...string) *exec.Cmd {
		cmd := exec.Command(binary(t), args...)
		cmd.Dir, cmd.Env = dir, env
		return cmd
	}
	if out, err := run("registry", "init").CombinedOutput(); err != nil {
		t.Fatalf("registry init: %v\n%s", err, out)
	}
	cmd := run("verify", "--port", "/dev/ttyUSB0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once esptool is reading into its file.
	marker := filepath.Join(dir, "esptool-hanging")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(marker); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("esptool did not start reading in 20 s; stderr %q", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 1 {
		t.Fatalf("while reading: %d entries in TMPDIR, want the read-back directory", len(entries))
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("err %v, want exit 130; stderr %q", err, stderr.String())
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Fatalf("the read-back directory is left after the interrupt: %v", entries)
	}
	b, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("esptool (pid %d) still runs after usmp-psk exited: %v", pid, err)
	}
}
