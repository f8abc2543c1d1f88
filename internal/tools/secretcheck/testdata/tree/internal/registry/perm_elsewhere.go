//go:build ignore

// Fixture: secfile-perm applies to the secret-writer packages only
// (internal/secfile, internal/provision); gosec covers the rest.

package registry

import "os"

func writeManifest(path string, data []byte) error {
	return os.WriteFile(path, data, 0o644)
}
