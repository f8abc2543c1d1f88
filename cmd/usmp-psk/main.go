// Command usmp-psk provisions the pre-shared keys of USMP devices. See
// README.md and docs/.
package main

import (
	"os"

	"github.com/usmp/usmp-psk/internal/cli"
	// Holds Ctrl-C, SIGTERM and Ctrl-\ from the first moments, until
	// cli.Main's handler takes over (issue 13 item 6).
	_ "github.com/usmp/usmp-psk/internal/sighold/early"
)

func main() { os.Exit(cli.Main()) }
