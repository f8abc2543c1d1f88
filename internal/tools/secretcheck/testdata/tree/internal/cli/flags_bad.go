//go:build ignore

// Fixture for flag-env-default: flag definitions whose default (or usage)
// comes from the environment, which --help and usage errors print (R1, R23).

package cli

import (
	"flag"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type options struct {
	port    string
	verbose bool
	count   int
	epoch   uint32
}

type Factory struct {
	Getenv func(string) string
}

func addFlags(cmd *cobra.Command, f *Factory, o *options) {
	cmd.Flags().StringVar(&o.port, "port", os.Getenv("USMP_PSK_PORT"), "serial `PORT`")  // want "flag-env-default"
	cmd.PersistentFlags().BoolVarP(&o.verbose, "verbose", "v", os.Getenv("V") != "", "") // want "flag-env-default"
	fs := cmd.Flags()
	def, _ := os.LookupEnv("USMP_PSK_COUNT")
	n, _ := strconv.Atoi(def)
	fs.IntVar(&o.count, "count", n, "how many") // want "flag-env-default"
	fs.Uint32VarP(&o.epoch, "epoch", "e", 0,
		"epoch (now "+f.Getenv("USMP_PSK_EPOCH")+")") // want "flag-env-default"
	fs.Lookup("port").DefValue = os.Getenv("USMP_PSK_PORT") // want "flag-env-default"
}

func addSetFlags(set *pflag.FlagSet, f *Factory) *string {
	return set.StringP("master-file", "m", f.Getenv("USMP_MASTER_FILE"), "") // want "flag-env-default"
}

func stdFlags() {
	_ = flag.String("registry", os.ExpandEnv("$HOME/registry"), "") // want "flag-env-default"
	_ = pflag.Duration("timeout", 0, os.Getenv("T"))                // want "flag-env-default"
}

// command is not declared in this lone file: cmd.Flags() is recognised by
// its shape.
func addUnresolved(c *command, o *options) {
	c.Flags().StringVar(&o.port, "port", os.Getenv("USMP_PSK_PORT"), "") // want "flag-env-default"
}

// The way R23 wants it: the variable is named in the usage text and read
// after parsing, only when the flag was not given.
func addFlagsOK(cmd *cobra.Command, f *Factory, o *options) {
	cmd.Flags().StringVar(&o.port, "port", "", "serial `PORT` (default: $USMP_PSK_PORT)")
	cmd.Flags().IntVar(&o.count, "count", 1, "how many")
	if !cmd.Flags().Changed("port") {
		o.port = f.Getenv("USMP_PSK_PORT")
	}
}
