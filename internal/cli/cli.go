package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
)

// Main runs usmp-psk with the process's arguments and streams and returns
// the exit code. cmd/usmp-psk/main.go is os.Exit(cli.Main()) and nothing else.
func Main() int {
	warns := harden()
	f := newSystemFactory()
	for _, w := range warns {
		f.IO.Warn(w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), interruptSignals...)
	defer stop()
	return run(ctx, f, os.Args[1:])
}

// run executes one command line against f and maps the outcome to an exit
// code. A panic is reported without its value or stack, which could hold
// secret material (R12).
func run(ctx context.Context, f *Factory, args []string) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintln(f.IO.ErrOut, "usmp-psk: internal error (a bug); no details are shown because they could contain key material")
			code = exitError
		}
	}()
	f.ctx = ctx
	root := newRootCmd(f)
	root.SetArgs(args)
	err := unknownCommand(root, args)
	if err == nil {
		_, err = root.ExecuteContextC(ctx)
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil && !errors.Is(err, errSilent) {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(f.IO.ErrOut, "usmp-psk: interrupted")
		} else {
			fmt.Fprintln(f.IO.ErrOut, "usmp-psk: "+err.Error())
		}
	}
	return exitCodeFor(err)
}
