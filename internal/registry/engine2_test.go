package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/secfile"
)

// TestPGSchemaUpgrade: a registry of the first PostgreSQL schema (history
// as jsonb in usmp_devices) is refused by every command but init, which
// upgrades it in one transaction, keeping every device, retired key and
// audit entry.
func TestPGSchemaUpgrade(t *testing.T) {
	ctx := context.Background()
	s := newPGSchema(t)
	for _, stmt := range postgresTables {
		s.exec(t, stmt)
	}
	s.exec(t, `ALTER TABLE usmp_devices ADD COLUMN history jsonb NOT NULL DEFAULT '[]'`)
	master := canaryMaster(t)
	k0, k1 := psk.Derive(master, "d-1", 0), psk.Derive(master, "d-1", 1)
	s.exec(t, `INSERT INTO usmp_devices (id, source, epoch, status, kcv, created, updated, history) VALUES ('d-1', 'derived', 1, 'active', $1, now(), now(), $2::jsonb)`,
		psk.KCV(k1), `[{"kcv":"`+psk.KCV(k0)+`","epoch":0,"source":"derived","reason":"stolen","retired":"2026-01-02T03:04:05Z"}]`)
	var lines []string
	h := AuditHead{}
	for i, ev := range []AuditEvent{{Time: t0, Event: EventInit, Actor: "v1"}, {Time: t0, Event: EventAdd, Device: "d-1", KCV: psk.KCV(k0), Actor: "v1"},
		{Time: t0, Event: EventRotate, Device: "d-1", KCV: psk.KCV(k1), Epoch: 1, Actor: "v1"}} {
		line, hash := auditLine(uint64(i+1), &ev, h.prevHash())
		var dev any
		if ev.Device != "" {
			dev = ev.Device
		}
		s.exec(t, `INSERT INTO usmp_audit (seq, time, event, device, hash, line) VALUES ($1, $2, $3, $4, $5, $6)`, i+1, t0, string(ev.Event), dev, hash, string(line))
		h = AuditHead{Seq: uint64(i + 1), Hash: hash}
		lines = append(lines, string(line))
	}
	s.exec(t, `INSERT INTO usmp_meta (id, schema_version, audit_seq, audit_hash) VALUES (1, 1, $1, $2)`, int64(h.Seq), h.Hash)
	reg, err := Open(s.url, Options{RegistryKey: func() (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	var se *SchemaError
	if _, err := reg.List(ctx); !errors.As(err, &se) || se.Have != 1 || !isBadInput(err) || !strings.Contains(err.Error(), "run 'usmp-psk registry init' to upgrade") {
		t.Fatalf("older schema: %v", err)
	}
	if _, err := reg.Add(ctx, "x", Derived(master, 0)); !errors.As(err, &se) {
		t.Fatalf("add to an older schema: %v", err)
	}
	if from, err := reg.Init(ctx); err != nil || from != 1 {
		t.Fatalf("upgrade: %d %v", from, err)
	}
	if _, err := reg.Init(ctx); !errors.Is(err, ErrRegistryExists) {
		t.Fatalf("init after the upgrade: %v", err)
	}
	dev, err := reg.Show(ctx, "d-1")
	if err != nil || len(dev.History) != 1 || dev.History[0].Reason != "stolen" || dev.History[0].KCV != psk.KCV(k0) {
		t.Fatalf("after the upgrade: %v %+v", err, dev)
	}
	rep, err := reg.Check(ctx, master)
	if err != nil || len(rep.Findings) > 0 || rep.Checked != 1 {
		t.Fatalf("check after the upgrade: %v %+v", err, rep)
	}
	if got := strings.TrimSpace(string(auditLinesOf(t, reg))); got != strings.Join(lines, "\n") {
		t.Fatal("the audit log changed in the upgrade")
	}
	fresh := newPGSchema(t)
	newReg, err := Open(fresh.url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer newReg.Close()
	if _, err := newReg.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := s.shape(t), fresh.shape(t); got != want {
		t.Fatalf("the upgraded schema differs from a new one:\n%s\nwant\n%s", got, want)
	}
	s.exec(t, `UPDATE usmp_meta SET schema_version = 3`)
	if _, err := reg.List(ctx); !errors.As(err, &se) || !strings.Contains(err.Error(), "newer than this usmp-psk knows") {
		t.Fatalf("newer schema: %v", err)
	}
}

// TestPGMissingSchema: a search_path schema that does not exist is a
// missing registry; creating one there fails with what to do.
func TestPGMissingSchema(t *testing.T) {
	u := withQuery(pgTestURL(t), "options", "-csearch_path=usmp_no_such_schema_x")
	reg, err := Open(u, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if _, err := reg.List(context.Background()); !errors.Is(err, ErrNoRegistry) {
		t.Fatalf("list: %v", err)
	}
	if _, err := reg.Init(context.Background()); err == nil || !strings.Contains(err.Error(), "no schema has been selected") && !strings.Contains(err.Error(), "schema") {
		t.Fatalf("init: %v", err)
	}
}

// TestNoKeyBytesAtRest: after random and imported adds, rotations, a
// revocation and an export, no key (in any encoding or 6-byte window), the
// registry key or the master is in what is stored: PostgreSQL's tables and
// pg_dump, a SQLite database sealed with a registry key (the file and its
// -wal). Without a registry key SQLite keeps stored keys in its 0600 file,
// and derived keys nowhere.
func TestNoKeyBytesAtRest(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f := newFixture(t, kind)
		if kind == "sqlite" {
			f.key = testRegistryKey(t)
			f.env.reg = f.open(t, testOptions(f.env))
		}
		master := canaryMaster(t)
		keys := atRestFixture(t, f.env.reg, master)
		var stored map[string][]byte
		if kind == "postgres" {
			stored = map[string][]byte{"the tables": []byte(f.pg.dump(t)), "pg_dump": f.pg.pgDumpTool(t)}
		} else {
			var all []byte
			for _, p := range []string{f.loc, f.loc + "-wal"} {
				b, _ := os.ReadFile(p)
				all = append(all, b...)
			}
			stored = map[string][]byte{"the database and its -wal": all}
		}
		for what, data := range stored {
			if !bytes.Contains(data, []byte("rnd-9")) {
				t.Fatalf("%s does not hold the registry (the scan would prove nothing)", what)
			}
			for _, k := range keys {
				assertNoKey(t, what, data, k)
			}
			assertNoKey(t, what, data, f.key)
			for _, form := range keyForms(master.Expose()) {
				if bytes.Contains(data, []byte(form)) {
					t.Fatalf("%s holds the master secret", what)
				}
			}
			assertNoKey(t, what, data, psk.CopySecret(labelMAC(f.key, labelEncrypt)))
		}
		_ = ctx
	})
}

// atRestFixture makes random, derived and imported devices, rotates and
// revokes some, imports two and exports; it returns every key made.
func atRestFixture(t *testing.T, reg *Registry, master *psk.Secret) []*psk.Secret {
	t.Helper()
	ctx := context.Background()
	var keys []*psk.Secret
	keep := func(res *AddResult, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, res.Key)
	}
	for i := range 10 {
		keep(reg.Add(ctx, fmt.Sprintf("rnd-%d", i), Random()))
		keep(reg.Add(ctx, fmt.Sprintf("drv-%d", i), Derived(master, uint32(i))))
		keep(reg.Add(ctx, fmt.Sprintf("imp-%d", i), Imported(testRegistryKey(t))))
	}
	set, err := ParseImport("in", []byte("id,psk\nbulk-1,"+randomHex(t, 32)+"\nbulk-2,"+randomHex(t, 16)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range set.Entries {
		keys = append(keys, psk.CopySecret(e.Key.Expose()))
	}
	if _, err := reg.Import(ctx, set); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"rnd-1", "imp-2", "drv-3"} {
		res, err := reg.Rotate(ctx, id, RotateOptions{Master: master})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, res.Key)
	}
	if _, err := reg.Revoke(ctx, "rnd-4", "stolen"); err != nil {
		t.Fatal(err)
	}
	ex, err := reg.Export(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	ex.Destroy()
	return keys
}

// TestSQLiteFile: the database and its -wal and -shm files are 0600
// whatever the umask; a writer makes an opened-up file 0600 again, saying
// so; a new registry in a new directory gets it 0700; a symbolic link is
// followed once (the -wal lives beside its target); what is not a SQLite
// database is refused, an empty file is an empty registry.
func TestSQLiteFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes")
	}
	ctx := context.Background()
	root := t.TempDir()
	old := syscall.Umask(0o002)
	defer syscall.Umask(old)
	dir := filepath.Join(root, "new", "sub")
	path := filepath.Join(dir, "r.db")
	e := &testEnv{path: path}
	reg, err := Open(path, testOptions(e))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if _, err := reg.Add(ctx, "r1", Random()); err != nil {
		t.Fatal(err)
	}
	hold := f0(t, reg)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", p, fi.Mode(), err)
		}
	}
	hold()
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("new directory %v", fi.Mode())
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.List(ctx); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Fatal("a reader changed the mode")
	}
	rep, err := reg.Check(ctx, nil)
	if err != nil || !hasFinding(rep.Findings, "holds keys and group or others can read it (mode 0644)") {
		t.Fatalf("check of an open database: %v %v", err, rep)
	}
	if _, err := reg.Add(ctx, "r2", Random()); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 || !strings.Contains(strings.Join(e.warnings(), "\n"), "was mode 0644; made it 0600") {
		t.Fatalf("a writer did not fix the mode: %v %q", fi.Mode(), e.warnings())
	}
	link := filepath.Join(root, "link.db")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	via, err := Open(link, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer via.Close()
	if _, err := via.Add(ctx, "r3", Random()); err != nil {
		t.Fatal(err)
	}
	if list, _ := reg.List(ctx); len(list) != 3 {
		t.Fatalf("the link forked the registry: %d devices", len(list))
	}
	if _, err := os.Lstat(link + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a -wal beside the link: %v", err)
	}
	for name, content := range map[string][]byte{"text.db": []byte("this is no database at all"), "json.db": []byte(`{"version": 1}`)} {
		p := filepath.Join(root, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		r, _ := Open(p, Options{})
		if _, err := r.List(ctx); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %v", name, err)
		}
		r.Close()
	}
	// A device or a directory is no registry, and is left as it is.
	for _, p := range []string{os.DevNull, root} {
		before, _ := os.Stat(p)
		r, _ := Open(p, Options{})
		if _, err := r.Add(ctx, "x", Random()); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s as the registry: %v", p, err)
		}
		r.Close()
		if after, _ := os.Stat(p); after.Mode() != before.Mode() {
			t.Fatalf("%s: mode %v, was %v", p, after.Mode(), before.Mode())
		}
	}
	empty := filepath.Join(root, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r, _ := Open(empty, Options{})
	defer r.Close()
	if _, err := r.List(ctx); !errors.Is(err, ErrNoRegistry) {
		t.Fatalf("an empty file: %v", err)
	}
	if _, err := r.Add(ctx, "e1", Random()); err != nil {
		t.Fatalf("add to an empty file: %v", err)
	}
}

// f0 keeps a read transaction of reg open (so that the -wal and -shm files
// stay) until the returned function is called.
func f0(t *testing.T, reg *Registry) func() {
	t.Helper()
	done, held := make(chan struct{}), make(chan struct{})
	go func() {
		_ = reg.st.read(context.Background(), func(*tx) error {
			close(held)
			<-done
			return nil
		})
	}()
	<-held
	return func() { close(done) }
}

// TestGitGuard: a registry is a secret file: a new one is refused in a git
// work tree that does not ignore it and its -wal and -shm files, before
// anything (directories included) is created; an existing one takes no
// stored key there; --allow-unignored writes with a warning.
func TestGitGuard(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	ctx := context.Background()
	dir := t.TempDir()
	gitInit(t, dir, git)
	path := filepath.Join(dir, "reg", "usmp-registry.db")
	reg, _ := Open(path, Options{})
	defer reg.Close()
	master := canaryMaster(t)
	for _, spec := range []KeySpec{Derived(master, 0), Random()} {
		_, err := reg.Add(ctx, "d", spec)
		var ue *secfile.UnsafeError
		// The first refusal already suggests the rule that covers the
		// -wal and -shm files too, not one the next run refuses again.
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "git does not ignore it") ||
			!strings.Contains(err.Error(), "echo 'reg/usmp-registry.db*' >> "+filepath.Join(dir, ".gitignore")) {
			t.Fatalf("a new registry in an unignored work tree: %v", err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "reg")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused writer created the directory")
	}
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("reg/usmp-registry.db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Add(ctx, "d", Random()); err == nil || !strings.Contains(err.Error(), "usmp-registry.db-wal") ||
		!strings.Contains(err.Error(), "echo 'reg/usmp-registry.db*' >> "+filepath.Join(dir, ".gitignore")) {
		t.Fatalf("the -wal and -shm files unignored, or a hint that does not fix it: %v", err)
	}
	// The hint's rule works: the stage of a first write, the database and
	// the files beside it are all ignored.
	if err := os.MkdirAll(filepath.Join(dir, "reg"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "reg", ".gitignore"), []byte("usmp-registry.db*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Add(ctx, "staged", Random()); err != nil {
		t.Fatalf("with the hint's rule: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "reg", ".gitignore")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("reg/usmp-registry.db*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Add(ctx, "d", Derived(master, 0)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, ".gitignore")); err != nil {
		t.Fatal(err)
	}
	var warned []string
	loud, _ := Open(path, Options{AllowUnignored: true, Warn: func(m string) { warned = append(warned, m) }})
	defer loud.Close()
	if _, err := reg.Add(ctx, "r", Random()); err == nil {
		t.Fatal("a stored key went into an unignored registry")
	}
	if _, err := loud.Add(ctx, "r", Random()); err != nil || len(warned) == 0 {
		t.Fatalf("--allow-unignored: %v %q", err, warned)
	}
	// Rotating a random device stores a new random key, flags or not.
	if _, err := reg.Rotate(ctx, "r", RotateOptions{}); err == nil || !strings.Contains(err.Error(), "git does not ignore it") {
		t.Fatalf("a rotation stored a key in an unignored registry: %v", err)
	}
	if _, err := reg.Rotate(ctx, "d", RotateOptions{Master: master}); err != nil {
		t.Fatalf("rotating a derived device stores no key: %v", err)
	}
}

func gitInit(t *testing.T, dir, git string) {
	t.Helper()
	cmd := exec.Command(git, "init", "-q", dir)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
}

// TestSQLitePlantedCompanion: a symbolic link planted at the database's
// -wal or -shm path is refused by readers and writers alike, and neither
// SQLite nor the mode fix touches its target (issue 13 item 7).
func TestSQLitePlantedCompanion(t *testing.T) {
	for _, suffix := range []string{"-wal", "-shm"} {
		t.Run(suffix, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			if _, err := e.reg.Add(ctx, "d-1", Random()); err != nil {
				t.Fatal(err)
			}
			if err := e.reg.Close(); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(t.TempDir(), "elsewhere")
			if err := os.WriteFile(target, []byte("not the registry's"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, e.path+suffix); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(e.path, 0o644); err != nil { // so that a writer would fix modes
				t.Fatal(err)
			}
			reg, err := Open(e.path, testOptions(e))
			if err != nil {
				t.Fatal(err)
			}
			defer reg.Close()
			var ce *CorruptError
			if _, err := reg.List(ctx); !errors.As(err, &ce) || !strings.Contains(err.Error(), suffix+" is not a regular file") {
				t.Fatalf("list through a planted %s: %v", suffix, err)
			}
			if _, err := reg.Add(ctx, "d-2", Random()); !errors.As(err, &ce) {
				t.Fatalf("add through a planted %s: %v", suffix, err)
			}
			if b, _ := os.ReadFile(target); string(b) != "not the registry's" {
				t.Fatalf("the link's target was written: %q", b)
			}
			if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o644 {
				t.Fatalf("the link's target was chmodded: %v", fi.Mode())
			}
		})
	}
}

// TestStaleStagesRemoved: the file of a first write killed before it was
// linked into place is removed by the next writer once it is an hour old,
// also when the registry exists by then; a younger one is left alone.
func TestStaleStagesRemoved(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if _, err := e.reg.Add(ctx, "d-1", Random()); err != nil {
		t.Fatal(err)
	}
	old, young := e.path+stagePrefix+"111", e.path+stagePrefix+"222"
	for _, p := range []string{old, young} {
		if err := os.WriteFile(p, []byte("SQLite format 3\x00"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(old, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Revoke(ctx, "d-1", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a stale stage stayed: %v", err)
	}
	if _, err := os.Lstat(young); err != nil {
		t.Fatalf("a young stage was removed: %v", err)
	}
}
