//go:build unix && !linux

package cli

import "syscall"

// harden disables core dumps; PR_SET_DUMPABLE is Linux-only (R11, R30).
func harden() []string {
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{Cur: 0, Max: 0}); err != nil {
		return []string{"could not disable core dumps: " + err.Error()}
	}
	return nil
}

func hardening() (coreLimit uint64, dumpable int, supported bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &rl); err != nil {
		return 0, -1, false
	}
	return rl.Cur, -1, true
}
