package cli

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/registry"
)

type registryListOptions struct {
	IO           *IOStreams
	OpenRegistry func() (*registry.Registry, error)

	json bool
}

func newRegistryListCmd(f *Factory, root *rootOptions, runF func(*registryListOptions) error) *cobra.Command {
	opts := &registryListOptions{IO: f.IO, OpenRegistry: f.registryOpener(root)}
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the devices of the registry with their KCVs",
		Long: `List every device of the registry, in id order: id, key source, epoch,
status, key check value (KCV) and the time of the last change (RFC 3339, UTC).
Keys are never shown.

With --json the output is
  {"devices":[{"id","source","epoch","status","kcv","created","updated"}]}`,
		Example: `  $ usmp-psk registry list
  ID           SOURCE   EPOCH  STATUS   KCV       UPDATED
  24:6F:28:AA  random   0      active   5d41c2e0  2026-11-27T12:00:00Z
  device-id-1  derived  1      active   2637840a  2026-11-28T09:30:00Z

  $ usmp-psk registry list --json | jq -r '.devices[] | select(.status == "active") | .id'`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runRegistryList(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the devices as JSON")
	return cmd
}

// registryListOutput is the JSON of 'registry list --json'.
type registryListOutput struct {
	Devices []registry.Summary `json:"devices"`
}

func runRegistryList(ctx context.Context, opts *registryListOptions) error {
	reg, err := opts.OpenRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	devs, err := reg.List(ctx)
	if err != nil {
		return err
	}
	if opts.json {
		out := registryListOutput{Devices: make([]registry.Summary, 0, len(devs))}
		for i := range devs {
			out.Devices = append(out.Devices, devs[i].Summary())
		}
		return printJSON(opts.IO, out)
	}
	if len(devs) == 0 {
		opts.IO.Infof("no devices in %s", reg.Location())
		return nil
	}
	rows := make([][]string, 0, len(devs))
	for _, d := range devs {
		rows = append(rows, []string{d.ID, string(d.Source), strconv.FormatUint(uint64(d.Epoch), 10), string(d.Status), d.KCV, registryTime(d.Updated)})
	}
	return printTable(opts.IO, opts.IO.Out, []column{
		{header: "ID", cut: keepWhole}, {header: "SOURCE"}, {header: "EPOCH", cut: keepWhole},
		{header: "STATUS"}, {header: "KCV", cut: keepWhole}, {header: "UPDATED", cut: cutFirst},
	}, rows)
}
