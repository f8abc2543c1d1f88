package cli

// This file reads secrets from the terminal. It follows age's internal/term
// and gopass's promptpass: the prompt goes to /dev/tty (never stdout), the
// input is read without echo, and the terminal state is restored when the
// user presses Ctrl-C (golang/go#31180, R3).

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

	"golang.org/x/term"
)

// prompter asks for a secret without echo.
type prompter interface {
	// Available reports whether a terminal is attached to prompt on.
	Available() bool
	// Password shows prompt on the terminal and reads one line without echo.
	Password(prompt string) ([]byte, error)
}

// errNoTerminal is returned when a prompt is needed but there is no terminal.
var errNoTerminal = errors.New("standard input is not a terminal, and /dev/tty is not available")

type ttyPrompter struct {
	stdinTTY bool
}

func newTTYPrompter(stdinTTY bool) *ttyPrompter { return &ttyPrompter{stdinTTY: stdinTTY} }

// open returns the terminal to prompt on: /dev/tty, else stdin when it is a
// terminal.
func (p *ttyPrompter) open() (in *os.File, out io.Writer, closeFn func(), err error) {
	if tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err == nil {
		return tty, tty, func() { tty.Close() }, nil
	}
	if p.stdinTTY {
		return os.Stdin, os.Stderr, func() {}, nil
	}
	return nil, nil, nil, errNoTerminal
}

func (p *ttyPrompter) Available() bool {
	_, _, closeFn, err := p.open()
	if err != nil {
		return false
	}
	closeFn()
	return true
}

func (p *ttyPrompter) Password(prompt string) ([]byte, error) {
	in, out, closeFn, err := p.open()
	if err != nil {
		return nil, err
	}
	defer closeFn()
	fd := int(in.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return nil, fmt.Errorf("read terminal state: %w", err)
	}
	// Restore the terminal if we are interrupted while echo is off.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, interruptSignals...)
	done := make(chan struct{})
	defer func() {
		signal.Stop(sig)
		close(done)
	}()
	go func() {
		select {
		case <-sig:
			_ = term.Restore(fd, state)
			fmt.Fprint(out, "\r\n")
			fmt.Fprintln(os.Stderr, "usmp-psk: interrupted")
			os.Exit(exitCancel)
		case <-done:
		}
	}()
	fmt.Fprint(out, prompt)
	b, err := term.ReadPassword(fd)
	// Erase the prompt line.
	fmt.Fprint(out, "\r\x1b[K")
	if err != nil {
		return nil, fmt.Errorf("read from terminal: %w", err)
	}
	return b, nil
}
