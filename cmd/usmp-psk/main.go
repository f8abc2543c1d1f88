// Command usmp-psk provisions the pre-shared keys of USMP devices. See
// README.md and docs/.
package main

import (
	"os"

	"github.com/usmp/usmp-psk/internal/cli"
)

func main() { os.Exit(cli.Main()) }
