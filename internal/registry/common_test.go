package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

type badInput interface{ BadInput() bool }

func isBadInput(err error) bool {
	var b badInput
	return errors.As(err, &b) && b.BadInput()
}

type mismatch interface{ Mismatch() bool }

func isMismatch(err error) bool {
	var m mismatch
	return errors.As(err, &m) && m.Mismatch()
}

// Environment of the helper writer process (TestHelperWriter).
const (
	helperEnv  = "USMP_REGISTRY_TEST_HELPER"
	helperPath = "USMP_REGISTRY_TEST_PATH"
	helperID   = "USMP_REGISTRY_TEST_ID"
)

// TestHelperWriter is not a test: it is the child writer process that the
// crash and concurrency tests start by re-executing the test binary. It
// adds one random device and exits 0, or 1 with the error on stderr.
func TestHelperWriter(t *testing.T) {
	if os.Getenv(helperEnv) != "add" {
		t.Skip("helper process for the crash and concurrency tests")
	}
	reg, err := Open(os.Getenv(helperPath), Options{
		LockTimeout: 2 * time.Minute,
		User:        func() string { return "child" },
		Getenv:      func(string) string { return "" },
	})
	if err == nil {
		_, err = reg.Add(context.Background(), os.Getenv(helperID), Random())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helperCmd returns the child writer command, with an explicit environment
// (never the parent's, which could hold a master secret).
func helperCmd(t testing.TB, path, id string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = []string{helperEnv + "=add", helperPath + "=" + path, helperID + "=" + id}
	if d := os.Getenv("GOCOVERDIR"); d != "" {
		cmd.Env = append(cmd.Env, "GOCOVERDIR="+d)
	}
	return cmd
}
