package cli

import (
	"strings"
	"testing"
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
