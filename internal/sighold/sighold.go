// Package sighold catches the interrupt signals from the first moments of
// the process until the run's own handler takes over (issue 13 item 6).
//
// cli.MainWith installs that handler (signal.NotifyContext) only once
// every package is initialised and main has started: a few milliseconds
// in which Ctrl-\ (SIGQUIT) would make the Go runtime print a goroutine
// dump, which shows stack frames and arguments a key could be in (R12),
// and exit 2, and Ctrl-C would kill the process without the clean stop
// and exit 130 of a run. Start, called by the init of package early (which
// main imports for that alone), holds such a signal; Handoff, called once
// the run's handler is installed, says whether one came, so that the run
// stops at once with 130.
//
// The package is tiny and imports only os, os/signal and syscall, so that
// its init, and early's, come soon after the runtime's (about 1 ms in). What it cannot cover is
// the time before: a signal that arrives while the runtime starts (before
// package os is initialised) still gets the default action.
package sighold

import (
	"os"
	"os/signal"
	"syscall"
)

// Signals are the signals that stop a run with exit 130.
func Signals() []os.Signal {
	return []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT}
}

// held receives the signals caught between Start and Handoff. It is the
// package's one variable, and a necessary one: the init that fills it runs
// before main can create anything to pass around (house style §4 allows no
// other kind; no test overwrites it).
var held = make(chan os.Signal, 1)

// Start holds the interrupt signals from now on, until Handoff or Release.
func Start() { signal.Notify(held, Signals()...) }

// Held reports whether a signal has arrived since Start and is held (the
// test binary waits for it before it goes on to cli.MainWith).
func Held() bool { return len(held) > 0 }

// Handoff stops holding the signals and reports whether one arrived since
// Start. Call it once the run's own handler for the same signals is
// installed: a signal that arrives meanwhile reaches both, and none falls
// between. Without Start it does nothing and reports false.
func Handoff() bool {
	_, ok := stop()
	return ok
}

// Release stops holding the signals and gives one that arrived since Start
// its default action, as if it came now: for a process that turns out not
// to run a command (the test binary when it runs its tests).
func Release() {
	if sig, ok := stop(); ok {
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			_ = p.Signal(sig)
		}
	}
}

// stop stops holding and returns the signal held, if any.
func stop() (os.Signal, bool) {
	signal.Stop(held) // once Stop returns, nothing more is sent on held
	select {
	case sig := <-held:
		return sig, true
	default:
		return nil, false
	}
}
