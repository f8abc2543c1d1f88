package cli

import "github.com/spf13/cobra"

// newNVSCmd groups the NVS image commands: the drop-in generator commands
// of Espressif's nvs_partition_gen.py and our reader, checker and editor.
func newNVSCmd(f *Factory, root *rootOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nvs <command>",
		Short: "Build, encrypt, read and check ESP32 NVS partition images",
		Long: `Build, encrypt, read and check ESP-IDF NVS partition images.

The generate, encrypt, decrypt and generate-key subcommands take the arguments
of Espressif's nvs_partition_gen.py and write byte-identical images.`,
	}
	cmd.AddCommand()
	return cmd
}
