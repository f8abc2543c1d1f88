//go:build linux

package main

// Ctrl-C during a factory batch (issue #7 item 4): exit 130, a consistent
// registry, and a re-run that finishes the batch.

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestBatchInterruptExits130AndResumes(t *testing.T) {
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
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the first images exist.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "out", "s-000001.bin")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no image after 20 s; stderr %q", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		t.Skip("the batch finished before the interrupt arrived")
	case !errors.As(err, &ee) || ee.ExitCode() != 130:
		t.Fatalf("err %v, want exit 130; stderr %q", err, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "manifest.json")); err == nil {
		t.Fatal("an interrupted batch published a manifest")
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
