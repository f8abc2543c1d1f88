package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/registry"
	"github.com/usmp/usmp-psk/internal/secfile"
)

type registryAuditOptions struct {
	IO           *IOStreams
	OpenRegistry func() (*registry.Registry, error)
	// JSONLFile is how --jsonl FILE is written: 0600 and atomic; it holds
	// no keys, so no git guard.
	JSONLFile secfile.Options

	json   bool
	head   bool
	expect string
	jsonl  string
	force  bool
}

func newRegistryAuditCmd(f *Factory, root *rootOptions, runF func(*registryAuditOptions) error) *cobra.Command {
	opts := &registryAuditOptions{IO: f.IO, OpenRegistry: f.registryOpener(root),
		JSONLFile: secfile.Options{NotSecret: true, Warn: f.IO.Warn, StepHook: f.fileStepHook()}}
	cmd := &cobra.Command{
		Use:   "audit [--head | --expect SEQ:HASH | --jsonl FILE [--force]] [--json]",
		Short: "Verify the audit log and the registry against it (exit 3 if tampered)",
		Long: `Verify the registry's audit log (its table usmp_audit): every entry in its
canonical form with a correct SHA-256 hash, seq counting from 1, each prev equal
to the hash of the entry before (64 zeros for the first), and the chain ending at
the entry the registry records as its last. Then replay the log and compare the
state it implies with every record: a device deleted, un-revoked, given another
epoch, key or source, or recorded without an entry is reported with its id.

Checkpoints catch a log rewritten as a whole: --head prints SEQ:HASH of the last
entry (keep it somewhere else: a CI log, a ticket); --expect SEQ:HASH exits 3
unless the log still holds exactly that entry at SEQ. --jsonl FILE (- for
standard output) writes the log as JSON lines, the same canonical entries and
hashes, for archiving or checking with other tools (docs/registry.md); an
existing FILE is replaced only with --force.

Exit codes: 0 intact and consistent; 3 tampered, truncated, rewritten or
contradicted, with the entry or device at fault. With --json the output is
  {"audit_log","intact":true,"entries","head":{"seq","hash"},"findings":[...]}
or {"audit_log","intact":false,"line","problem"}.`,
		Example: `  $ usmp-psk registry audit
  audit log ./usmp-registry.db (table usmp_audit): intact, 42 entries, last hash 9f2c…

  # a checkpoint for the CI log, checked by the next run
  $ usmp-psk registry audit --head
  42:9f2c…
  $ usmp-psk registry audit --expect 42:9f2c…

  # archive the log
  $ usmp-psk registry audit --jsonl audit-2026-12.jsonl`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			n := 0
			for _, set := range []bool{opts.head, opts.expect != "", opts.jsonl != ""} {
				if set {
					n++
				}
			}
			if n > 1 {
				return flagErrorf("--head, --expect and --jsonl are used one at a time")
			}
			if opts.force && (opts.jsonl == "" || opts.jsonl == "-") {
				return flagErrorf("--force only applies to --jsonl FILE")
			}
			if runF != nil {
				return runF(opts)
			}
			return runRegistryAudit(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.json, "json", false, "print the verdict as JSON")
	fl.BoolVar(&opts.head, "head", false, "print the last entry as SEQ:HASH (a checkpoint)")
	fl.StringVar(&opts.expect, "expect", "", "exit 3 unless the log holds the checkpoint `SEQ:HASH`")
	fl.StringVar(&opts.jsonl, "jsonl", "", "write the log as JSON lines to `FILE` (- for standard output)")
	fl.BoolVar(&opts.force, "force", false, "replace an existing --jsonl FILE")
	return cmd
}

// registryAuditHead is the last entry of the log.
type registryAuditHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// registryAuditReport is the JSON of 'registry audit --json'.
type registryAuditReport struct {
	AuditLog string             `json:"audit_log"`
	Intact   bool               `json:"intact"`
	Entries  uint64             `json:"entries,omitempty"`
	Head     *registryAuditHead `json:"head,omitempty"`
	Findings []registry.Finding `json:"findings,omitempty"`
	Line     int                `json:"line,omitempty"`
	Problem  string             `json:"problem,omitempty"`
}

func runRegistryAudit(ctx context.Context, opts *registryAuditOptions) error {
	reg, err := opts.OpenRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	if opts.jsonl != "" {
		return writeAuditJSONL(ctx, opts, reg)
	}
	var expect *registry.AuditHead
	if opts.expect != "" {
		h, err := registry.ParseAuditHead("--expect", opts.expect)
		if err != nil {
			return &FlagError{Err: err}
		}
		expect = &h
	}
	out := registryAuditReport{AuditLog: reg.AuditLocation()}
	rep, err := reg.VerifyAudit(ctx, expect)
	if err != nil {
		return auditFailed(opts.IO, out, err, map[bool]auditVerdict{false: auditStdoutText, true: auditStdoutJSON}[opts.json])
	}
	out.Intact, out.Entries, out.Findings = len(rep.Findings) == 0, rep.Entries, rep.Findings
	out.Head = &registryAuditHead{Seq: rep.Head.Seq, Hash: rep.Head.Hash}
	return printAudit(out, rep, opts)
}

// printAudit prints the verdict of an intact chain: the checkpoint, JSON,
// or a line per finding and the summary.
func printAudit(out registryAuditReport, rep *registry.AuditReport, opts *registryAuditOptions) error {
	var err error
	switch {
	case opts.json:
		err = printJSON(opts.IO, out)
	case opts.head:
		_, err = fmt.Fprintln(opts.IO.Out, rep.Head.String())
	default:
		for _, fd := range rep.Findings {
			if _, err = fmt.Fprintln(opts.IO.Out, registryText(fd.String())); err != nil {
				return err
			}
		}
		if len(rep.Findings) == 0 {
			_, err = fmt.Fprintf(opts.IO.Out, "audit log %s: intact, %s, last hash %s\n", out.AuditLog, registryCount(int(out.Entries), "entry"), orDash(out.Head.Hash))
		}
	}
	if err != nil || len(rep.Findings) == 0 {
		return err
	}
	verb := "contradict"
	if len(rep.Findings) == 1 {
		verb = "contradicts"
	}
	return &mismatchError{msg: fmt.Sprintf("audit log %s: the chain is intact, but %s %s it", out.AuditLog, registryCount(len(rep.Findings), "record"), verb)}
}

// auditVerdict says where auditFailed reports a broken chain: only in the
// error on stderr (a JSON-lines stream or a migration is under way on
// stdout), or, as every other verdict of check and audit, on stdout — as
// JSON, or as a finding line — with a summary on stderr (issue 14 item 12).
type auditVerdict int

const (
	auditErrorOnly auditVerdict = iota
	auditStdoutText
	auditStdoutJSON
)

// auditFailed reports a broken chain (exit 3) or passes another error on.
// The records the broken log still contradicts follow the verdict: the
// break must not hide them.
func auditFailed(ios *IOStreams, out registryAuditReport, err error, verdict auditVerdict) error {
	var failed interface{ VerifyFailed() bool }
	if !errors.As(err, &failed) || !failed.VerifyFailed() {
		return err
	}
	var ae *registry.AuditError
	if errors.As(err, &ae) {
		out.Line, out.Problem, out.Findings = ae.Line, ae.Msg, ae.Contradictions
	} else {
		out.Problem = err.Error()
	}
	summary := auditSummary(out, ae)
	switch verdict {
	case auditErrorOnly:
		return &mismatchError{msg: err.Error()}
	case auditStdoutJSON:
		if perr := printJSON(ios, out); perr != nil {
			return perr
		}
	case auditStdoutText:
		lines := []string{err.Error()}
		for _, fd := range out.Findings {
			lines = append(lines, fd.String())
		}
		for _, l := range lines {
			if _, perr := fmt.Fprintln(ios.Out, registryText(l)); perr != nil {
				return perr
			}
		}
	}
	return &mismatchError{msg: summary}
}

// auditSummary is the line on stderr after a verdict on stdout: a broken
// chain, a checkpoint the log does not hold (the chain may be sound), or a
// registry that could not be read at all (not a database, say).
func auditSummary(out registryAuditReport, ae *registry.AuditError) string {
	where := "the audit log"
	if out.AuditLog != "" {
		where = "audit log " + out.AuditLog
	}
	switch {
	case ae == nil:
		return where + ": not verified: " + out.Problem
	case ae.Checkpoint:
		return where + ": the log does not hold the checkpoint"
	case out.Line > 0:
		return fmt.Sprintf("%s: the hash chain is broken at line %d", where, out.Line)
	}
	return where + ": the hash chain is broken"
}

// writeAuditJSONL writes the log as JSON lines to a file (0600, atomic;
// it holds no keys, so no git guard) or standard output.
func writeAuditJSONL(ctx context.Context, opts *registryAuditOptions, reg *registry.Registry) error {
	path := opts.jsonl
	var rep *registry.AuditReport
	write := func(w io.Writer) error {
		var err error
		rep, err = reg.WriteAuditJSONL(ctx, w)
		return err
	}
	var err error
	if path == "-" {
		err = write(opts.IO.Out)
	} else {
		wopts := opts.JSONLFile
		wopts.Replace = opts.force
		err = secfile.Write(path, wopts, write)
	}
	if err != nil {
		return auditFailed(opts.IO, registryAuditReport{AuditLog: reg.AuditLocation()}, err, auditErrorOnly)
	}
	if path != "-" {
		opts.IO.Infof("wrote %s of %s to %s (last %s)", registryCount(int(rep.Entries), "audit entry"), reg.Location(), path, rep.Head.String())
	}
	return nil
}
