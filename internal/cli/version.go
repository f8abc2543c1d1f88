package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/build"
)

func newVersionCmd(f *Factory) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version [--json]",
		Short: "Print the version of usmp-psk",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := build.Get()
			if asJSON {
				return printJSON(f.IO, info)
			}
			s := "usmp-psk " + info.Version
			if info.Commit != "" {
				s += " (" + info.Commit
				if info.Date != "" {
					s += ", " + info.Date
				}
				s += ")"
			}
			_, err := fmt.Fprintf(f.IO.Out, "%s %s\n", s, info.GoVersion)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the version as JSON")
	return cmd
}
