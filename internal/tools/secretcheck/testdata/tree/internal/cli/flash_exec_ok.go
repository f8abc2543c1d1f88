//go:build ignore

// Fixture: commands with an explicit, allowlisted environment (R4).

package cli

import (
	"context"
	"os"
	"os/exec"
)

func allowlist() []string {
	env := []string{"LC_ALL=C"}
	if v, ok := os.LookupEnv("PATH"); ok {
		env = append(env, "PATH="+v)
	}
	return env
}

func flashOK(ctx context.Context, port string) error {
	c := exec.CommandContext(ctx, "esptool.py", "--port", port)
	c.Env = allowlist()
	return c.Run()
}

type runner struct {
	cmd *exec.Cmd
}

func (r *runner) start() error {
	r.cmd = exec.Command("git", "version")
	r.cmd.Env = allowlist()
	return r.cmd.Start()
}

func gitOK(dir string) error {
	run := func(args ...string) error {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = allowlist()
		return cmd.Run()
	}
	lit := &exec.Cmd{Path: "/usr/bin/git", Env: allowlist()}
	var later *exec.Cmd
	later = exec.Command("git", "status")
	defer func() { later.Env = []string{} }()
	_ = lit
	return run("status")
}
