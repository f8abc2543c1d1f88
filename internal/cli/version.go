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
			_, err := fmt.Fprintln(f.IO.Out, versionLine(info))
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the version as JSON")
	return cmd
}

// versionLine is what `usmp-psk version` and `usmp-psk --version` print:
// "usmp-psk v1.2.3 (abc1234, 2026-01-02) go1.26.0".
func versionLine(info build.Info) string {
	s := "usmp-psk " + info.Version
	if info.Commit != "" {
		s += " (" + info.Commit
		if info.Date != "" {
			s += ", " + info.Date
		}
		s += ")"
	}
	return s + " " + info.GoVersion
}

// addVersionFlag makes `usmp-psk --version` print what `usmp-psk version`
// prints, as gh and most tools do (issue 14 item 11).
func addVersionFlag(root *cobra.Command) {
	root.Version = versionLine(build.Get())
	root.SetVersionTemplate("{{.Version}}\n")
	root.InitDefaultVersionFlag()
	if fl := root.Flags().Lookup("version"); fl != nil {
		fl.Usage = "print the version (as the version command does)"
	}
}
