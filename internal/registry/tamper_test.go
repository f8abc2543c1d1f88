package registry

// The registry checked against its audit log, on both engines: every
// change made behind usmp-psk's back — a record deleted, un-revoked, given
// another epoch or KCV or source, a device never logged, an entry edited or
// dropped, a chain rewritten as a whole — is found by check and audit
// (exit 3 in the CLI), naming the device or the entry.

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
)

// sql runs statements on the fixture's database, as anyone with access to
// it could.
func (f *fixture) sql(t *testing.T, stmts ...string) {
	t.Helper()
	if f.kind == "postgres" {
		for _, s := range stmts {
			f.pg.exec(t, s)
		}
		return
	}
	db, err := sql.Open("sqlite", "file:"+f.loc+"?mode=rw")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// tamperFixture is a registry of three devices, one rotated, one revoked.
func tamperFixture(t *testing.T, kind string) *fixture {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t, kind)
	master := canaryMaster(t)
	for _, q := range []AddRequest{{"d-derived", Derived(master, 0)}, {"d-random", Random()}, {"d-gone", Derived(master, 1)}} {
		res, err := f.env.reg.Add(ctx, q.ID, q.Key)
		if err != nil {
			t.Fatal(err)
		}
		res.Key.Destroy()
	}
	if _, err := f.env.reg.Rotate(ctx, "d-derived", RotateOptions{Master: master, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.env.reg.Revoke(ctx, "d-gone", "lost"); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTamperFound(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		for _, tt := range []struct {
			name   string
			stmts  []string
			want   string // "device: field: problem" of the finding
			sqlite bool   // SQLite only: PostgreSQL's types refuse the edit
			more   []string
		}{
			{"deleted", []string{`DELETE FROM usmp_devices WHERE id = 'd-gone'`}, `device "d-gone": audit: the audit log records this device (revoked, epoch 1`, false, nil},
			{"un-revoked", []string{`UPDATE usmp_devices SET status = 'active', revoked = NULL, revoke_reason = '' WHERE id = 'd-gone'`}, `device "d-gone": status: active, but the audit log revoked it`, false, nil},
			{"revoked without entry", []string{`UPDATE usmp_devices SET status = 'revoked', revoked = updated WHERE id = 'd-derived'`}, `device "d-derived": status: revoked, but the audit log has no revocation of it`, false, nil},
			{"epoch", []string{`UPDATE usmp_devices SET epoch = 0 WHERE id = 'd-derived'`}, `device "d-derived": epoch: is 0, the audit log says 1`, false, nil},
			{"kcv", []string{`UPDATE usmp_devices SET kcv = '0badc0de' WHERE id = 'd-derived'`}, `device "d-derived": kcv: is 0badc0de, the audit log says`, false, nil},
			{"source", []string{`UPDATE usmp_devices SET source = 'imported' WHERE id = 'd-random'`}, `device "d-random": source: is imported, the audit log says random`, false, nil},
			{"never logged", []string{`INSERT INTO usmp_devices (id, source, epoch, status, kcv, created, updated) SELECT 'ghost', source, epoch, status, kcv, created, updated FROM usmp_devices WHERE id = 'd-derived'`}, `device "ghost": audit: the audit log never recorded this device`, false, nil},
			{"history deleted", []string{`DELETE FROM usmp_history WHERE device = 'd-derived'`}, `device "d-derived": history: the registry keeps 0 retired keys, but the audit log's rotations retired 1`, false, nil},
			{"history edited", []string{`UPDATE usmp_history SET kcv = '00000000' WHERE device = 'd-derived'`}, `device "d-derived": history: retired key 1 is KCV 00000000 (epoch 0), but the audit log says KCV`, false, nil},
			{"history added", []string{`INSERT INTO usmp_history (device, n, kcv, epoch, source, reason, retired) SELECT id, 1, kcv, epoch, source, '', updated FROM usmp_devices WHERE id = 'd-random'`}, `device "d-random": history: the registry keeps 1 retired keys, but the audit log's rotations retired 0`, false, nil},
			{"time damaged", []string{`UPDATE usmp_devices SET created = 'yesterday' WHERE id = 'd-random'`}, `device "d-random": created, updated or revoked: not a time`, true, nil},
			// one damaged column must not hide the changes to the others
			{"un-revoked, revocation kept", []string{`UPDATE usmp_devices SET status = 'active' WHERE id = 'd-gone'`}, `device "d-gone": status: active, but the audit log revoked it`, false,
				[]string{`device "d-gone": revoked: set on an active device`}},
			{"damaged and changed", []string{`UPDATE usmp_devices SET created = 'yesterday', kcv = '0badc0de', epoch = 9 WHERE id = 'd-random'`}, `device "d-random": created, updated or revoked: not a time`, true,
				[]string{`device "d-random": kcv: is 0badc0de, the audit log says`, `device "d-random": epoch: is 9, the audit log says 0`}},
			{"epoch not a number", []string{`PRAGMA ignore_check_constraints = 1; UPDATE usmp_devices SET epoch = '0x1f2e3d4c5b6a' WHERE id = 'd-random'`}, `device "d-random": epoch: not an integer`, true, nil},
		} {
			if tt.sqlite && kind != "sqlite" {
				continue
			}
			t.Run(tt.name, func(t *testing.T) {
				f := tamperFixture(t, kind)
				f.sql(t, tt.stmts...)
				ctx := context.Background()
				for _, want := range append([]string{tt.want}, tt.more...) {
					rep, err := f.env.reg.Check(ctx, nil)
					if err != nil || !hasFinding(rep.Findings, want) {
						t.Fatalf("check: %v %v, want %q", err, rep, want)
					}
					audit, err := f.env.reg.VerifyAudit(ctx, nil)
					if err != nil || !hasFinding(audit.Findings, want) {
						t.Fatalf("audit: %v %v, want %q", err, audit, want)
					}
				}
			})
		}
	})
}

func hasFinding(fs []Finding, want string) bool {
	for _, f := range fs {
		if strings.Contains(f.String(), want) {
			return true
		}
	}
	return false
}

// TestTamperLog: entries edited, dropped or added break the chain, which
// check reports as a finding and audit as an *AuditError naming the entry;
// writers refuse a log whose tail is not the recorded head.
func TestTamperLog(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		for _, tt := range []struct {
			name  string
			stmts []string
			want  string
		}{
			{"edited", []string{`UPDATE usmp_audit SET line = replace(line, '"actor":"tester"', '"actor":"mallory"') WHERE seq = 3`}, "line 3: the hash does not match"},
			{"dropped", []string{`DELETE FROM usmp_audit WHERE seq = 2`}, "line 2: seq is 3, expected 2"},
			{"last dropped", []string{`DELETE FROM usmp_audit WHERE seq = 6`}, "the log ends at entry 5 but the registry records entry 6"},
			{"column edited", []string{`UPDATE usmp_audit SET device = 'd-random' WHERE seq = 2`}, "line 2: the row's columns do not match its entry"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				f := tamperFixture(t, kind)
				f.sql(t, tt.stmts...)
				ctx := context.Background()
				_, err := f.env.reg.VerifyAudit(ctx, nil)
				var ae *AuditError
				if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("audit: %v, want %q", err, tt.want)
				}
				rep, err := f.env.reg.Check(ctx, nil)
				if err != nil || !hasFinding(rep.Findings, tt.want) {
					t.Fatalf("check: %v %v", err, rep)
				}
			})
		}
		// A writer refuses a log whose last entry is not the recorded one.
		f := tamperFixture(t, kind)
		f.sql(t, `DELETE FROM usmp_audit WHERE seq = 6`)
		if _, err := f.env.reg.Add(context.Background(), "new", Random()); !errors.As(err, new(*AuditError)) {
			t.Fatalf("add after the log's tail was dropped: %v", err)
		}
	})
}

// TestBrokenChainHidesNothing: an edit that breaks the chain (an actor
// changed in the first entry) does not hide a device un-revoked beside it:
// check reports both, and audit's error carries the contradiction, each
// noting that the log it was compared with is broken.
func TestBrokenChainHidesNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		f := tamperFixture(t, kind)
		f.sql(t, `UPDATE usmp_devices SET status = 'active', revoked = NULL, revoke_reason = '' WHERE id = 'd-gone'`,
			`UPDATE usmp_audit SET line = replace(line, '"actor":"tester"', '"actor":"mallory"') WHERE seq = 1`)
		ctx := context.Background()
		const unrevoked = `device "d-gone": status: active, but the audit log revoked it`
		rep, err := f.env.reg.Check(ctx, nil)
		if err != nil || !hasFinding(rep.Findings, "line 1: the hash does not match") || !hasFinding(rep.Findings, unrevoked) ||
			!hasFinding(rep.Findings, "whose chain is broken") {
			t.Fatalf("check: %v %v", err, rep)
		}
		_, err = f.env.reg.VerifyAudit(ctx, nil)
		var ae *AuditError
		if !errors.As(err, &ae) || !hasFinding(ae.Contradictions, unrevoked) {
			t.Fatalf("audit: %v %+v", err, ae)
		}
	})
}

// TestForgottenDeviceStaysOut: a revoked device whose record was deleted
// cannot be recorded again (its old key would work again): add, import,
// batch and a registering rotate refuse it, as a failed verification.
func TestForgottenDeviceStaysOut(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		f := tamperFixture(t, kind)
		f.sql(t, `DELETE FROM usmp_devices WHERE id = 'd-gone'`)
		ctx := context.Background()
		master := canaryMaster(t)
		set, err := ParseImport("in.csv", []byte("id,psk\nd-gone,000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"))
		if err != nil {
			t.Fatal(err)
		}
		defer set.Destroy()
		before := f.state(t)
		for name, op := range map[string]func() error{
			"add": func() error { _, err := f.env.reg.Add(ctx, "d-gone", Random()); return err },
			"batch": func() error {
				_, err := f.env.reg.AddMany(ctx, []AddRequest{{"b-1", Random()}, {"d-gone", Random()}}, AddOptions{Event: EventBatch, KeepExisting: true})
				return err
			},
			"import": func() error { _, err := f.env.reg.Import(ctx, set); return err },
			"rotate": func() error {
				_, err := f.env.reg.Rotate(ctx, "d-gone", RotateOptions{Master: master, Register: true})
				return err
			},
		} {
			err := op()
			if !errors.Is(err, ErrForgotten) || !isMismatch(err) {
				t.Errorf("%s: %v, want ErrForgotten (exit 3)", name, err)
			}
		}
		if f.state(t) != before {
			t.Fatal("a refused write changed the registry")
		}
	})
}

// TestCheckpoint: --expect holds against a registry's own log and fails
// against a chain rewritten as a whole (a registry made again with the
// same operations).
func TestCheckpoint(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		a := tamperFixture(t, kind)
		rep, err := a.env.reg.VerifyAudit(ctx, nil)
		if err != nil || rep.Head.Seq != 6 {
			t.Fatalf("head %v %v", rep, err)
		}
		head := rep.Head
		if _, err := a.env.reg.VerifyAudit(ctx, &head); err != nil {
			t.Fatalf("own checkpoint: %v", err)
		}
		b := tamperFixture(t, kind)
		if _, err := b.env.reg.VerifyAudit(ctx, nil); err != nil {
			t.Fatalf("the rewritten chain is intact on its own: %v", err)
		}
		_, err = b.env.reg.VerifyAudit(ctx, &head)
		if !errors.As(err, new(*AuditError)) || !strings.Contains(err.Error(), "line 6: the log does not hold the checkpoint") {
			t.Fatalf("rewritten chain against the checkpoint: %v", err)
		}
		beyond := AuditHead{Seq: 99, Hash: head.Hash}
		if _, err := a.env.reg.VerifyAudit(ctx, &beyond); err == nil {
			t.Fatal("a checkpoint beyond the log held")
		}
	})
}
