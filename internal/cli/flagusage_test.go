package cli

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestFlagUsageNamesItsValue: --help shows every flag that takes a value
// with a placeholder — `--reason TEXT`, `--baud RATE` — never the bare Go
// type (`--reason string`, `--baud int`), which pflag writes when the usage
// names no value between backticks (house style §16).
func TestFlagUsageNamesItsValue(t *testing.T) {
	f, _, _, _ := testFactory(t, "")
	root := newRootCmd(f)
	seen := map[*pflag.Flag]bool{}
	for _, c := range allCommands(root) {
		c.InitDefaultHelpFlag()
		check := func(fl *pflag.Flag) {
			if seen[fl] || fl.Value.Type() == "bool" {
				return
			}
			seen[fl] = true
			name, _ := pflag.UnquoteUsage(fl)
			if !strings.Contains(fl.Usage, "`") || name == fl.Value.Type() {
				t.Errorf("%s --%s shows %q as its value: name it in the usage between backticks", subcommandPath(c), fl.Name, name)
			}
		}
		c.LocalFlags().VisitAll(check)
		c.InheritedFlags().VisitAll(check)
	}
	if len(seen) == 0 {
		t.Fatal("no flag checked")
	}
}
