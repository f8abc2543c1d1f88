package registry

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/usmp/usmp-psk/internal/psk"
)

// migrateSource is a file registry with every kind of record and event:
// derived, random and imported keys, a rotation with history, a
// revocation, an import and an export.
func migrateSource(t *testing.T) (*fixture, *psk.Secret) {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t, "file")
	master := canaryMaster(t)
	reg := f.env.reg
	for _, q := range []AddRequest{{"dev-1", Derived(master, 0)}, {"dev-2", Derived(master, 3)}, {"rnd-1", Random()}, {"rnd-2", Random()},
		{"imp-1", Imported(psk.CopySecret(bytes.Repeat([]byte{3}, 32)))}} {
		if _, err := reg.Add(ctx, q.ID, q.Key); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.Rotate(ctx, "dev-1", RotateOptions{Master: master, Reason: "scheduled"}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Rotate(ctx, "rnd-1", RotateOptions{Reason: `a "quoted" reason`}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Revoke(ctx, "rnd-2", "lost"); err != nil {
		t.Fatal(err)
	}
	set, err := ParseImport("in.csv", []byte("id,psk\nimp-2,"+randomHex(t, 32)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Import(ctx, set); err != nil {
		t.Fatal(err)
	}
	ex, err := reg.Export(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	ex.Destroy()
	return f, master
}

// TestMigrateFileToPostgresAndBack (issue 8: registry migrate --to
// postgres://…): the copy holds every device and key and the same audit
// chain, hash for hash; the source is left as it is; migrating back into
// a new file gives the original files byte for byte.
func TestMigrateFileToPostgresAndBack(t *testing.T) {
	ctx := context.Background()
	src, master := migrateSource(t)
	srcReg, srcAudit := readFile(t, src.loc), readFile(t, AuditPath(src.loc))
	dst := newPGFixture(t)

	rep, err := Migrate(ctx, src.env.reg.Store(), dst.env.reg.Store())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Devices != 6 || rep.StoredKeys != 3 || rep.AuditEntries != 11 || rep.Uncommitted != 0 || rep.To != dst.loc || rep.From != src.loc {
		t.Fatalf("report %+v", rep)
	}
	if !bytes.Equal(readFile(t, src.loc), srcReg) || !bytes.Equal(readFile(t, AuditPath(src.loc)), srcAudit) {
		t.Fatal("migrating changed the source")
	}
	if got := auditLinesOf(t, dst.env.reg); !bytes.Equal(got, srcAudit) {
		t.Fatalf("the audit log differs:\n%s\nwant\n%s", got, srcAudit)
	}
	// Back into a new file: the original files, byte for byte.
	back := filepath.Join(t.TempDir(), "back.json")
	if _, err := Migrate(ctx, dst.open(t, Options{}).Store(), NewFileStore(back, FileOptions{})); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, back), srcReg) {
		t.Fatalf("the registry file after the round trip:\n%s\nwant\n%s", readFile(t, back), srcReg)
	}
	if !bytes.Equal(readFile(t, AuditPath(back)), srcAudit) {
		t.Fatal("the audit log after the round trip differs")
	}

	for _, reg := range []*Registry{src.env.reg, dst.env.reg} {
		rep, err := reg.Check(ctx, master)
		if err != nil || len(rep.Findings) > 0 || rep.Devices != 6 {
			t.Fatalf("check of %s: %v %+v", reg.Location(), err, rep)
		}
	}
	a, _ := src.env.reg.Export(ctx, master)
	b, _ := dst.env.reg.Export(ctx, master)
	if a.Len() != 5 || a.Len() != b.Len() {
		t.Fatalf("exports of %d and %d devices", a.Len(), b.Len())
	}
	for _, id := range a.IDs() {
		if !a.Key(id).Equal(b.Key(id)) {
			t.Fatalf("device %s: another key after the migration", id)
		}
	}
	a.Destroy()
	b.Destroy()

	// Into an existing registry: refused, nothing changes.
	before := dst.state(t)
	if _, err := Migrate(ctx, src.env.reg.Store(), dst.env.reg.Store()); !errors.Is(err, ErrRegistryExists) || !isBadInput(err) {
		t.Fatalf("migrate into an existing registry: %v", err)
	}
	if dst.state(t) != before {
		t.Fatal("a refused migration changed the destination")
	}
}

// TestMigrateNeedsRegistryKey: stored keys go to PostgreSQL only sealed:
// without a registry key the migration fails and creates nothing.
func TestMigrateNeedsRegistryKey(t *testing.T) {
	ctx := context.Background()
	src, _ := migrateSource(t)
	dst := newPGFixture(t)
	st, err := NewPGStore(dst.loc, PGOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Migrate(ctx, src.env.reg.Store(), st)
	if !errors.Is(err, ErrRegistryKey) || !isBadInput(err) {
		t.Fatalf("migrate without a registry key: %v", err)
	}
	if dst.exists(t) {
		t.Fatal("a failed migration created the destination")
	}
	// A missing source is reported as such.
	missing := NewFileStore(filepath.Join(t.TempDir(), "none.json"), FileOptions{})
	if _, err := Migrate(ctx, missing, dst.env.reg.Store()); !errors.Is(err, ErrNoRegistry) {
		t.Fatalf("missing source: %v", err)
	}
}
