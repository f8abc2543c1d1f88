package cli

import (
	"github.com/spf13/cobra"
)

// CommandTree returns the full command tree, built with system streams but
// without reading the environment's master secret, for tools that render
// documentation (scripts/gen-docs.sh: markdown reference and man pages) or
// completions. It runs nothing.
func CommandTree() *cobra.Command {
	f := &Factory{IO: System(), Config: defaultConfig()}
	root := newRootCmd(f)
	root.DisableAutoGenTag = true
	return root
}
