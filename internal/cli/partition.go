package cli

import "github.com/spf13/cobra"

// newPartitionCmd groups the partition-table commands.
func newPartitionCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "partition <command>",
		Short: "Read ESP-IDF partition tables (CSV or binary)",
	}
	cmd.AddCommand(newPartitionShowCmd(f, nil))
	return cmd
}
