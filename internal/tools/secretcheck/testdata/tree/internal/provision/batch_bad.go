//go:build ignore

// Fixture for secfile-perm in the batch writer, which writes images in
// place (design §8).

package provision

import "os"

func writeImage(path string, img []byte) error {
	return os.WriteFile(path, img, 0o640) // want "secfile-perm"
}
