package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

type registryCheckOptions struct {
	IO           *IOStreams
	OpenRegistry func() (*registry.Registry, error)
	// Master loads the master secret; check calls it only when one is
	// given (HasMaster), because it never prompts.
	Master    func() (*psk.Secret, error)
	HasMaster func() bool

	json bool
}

func newRegistryCheckCmd(f *Factory, root *rootOptions, runF func(*registryCheckOptions) error) *cobra.Command {
	opts := &registryCheckOptions{IO: f.IO, OpenRegistry: f.registryOpener(root), Master: f.masterLoader(root),
		HasMaster: func() bool { return root.masterFile != "" || f.hasMasterEnv }}
	cmd := &cobra.Command{
		Use:   "check [--json]",
		Short: "Check the registry for damage and inconsistencies (exit 3 on findings)",
		Long: `Read the whole registry and report every problem, without changing anything:
damaged or invalid records, stored keys whose KCV does not match, example keys
of the USMP documentation, one key stored for several devices, a database with
keys that group or others can read, a broken audit chain, and every record the
audit log contradicts (a device deleted, un-revoked, given another epoch, key or
source, or recorded without an entry). When a master secret is given
(--master-file or $USMP_MASTER_SECRET; check never prompts), the KCVs of derived
devices, current and retired, are checked against it too.

The verdict goes to standard output: one line per finding, or one line saying
that there is none; the exit code is 3 when there is a finding, 0 when there is
none. With --json the output is
  {"registry","devices","checked","findings":[{"device","field","problem"}],"problems"}
where checked counts the derived devices checked against the master secret.`,
		Example: `  $ usmp-psk registry check
  $ USMP_MASTER_SECRET=… usmp-psk registry check --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runRegistryCheck(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the findings as JSON")
	return cmd
}

// registryCheckReport is the JSON of 'registry check --json'.
type registryCheckReport struct {
	Registry string             `json:"registry"`
	Devices  int                `json:"devices"`
	Checked  int                `json:"checked"`
	Findings []registry.Finding `json:"findings"`
	Problems int                `json:"problems"`
}

func runRegistryCheck(ctx context.Context, opts *registryCheckOptions) error {
	reg, err := opts.OpenRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	// The master secret is used when one is given; check never prompts, so
	// it runs unattended (cron, CI) on a registry of any kind.
	var master *psk.Secret
	if opts.HasMaster() {
		if master, err = opts.Master(); err != nil {
			return err
		}
		defer master.Destroy()
	}
	rep, err := reg.Check(ctx, master)
	if err != nil {
		// A registry too damaged to be read is a finding of its own.
		return auditFailed(opts.IO, registryAuditReport{AuditLog: reg.AuditLocation()}, err, map[bool]auditVerdict{false: auditStdoutText, true: auditErrorOnly}[opts.json])
	}
	out := registryCheckReport{Registry: reg.Location(), Devices: rep.Devices, Checked: rep.Checked, Findings: rep.Findings, Problems: len(rep.Findings)}
	if out.Findings == nil {
		out.Findings = []registry.Finding{}
	}
	if opts.json {
		if err := printJSON(opts.IO, out); err != nil {
			return err
		}
	} else {
		for _, fd := range out.Findings {
			if _, err := fmt.Fprintln(opts.IO.Out, registryText(fd.String())); err != nil {
				return err
			}
		}
	}
	if out.Problems > 0 {
		return &mismatchError{msg: fmt.Sprintf("registry %s: %s found", reg.Location(), registryCount(out.Problems, "problem"))}
	}
	derived := ""
	switch {
	case master != nil:
		derived = fmt.Sprintf("; %s checked against the master secret", registryCount(rep.Checked, "derived device"))
	default:
		if st, err := reg.Stats(ctx); err == nil && st.ActiveDerived > 0 {
			derived = "; derived devices not checked against the master secret (none given: set " + psk.MasterEnv + " or use --master-file)"
		}
	}
	if opts.json {
		return nil
	}
	_, err = fmt.Fprintf(opts.IO.Out, "registry %s: %s, no problems found%s\n", reg.Location(), registryCount(rep.Devices, "device"), derived)
	return err
}
