package registry

// Tests of what is specific to each engine: the PostgreSQL URL and
// password rules, the registry key and sealing (on both engines), rekeying,
// the lock timeout, PostgreSQL's schema upgrade, key bytes at rest, and
// connection errors.

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

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
		})
	}
	// A libpq keyword string is no registry location, and may hold a
	// password: refused without being quoted.
	_, err := Open("host=db.example user=usmp password="+pw+" dbname=fleet", Options{})
	if !isBadInput(err) || !strings.Contains(err.Error(), "a keyword connection string") {
		t.Fatalf("keyword string: %v", err)
	}
	assertNoOverlap(t, err.Error(), pw)
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
		if reg.Location() != ok || reg.st.dia != postgresDialect || reg.AuditLocation() != ok+" (table usmp_audit)" {
			t.Fatalf("%s: location %q, audit %q", ok, reg.Location(), reg.AuditLocation())
		}
	}
}

// TestRegistryURLSchemes: the scheme of a PostgreSQL URL is matched in
// any case; any other scheme:// URL is refused, naming its scheme only,
// and never becomes a directory tree of that name (issue 13 item 11).
func TestRegistryURLSchemes(t *testing.T) {
	const pw = "Sup3rS3cretCanaryPw"
	for _, tt := range []struct{ url, want string }{
		{"POSTGRES://usmp:" + pw + "@db.example/fleet", "holds a password"},
		{"PostgreSQL://usmp:" + pw + "@db.example/fleet", "holds a password"},
		{"pg://usmp:" + pw + "@db.example/fleet", "a pg:// URL is not a registry location"},
		{"SQLite://usmp:" + pw + "@db.example/fleet.db", "a sqlite:// URL is not a registry location"},
		{"mysql://usmp:" + pw + "@db.example/fleet", "a mysql:// URL is not a registry location"},
		{"file:///var/lib/" + pw + ".db", "a file:// URL is not a registry location"},
		{"mysql://usmp:" + pw + "@db.example/fleet.json", "a mysql:// URL is not a registry location"},
		{"x" + pw + "://usmp@db.example/fleet", "a URL is not a registry location"},
	} {
		_, err := Open(tt.url, Options{})
		if err == nil || !isBadInput(err) || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("%s: err = %v, want bad input %q", tt.url, err, tt.want)
		}
		assertNoOverlap(t, err.Error(), pw)
		assertNoOverlap(t, err.Error(), "db.example")
	}
	for url, want := range map[string]string{
		"POSTGRES://usmp@db.example/fleet":   "postgres://usmp@db.example/fleet",
		"Postgresql://usmp@db.example/fleet": "postgresql://usmp@db.example/fleet",
	} {
		reg, err := Open(url, Options{})
		if err != nil || reg.st.dia != postgresDialect || reg.Location() != want {
			t.Fatalf("%s: %v, want a PostgreSQL registry at %s", url, err, want)
		}
	}
	// Paths that only look a little like URLs stay paths.
	for _, path := range []string{"C://registry.db", "a:b/registry.db", "postgres:registry.db", "1x://r.db"} {
		reg, err := Open(path, Options{})
		if err != nil || reg.st.dia != sqliteDialect {
			t.Fatalf("%s: %v, want a SQLite registry", path, err)
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

// registryKeyID is the key id of a registry key (8 hex digits), what error
// messages and usmp_meta.key_id show: the tests' own computation of it.
func registryKeyID(key *psk.Secret) string {
	m := labelMAC(key, labelKeyID)
	return hex.EncodeToString(m[:sealKeyIDLen])
}

// exportKey returns the export's key of id, or nil.
func exportKey(e *Export, id string) *psk.Secret {
	i, ok := slices.BinarySearch(e.ids, id)
	if !ok {
		return nil
	}
	return e.keys[i]
}

// TestSealer: a sealed key opens only for its device, unchanged, under its
// registry key; the blob holds no run of the key.
func TestSealer(t *testing.T) {
	rk := testRegistryKey(t)
	s, err := newSealer(rk)
	if err != nil {
		t.Fatal(err)
	}
	if s.id != registryKeyID(rk) || len(s.id) != 8 {
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
	other, _ := newSealer(testRegistryKey(t))
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
	if got := reg.st.sealer.id; got != registryKeyID(rk) {
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
	if err != nil || reg.st.sealer != nil {
		t.Fatalf("no key: %v", err)
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

// withKey returns another Registry on f's registry with the registry key
// key (nil: none).
func (f *fixture) withKey(t *testing.T, key *psk.Secret) *Registry {
	t.Helper()
	opts := Options{Now: clock(), User: func() string { return "other" }, Getenv: func(string) string { return "" }, LockTimeout: 10 * time.Second,
		RegistryKey: func() (string, bool) { return "", false }}
	if key != nil {
		h := hex.EncodeToString(key.Expose())
		opts.RegistryKey = func() (string, bool) { return h, true }
	}
	reg, err := Open(f.loc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// TestRegistryKey: stored keys are sealed whenever $USMP_REGISTRY_KEY is
// set, on both engines; PostgreSQL refuses to store one without it, SQLite
// keeps it in its 0600 file. Once a key is sealed, a missing or wrong
// registry key is a clear error (exit 2) that changes nothing, for every
// operation that touches a key; the audit log verifies without it.
func TestRegistryKey(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f := newFixture(t, kind)
		rk := testRegistryKey(t)
		master := canaryMaster(t)
		nokey := f.withKey(t, nil)
		if _, err := nokey.Add(ctx, "d1", Derived(master, 0)); err != nil {
			t.Fatalf("derived add without a registry key: %v", err)
		}
		_, err := nokey.Add(ctx, "r0", Random())
		switch {
		case kind == "postgres" && (!errors.Is(err, ErrRegistryKey) || !isBadInput(err) || !strings.Contains(err.Error(), "hint: set $"+RegistryKeyEnv)):
			t.Fatalf("random add to PostgreSQL without a registry key: %v", err)
		case kind == "sqlite" && err != nil:
			t.Fatalf("random add to SQLite without a registry key: %v", err)
		}
		keyed := f.withKey(t, rk)
		r1, err := keyed.Add(ctx, "r1", Random())
		if err != nil {
			t.Fatal(err)
		}
		defer r1.Key.Destroy()
		assertNoKey(t, "the registry", []byte(f.state(t)), r1.Key)
		kid := registryKeyID(rk)
		for name, reg := range map[string]*Registry{"missing": nokey, "wrong": f.withKey(t, testRegistryKey(t))} {
			before := f.state(t)
			for op, run := range map[string]func() error{
				"add": func() error { _, err := reg.Add(ctx, "r2", Random()); return err },
				"key": func() error { _, _, err := reg.Key(ctx, "r1", nil); return err },
				"export": func() error {
					_, err := reg.Export(ctx, master)
					return err
				},
			} {
				err := run()
				if !isBadInput(err) || !strings.Contains(err.Error(), kid) && !strings.Contains(err.Error(), RegistryKeyEnv) {
					t.Fatalf("%s key, %s: %v", name, op, err)
				}
				assertNoKey(t, "the error", []byte(err.Error()), rk)
			}
			if f.state(t) != before {
				t.Fatalf("%s key: the registry changed", name)
			}
			if _, err := reg.VerifyAudit(ctx, nil); err != nil {
				t.Fatalf("%s key: audit: %v", name, err)
			}
			if list, err := reg.List(ctx); err != nil || len(list) < 2 {
				t.Fatalf("%s key: list (no key needed): %v", name, err)
			}
		}
		k, _, err := keyed.Key(ctx, "r1", nil)
		if err != nil || !k.Equal(r1.Key) {
			t.Fatalf("key with the right registry key: %v", err)
		}
	})
}

// TestRekey seals every stored key again under a new registry key in one
// transaction (on SQLite also the keys it held in clear); the old key stops
// working, the keys stay the same.
func TestRekey(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f := newFixture(t, kind)
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
		nk := testRegistryKey(t)
		if f.key != nil {
			if _, err := f.withKey(t, testRegistryKey(t)).Rekey(ctx, nk); !errors.Is(err, ErrRegistryKey) {
				t.Fatalf("rekey with a wrong current key: %v", err)
			}
		}
		n, err := f.env.reg.Rekey(ctx, nk)
		if err != nil || n != 19 {
			t.Fatalf("rekey: %d, %v", n, err)
		}
		// Every stored key's row was rewritten: the log says so, and the
		// rest of the registry still agrees with it.
		var log bytes.Buffer
		if _, err := f.env.reg.WriteAuditJSONL(ctx, &log); err != nil {
			t.Fatal(err)
		}
		if rep, err := f.env.reg.VerifyAudit(ctx, nil); err != nil || len(rep.Findings) != 0 {
			t.Fatalf("audit after rekey: %v %v", rep, err)
		}
		lines := strings.Split(strings.TrimSpace(log.String()), "\n")
		if last := lines[len(lines)-1]; !strings.Contains(last, `"event":"rekey"`) || strings.Contains(last, `"device"`) {
			t.Fatalf("the last audit entry is not the rekey: %s", last)
		}
		for _, k := range keys {
			assertNoKey(t, "the registry after rekey", []byte(f.state(t)), k)
		}
		if _, _, err := f.withKey(t, f.key).Key(ctx, "r-02", nil); !errors.Is(err, ErrRegistryKey) {
			t.Fatalf("the old key (or none) still opens a key: %v", err)
		}
		for _, reg := range []*Registry{f.env.reg, f.withKey(t, nk)} {
			ex, err := reg.Export(ctx, master)
			if err != nil {
				t.Fatal(err)
			}
			for id, k := range keys {
				if !exportKey(ex, id).Equal(k) {
					t.Fatalf("device %s: another key after rekey", id)
				}
			}
			ex.Destroy()
		}
	})
}

// holdWriteLock takes the registry's write lock from another connection,
// as another writer (or a backup) would, until the test ends or release is
// called.
func (f *fixture) holdWriteLock(t *testing.T) (release func()) {
	t.Helper()
	ctx := context.Background()
	var db *sql.DB
	var err error
	lock := `SELECT 1 FROM usmp_meta WHERE id = 1 FOR UPDATE`
	if f.kind == "sqlite" {
		db, err = sql.Open("sqlite", "file:"+f.loc+"?mode=rw&_txlock=immediate")
		lock = `SELECT 1`
	} else {
		db, err = sql.Open("pgx", f.loc)
	}
	if err != nil {
		t.Fatal(err)
	}
	htx, err := db.BeginTx(ctx, nil)
	if err == nil {
		_, err = htx.ExecContext(ctx, lock)
	}
	if err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			_ = htx.Rollback()
			db.Close()
		}
	}
	t.Cleanup(release)
	return release
}

// TestLockTimeout: while another writer holds the registry, a writer waits
// its lock timeout, then fails with the lock error (exit 1) and changes
// nothing; a cancelled context stops the wait; readers do not wait.
func TestLockTimeout(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f := newFixture(t, kind, func(o *Options) { o.LockTimeout = time.Second })
		if _, err := f.env.reg.Add(ctx, "first", Random()); err != nil {
			t.Fatal(err)
		}
		before := f.state(t)
		release := f.holdWriteLock(t)
		start := time.Now()
		_, err := f.env.reg.Add(ctx, "second", Random())
		waited := time.Since(start)
		var le *LockedError
		if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || isBadInput(err) || !strings.Contains(err.Error(), f.loc) {
			t.Fatalf("err = %v", err)
		}
		if waited < 900*time.Millisecond || waited > 10*time.Second {
			t.Fatalf("waited %v", waited)
		}
		if list, err := f.env.reg.List(ctx); err != nil || len(list) != 1 {
			t.Fatalf("a reader waited or failed: %v", err)
		}
		if f.state(t) != before {
			t.Fatal("a writer that timed out changed the registry")
		}
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(200*time.Millisecond, cancel)
		slow := f.open(t, Options{LockTimeout: time.Minute})
		if _, err := slow.Add(cctx, "third", Random()); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled wait: %v", err)
		}
		release()
		if _, err := f.env.reg.Add(ctx, "second", Random()); err != nil {
			t.Fatalf("after the release: %v", err)
		}
	})
}
