package cli

// flash --json (issue 14 item 11): what was flashed, or the esptool
// command that would do it, as JSON on stdout.

import (
	"fmt"

	"github.com/spf13/cobra"
)

// flashReport is flash's JSON: {"image","port","offset","bytes","flashed",
// "verified","command"}. The command holds no secret (R27).
type flashReport struct {
	Image    string   `json:"image"`
	Port     string   `json:"port"`
	Offset   int64    `json:"offset"`
	Bytes    int64    `json:"bytes"`
	Flashed  bool     `json:"flashed"`
	Verified bool     `json:"verified"`
	Command  []string `json:"command,omitempty"`
}

func addFlashJSONFlag(cmd *cobra.Command, asJSON *bool) {
	cmd.Flags().BoolVar(asJSON, "json", false, "report as JSON on stdout: {\"image\",\"port\",\"offset\",\"bytes\",\"flashed\",\"verified\",\"command\"}")
}

// reportFlash prints the esptool command (Command set: --print, or no
// esptool) or, with --json, the report; after a flash without --json the
// stderr line already said it.
func reportFlash(opts *flashOptions, rep flashReport) error {
	if opts.json {
		return printJSON(opts.IO, rep)
	}
	if rep.Command != nil {
		_, err := fmt.Fprintln(opts.IO.Out, shellQuote(rep.Command))
		return err
	}
	return nil
}
