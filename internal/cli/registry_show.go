package cli

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

type registryShowOptions struct {
	IO           *IOStreams
	OpenRegistry func() (*registry.Registry, error)

	deviceID string
	json     bool
}

func newRegistryShowCmd(f *Factory, root *rootOptions, runF func(*registryShowOptions) error) *cobra.Command {
	opts := &registryShowOptions{IO: f.IO, OpenRegistry: f.registryOpener(root)}
	cmd := &cobra.Command{
		Use:   "show DEVICE_ID [--json]",
		Short: "Show one device, with the KCVs of its retired keys",
		Long: `Show one device of the registry: key source, epoch, status, key check value
(KCV), when it was created, last changed and revoked (with the reason), and the
history of its retired keys — their KCV, epoch, source, when and why they were
retired — oldest first. Keys are never shown.

With --json the output is
  {"id","source","epoch","status","kcv","created","updated",
   "revoked","revoke_reason","history":[{"kcv","epoch","source","reason","retired"}]}
where revoked, revoke_reason and history appear only when set.`,
		Example: `  $ usmp-psk registry show device-id-1
  $ usmp-psk registry show 24:6F:28:AA --json`,
		Args: exactArgs(1, "DEVICE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := psk.ValidateDeviceID(args[0]); err != nil {
				return err
			}
			opts.deviceID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runRegistryShow(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the device as JSON")
	return cmd
}

func runRegistryShow(ctx context.Context, opts *registryShowOptions) error {
	reg, err := opts.OpenRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	dev, err := reg.Show(ctx, opts.deviceID)
	if err != nil {
		return err
	}
	if opts.json {
		return printJSON(opts.IO, dev)
	}
	return writeDevice(opts.IO, dev)
}

// writeDevice prints a device as aligned "field  value" lines, then its
// history as a table.
func writeDevice(ios *IOStreams, d registry.Device) error {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%-9s %s\n", k, v) }
	line("id", d.ID)
	line("source", string(d.Source))
	line("epoch", strconv.FormatUint(uint64(d.Epoch), 10))
	line("status", string(d.Status))
	line("kcv", d.KCV)
	line("created", registryTime(d.Created))
	line("updated", registryTime(d.Updated))
	if d.Status == registry.StatusRevoked {
		line("revoked", registryTime(d.Revoked))
		line("reason", registryText(d.RevokeReason))
	}
	if len(d.History) == 0 {
		line("history", "none (no retired keys)")
	} else {
		line("history", registryCount(len(d.History), "retired key")+", oldest first:")
	}
	if _, err := fmt.Fprint(ios.Out, b.String()); err != nil {
		return err
	}
	if len(d.History) == 0 {
		return nil
	}
	rows := make([][]string, 0, len(d.History))
	for _, h := range d.History {
		rows = append(rows, []string{strconv.FormatUint(uint64(h.Epoch), 10), string(h.Source), h.KCV, registryTime(h.Retired), registryText(h.Reason)})
	}
	cols := []column{
		{header: "EPOCH", cut: keepWhole}, {header: "SOURCE"}, {header: "KCV", cut: keepWhole},
		{header: "RETIRED", cut: cutFirst}, {header: "REASON", cut: cutFirst},
	}
	if !ios.IsStdoutTTY() {
		return writeTSV(ios.Out, headers(cols), rows)
	}
	// Indented under "history": two columns less to fit.
	var t bytes.Buffer
	if err := renderFitted(&t, cols, rows, terminalWidth(ios)-2); err != nil {
		return err
	}
	// Indented under "history".
	var out strings.Builder
	for _, l := range strings.SplitAfter(t.String(), "\n") {
		if l != "" {
			out.WriteString("  " + l)
		}
	}
	_, err := fmt.Fprint(ios.Out, out.String())
	return err
}
