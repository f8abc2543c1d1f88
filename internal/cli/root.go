package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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
  USMP_PSK_CONFIG      config file (default ./usmp-psk.yaml, else
                       $XDG_CONFIG_HOME/usmp-psk/config.yaml)
  USMP_PSK_REGISTRY    the device registry (default ./usmp-registry.db, a SQLite
                       database, or a postgres:// URL; passwords only from
                       PGPASSWORD/.pgpass)
  USMP_REGISTRY_KEY    64 hex digits sealing the registry's stored keys
                       (always needed for them on PostgreSQL)
Secrets (USMP_MASTER_SECRET, USMP_REGISTRY_KEY) are read once at start-up and
removed from the environment; no flag ever takes a secret.

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
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return loadConfig(f, cmd, opts.configFile)
		},
	}
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.SetFlagErrorFunc(flagErrorFunc)

	pf := root.PersistentFlags()
	pf.StringVar(&opts.configFile, "config", "", "config `FILE` (default ./usmp-psk.yaml or $XDG_CONFIG_HOME/usmp-psk/config.yaml; $USMP_PSK_CONFIG)")
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
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Short = "Generate the shell completion script for bash, zsh, fish or powershell"
		}
	}
	return root
}

// flagErrorFunc turns flag parsing errors into usage errors whose text never
// repeats the offending value (R23: pflag quotes it).
func flagErrorFunc(c *cobra.Command, err error) error {
	var ive *pflag.InvalidValueError
	if errors.As(err, &ive) {
		fl := ive.GetFlag()
		err = fmt.Errorf("invalid value for --%s (want %s)", fl.Name, fl.Value.Type())
	}
	return &FlagError{Err: fmt.Errorf("%w\nRun '%s --help' for usage", err, c.CommandPath())}
}

// exactArgs is cobra.ExactArgs returning a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return &FlagError{Err: fmt.Errorf("%s: expected %s, got %d arguments\nRun '%s --help' for usage", cmd.CommandPath(), what, len(args), cmd.CommandPath())}
		}
		return nil
	}
}

// maxArgs is cobra.MaximumNArgs returning a usage error.
func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return &FlagError{Err: fmt.Errorf("%s: expected at most %s, got %d arguments\nRun '%s --help' for usage", cmd.CommandPath(), what, len(args), cmd.CommandPath())}
		}
		return nil
	}
}
