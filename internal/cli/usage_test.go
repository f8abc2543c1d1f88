package cli

import (
	"strings"
	"testing"
)

// TestPlainCobraError: cobra's flag-group texts become plain sentences
// (issue 14 item 12).
func TestPlainCobraError(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"two exclusive", "if any flags in the group [derive random] are set none of the others can be; [derive random] were all set",
			"--derive and --random exclude each other"},
		{"two of three", "if any flags in the group [derive random psk-file] are set none of the others can be; [derive psk-file] were all set",
			"--derive and --psk-file exclude each other: give only one of --derive, --random or --psk-file"},
		{"together", "if any flags in the group [a b] are set they must all be set; missing [b]", "--a and --b go together: --b missing"},
		{"one of", "at least one of the flags in the group [ids count] is required", "give one of --ids or --count"},
		{"required", `required flag(s) "port" not set`, "--port is required"},
		{"required two", `required flag(s) "port", "out" not set`, "--port and --out are required"},
		{"other", "accepts 1 arg(s), received 0", "accepts 1 arg(s), received 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := plainCobraError(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUsageErrorsEndWithHelpLine: every usage error ends with the line
// docs/exit-codes.md promises, once, and the message has one "usmp-psk: "
// prefix; bad input the help cannot fix has no such line (issue 14 item 12).
func TestUsageErrorsEndWithHelpLine(t *testing.T) {
	tests := []struct {
		args     []string
		wantLine string // "" when no help line is expected
	}{
		{[]string{"derive"}, "Run 'usmp-psk derive --help' for usage"},
		{[]string{"derive", "--nope"}, "Run 'usmp-psk derive --help' for usage"},
		{[]string{"generate", "--bytes", "3"}, "Run 'usmp-psk generate --help' for usage"},
		{[]string{"provision", "dev-1", "--derive", "--random", "-o", "x.bin"}, "Run 'usmp-psk provision --help' for usage"},
		{[]string{"batch", "--count", "2"}, "Run 'usmp-psk batch --help' for usage"},
		{[]string{"batch", "--count", "2", "--prefix", "p", "--out", "o", "--derive", "--random"}, "Run 'usmp-psk batch --help' for usage"},
		{[]string{"nvs", "generate"}, "Run 'usmp-psk nvs generate --help' for usage"},
		{[]string{"registry", "show"}, "Run 'usmp-psk registry show --help' for usage"},
		{[]string{"registry", "nope"}, "Run 'usmp-psk registry --help' for usage"},
		{[]string{"registry", "revoke", "dev-1", "--reason", strings.Repeat("x", 1025)}, "Run 'usmp-psk registry revoke --help' for usage"},
		{[]string{"verify"}, "Run 'usmp-psk verify --help' for usage"},
		{[]string{"verify", "img.bin", "--port", "p"}, "Run 'usmp-psk verify --help' for usage"},
		{[]string{"fingerprint", "missing.key"}, ""},
		{[]string{"--config", "missing.yaml", "version"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f, _, _, errOut := testFactory(t, "m")
			if code := runCLI(t, f, t.TempDir(), tt.args...); code != exitUsage {
				t.Fatalf("exit %d, want 2; stderr %q", code, errOut)
			}
			msg := strings.TrimRight(errOut.String(), "\n")
			lines := strings.Split(msg, "\n")
			if strings.Count(msg, "usmp-psk: ") != 1 || !strings.HasPrefix(msg, "usmp-psk: ") || strings.Contains(msg, "usmp-psk: usmp-psk") {
				t.Errorf("want one usmp-psk: prefix, got %q", msg)
			}
			if strings.Contains(msg, "flags in the group") {
				t.Errorf("cobra's raw flag-group text: %q", msg)
			}
			last := lines[len(lines)-1]
			if tt.wantLine == "" {
				if strings.HasPrefix(last, "Run '") {
					t.Errorf("bad input with a help line: %q", msg)
				}
				return
			}
			if last != tt.wantLine || strings.Count(msg, "Run '") != 1 {
				t.Errorf("got %q, want it to end with %q once", msg, tt.wantLine)
			}
		})
	}
}
