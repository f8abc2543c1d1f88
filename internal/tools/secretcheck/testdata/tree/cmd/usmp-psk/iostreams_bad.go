//go:build ignore

// Fixture for secret-print through the CLI's IOStreams, resolved by type.

package main

import (
	"github.com/usmp/usmp-psk/internal/cli"
	"github.com/usmp/usmp-psk/internal/psk"
)

func report(key *psk.Secret) {
	io := cli.System()
	io.Infof("derived %x", key.Expose()) // want "secret-print"
	io.Warn(string(key.Expose()))        // want "secret-print" "secret-string"
	io.Infof("derived %s", psk.KCV(key))
}
