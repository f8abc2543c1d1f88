package cli

// This file holds the only code that touches the process's standard streams.
// Command code writes through IOStreams, so tests can run it with buffers and
// an injected terminal flag (R10).

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/term"
)

// stdinSource names standard input in messages, as the source of a key
// or value read from "-".
const stdinSource = "standard input"

// IOStreams are the standard streams with their terminal state.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool
	// termWidth is the terminal's width in columns when stdout is one (0:
	// unknown); tests set it (tables fit it, issue 14 item 7).
	termWidth int

	// outFile is stdout as a file, when it is one, for the R7 mode check.
	outFile *os.File
	// prompter asks for secrets on the terminal; nil when none is attached.
	prompter prompter

	// warnMu guards warned, the warnings already printed: a check that
	// runs more than once for the same file (early, then again just before
	// the write) or for every device of a batch says its warning once.
	warnMu sync.Mutex
	warned map[string]bool

	// redact cuts out of every message what it must not show (redact.go);
	// run sets it from the command line, nil replaces nothing.
	redact *redactor
}

// System returns the process's streams.
func System() *IOStreams {
	s := &IOStreams{
		In:        os.Stdin,
		Out:       os.Stdout,
		ErrOut:    os.Stderr,
		stdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		outFile:   os.Stdout,
	}
	s.prompter = newTTYPrompter(s.stdinTTY)
	if s.stdoutTTY {
		if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			s.termWidth = w
		}
	}
	return s
}

// TerminalWidth is the width of the terminal stdout is, in columns; 0 when
// it is unknown or stdout is no terminal.
func (s *IOStreams) TerminalWidth() int { return s.termWidth }

// IsStdinTTY reports whether stdin is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// IsStdoutTTY reports whether stdout is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether stderr is a terminal (progress bars).
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// message prints one message on stderr with the tool's prefix. Every
// message of the run goes through here — errors, warnings, progress — so
// that none repeats what it must not (redact.go).
func (s *IOStreams) message(msg string) {
	fmt.Fprintln(s.ErrOut, "usmp-psk: "+s.redact.apply(msg))
}

// Infof prints a diagnostic line on stderr with the tool's prefix.
func (s *IOStreams) Infof(format string, a ...any) {
	s.message(fmt.Sprintf(format, a...))
}

// cutKeysOf makes every later message leave out the parts of a setting's
// value that look like a key, as run does for the arguments.
func (s *IOStreams) cutKeysOf(value string) {
	if s.redact == nil {
		s.redact = &redactor{}
	}
	s.redact.cutKeys(value, keySettingRedaction)
}

// hideValue makes every later message name a setting's value by label
// (announceSetting did not show it).
func (s *IOStreams) hideValue(name, value, label string) {
	if s.redact == nil {
		s.redact = &redactor{}
	}
	s.redact.hide(name, value, label)
}

// messageWriter is stderr for code that writes to it itself (cobra): each
// write is one message, redacted as message does.
type messageWriter struct{ s *IOStreams }

func (w messageWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.s.ErrOut, w.s.redact.apply(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// childOutput is stderr for a child's output (esptool's), which may repeat
// our arguments ("Serial port X"): redacted as messages are, a line at a
// time (a line ends at '\n' or at the '\r' of a progress line), so that a
// token split across writes is still cut out. Flush writes the rest.
type childOutput struct {
	s   *IOStreams
	mu  sync.Mutex
	buf []byte
}

func (w *childOutput) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexAny(w.buf, "\r\n")
		if i < 0 {
			break
		}
		if _, err := io.WriteString(w.s.ErrOut, w.s.redact.apply(string(w.buf[:i+1]))); err != nil {
			return 0, err
		}
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// Flush writes what is left of a last line without its end.
func (w *childOutput) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		_, _ = io.WriteString(w.s.ErrOut, w.s.redact.apply(string(w.buf)))
		w.buf = nil
	}
}

// Warnf prints a warning line on stderr, once per distinct message. It is
// safe for concurrent use (batch workers warn through it).
func (s *IOStreams) Warnf(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	s.warnMu.Lock()
	defer s.warnMu.Unlock()
	if s.warned[msg] {
		return
	}
	if s.warned == nil {
		s.warned = map[string]bool{}
	}
	s.warned[msg] = true
	s.message("warning: " + msg)
}

// Warn prints a warning message on stderr (for callbacks).
func (s *IOStreams) Warn(msg string) { s.Warnf("%s", msg) }

// stdoutMode returns stdout's permission bits when it is a regular file.
func (s *IOStreams) stdoutMode() (os.FileMode, bool) {
	if s.outFile == nil {
		return 0, false
	}
	fi, err := s.outFile.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Mode().Perm(), true
}
