package cli

import (
	"context"
	"errors"
)

// Exit codes, documented in docs/exit-codes.md and `usmp-psk --help`.
const (
	exitOK       = 0   // success
	exitError    = 1   // failure: I/O, internal, lock timeout, no master secret
	exitUsage    = 2   // usage or bad input: flags, device ids, CSV, tables, key files
	exitMismatch = 3   // verification failed: key mismatch, check findings, tampered audit log
	exitCancel   = 130 // interrupted (Ctrl-C, SIGTERM)
)

// FlagError is a usage error: bad flags or arguments (exit 2). run adds
// the line pointing to the command's help (withUsageLine) unless
// noUsageLine says the error is about input the help cannot fix.
type FlagError struct {
	Err         error
	noUsageLine bool
}

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// flagErrorf builds a FlagError.
func flagErrorf(msg string) error { return &FlagError{Err: errors.New(msg)} }

// inputError is bad input given on the command line that the command's help
// would not fix (a file that does not exist, a terminal where a file or pipe
// belongs): exit 2, without the help line.
func inputError(err error) error { return &FlagError{Err: err, noUsageLine: true} }

// errSilent reports failure whose message was already printed (exit 1).
var errSilent = errors.New("silent error")

// mismatchError reports a failed verification (exit 3).
type mismatchError struct{ msg string }

func (e *mismatchError) Error() string  { return e.msg }
func (e *mismatchError) Mismatch() bool { return true }

// exitCodeFor maps an error to its exit code in one place.
func exitCodeFor(err error) int {
	if err == nil {
		return exitOK
	}
	var fe *FlagError
	var bad interface{ BadInput() bool }
	var mm interface{ Mismatch() bool }
	switch {
	case errors.Is(err, context.Canceled):
		return exitCancel
	case errors.As(err, &fe):
		return exitUsage
	case errors.As(err, &mm) && mm.Mismatch():
		return exitMismatch
	case errors.As(err, &bad) && bad.BadInput():
		return exitUsage
	}
	return exitError
}
