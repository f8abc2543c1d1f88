package psk

import "strings"

// InputError reports bad input: a flag value, a file or a variable that the
// user must fix. Source names where the input came from (a flag, a path, an
// environment variable); Msg says what is wrong. Neither ever holds any part
// of a secret value (R9). Callers map it to exit code 2.
type InputError struct {
	Source string
	Msg    string
}

func (e *InputError) Error() string {
	if e.Source == "" {
		return e.Msg
	}
	return e.Source + ": " + e.Msg
}

// BadInput marks the error as the user's input to fix (exit code 2).
func (e *InputError) BadInput() bool { return true }

// OnCommandLine reports whether the input was a flag's value typed on the
// command line (Source "--encoding", not a file or a setting from the
// environment): a usage error, which the command's help can fix.
func (e *InputError) OnCommandLine() bool {
	return len(e.Source) > 2 && e.Source[:2] == "--" && e.Source[2] != '-' && !strings.ContainsAny(e.Source, " :")
}
