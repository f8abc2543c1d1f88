//go:build !unix

package cli

// harden is not available here (R30).
func harden() []string {
	return []string{"process hardening (no core dumps, not dumpable) is not available on this OS; file permissions are not enforced on this OS (ACLs)"}
}

func hardening() (coreLimit uint64, dumpable int, supported bool) { return 0, -1, false }
