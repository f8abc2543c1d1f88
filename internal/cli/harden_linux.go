//go:build linux

package cli

import (
	"syscall"
)

const (
	prSetDumpable = 4 // PR_SET_DUMPABLE
	prGetDumpable = 3 // PR_GET_DUMPABLE
)

// harden disables core dumps and makes the process non-dumpable, so /proc
// files become root-owned and same-uid ptrace fails (R11).
func harden() []string {
	var warns []string
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{Cur: 0, Max: 0}); err != nil {
		warns = append(warns, "could not disable core dumps: "+err.Error())
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetDumpable, 0, 0); errno != 0 {
		warns = append(warns, "could not mark the process non-dumpable: "+errno.Error())
	}
	return warns
}

// hardening reports the current state for `selfcheck`.
func hardening() (coreLimit uint64, dumpable int, supported bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &rl); err != nil {
		return 0, -1, true
	}
	d, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetDumpable, 0, 0)
	if errno != 0 {
		return rl.Cur, -1, true
	}
	return rl.Cur, int(d), true
}
