package psk

import "testing"

// TestInputErrorOnCommandLine: a flag typed on the command line is a usage
// error; a file, a setting from the environment or a config file, or an
// argument is not.
func TestInputErrorOnCommandLine(t *testing.T) {
	for _, tt := range []struct {
		source string
		want   bool
	}{
		{"--encoding", true},
		{"--size", true},
		{"size from $USMP_PSK_SIZE", false},
		{"encoding from ./usmp-psk.yaml", false},
		{"keys.csv:3", false},
		{"--", false},
		{"---x", false},
		{"SIZE", false},
		{"master secret", false},
		{"", false},
	} {
		if got := (&InputError{Source: tt.source}).OnCommandLine(); got != tt.want {
			t.Errorf("%q: %v, want %v", tt.source, got, tt.want)
		}
	}
}
