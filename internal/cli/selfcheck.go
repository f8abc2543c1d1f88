package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newSelfcheckCmd reports the process hardening of R11. It is hidden: it is
// for tests and for operators who want to confirm the platform's support.
func newSelfcheckCmd(f *Factory) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:    "selfcheck [--json]",
		Short:  "Report the process hardening (core dumps off, not dumpable)",
		Hidden: true,
		Args:   exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			core, dumpable, supported := hardening()
			if asJSON {
				return printJSON(f.IO, struct {
					RlimitCore uint64 `json:"rlimit_core"`
					Dumpable   int    `json:"dumpable"`
					Supported  bool   `json:"supported"`
				}{core, dumpable, supported})
			}
			if !supported {
				_, err := fmt.Fprintln(f.IO.Out, "hardening not supported on this OS")
				return err
			}
			_, err := fmt.Fprintf(f.IO.Out, "RLIMIT_CORE=%d dumpable=%d\n", core, dumpable)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
