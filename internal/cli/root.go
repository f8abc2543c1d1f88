package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/usmp/usmp-psk/internal/psk"
)

// rootOptions are the global flags.
type rootOptions struct {
	configFile     string
	masterFile     string
	allowUnignored bool
	registry       string
	lockTimeout    time.Duration
}

const rootLong = `usmp-psk provisions the pre-shared keys (PSKs) of USMP devices and keeps the
gateway's registry of them, without ever showing a key.

Keys are shown only as key check values (KCV: 8 hex digits). Key bytes go only
to 0600 files or to a pipe, never to a terminal.

Environment:
  USMP_MASTER_SECRET   master secret for derived keys (or --master-file, or a prompt)
  USMP_PSK_<FLAG>      default for any flag, e.g. USMP_PSK_ENCODING=base64
  USMP_PSK_CONFIG      config file (default $XDG_CONFIG_HOME/usmp-psk/config.yaml,
                       and ./usmp-psk.yaml for settings that are safe to take
                       from a directory; see docs/configuration.md)
  USMP_PSK_REGISTRY    the device registry (default ./usmp-registry.db, a SQLite
                       database, or a postgres:// URL; passwords only from
                       PGPASSWORD/.pgpass)
  USMP_REGISTRY_KEY    64 hex digits sealing the registry's stored keys
                       (always needed for them on PostgreSQL)
Secrets (USMP_MASTER_SECRET, USMP_REGISTRY_KEY) are read once at start-up and
removed from the environment; no flag ever takes a secret. Settings that
weaken a safety rule or choose where a secret comes from or goes (force,
allow-unignored, master-file, registry, output, ...) are never taken from
./usmp-psk.yaml, and when the environment or your own config file sets them,
stderr says so.

Exit codes:
  0 ok; 1 failure; 2 usage or bad input; 3 verification failed; 130 interrupted`

// newRootCmd builds the command tree. Commands are added explicitly; there
// is no init() registration (house style §4).
func newRootCmd(f *Factory) *cobra.Command {
	opts := &rootOptions{}
	root := &cobra.Command{
		Use:           "usmp-psk <command> [flags]",
		Short:         "Provision USMP pre-shared keys without ever echoing a secret",
		Long:          rootLong,
		SilenceErrors: true,
		SilenceUsage:  true,
		Example: `  # derive the key of one device into a 0600 file
  $ export USMP_MASTER_SECRET=…   # or --master-file /run/credentials/usmp-master
  $ usmp-psk derive device-id-1 -o device-id-1.psk

  # make a random 32-byte key
  $ usmp-psk generate -o gateway.psk`,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			f.masterCheckable = func() bool { return registryChecksMaster(f, opts, cmd, args) }
			if err := loadConfig(f, cmd, opts.configFile); err != nil {
				return err
			}
			if opts.lockTimeout < 0 && usesSetting(cmd, "registry") {
				return flagErrorf(settingBy(f, "lock-timeout") + ": a negative duration (how long a writer waits for another, e.g. 30s)")
			}
			return validateFlagGroups(cmd)
		},
	}
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(messageWriter{f.IO})
	root.SetFlagErrorFunc(flagErrorFunc)

	pf := root.PersistentFlags()
	pf.StringVar(&opts.configFile, "config", "", "config `FILE` instead of $XDG_CONFIG_HOME/usmp-psk/config.yaml and ./usmp-psk.yaml ($USMP_PSK_CONFIG)")
	pf.StringVar(&opts.masterFile, "master-file", "", "read the master secret from `PATH` instead of $USMP_MASTER_SECRET")
	pf.BoolVar(&opts.allowUnignored, "allow-unignored", false, "write secret files inside a git work tree even where git does not ignore them")
	addRegistryFlags(opts, pf)

	root.AddCommand(
		newGenerateCmd(f, opts, nil),
		newDeriveCmd(f, opts, nil),
		newFingerprintCmd(f, nil),
		newNVSCmd(f, opts),
		newPartitionCmd(f),
		newProvisionCmd(f, opts, nil),
		newVerifyCmd(f, opts, nil),
		newRotateCmd(f, opts, nil),
		newRegistryCmd(f, opts),
		newFlashCmd(f, nil),
		newBatchCmd(f, opts, nil),
		newVersionCmd(f),
		newSelfcheckCmd(f),
	)
	addVersionFlag(root)
	registerCompletions(f, root)
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	guardHelpTopics(root)
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Short = "Generate the shell completion script for bash, zsh, fish or powershell"
		}
	}
	typeArgErrors(root)
	return root
}

// typeArgErrors makes every argument validator of the tree — ours already
// do, cobra's completion commands do not — return a usage error (exit 2),
// so that the exit code never depends on an error's text (house style
// §12). The text is kept.
func typeArgErrors(c *cobra.Command) {
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			err := args(cmd, a)
			var fe *FlagError
			if err != nil && !errors.As(err, &fe) {
				return &FlagError{Err: err}
			}
			return err
		}
	}
	for _, sub := range c.Commands() {
		typeArgErrors(sub)
	}
}

// validateFlagGroups runs cobra's checks of required flags and flag groups
// (MarkFlagsMutuallyExclusive) once the configuration has set the flags it
// sets, as cobra would run them next, and makes their errors usage errors:
// cobra returns them untyped, in its own words, which plainCobraError turns
// into a sentence (issue 14 item 12).
func validateFlagGroups(cmd *cobra.Command) error {
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return &FlagError{Err: errors.New(plainCobraError(err.Error()))}
	}
	if err := cmd.ValidateFlagGroups(); err != nil {
		return &FlagError{Err: errors.New(plainCobraError(err.Error()))}
	}
	return nil
}

// flagErrorFunc turns flag parsing errors into usage errors whose text never
// repeats what was typed (R23): pflag quotes a rejected value, and the
// "value" may be a key pasted after the wrong flag.
func flagErrorFunc(c *cobra.Command, err error) error {
	return usageError(c, describeFlagError(err))
}

// describeFlagError rewrites pflag's errors, which quote the argument, to
// name the flag and what it accepts instead.
func describeFlagError(err error) error {
	var (
		ive *pflag.InvalidValueError
		ne  *pflag.NotExistError
		se  *pflag.InvalidSyntaxError
	)
	switch {
	case errors.As(err, &ive):
		fl := ive.GetFlag()
		return fmt.Errorf("invalid value for --%s (want %s)", fl.Name, valueWant(fl))
	case errors.As(err, &ne):
		name := ne.GetSpecifiedName()
		if ne.GetSpecifiedShortnames() != "" {
			if c := name[0]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
				return fmt.Errorf("unknown shorthand flag: -%c", c)
			}
			return errors.New("unknown shorthand flag")
		}
		if printableFlagName(name) {
			return fmt.Errorf("unknown flag: --%s", name)
		}
		return errors.New("unknown flag (not repeated: it does not look like a flag name)")
	case errors.As(err, &se):
		return errors.New("bad flag syntax (not repeated): a flag is -x or --name")
	}
	return err
}

// printableFlagName reports whether an unknown flag's name may be repeated
// in an error: a short name of letters, digits, '-' and '_' that does not
// look like key material. Anything else is not echoed.
func printableFlagName(name string) bool {
	if name == "" || len(name) > 32 || psk.LooksLikeKey(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// valueWant says in words what a flag of a pflag type accepts.
func valueWant(fl *pflag.Flag) string {
	switch t := fl.Value.Type(); t {
	case "bool":
		return "true or false"
	case "int", "int64":
		return "a whole number"
	case "uint32":
		return "a whole number from 0 to 4294967295"
	case "duration":
		return "a duration like 30s, 5m or 1h"
	default:
		return t
	}
}

// unknownCommand refuses an argument that names no command, before cobra
// runs: cobra would quote it ("unknown command %q") or, under a command that
// only groups others (nvs, registry, …), print the help and exit 0. The
// argument is not repeated; the commands that exist are listed instead.
func unknownCommand(root *cobra.Command, args []string) error {
	if isCompletionRequest(args) {
		// The shell asking for candidates: cobra's __complete finds the
		// command itself, and a partial word is no mistake.
		return nil
	}
	c, rest, err := root.Find(args)
	if err != nil {
		c, rest = root, args
	} else if !c.HasSubCommands() || c.Runnable() {
		return nil
	}
	if c.ParseFlags(rest) != nil {
		if err != nil {
			// cobra's Find fails only on an argument that names no
			// command, and would return that (untyped, quoting it) before
			// it parses a flag: refuse it here, bad flag or not.
			return unknownCommandError(root, firstPositional(args))
		}
		// Flag errors are cobra's to report (flagErrorFunc); here only
		// the positional arguments matter.
		return nil
	}
	pos := c.Flags().Args()
	if len(pos) == 0 {
		return nil
	}
	return unknownCommandError(c, pos[0])
}

// firstPositional is the first argument that is not a flag: what cobra
// calls the unknown command, used only to suggest a close one.
func firstPositional(args []string) string {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			return a
		}
	}
	return ""
}

// unknownCommandError lists c's commands and, when one is close to what
// was typed, suggests it; typed itself is never printed.
func unknownCommandError(c *cobra.Command, typed string) error {
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	kind := "command"
	if c.HasParent() {
		kind = strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ") + " command"
	}
	msg := fmt.Sprintf("unknown %s (not repeated); the %ss are: %s", kind, kind, strings.Join(names, ", "))
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra sets it for the root only
	}
	if s := c.SuggestionsFor(typed); len(s) > 0 {
		msg += fmt.Sprintf("\nhint: did you mean '%s %s'?", c.CommandPath(), s[0])
	}
	return usageError(c, errors.New(msg))
}

// guardHelpTopics makes `usmp-psk help TOPIC` refuse a topic that names no
// command with exit 2, instead of cobra's "Unknown help topic" that quotes
// it and exits 0.
func guardHelpTopics(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() != "help" || c.Run == nil {
			continue
		}
		show := c.Run
		c.Run = nil
		c.RunE = func(h *cobra.Command, args []string) error {
			if len(args) > 0 {
				found, rest, err := root.Find(args)
				if err != nil {
					return unknownCommandError(root, args[0])
				}
				if len(rest) > 0 {
					return unknownCommandError(found, rest[0])
				}
			}
			show(h, args)
			return nil
		}
	}
}

// exactArgs is cobra.ExactArgs returning a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError(cmd, fmt.Errorf("%s: expected %s, got %d arguments", subcommandPath(cmd), what, len(args)))
		}
		return nil
	}
}

// maxArgs is cobra.MaximumNArgs returning a usage error.
func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageError(cmd, fmt.Errorf("%s: expected at most %s, got %d arguments", subcommandPath(cmd), what, len(args)))
		}
		return nil
	}
}
