//go:build ignore

// Fixture for the escape hatch: a reasoned waiver is honoured; a waiver
// without a reason, for an unknown rule, or excusing nothing is reported.

package main

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/usmp/usmp-psk/internal/psk"
)

func main() {
	//secretcheck:ignore exec-env the timed command is the program under test and needs this environment
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	_ = cmd.Run()
	c2 := exec.Command("true") //secretcheck:ignore exec-env a command with no inputs, shown for the trailing form
	_ = c2.Run()
}

func bad(key *psk.Secret) {
	fmt.Println(key.Expose()) /* want "bad-ignore" "secret-print" */ //secretcheck:ignore secret-print
	fmt.Println(key.Expose()) /* want "bad-ignore" "secret-print" */ //secretcheck:ignore no-such-rule because it is not a rule
	fmt.Println(key.Expose()) /* want "bad-ignore" "secret-print" */ //secretcheck:ignore bad-ignore because waivers cannot be waived
	fmt.Println(key.Expose()) /* want "bad-ignore" "secret-print" */ //secretcheck:ignore exec-env the wrong rule excuses nothing here
	/* want "bad-ignore" */ //secretcheck:ignored secret-print misspelt directive
	//secretcheck:ignore secret-print the next line prints nothing secret /* want "bad-ignore" */
	fmt.Println(psk.KCV(key))
}
