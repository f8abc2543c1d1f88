// Package early starts holding the interrupt signals (package sighold) as
// it is initialised; cmd/usmp-psk imports it for that alone. It is an
// init() on purpose, the one exception to house style §4: Go initialises
// every imported package before main runs, and this is how the hold begins
// during that time rather than after it (issue 13 item 6). Only main
// imports it, so that the test binaries of other packages, which import
// internal/cli, keep Go's default handling of their signals.
package early

import "github.com/usmp/usmp-psk/internal/sighold"

func init() { sighold.Start() }
