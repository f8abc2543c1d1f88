package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/sighold"
)

// Main runs usmp-psk with the process's arguments and streams and returns
// the exit code. cmd/usmp-psk/main.go is os.Exit(cli.Main()) and nothing else.
func Main() int { return MainWith(MainOptions{}) }

// MainOptions are the seams of the end-to-end tests' build of the command
// (cmd/usmp-psk/main_test.go runs MainWith as the usmp-psk it executes).
// Production passes none: Main is MainWith(MainOptions{}).
type MainOptions struct {
	// StepHook is called, with the run's context, at the named steps of
	// secret-file writes (secfile.Options.StepHook), of a batch
	// (provision.BatchSpec.StepHook) and of a read from a pipe that ended
	// empty ("interrupt-grace", readInterruptibly), so that a test can
	// kill the process at one (R16) or hold it there until it is
	// interrupted.
	StepHook func(ctx context.Context, step, path string)
}

// MainWith is Main with test seams.
func MainWith(o MainOptions) int {
	warns := harden()
	f := newSystemFactory()
	f.stepHook = o.StepHook
	for _, w := range warns {
		f.IO.Warn(w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), interruptSignals...)
	defer stop()
	if sighold.Handoff() {
		// A signal came before the handler above was installed (held
		// since package early's init; main imports it): nothing runs.
		fmt.Fprintln(f.IO.ErrOut, "usmp-psk: interrupted")
		return exitCancel
	}
	return run(ctx, f, os.Args[1:])
}

// run executes one command line against f and maps the outcome to an exit
// code. A panic is reported without its value or stack, which could hold
// secret material (R12).
func run(ctx context.Context, f *Factory, args []string) (code int) {
	defer func() {
		if r := recover(); r != nil {
			f.IO.message("internal error (a bug); no details are shown because they could contain key material")
			code = exitError
		}
	}()
	f.ctx = ctx
	// A key pasted where a path or a name belongs is cut out of every
	// message, also where one names a path on purpose (issue 13 item 2).
	f.IO.redact = newArgRedactor(args)
	root := newRootCmd(f)
	root.SetArgs(args)
	if isCompletionRequest(args) {
		root.SetOut(backtickFree{f.IO.Out})
	}
	err := unknownCommand(root, args)
	if err == nil {
		var cmd *cobra.Command
		cmd, err = root.ExecuteContextC(ctx)
		err = withUsageLine(cmd, err)
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil && !errors.Is(err, errSilent) {
		var ie *interruptError
		switch {
		case errors.As(err, &ie):
			f.IO.message(ie.Error())
		case errors.Is(err, context.Canceled):
			f.IO.message("interrupted")
		default:
			f.IO.message(err.Error())
		}
	}
	return exitCodeFor(err)
}
