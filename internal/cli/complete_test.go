package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestShellCompletionRequests: the shells' completion scripts call the
// hidden __complete command, which the refusal of unknown commands must
// let through (it did not, and bash completion completed nothing).
func TestShellCompletionRequests(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "de"}, "derive"},
		{[]string{"__completeNoDesc", "de"}, "derive"},
		{[]string{"__complete", "registry", "re"}, "revoke"},
		{[]string{"__complete", "derive", "--enc"}, "--encoding"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f, _, out, errOut := testFactory(t, "")
			if code := runCLI(t, f, t.TempDir(), tt.args...); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Fatalf("completions %q lack %q", out.String(), tt.want)
			}
		})
	}
}

// acceptanceLines are command lines that reach the check of the flags with
// fixed completions, run in a directory holding k.hex (a hex key) and
// e.bin (an empty file).
var acceptanceLines = map[string][]string{
	"derive":          {"dev-a"},
	"generate":        {},
	"fingerprint":     {"k.hex"},
	"provision":       {"dev-a", "--psk-file", "k.hex", "-o", "o.bin"},
	"rotate":          {"dev-a", "--psk-file", "k.hex", "-o", "o.bin"},
	"registry add":    {"dev-a", "--psk-file", "k.hex"},
	"nvs set":         {"e.bin", "--namespace", "a", "--key", "b", "--value", "1"},
	"verify":          {"e.bin"},
	"nvs check":       {"e.bin"},
	"batch":           {"--count", "1", "--out", "o", "--dry-run"},
	"registry export": {},
}

// TestFixedCompletionsAreAccepted: every value the shell completion offers
// for a flag is one the command accepts (`registry export --format`
// offered python, which it refuses). For each command and flag of the
// completion table, a bogus value shows the command's refusal — which
// never repeats the value (R23), so it is the same for any refused value —
// and no offered value may bring that refusal.
func TestFixedCompletionsAreAccepted(t *testing.T) {
	f0, _, _, _ := testFactory(t, "")
	root := newRootCmd(f0)
	runIn := func(t *testing.T, args []string) string {
		t.Helper()
		dir := t.TempDir()
		for name, content := range map[string]string{"k.hex": strings.Repeat("5a", 32) + "\n", "e.bin": ""} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		f, _, _, errOut := testFactory(t, canaryMaster(t))
		runCLI(t, f, dir, args...)
		return errOut.String()
	}
	checked := 0
	for _, c := range allCommands(root) {
		path := subcommandPath(c)
		c.Flags().VisitAll(func(fl *pflag.Flag) {
			if _, ok := fixedCompletionFor(path, fl.Name); !ok {
				return
			}
			base, ok := acceptanceLines[path]
			if !ok {
				t.Errorf("%s --%s has fixed completions: add a command line to acceptanceLines", path, fl.Name)
				return
			}
			complete, _ := c.GetFlagCompletionFunc(fl.Name)
			offered, _ := complete(c, nil, "")
			line := func(value string) []string {
				return append(append(append(strings.Fields(path), base...), "--"+fl.Name), value)
			}
			t.Run(path+" --"+fl.Name, func(t *testing.T) {
				refusal, _, _ := strings.Cut(runIn(t, line("bogus-value")), "\n")
				if !strings.Contains(refusal, "--"+fl.Name) {
					t.Fatalf("a bogus value is not refused for its flag (the command line does not reach the check): %q", refusal)
				}
				for _, o := range offered {
					value, _, _ := strings.Cut(o, "\t")
					if errOut := runIn(t, line(value)); strings.Contains(errOut, refusal) {
						t.Errorf("offered %q, refused: %s", value, errOut)
					}
					checked++
				}
			})
		})
	}
	if checked == 0 {
		t.Fatal("no completion checked")
	}
}
