package registry

// Tests of what is specific to the PostgreSQL store: the URL and password
// rules, the registry key and sealing (these need no server), then against
// the test server the key errors, rekeying, the lock timeout, schema
// versions, tampering, the R22 scan of the tables and of pg_dump, and
// connection errors.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usmp/usmp-psk/internal/psk"
)

// TestPGURLRules: a URL that holds a password is refused as bad input,
// with a hint, without quoting the URL or the password (R9).
func TestPGURLRules(t *testing.T) {
	const pw = "Sup3rS3cretCanaryPw"
	tests := []struct {
		name, url, want string
	}{
		{"userinfo", "postgres://usmp:" + pw + "@db.example:5432/fleet", "holds a password"},
		{"userinfo postgresql", "postgresql://usmp:" + pw + "@db.example/fleet", "holds a password"},
		{"empty user", "postgres://:" + pw + "@db.example/fleet", "holds a password"},
		{"query", "postgres://usmp@db.example/fleet?sslmode=require&password=" + pw, "holds a password parameter"},
		{"query case", "postgres://usmp@db.example/fleet?PassWord=" + pw, "holds a password parameter"},
		{"sslpassword", "postgres://usmp@db.example/fleet?sslpassword=" + pw, "holds a sslpassword parameter"},
		{"bad escape", "postgres://usmp@db.example/fleet%zz" + pw, "not a valid PostgreSQL URL"},
		{"bad query", "postgres://usmp@db.example/fleet?a=%zz" + pw, "query of the PostgreSQL URL is not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.url, Options{})
			if err == nil || !isBadInput(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want bad input %q", err, tt.want)
			}
			if strings.Contains(tt.want, "password") && !strings.Contains(err.Error(), "hint: remove the password from the URL and put it in $PGPASSWORD or in ~/.pgpass") {
				t.Fatalf("no hint: %v", err)
			}
			assertNoOverlap(t, err.Error(), pw)
			if _, err := NewPGStore(tt.url, PGOptions{}); err == nil {
				t.Fatal("NewPGStore accepted it")
			}
		})
	}
	for _, ok := range []string{
		"postgres://usmp@db.example:5432/fleet?sslmode=verify-full&sslrootcert=/etc/ca.pem",
		"postgresql:///fleet?host=/run/postgresql",
		"postgres://db.example/fleet?options=-csearch_path%3Dline2",
		"postgres://usmp@h1:5432,h2:5432/fleet?target_session_attrs=read-write",
	} {
		reg, err := Open(ok, Options{})
		if err != nil {
			t.Fatalf("%s: %v", ok, err)
		}
		if reg.Location() != ok || !reg.IsPostgres() || reg.AuditLocation() != ok+" (table usmp_audit)" {
			t.Fatalf("%s: location %q, audit %q", ok, reg.Location(), reg.AuditLocation())
		}
	}
}

// TestParseRegistryKey: 64 hex digits, nothing else; errors name the
// source and never any part of the value (R9).
func TestParseRegistryKey(t *testing.T) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(k)
	for _, ok := range []string{h, strings.ToUpper(h), h + "\n", "  " + h + "\r\n"} {
		got, err := ParseRegistryKey("$"+RegistryKeyEnv, ok)
		if err != nil || !bytes.Equal(got.Expose(), k) {
			t.Fatalf("valid key refused: %v", err)
		}
	}
	for _, bad := range []string{"", h[:62], h + "00", h[:63] + "g", "0x" + h[:62], h[:31] + " " + h[32:], strings.Repeat("é", 32)} {
		_, err := ParseRegistryKey("$"+RegistryKeyEnv, bad)
		if err == nil || !isBadInput(err) || !strings.HasPrefix(err.Error(), "$"+RegistryKeyEnv+": ") {
			t.Fatalf("bad key: %v", err)
		}
		if len(bad) >= 4 {
			assertNoOverlap(t, err.Error(), strings.TrimSpace(bad))
		}
	}
	// A property over random inputs: no error shares 4 characters with it.
	r := mrand.New(mrand.NewPCG(1, 2))
	const alphabet = "0123456789abcdefABCDEFxyz!#-_ \n"
	for range 2000 {
		b := make([]byte, r.IntN(80))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		if _, err := ParseRegistryKey("$K", string(b)); err != nil {
			msg := strings.TrimPrefix(err.Error(), "$K: ")
			for i := 0; i+4 <= len(b); i++ {
				if w := string(b[i : i+4]); strings.TrimSpace(w) == w && strings.Contains(msg, w) && !strings.Contains(parseKeyMessages, w) {
					t.Fatalf("error shares %q with the input", w)
				}
			}
		}
	}
}

// parseKeyMessages is the fixed text of ParseRegistryKey's errors: runs of
// the input that are also in it are not leaks.
const parseKeyMessages = "empty (want 64 hex digits: a 256-bit key, e.g. from 'usmp-psk generate --bytes 32') characters, want exactly 64 hex digits (a 256-bit key) not hex: want exactly 64 hex digits (a 256-bit key)"

// TestSealer: a sealed key opens only for its device, unchanged, under its
// registry key; the blob holds no run of the key.
func TestSealer(t *testing.T) {
	rk := testRegistryKey(t)
	s, err := newSealer(rk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.id != RegistryKeyID(rk) || len(s.id) != 8 {
		t.Fatalf("key id %q", s.id)
	}
	key := testRegistryKey(t) // any 32 bytes
	blob, err := s.seal("dev-1", key)
	if err != nil {
		t.Fatal(err)
	}
	if len(blob) != sealOverhead+32 || sealedKeyID(blob) != s.id {
		t.Fatalf("blob of %d bytes, key id %q", len(blob), sealedKeyID(blob))
	}
	assertNoKey(t, "a sealed key", blob, key)
	got, msg := s.open("dev-1", blob)
	if msg != "" || !got.Equal(key) {
		t.Fatalf("open: %s", msg)
	}
	again, _ := s.seal("dev-1", key)
	if bytes.Equal(again, blob) {
		t.Fatal("two seals of one key are equal (nonce reuse)")
	}
	if _, msg := s.open("dev-2", blob); !strings.Contains(msg, "moved from another device") {
		t.Fatalf("another device's row: %q", msg)
	}
	for i := range blob {
		if i >= 1 && i < 1+sealKeyIDLen {
			continue // the key id: reported as another key
		}
		b := bytes.Clone(blob)
		b[i] ^= 0x01
		if _, msg := s.open("dev-1", b); msg == "" {
			t.Fatalf("a flipped bit at %d was not detected", i)
		}
	}
	if _, msg := s.open("dev-1", blob[:20]); !strings.Contains(msg, "too short") {
		t.Fatalf("short blob: %q", msg)
	}
	other, _ := newSealer(testRegistryKey(t), nil)
	if _, msg := other.open("dev-1", blob); !strings.Contains(msg, "sealed with registry key "+s.id) || !strings.Contains(msg, other.id) {
		t.Fatalf("another registry key: %q", msg)
	}
	// The encryption key and the key id are not the registry key.
	ek := labelMAC(rk, labelEncrypt)
	if bytes.Equal(ek, rk.Expose()) || strings.Contains(hex.EncodeToString(rk.Expose()), s.id) {
		t.Fatal("derived values equal the key")
	}
}

// TestOpenReadsRegistryKey: Open takes the registry key from
// $USMP_REGISTRY_KEY (outside viper), refuses a malformed one without
// quoting it, and does no I/O.
func TestOpenReadsRegistryKey(t *testing.T) {
	rk := testRegistryKey(t)
	t.Setenv(RegistryKeyEnv, hex.EncodeToString(rk.Expose())+"\n")
	reg, err := Open("postgres://nobody@127.0.0.1:1/none", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := reg.Store().(*PGStore).KeyID(); got != RegistryKeyID(rk) {
		t.Fatalf("key id %q", got)
	}
	t.Setenv(RegistryKeyEnv, "not-a-key-CANARY-1234")
	_, err = Open("postgres://nobody@127.0.0.1:1/none", Options{})
	if !isBadInput(err) || !strings.Contains(err.Error(), "$"+RegistryKeyEnv) {
		t.Fatalf("malformed key: %v", err)
	}
	assertNoOverlap(t, err.Error(), "not-a-key-CANARY-1234")
	if err := os.Unsetenv(RegistryKeyEnv); err != nil {
		t.Fatal(err)
	}
	reg, err = Open("postgres://nobody@127.0.0.1:1/none", Options{})
	if err != nil || reg.Store().(*PGStore).KeyID() != "" {
		t.Fatalf("no key: %v", err)
	}
}

// newPGFixture is a PostgreSQL fixture with its registry key.
func newPGFixture(t *testing.T, mods ...func(*Options)) *fixture {
	t.Helper()
	return newFixture(t, "postgres", mods...)
}

// withKey returns a Registry on f's registry with another registry key
// (nil: none).
func (f *fixture) withKey(t *testing.T, key *psk.Secret) *Registry {
	t.Helper()
	st, err := NewPGStore(f.loc, PGOptions{Key: key, LockTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return New(st, Options{Now: clock(), User: func() string { return "other" }, Getenv: func(string) string { return "" }})
}

// TestPGRegistryKey: a registry of derived devices needs no key; once a
// key is stored, a missing or wrong $USMP_REGISTRY_KEY is a clear error
// (exit 2) that changes nothing; the audit log verifies without the key.
func TestPGRegistryKey(t *testing.T) {
	ctx := context.Background()
	f := newPGFixture(t)
	master := canaryMaster(t)
	nokey := f.withKey(t, nil)
	if _, err := nokey.Add(ctx, "d1", Derived(master, 0)); err != nil {
		t.Fatalf("derived add without a registry key: %v", err)
	}
	var kid string
	if err := f.pg.admin.QueryRow(ctx, `SELECT coalesce(key_id, '') FROM usmp_meta`).Scan(&kid); err != nil {
		t.Fatal(err)
	}
	if kid != "" {
		t.Fatalf("key id %q before any key is stored", kid)
	}
	// Storing a key without the registry key: refused in the transaction.
	before := f.state(t)
	_, err := nokey.Add(ctx, "r1", Random())
	var ke *KeyError
	if !errors.As(err, &ke) || !errors.Is(err, ErrRegistryKey) || !isBadInput(err) || !strings.Contains(err.Error(), "hint: set $"+RegistryKeyEnv) {
		t.Fatalf("random add without a registry key: %v", err)
	}
	if f.state(t) != before {
		t.Fatal("the refused add changed the registry")
	}
	r1, err := f.env.reg.Add(ctx, "r1", Random())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.pg.admin.QueryRow(ctx, `SELECT coalesce(key_id, '') FROM usmp_meta`).Scan(&kid); err != nil {
		t.Fatal(err)
	}
	if kid != RegistryKeyID(f.key) {
		t.Fatalf("key id %q, want %q", kid, RegistryKeyID(f.key))
	}
	wrong := f.withKey(t, testRegistryKey(t))
	for name, reg := range map[string]*Registry{"missing": nokey, "wrong": wrong} {
		before := f.state(t)
		for op, run := range map[string]func() error{
			"list": func() error { _, err := reg.List(ctx); return err },
			"add":  func() error { _, err := reg.Add(ctx, "d2", Derived(master, 0)); return err },
			"key":  func() error { _, _, err := reg.Key(ctx, "r1", nil); return err },
			"check": func() error {
				_, err := reg.Check(ctx, nil)
				return err
			},
		} {
			err := run()
			if !errors.As(err, &ke) || !isBadInput(err) || !strings.Contains(err.Error(), kid) {
				t.Fatalf("%s key, %s: %v", name, op, err)
			}
			assertNoKey(t, "the error", []byte(err.Error()), f.key)
		}
		if f.state(t) != before {
			t.Fatalf("%s key: the registry changed", name)
		}
		if _, err := reg.VerifyAudit(ctx); err != nil {
			t.Fatalf("%s key: audit: %v", name, err)
		}
	}
	k, _, err := f.env.reg.Key(ctx, "r1", nil)
	if err != nil || !k.Equal(r1.Key) {
		t.Fatalf("key with the right registry key: %v", err)
	}
}

// TestPGRekey: Rekey seals every stored key again under a new registry
// key in one transaction; the old key stops working, the keys are the same.
func TestPGRekey(t *testing.T) {
	ctx := context.Background()
	f := newPGFixture(t)
	master := canaryMaster(t)
	keys := map[string]*psk.Secret{}
	for i := range 30 {
		id := fmt.Sprintf("r-%02d", i)
		spec := Random()
		if i%3 == 0 {
			spec = Derived(master, 0)
		}
		res, err := f.env.reg.Add(ctx, id, spec)
		if err != nil {
			t.Fatal(err)
		}
		keys[id] = res.Key
	}
	if _, err := f.env.reg.Revoke(ctx, "r-01", "gone"); err != nil {
		t.Fatal(err)
	}
	delete(keys, "r-01")
	sealedBefore := f.pg.dump(t)
	nk := testRegistryKey(t)
	// Rekey needs the current key.
	if _, err := f.withKey(t, testRegistryKey(t)).Rekey(ctx, nk); !errors.Is(err, ErrRegistryKey) {
		t.Fatalf("rekey with a wrong current key: %v", err)
	}
	n, err := f.env.reg.Rekey(ctx, nk)
	if err != nil || n != 19 {
		t.Fatalf("rekey: %d, %v", n, err)
	}
	if f.pg.dump(t) == sealedBefore {
		t.Fatal("nothing changed")
	}
	if _, err := f.withKey(t, f.key).List(ctx); !errors.Is(err, ErrRegistryKey) {
		t.Fatalf("the old key still works: %v", err)
	}
	for _, reg := range []*Registry{f.env.reg, f.withKey(t, nk)} {
		ex, err := reg.Export(ctx, master)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Len() != len(keys) {
			t.Fatalf("export of %d devices", ex.Len())
		}
		for id, k := range keys {
			if !ex.Key(id).Equal(k) {
				t.Fatalf("device %s: another key after rekey", id)
			}
		}
		ex.Destroy()
	}
	if _, err := newFixtureFile(t).Rekey(ctx, nk); !isBadInput(err) {
		t.Fatalf("rekey of a file registry: %v", err)
	}
}

func newFixtureFile(t *testing.T) *Registry { return newFixture(t, "file").env.reg }

// TestPGLockTimeout (R17): while another transaction holds the registry's
// row lock, a writer with a 1 s timeout fails with the lock error (exit 1)
// and changes nothing; a cancelled context stops the wait; readers do not
// wait.
func TestPGLockTimeout(t *testing.T) {
	ctx := context.Background()
	f := newPGFixture(t, func(o *Options) { o.LockTimeout = time.Second })
	if _, err := f.env.reg.Add(ctx, "first", Random()); err != nil {
		t.Fatal(err)
	}
	before := f.state(t)
	holder := pgConnect(t, f.loc)
	htx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := htx.Exec(ctx, `SELECT 1 FROM usmp_meta WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = f.env.reg.Add(ctx, "second", Random())
	waited := time.Since(start)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || !strings.HasPrefix(err.Error(), "registry is locked by another process") || isBadInput(err) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), f.loc) || waited < time.Second || waited > 10*time.Second {
		t.Fatalf("waited %v: %v", waited, err)
	}
	if list, err := f.env.reg.List(ctx); err != nil || len(list) != 1 {
		t.Fatalf("a reader waited or failed: %v", err)
	}
	if f.pg.dump(t) != before {
		t.Fatal("a writer that timed out changed the registry")
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	slow := f.open(t, Options{LockTimeout: time.Minute})
	if _, err := slow.Add(cctx, "third", Random()); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	if err := htx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.env.reg.Add(ctx, "second", Random()); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
}

// TestPGSchemaVersions: init creates the current schema; a registry of an
// older schema is refused by every command but init, which upgrades it
// (each migration in a transaction, a failing one rolled back, concurrent
// upgraders apply it once); a newer schema is refused.
func TestPGSchemaVersions(t *testing.T) {
	ctx := context.Background()
	f := newPGFixture(t)
	master := canaryMaster(t)
	if _, err := f.env.reg.Add(ctx, "old-1", Random()); err != nil {
		t.Fatal(err)
	}
	v2 := append(append([]pgMigration(nil), pgMigrations...), pgMigration{what: "a test column", sql: `ALTER TABLE usmp_devices ADD COLUMN test_note text`})
	v3bad := append(append([]pgMigration(nil), v2...), pgMigration{what: "a broken one", sql: `ALTER TABLE usmp_devices ADD COLUMN test_other text; SELECT * FROM no_such_table`})
	with := func(ms []pgMigration, warn func(string)) *Registry {
		st, err := NewPGStore(f.loc, PGOptions{Key: f.key, Warn: warn, LockTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		st.migrations = ms
		return New(st, Options{Now: clock(), User: func() string { return "t" }, Getenv: func(string) string { return "" }, Warn: warn})
	}
	version := func() int {
		var v int
		if err := f.pg.admin.QueryRow(ctx, `SELECT schema_version FROM usmp_meta`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	newer := with(v2, nil)
	var se *SchemaError
	if _, err := newer.List(ctx); !errors.As(err, &se) || se.Have != 1 || se.Want != 2 || !isBadInput(err) || !strings.Contains(err.Error(), "run 'usmp-psk registry init' to upgrade") {
		t.Fatalf("older schema: %v", err)
	}
	if _, err := newer.Add(ctx, "x", Derived(master, 0)); !errors.As(err, &se) {
		t.Fatalf("add to an older schema: %v", err)
	}
	// Concurrent upgraders: one applies it, the others find it done.
	var warns collector
	errc := make(chan error, 4)
	for range 4 {
		go func() { errc <- with(v2, warns.add).Init(ctx) }()
	}
	upgraded := 0
	for range 4 {
		err := <-errc
		switch {
		case err == nil:
			upgraded++
		case !errors.Is(err, ErrRegistryExists):
			t.Fatalf("concurrent upgrade: %v", err)
		}
	}
	if w := warns.all(); upgraded != 1 || len(w) != 1 || !strings.Contains(w[0], "upgraded the schema from version 1 to 2") {
		t.Fatalf("%d upgrades, warnings %q", upgraded, w)
	}
	if version() != 2 {
		t.Fatalf("version %d after the upgrade", version())
	}
	if list, err := newer.List(ctx); err != nil || len(list) != 1 {
		t.Fatalf("after the upgrade: %v %v", err, list)
	}
	// This build's schema is now older than the registry's.
	if _, err := f.env.reg.List(ctx); !errors.As(err, &se) || se.Have != 2 || !strings.Contains(err.Error(), "newer than this usmp-psk knows") {
		t.Fatalf("newer schema: %v", err)
	}
	if err := f.env.reg.Init(ctx); !errors.As(err, &se) {
		t.Fatalf("init of a newer schema: %v", err)
	}
	// A failing migration leaves the previous version whole.
	before := f.pg.dump(t)
	if err := with(v3bad, nil).Init(ctx); err == nil || !strings.Contains(err.Error(), "schema migration to version 3 (a broken one)") {
		t.Fatalf("broken migration: %v", err)
	}
	if version() != 2 || f.pg.dump(t) != before {
		t.Fatal("a failed migration changed the registry")
	}
	var cols int
	if err := f.pg.admin.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'test_other'`, f.pg.name).Scan(&cols); err != nil {
		t.Fatal(err)
	}
	if cols != 0 {
		t.Fatal("the failed migration's first statement stayed")
	}
	// A fresh registry gets every migration at once.
	g := newPGFixture(t)
	gr := New(func() Store {
		st, _ := NewPGStore(g.loc, PGOptions{Key: g.key})
		st.migrations = v2
		return st
	}(), Options{})
	if err := gr.Init(ctx); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := g.pg.admin.QueryRow(ctx, `SELECT schema_version FROM usmp_meta`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != 2 {
		t.Fatalf("fresh registry at version %d", v)
	}
}

// TestPGMissingSchema: a search_path schema that does not exist is a
// registry error with a hint, also when creating.
func TestPGMissingSchema(t *testing.T) {
	base := pgTestURL(t)
	u := withQuery(base, "options", "-csearch_path=usmp_no_such_schema_x")
	reg, err := Open(u, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.List(context.Background()); !errors.Is(err, ErrNoRegistry) {
		t.Fatalf("list: %v", err)
	}
	if err := reg.Init(context.Background()); !errors.Is(err, ErrNoRegistry) || !strings.Contains(err.Error(), "CREATE SCHEMA") {
		t.Fatalf("init: %v", err)
	}
}

// tamperFixture is a registry with derived, random and imported devices,
// a revocation and a rotation: 8 audit entries.
func tamperFixture(t *testing.T) (*fixture, *psk.Secret) {
	t.Helper()
	ctx := context.Background()
	f := newPGFixture(t)
	master := canaryMaster(t)
	for _, q := range []AddRequest{{"d-1", Derived(master, 0)}, {"r-1", Random()}, {"r-2", Random()},
		{"i-1", Imported(psk.CopySecret(bytes.Repeat([]byte{5}, 32)))}, {"d-2", Derived(master, 0)}} {
		if _, err := f.env.reg.Add(ctx, q.ID, q.Key); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.env.reg.Revoke(ctx, "d-2", "lost"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.env.reg.Rotate(ctx, "d-1", RotateOptions{Master: master}); err != nil {
		t.Fatal(err)
	}
	return f, master
}

// TestPGTamperDevices: sealed keys swapped between rows or altered, and
// rows edited outside usmp-psk, are found: reads refuse the registry,
// check names each device and field and goes on with the others.
func TestPGTamperDevices(t *testing.T) {
	tests := []struct {
		name     string
		sql      string
		findings []string // "device field"
	}{
		{"swapped sealed keys", `UPDATE usmp_devices SET psk_sealed = CASE id WHEN 'r-1' THEN (SELECT psk_sealed FROM usmp_devices WHERE id = 'r-2') ELSE (SELECT psk_sealed FROM usmp_devices WHERE id = 'r-1') END WHERE id IN ('r-1', 'r-2')`,
			[]string{"r-1 psk_sealed", "r-2 psk_sealed"}},
		{"flipped bit", `UPDATE usmp_devices SET psk_sealed = set_byte(psk_sealed, 30, get_byte(psk_sealed, 30) # 1) WHERE id = 'i-1'`, []string{"i-1 psk_sealed"}},
		{"truncated", `UPDATE usmp_devices SET psk_sealed = substring(psk_sealed from 1 for 20) WHERE id = 'r-2'`, []string{"r-2 psk_sealed"}},
		{"kcv changed", `UPDATE usmp_devices SET kcv = '00000000' WHERE id = 'r-1'`, []string{"r-1 kcv"}},
		{"key dropped from an active device", `UPDATE usmp_devices SET psk_sealed = NULL WHERE id = 'r-2'`, []string{"r-2 psk"}},
		{"history damaged", `UPDATE usmp_devices SET history = '{"a":1}' WHERE id = 'd-1'`, []string{"d-1 history"}},
		{"revoked but no time", `UPDATE usmp_devices SET revoked = NULL WHERE id = 'd-2'`, []string{"d-2 revoked"}},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, master := tamperFixture(t)
			if n := f.pg.exec(t, tt.sql); n == 0 {
				t.Fatal("the statement changed nothing")
			}
			before := f.state(t)
			var ce *CorruptError
			if _, err := f.env.reg.List(ctx); !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("list: %v", err)
			}
			if _, err := f.env.reg.Export(ctx, master); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("export: %v", err)
			}
			rep, err := f.env.reg.Check(ctx, master)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, fd := range rep.Findings {
				got = append(got, fd.Device+" "+fd.Field)
			}
			if strings.Join(got, ",") != strings.Join(tt.findings, ",") {
				t.Fatalf("findings %v, want %v", rep.Findings, tt.findings)
			}
			if rep.Devices+len(tt.findings) != 5 {
				t.Fatalf("check read %d sound devices", rep.Devices)
			}
			if f.state(t) != before {
				t.Fatal("reading changed the registry")
			}
		})
	}
}

// TestPGTamperAudit: edits of the audit table are found at the entry,
// and a writer refuses to append to a log whose end moved.
func TestPGTamperAudit(t *testing.T) {
	tests := []struct {
		name   string
		sql    string
		line   int
		msg    string
		writer bool // a writer refuses too
	}{
		{"edited line", `UPDATE usmp_audit SET line = replace(line, '"d-2"', '"d-9"') WHERE seq = 6`, 6, "the hash does not match", false},
		{"edited column", `UPDATE usmp_audit SET device = 'd-9' WHERE seq = 6`, 6, "the row's columns do not match its entry", false},
		{"deleted entry", `DELETE FROM usmp_audit WHERE seq = 3`, 3, "seq is 4, expected 3", false},
		{"deleted last entry", `DELETE FROM usmp_audit WHERE seq = 8`, 7, "entries were deleted", true},
		{"added entry", `INSERT INTO usmp_audit SELECT seq + 1, time, event, device, hash || 'x', line FROM usmp_audit WHERE seq = 8`, 9, "", true},
		{"head moved back", `UPDATE usmp_meta SET audit_seq = 7`, 8, "rows were added outside usmp-psk", true},
		{"head hash", `UPDATE usmp_meta SET audit_hash = repeat('0', 64)`, 8, "the log was rewritten", true},
		{"meta row deleted", `DELETE FROM usmp_meta`, 0, "meta row is missing", true},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := tamperFixture(t)
			rep, err := f.env.reg.VerifyAudit(ctx)
			if err != nil || rep.Entries != 8 {
				t.Fatalf("before: %v %+v", err, rep)
			}
			f.pg.exec(t, tt.sql)
			_, err = f.env.reg.VerifyAudit(ctx)
			var ae *AuditError
			switch {
			case tt.line == 0:
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("audit: %v", err)
				}
			case !errors.As(err, &ae) || ae.Line != tt.line || !strings.Contains(ae.Msg, tt.msg) || !errors.Is(err, ErrAudit):
				t.Fatalf("audit: %v; want line %d %q", err, tt.line, tt.msg)
			}
			before := f.state(t)
			_, werr := f.env.reg.Add(ctx, "new", Random())
			if tt.writer != (werr != nil) {
				t.Fatalf("writer: %v", werr)
			}
			if tt.writer && f.state(t) != before {
				t.Fatal("a refused writer changed the registry")
			}
		})
	}
}

// TestPGNoKeyBytesAtRest (R22; issue 8: "a pg_dump reveals no key
// bytes"): after random and imported adds, rotations and a revocation,
// neither the tables read as text nor pg_dump's output hold any key (in
// any R22 encoding or 6-byte window), the registry key or the master.
func TestPGNoKeyBytesAtRest(t *testing.T) {
	ctx := context.Background()
	f := newPGFixture(t)
	master := canaryMaster(t)
	var keys []*psk.Secret
	keep := func(res *AddResult, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, res.Key)
	}
	for i := range 10 {
		keep(f.env.reg.Add(ctx, fmt.Sprintf("rnd-%d", i), Random()))
		keep(f.env.reg.Add(ctx, fmt.Sprintf("drv-%d", i), Derived(master, uint32(i))))
		k := make([]byte, 32)
		rand.Read(k)
		keep(f.env.reg.Add(ctx, fmt.Sprintf("imp-%d", i), Imported(psk.NewSecret(k))))
	}
	set, err := ParseImport("in", []byte("id,psk\nbulk-1,"+randomHex(t, 32)+"\nbulk-2,"+randomHex(t, 16)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range set.Entries {
		keys = append(keys, psk.CopySecret(e.Key.Expose()))
	}
	if _, err := f.env.reg.Import(ctx, set); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"rnd-1", "imp-2", "drv-3"} {
		res, err := f.env.reg.Rotate(ctx, id, RotateOptions{Master: master})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, res.Key)
	}
	if _, err := f.env.reg.Revoke(ctx, "rnd-4", "stolen"); err != nil {
		t.Fatal(err)
	}
	ex, err := f.env.reg.Export(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	ex.Destroy()
	tables := []byte(f.pg.dump(t))
	if !bytes.Contains(tables, []byte("rnd-9")) || !bytes.Contains(tables, []byte(psk.KCV(keys[0]))) {
		t.Fatal("the dump does not hold the registry (the scan would prove nothing)")
	}
	dump := f.pg.pgDumpTool(t)
	if !bytes.Contains(dump, []byte("usmp_devices")) || !bytes.Contains(dump, []byte("imp-9")) {
		t.Fatal("pg_dump does not hold the registry")
	}
	for what, data := range map[string][]byte{"the tables": tables, "pg_dump": dump} {
		for _, k := range keys {
			assertNoKey(t, what, data, k)
		}
		assertNoKey(t, what, data, f.key)
		// The master is hex text: a 6-character window of it would match
		// hex in any table by chance, so it is scanned for whole.
		for _, form := range keyForms(master.Expose()) {
			if bytes.Contains(data, []byte(form)) {
				t.Fatalf("%s holds the master secret", what)
			}
		}
		// bytea is written as \x<hex>: the hex form is covered by
		// keyForms; the registry key's derived encryption key too.
		assertNoKey(t, what, data, psk.CopySecret(labelMAC(f.key, labelEncrypt)))
	}
}

// TestPGConnectionErrors: connection failures say where and what, with a
// hint, and never the password (R9), whatever the driver says.
func TestPGConnectionErrors(t *testing.T) {
	ctx := context.Background()
	canary := pwCanary(t)
	t.Run("refused", func(t *testing.T) {
		t.Setenv("PGPASSWORD", canary)
		reg, err := Open("postgres://usmp@127.0.0.1:1/usmp_test?sslmode=disable&connect_timeout=5", Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = reg.List(ctx)
		var pe *PGError
		if !errors.As(err, &pe) || isBadInput(err) || !strings.Contains(err.Error(), "connect to 127.0.0.1:1") || !strings.Contains(err.Error(), "hint: is PostgreSQL running") {
			t.Fatalf("err = %v", err)
		}
		assertNoOverlap(t, err.Error(), canary)
	})
	base := pgTestURL(t)
	t.Run("wrong password", func(t *testing.T) {
		t.Setenv("PGPASSWORD", canary)
		t.Setenv("PGPASSFILE", "/nonexistent")
		reg, _ := Open(base, Options{})
		_, err := reg.List(ctx)
		if err == nil || errors.Is(err, ErrNoRegistry) {
			t.Skip("the test server does not ask for a password")
		}
		if !strings.Contains(err.Error(), `authentication of user "usmp" failed`) || !strings.Contains(err.Error(), "the password came from $PGPASSWORD or the password file") {
			t.Fatalf("err = %v", err)
		}
		assertNoOverlap(t, err.Error(), canary)
	})
	t.Run("no password", func(t *testing.T) {
		t.Setenv("PGPASSWORD", "")
		if err := os.Unsetenv("PGPASSWORD"); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PGPASSFILE", "/nonexistent")
		reg, _ := Open(base, Options{})
		_, err := reg.List(ctx)
		if err == nil || errors.Is(err, ErrNoRegistry) {
			t.Skip("the test server does not ask for a password")
		}
		if !strings.Contains(err.Error(), "no password was found in $PGPASSWORD or the password file") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no database", func(t *testing.T) {
		u := strings.Replace(base, "/usmp_test", "/usmp_no_such_db", 1)
		reg, _ := Open(u, Options{})
		_, err := reg.List(ctx)
		if err == nil || !strings.Contains(err.Error(), `database "usmp_no_such_db" does not exist`) || !strings.Contains(err.Error(), "createdb") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		reg, _ := Open(base, Options{})
		if _, err := reg.List(cctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestPGLazyReads: an add to a registry of many devices reads the rows it
// needs, not all of them (the statements are counted in the server's
// statistics of the test's schema).
func TestPGLazyReads(t *testing.T) {
	ctx := context.Background()
	f := newPGFixture(t)
	master := canaryMaster(t)
	const n = 3000
	var reqs []AddRequest
	for i := range n {
		reqs = append(reqs, AddRequest{fmt.Sprintf("dev-%05d", i), Derived(master, 0)})
	}
	if _, err := f.env.reg.AddMany(ctx, reqs, AddOptions{Event: EventBatch}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range 20 {
		res, err := f.env.reg.Add(ctx, fmt.Sprintf("new-%02d", i), Derived(master, 0))
		if err != nil {
			t.Fatal(err)
		}
		res.Key.Destroy()
	}
	per := time.Since(start) / 20
	t.Logf("one add to a registry of %d devices: %v", n, per)
	var reads int64
	rows := `SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'usmp_devices'`
	before := func() int64 {
		if _, err := f.pg.admin.Exec(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
			t.Fatal(err)
		}
		var v int64
		if err := f.pg.admin.QueryRow(ctx, rows, f.pg.name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	b := before()
	if _, err := f.env.reg.Add(ctx, "one-more", Derived(master, 0)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // statistics are flushed every 500 ms at most
	reads = before() - b
	if reads > 500 {
		t.Fatalf("an add read %d rows of %d", reads, n)
	}
	list, err := f.env.reg.List(ctx)
	if err != nil || len(list) != n+21 {
		t.Fatalf("list: %v, %d", err, len(list))
	}
}

// TestPGAuditColumns: the audit table's columns are what its lines say
// (queryable by device), and the lines are the file store's.
func TestPGAuditColumns(t *testing.T) {
	ctx := context.Background()
	f, _ := tamperFixture(t)
	rows, err := f.pg.admin.Query(ctx, `SELECT seq, event, coalesce(device, ''), line FROM usmp_audit WHERE device = 'd-1' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var seq int64
		var ev, dev, line string
		err := r.Scan(&seq, &ev, &dev, &line)
		if !strings.HasPrefix(line, fmt.Sprintf(`{"seq":%d,`, seq)) {
			return "", errors.New("line and seq differ")
		}
		return ev + " " + dev, err
	})
	if err != nil || strings.Join(got, ",") != "add d-1,rotate d-1" {
		t.Fatalf("entries of d-1: %v %v", got, err)
	}
}

// pwCanary is a random password that shares no 4-character run with any
// fixed text by chance: upper-case letter, digit, lower-case letter, digit,
// and again.
func pwCanary(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		switch i % 4 {
		case 0:
			b[i] = 'A' + b[i]%26
		case 2:
			b[i] = 'a' + b[i]%26
		default:
			b[i] = '0' + b[i]%10
		}
	}
	return string(b)
}
