package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/registry"
)

type registryAuditOptions struct {
	json bool
}

func newRegistryAuditCmd(f *Factory, root *rootOptions, runF func(*registryAuditOptions) error) *cobra.Command {
	opts := &registryAuditOptions{}
	cmd := &cobra.Command{
		Use:   "audit [--json]",
		Short: "Verify the hash chain of the audit log (exit 3 if tampered or truncated)",
		Long: `Verify the registry's audit log (usmp-registry.audit.jsonl next to it): every
line in its canonical form with a correct SHA-256 hash, seq counting from 1,
each prev equal to the hash of the line before (64 zeros on line 1), the last
line complete, and the chain reaching the entry the registry records as its
last. An edited, deleted, inserted or moved line, or a log cut short, breaks it.

Exit codes: 0 intact; 3 tampered, truncated or damaged, with the line where the
chain breaks. With --json the output is
  {"audit_log","intact":true,"entries","head":{"seq","hash"},"uncommitted"}
or {"audit_log","intact":false,"line","problem"}. See docs/registry.md for the
canonical form, to verify the log with other tools.`,
		Example: `  $ usmp-psk registry audit
  audit log ./usmp-registry.audit.jsonl: intact, 42 entries, last hash 9f2c…`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runRegistryAudit(cmd, f, root, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print the verdict as JSON")
	return cmd
}

// registryAuditHead is the last entry of the log.
type registryAuditHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// registryAuditReport is the JSON of 'registry audit --json'.
type registryAuditReport struct {
	AuditLog    string             `json:"audit_log"`
	Intact      bool               `json:"intact"`
	Entries     uint64             `json:"entries,omitempty"`
	Head        *registryAuditHead `json:"head,omitempty"`
	Uncommitted uint64             `json:"uncommitted,omitempty"`
	Line        int                `json:"line,omitempty"`
	Problem     string             `json:"problem,omitempty"`
}

func runRegistryAudit(cmd *cobra.Command, f *Factory, root *rootOptions, opts *registryAuditOptions) error {
	reg, err := f.openRegistry(root)
	if err != nil {
		return err
	}
	out := registryAuditReport{AuditLog: reg.AuditLocation()}
	rep, err := reg.VerifyAudit(cmd.Context())
	var failed interface{ VerifyFailed() bool }
	switch {
	case errors.As(err, &failed) && failed.VerifyFailed():
		// A broken chain, or a registry too damaged to say where the chain
		// should end: verification failed (exit 3).
		var ae *registry.AuditError
		if errors.As(err, &ae) {
			out.Line, out.Problem = ae.Line, ae.Msg
		} else {
			out.Problem = err.Error()
		}
		if opts.json {
			if perr := printJSON(f, out); perr != nil {
				return perr
			}
		}
		return &mismatchError{msg: err.Error()}
	case err != nil:
		return registryErr(err)
	}
	out.Intact, out.Entries, out.Uncommitted = true, rep.Entries, rep.Uncommitted
	out.Head = &registryAuditHead{Seq: rep.Head.Seq, Hash: rep.Head.Hash}
	if rep.Uncommitted > 0 {
		f.IO.Warnf("audit log %s: the last %s describe changes the registry does not hold (a writer was interrupted, or the registry was restored from a backup)", out.AuditLog, registryCount(int(rep.Uncommitted), "entry"))
	}
	if opts.json {
		return printJSON(f, out)
	}
	_, err = fmt.Fprintf(f.IO.Out, "audit log %s: intact, %s, last hash %s\n", out.AuditLog, registryCount(int(out.Entries), "entry"), orDash(out.Head.Hash))
	return err
}
