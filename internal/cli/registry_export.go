package cli

// registry export writes key bytes: only to a 0600 file (-o) or to a
// non-terminal standard output (R5, R10), with a warning when standard
// output is a file others can read (R7). Reports name the path, the number
// of devices and the format, never a key.

import (
	"fmt"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
	"github.com/usmp/usmp-psk/internal/secfile"
)

type registryExportOptions struct {
	output string
	format string
	force  bool
	json   bool
}

func newRegistryExportCmd(f *Factory, root *rootOptions, runF func(*registryExportOptions) error) *cobra.Command {
	opts := &registryExportOptions{}
	cmd := &cobra.Command{
		Use:   "export [-o FILE] [--format json] [--force] [--json]",
		Short: "Write the gateway's keys: {\"device_id\": \"hex psk\"} for every active device",
		Long: `Write the keys of every active device as the JSON map the gateway's
load_psk_registry reads: {"device_id": "hex psk", ...}, one device per line,
in id order. Derived keys are computed from the master secret at each device's
epoch and checked against the registry's KCV; stored keys are written as they
are. Revoked devices are left out. The master secret is asked for only when
the registry has active derived devices.

The export holds key bytes. It goes to -o FILE, written 0600 and atomically
(an existing file is replaced only with --force), or to standard output when
that is a pipe or a file; a terminal is refused. The audit log records every
export. See docs/gateway.md.`,
		Example: `  # a file for the gateway (0600)
  $ usmp-psk registry export -o /etc/usmp/psk-registry.json

  # after a rotation or revocation: replace it, then reload the gateway
  $ usmp-psk registry export -o /etc/usmp/psk-registry.json --force

  # straight into a loader, through a pipe
  $ usmp-psk registry export | python3 -c 'import sys, usmp_gateway as g; print(len(g.load_psk_registry(sys.stdin.buffer)))'`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.format != "json" {
				return registryUsage(cmd, "invalid value for --format (want json)")
			}
			if opts.json && (opts.output == "" || opts.output == "-") {
				return registryUsage(cmd, "--json needs -o FILE: standard output carries the keys")
			}
			if runF != nil {
				return runF(opts)
			}
			return runRegistryExport(cmd, f, root, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.output, "output", "o", "", "write the keys to `FILE` (0600; - or absent: standard output, never a terminal)")
	fl.StringVar(&opts.format, "format", "json", "output format: json (the map load_psk_registry reads)")
	fl.BoolVar(&opts.force, "force", false, "replace an existing FILE")
	fl.BoolVar(&opts.json, "json", false, `with -o, print {"path","devices","revoked","format","registry"} as JSON`)
	return cmd
}

// registryExportReport is what export says: never a key.
type registryExportReport struct {
	Path     string `json:"path"`
	Devices  int    `json:"devices"`
	Revoked  int    `json:"revoked"`
	Format   string `json:"format"`
	Registry string `json:"registry"`
}

func runRegistryExport(cmd *cobra.Command, f *Factory, root *rootOptions, opts *registryExportOptions) error {
	ctx := cmd.Context()
	toStdout := opts.output == "" || opts.output == "-"
	wopts := secfile.Options{Replace: opts.force, AllowUnignored: root.allowUnignored, Warn: f.IO.Warn}
	// Check the destination before the master secret is asked for and the
	// audit log records an export (R6, R8, R10).
	if toStdout {
		if f.IO.IsStdoutTTY() {
			return errTerminal
		}
	} else {
		if err := secfile.Check(opts.output, wopts); err != nil {
			return err
		}
		if !opts.force && exists(opts.output) {
			return &secfile.ExistsError{Path: opts.output}
		}
	}
	reg, err := f.openRegistry(root)
	if err != nil {
		return err
	}
	defer reg.Close()
	st, err := reg.Stats(ctx)
	if err != nil {
		return err
	}
	var master *psk.Secret
	if st.NeedsMaster() {
		if master, err = f.Master(root.masterFile); err != nil {
			return err
		}
		defer master.Destroy()
	}
	if toStdout {
		if mode, ok := f.IO.stdoutMode(); ok && mode&0o044 != 0 {
			f.IO.Warnf("standard output is a file that group or others can read (mode %04o); an export holds keys: use -o FILE (written 0600)", mode)
		}
	}
	// The export's audit entry is committed with the reading of the keys,
	// before they go out: a delivered export always has its entry, and one
	// whose delivery fails is over-reported, never hidden.
	ex, err := reg.Export(ctx, master)
	if err != nil {
		return err
	}
	defer ex.Destroy()
	if err := deliverExport(f, ex, toStdout, opts.output, wopts); err != nil {
		return fmt.Errorf("%w\nhint: the export is recorded in the audit log of %s; treat its keys as exported, and export again", err, reg.Location())
	}
	rep := registryExportReport{Path: opts.output, Devices: ex.Len(), Revoked: st.Revoked, Format: opts.format, Registry: reg.Location()}
	if ex.Len() == 0 {
		f.IO.Warnf("%s has no active devices: the export is empty ({})", reg.Location())
	}
	if toStdout {
		rep.Path = "-"
		f.IO.Infof("exported the keys of %s to standard output (%s%s)", registryCount(rep.Devices, "active device"), rep.Format, leftOut(rep.Revoked))
		return nil
	}
	if opts.json {
		return printJSON(f, rep)
	}
	f.IO.Infof("exported the keys of %s to %s (%s, 0600%s)", registryCount(rep.Devices, "active device"), rep.Path, rep.Format, leftOut(rep.Revoked))
	return nil
}

// deliverExport writes the export to standard output or to a 0600 file.
func deliverExport(f *Factory, ex *registry.Export, toStdout bool, path string, wopts secfile.Options) error {
	if !toStdout {
		return secfile.Write(path, wopts, ex.WriteJSON)
	}
	// A reader that goes away must not kill the process with SIGPIPE
	// (exit 141, outside the documented exit codes): with the signal
	// ignored, the write fails with EPIPE instead.
	signal.Ignore(syscall.SIGPIPE)
	defer signal.Reset(syscall.SIGPIPE)
	if err := ex.WriteJSON(f.IO.Out); err != nil {
		return fmt.Errorf("write standard output: %w", err)
	}
	return nil
}

// leftOut is "; 2 revoked devices left out", or "".
func leftOut(revoked int) string {
	if revoked == 0 {
		return ""
	}
	return "; " + registryCount(revoked, "revoked device") + " left out"
}
