package cli

// Interrupts: SIGINT, SIGTERM and SIGQUIT all stop a run the same way —
// the run's context is cancelled, the command stops cleanly and the exit
// code is 130. SIGQUIT (Ctrl-\) would otherwise make the Go runtime print
// a goroutine dump, which shows stack frames and arguments a key could be
// in (R12), and exit 2.
//
// A read from a FIFO or a pipe can block for ever (a master file that is a
// FIFO nobody writes, --psk-file - fed by a program that hangs); the
// context cannot interrupt a blocked open(2) or read(2), so every read of
// a file the user named, or of standard input, runs in a goroutine that
// the run stops waiting for (readInterruptibly, interruptibly,
// readFileInterruptibly).

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/sighold"
)

// interruptSignals are the signals that stop a run with exit 130, the
// ones package early holds until MainWith's handler is installed.
var interruptSignals = sighold.Signals()

// interruptGrace is how long a read from a pipe or FIFO that ended empty
// or in an error waits for an interrupt that may have caused it: Ctrl-C
// signals the whole process group, so the program feeding the pipe can die
// and close it just before our own SIGINT is handled. Without the wait the
// run would report "the key is empty" (exit 2) instead of 130. Only the
// error path waits.
const interruptGrace = 500 * time.Millisecond

// runContext is the context of the run: cancelled by an interrupt.
func (f *Factory) runContext() context.Context {
	if f.ctx == nil {
		return context.Background()
	}
	return f.ctx
}

// readInterruptibly runs read, which may block for ever on a FIFO or a
// pipe, and returns context.Canceled as soon as the run is interrupted.
// The abandoned read goes on in its goroutine until the process exits;
// what it returns then is passed to discard (to wipe key bytes). suspect
// says whether a result may be the effect of an interrupt (an empty read
// or an error from a pipe); such a result waits interruptGrace for one.
func readInterruptibly[T any](f *Factory, read func() (T, error), discard func(T), suspect func(T, error) bool) (T, error) {
	return interruptibly(f.runContext(), f.fileStepHook(), read, discard, suspect)
}

// graceStep is the step a suspect result reaches as it begins to wait
// for an interrupt: the test binary's step hook can hold the run there.
const graceStep = "interrupt-grace"

// interruptibly is readInterruptibly with the run's context. stepHook is
// the test binary's (Factory.fileStepHook), called with graceStep when a
// suspect result begins to wait; nil in production, and where no Factory
// is at hand. discard and suspect may be nil: nothing to wipe, no result
// to doubt.
func interruptibly[T any](ctx context.Context, stepHook func(step, path string), read func() (T, error), discard func(T), suspect func(T, error) bool) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	if discard == nil {
		discard = func(T) {}
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := read()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		if ctx.Err() == nil && suspect != nil && suspect(r.v, r.err) {
			if stepHook != nil {
				stepHook(graceStep, "")
			}
			t := time.NewTimer(interruptGrace)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		if err := ctx.Err(); err != nil {
			discard(r.v)
			return zero, err
		}
		return r.v, r.err
	case <-ctx.Done():
		go func() { discard((<-ch).v) }()
		return zero, ctx.Err()
	}
}

// readFileInterruptibly runs read, which reads the file at path that the
// user named, interruptibly: a pipe or FIFO (<(cmd), mkfifo) that never
// delivers does not hold up an interrupt, and one that ends empty or in an
// error waits for the interrupt that may have caused it (issue 13 item 6).
// What an abandoned read returns is wiped: images and key files hold keys.
func readFileInterruptibly(ctx context.Context, path string, read func() ([]byte, error)) ([]byte, error) {
	stream := isStream(path)
	return interruptibly(ctx, nil, read, psk.Wipe, func(b []byte, err error) bool { return stream && (err != nil || len(b) == 0) })
}

// isStream reports whether path is not a regular file (a pipe, a FIFO, a
// terminal or other device), where an empty read may be an interrupt's.
func isStream(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.Mode().IsRegular()
}

// isStreamReader is isStream for an open reader: only an *os.File that is
// not a regular file counts (test buffers do not).
func isStreamReader(r io.Reader) bool {
	fh, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := fh.Stat()
	return err == nil && !fi.Mode().IsRegular()
}
