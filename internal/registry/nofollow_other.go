//go:build !unix

package registry

// chmodNoFollow does nothing where file modes do not protect the registry
// (fixMode returns before calling it on Windows).
func chmodNoFollow(string) error { return nil }

// noFollow is 0 where the open flag does not exist.
const noFollow = 0

// nonBlock is 0 where there are no FIFOs to wait on.
const nonBlock = 0
