package cli

// A batch's progress (issue 14 item 9): a bar on stderr whenever stderr is
// a terminal — with --json too, since stdout carries the JSON and stays
// pure — and, when the batch is interrupted, how to finish it.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/usmp/usmp-psk/internal/provision"
)

// batchProgress counts the devices a batch has done and draws the bar.
type batchProgress struct {
	total int
	done  atomic.Int64
}

// trackBatch sets spec.Progress: it counts the devices done and, when
// stderr is a terminal, draws the bar there. finish ends the bar: full
// when the batch succeeded, where it stopped otherwise.
func trackBatch(ios *IOStreams, spec *provision.BatchSpec, total int) (p *batchProgress, finish func(error)) {
	p = &batchProgress{total: total}
	if !ios.IsStderrTTY() {
		spec.Progress = func(done int) { p.done.Store(int64(done)) }
		return p, func(error) {}
	}
	bar := newBatchBar(ios, total)
	spec.Progress = func(done int) {
		p.done.Store(int64(done))
		_ = bar.Set(done)
	}
	return p, func(err error) {
		if err != nil {
			_ = bar.Exit()
			fmt.Fprintln(ios.ErrOut)
			return
		}
		_ = bar.Finish()
	}
}

// interrupted adds to an interrupted batch's error how to finish it: the
// registry is consistent and a re-run of the same command writes what is
// missing (docs/factory.md, "Exit codes and re-runs").
func (p *batchProgress) interrupted(err error) error {
	if p == nil || !errors.Is(err, context.Canceled) {
		return err
	}
	return &interruptError{err: err, hint: fmt.Sprintf("re-run the same command to finish: %d of %d done", p.done.Load(), p.total)}
}

// interruptError is an interrupt (exit 130) with what to do next; run
// prints it after "interrupted".
type interruptError struct {
	err  error
	hint string
}

func (e *interruptError) Error() string { return "interrupted; " + e.hint }
func (e *interruptError) Unwrap() error { return e.err }
