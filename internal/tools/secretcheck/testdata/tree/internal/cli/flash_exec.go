//go:build ignore

// Fixture for exec-env: every command gets an explicit, allowlisted Env in
// the function that creates it (R4).

package cli

import (
	"context"
	"os"
	"os/exec"
)

var pkgCmd = exec.Command("esptool.py", "version") // want "exec-env"

func runNoEnv(port string) error {
	cmd := exec.Command("esptool.py", "--port", port) // want "exec-env"
	return cmd.Run()
}

func runDirect() error {
	return exec.Command("git", "status").Run() // want "exec-env"
}

func newCmd(ctx context.Context) *exec.Cmd {
	return exec.CommandContext(ctx, "git", "status") // want "exec-env"
}

func runLiteral() error {
	c := &exec.Cmd{Path: "/usr/bin/git"} // want "exec-env"
	return c.Run()
}

func runWholeEnv() error {
	a := exec.Command("a")
	a.Env = nil // want "exec-env"
	b := exec.Command("b")
	b.Env = os.Environ() // want "exec-env"
	c := exec.Command("c")
	c.Env = append(os.Environ(), "LC_ALL=C") // want "exec-env"
	d := exec.Command("d")
	d.Env = []string{"PATH=/usr/bin"}
	other := exec.Command("other") // want "exec-env"
	_ = other
	return errorsJoin(a.Run(), b.Run(), c.Run(), d.Run())
}

func errorsJoin(errs ...error) error { return nil }
