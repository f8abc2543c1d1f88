package registry

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
)

// migrateSource is a SQLite registry with every kind of record and event:
// derived, random and imported keys, a rotation with history, a
// revocation, an import and an export.
func migrateSource(t *testing.T) (*fixture, *psk.Secret) {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t, "sqlite")
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

// TestMigrateSQLiteToPostgresAndBack: the copy holds every device, key and
// retired key and the same audit chain, hash for hash; the source is left
// as it is; migrating back gives the same registry.
func TestMigrateSQLiteToPostgresAndBack(t *testing.T) {
	ctx := context.Background()
	src, master := migrateSource(t)
	before := src.state(t)
	srcAudit := auditLinesOf(t, src.env.reg)
	dst := newFixture(t, "postgres")
	rep, err := Migrate(ctx, src.loc, testOptions(src.env), dst.env.reg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Devices != 6 || rep.StoredKeys != 3 || rep.AuditEntries != 11 || len(rep.Findings) != 0 || rep.To != dst.loc || rep.From != src.loc {
		t.Fatalf("report %+v", rep)
	}
	if src.state(t) != before {
		t.Fatal("migrating changed the source")
	}
	if got := auditLinesOf(t, dst.env.reg); !bytes.Equal(got, srcAudit) {
		t.Fatalf("the audit log differs:\n%s\nwant\n%s", got, srcAudit)
	}
	back := filepath.Join(t.TempDir(), "back.db")
	backReg, err := Open(back, testOptions(src.env))
	if err != nil {
		t.Fatal(err)
	}
	defer backReg.Close()
	pgOpts := testOptions(dst.env)
	keyHex := hex.EncodeToString(dst.key.Expose())
	pgOpts.RegistryKey = func() (string, bool) { return keyHex, true }
	if _, err := Migrate(ctx, dst.loc, pgOpts, backReg); err != nil {
		t.Fatal(err)
	}
	if got := auditLinesOf(t, backReg); !bytes.Equal(got, srcAudit) {
		t.Fatal("the audit log after the round trip differs")
	}
	for _, reg := range []*Registry{src.env.reg, dst.env.reg, backReg} {
		rep, err := reg.Check(ctx, master)
		if err != nil || len(rep.Findings) > 0 || rep.Devices != 6 {
			t.Fatalf("check of %s: %v %+v", reg.Location(), err, rep)
		}
		show, err := reg.Show(ctx, "rnd-1")
		if err != nil || len(show.History) != 1 || show.History[0].Reason != `a "quoted" reason` {
			t.Fatalf("history in %s: %v %+v", reg.Location(), err, show)
		}
	}
	a, _ := src.env.reg.Export(ctx, master)
	b, _ := backReg.Export(ctx, master)
	if a.Len() != 5 || a.Len() != b.Len() {
		t.Fatalf("exports of %d and %d devices", a.Len(), b.Len())
	}
	for _, id := range a.ids {
		if !exportKey(a, id).Equal(exportKey(b, id)) {
			t.Fatalf("device %s: another key after the migration", id)
		}
	}
	a.Destroy()
	b.Destroy()
	// Into an existing registry: refused, nothing changes.
	before = dst.state(t)
	if _, err := Migrate(ctx, src.loc, testOptions(src.env), dst.env.reg); !errors.Is(err, ErrRegistryExists) || !isBadInput(err) {
		t.Fatalf("migrate into an existing registry: %v", err)
	}
	if dst.state(t) != before {
		t.Fatal("a refused migration changed the destination")
	}
}

// TestMigrateNeedsRegistryKey: stored keys go to PostgreSQL only sealed:
// without a registry key the migration fails and creates nothing; a
// missing source is reported as such.
func TestMigrateNeedsRegistryKey(t *testing.T) {
	ctx := context.Background()
	src, _ := migrateSource(t)
	dst := newFixture(t, "postgres")
	nokey := dst.withKey(t, nil)
	if _, err := Migrate(ctx, src.loc, testOptions(src.env), nokey); !errors.Is(err, ErrRegistryKey) || !isBadInput(err) {
		t.Fatalf("migrate without a registry key: %v", err)
	}
	if dst.exists(t) {
		t.Fatal("a failed migration created the destination")
	}
	if _, err := Migrate(ctx, filepath.Join(t.TempDir(), "none.db"), Options{}, dst.env.reg); !errors.Is(err, ErrNoRegistry) {
		t.Fatalf("missing source: %v", err)
	}
	if _, err := Migrate(ctx, filepath.Join(t.TempDir(), "none.json"), Options{}, dst.env.reg); !errors.Is(err, ErrNoRegistry) {
		t.Fatalf("missing legacy source: %v", err)
	}
}

// TestMigrateLegacy: a JSON registry of an earlier version moves into a
// database with its records, keys, history and audit log (same hashes);
// the copy verifies. Entries of the log after the registry file's head (a
// legacy writer stopped between its two files) are copied too, and the
// records they contradict are reported.
func TestMigrateLegacy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	legacy := filepath.Join(dir, "old.json")
	data, err := os.ReadFile(filepath.Join("testdata", "legacy-registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	snap, head, err := parseLegacy(legacy, data)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	h := AuditHead{}
	for _, r := range snap.recs {
		ev := AuditEvent{Time: r.Created, Event: EventAdd, Device: r.ID, KCV: r.KCV, Epoch: r.Epoch, Actor: "legacy"}
		if r.Status == StatusRevoked || len(r.History) > 0 {
			continue // records the log cannot reproduce by adds alone
		}
		line, hash := auditLine(h.Seq+1, &ev, h.prevHash())
		log.Write(append(line, '\n'))
		h = AuditHead{Seq: h.Seq + 1, Hash: hash}
	}
	snap.destroy()
	_ = head
	if err := os.WriteFile(legacy, bytes.Replace(data, []byte(`"seq": 7, "hash": "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"`),
		[]byte(`"seq": `+strconv.FormatUint(h.Seq, 10)+`, "hash": "`+h.Hash+`"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old.audit.jsonl"), log.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	to := newFixture(t, "sqlite")
	rep, err := Migrate(ctx, legacy, Options{}, to.env.reg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Devices != 5 || rep.AuditEntries != h.Seq {
		t.Fatalf("report %+v", rep)
	}
	// The log knows 3 of the 5 records (the others were written by hand
	// here): the copy says so, as check will.
	if len(rep.Findings) != 2 {
		t.Fatalf("findings %v", rep.Findings)
	}
	if got := auditLinesOf(t, to.env.reg); !bytes.Equal(got, log.Bytes()) {
		t.Fatal("the audit log differs")
	}
}

// TestMigrateLegacyPlantedLock: a symbolic link at the legacy writers'
// lock path is neither followed nor used to create its target (issue 13
// item 7): the migration fails, and nothing appears where the link points.
func TestMigrateLegacyPlantedLock(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no O_NOFOLLOW")
	}
	dir := t.TempDir()
	legacy := filepath.Join(dir, "old.json")
	data, err := os.ReadFile(filepath.Join("testdata", "legacy-registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(legacy, data, 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "created-through-the-link")
	if err := os.Symlink(target, legacy+".lock"); err != nil {
		t.Fatal(err)
	}
	to := newFixture(t, "sqlite")
	_, err = Migrate(context.Background(), legacy, Options{LockTimeout: 100 * time.Millisecond}, to.env.reg)
	if err == nil || !strings.Contains(err.Error(), "lock file") || !errors.Is(err, syscall.ELOOP) {
		t.Fatalf("migrated through a planted lock link, or said the wrong thing: %v", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the lock link's target was created: %v", err)
	}
}
