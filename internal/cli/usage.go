package cli

// Usage errors, in one place (issue 14 item 12): every usage error ends with
// the line docs/exit-codes.md promises, "Run 'usmp-psk … --help' for usage",
// and cobra's own texts for flag groups become plain sentences.

import (
	"errors"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/psk"
)

// usageError is err as a usage error (exit 2) that ends with the line
// pointing to c's help.
func usageError(c *cobra.Command, err error) error {
	return &FlagError{Err: &usageLineError{err: err, path: c.CommandPath()}}
}

// withUsageLine makes err, from running cmd, a usage error that ends with
// the help line, when it is one: a FlagError (flags, arguments, flag
// combinations) or one of cobra's plain usage errors. One that has the line
// already (a usageLineError), bad input found in a file (an id list, a CSV,
// a key file: BadInput errors) and every other error are returned as they
// are.
func withUsageLine(cmd *cobra.Command, err error) error {
	if err == nil || cmd == nil {
		return err
	}
	var fe *FlagError
	var ul *usageLineError
	var ie *psk.InputError
	switch {
	case errors.As(err, &ul):
		return err
	case errors.As(err, &fe) && !fe.noUsageLine:
		return usageError(cmd, err)
	case errors.As(err, &ie) && ie.OnCommandLine():
		// A flag's value refused where it is used (an encoding, a
		// size, a shard): the help says what is accepted.
		return usageError(cmd, err)
	}
	return err
}

// usageLineError is err followed by the line pointing to the help of the
// command at path: the one place that line is written, and how an error
// says it has it.
type usageLineError struct {
	err  error
	path string
}

func (e *usageLineError) Error() string {
	return e.err.Error() + "\nRun '" + e.path + " --help' for usage"
}

func (e *usageLineError) Unwrap() error { return e.err }

// The texts of cobra's flag-group and required-flag errors.
var (
	reExclusive = regexp.MustCompile(`^if any flags in the group \[([^\]]*)\] are set none of the others can be; \[([^\]]*)\] were all set$`)
	reTogether  = regexp.MustCompile(`^if any flags in the group \[([^\]]*)\] are set they must all be set; missing \[([^\]]*)\]$`)
	reOneOf     = regexp.MustCompile(`^at least one of the flags in the group \[([^\]]*)\] is required$`)
	reRequired  = regexp.MustCompile(`^required flag\(s\) (.*) not set$`)
)

// plainCobraError rewrites cobra's flag-group texts ("if any flags in the
// group [derive random] are set none of the others can be; [derive random]
// were all set") as plain sentences ("--derive and --random exclude each
// other"). Other texts are returned as they are.
func plainCobraError(msg string) string {
	if m := reExclusive.FindStringSubmatch(msg); m != nil {
		group, set := strings.Fields(m[1]), strings.Fields(m[2])
		if len(set) == len(group) {
			return flagList(set, "and") + " exclude each other"
		}
		return flagList(set, "and") + " exclude each other: give only one of " + flagList(group, "or")
	}
	if m := reTogether.FindStringSubmatch(msg); m != nil {
		return flagList(strings.Fields(m[1]), "and") + " go together: " + flagList(strings.Fields(m[2]), "and") + " missing"
	}
	if m := reOneOf.FindStringSubmatch(msg); m != nil {
		return "give one of " + flagList(strings.Fields(m[1]), "or")
	}
	if m := reRequired.FindStringSubmatch(msg); m != nil {
		var names []string
		for _, n := range strings.Split(m[1], ", ") {
			names = append(names, strings.Trim(n, `"`))
		}
		verb := " is required"
		if len(names) > 1 {
			verb = " are required"
		}
		return flagList(names, "and") + verb
	}
	return msg
}

// flagList writes names as "--a", "--a and --b" or "--a, --b and --c".
func flagList(names []string, conj string) string {
	for i, n := range names {
		names[i] = "--" + n
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " " + conj + " " + names[len(names)-1]
}

// subcommandPath is a command's path without the program's name ("registry
// show"), for messages that already carry the "usmp-psk: " prefix.
func subcommandPath(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}
