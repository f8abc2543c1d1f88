package registry

// Test helpers of PostgreSQL, and the fixture that lets the same tests run
// on both engines (suite_test.go).
//
// The server comes from $USMP_PSK_TEST_POSTGRES (scripts/ci-services.sh
// starts one in CI): a URL without a password, which comes from
// $PGPASSWORD or the password file ($PGPASSFILE). Without it the tests
// that need PostgreSQL skip, but fail when $CI is set. Each test gets a
// schema of its own (options=-csearch_path=…), dropped at the end.

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usmp/usmp-psk/internal/psk"
)

// pgTestEnv names the test server's URL.
const pgTestEnv = "USMP_PSK_TEST_POSTGRES"

// pgTestURL returns the test server's URL, or skips (fails when CI is set).
func pgTestURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(pgTestEnv)
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("$%s is not set: CI must run the PostgreSQL store tests (scripts/ci-services.sh starts a server)", pgTestEnv)
		}
		t.Skipf("$%s is not set (see scripts/ci-services.sh)", pgTestEnv)
	}
	return u
}

// withQuery adds a query parameter to a URL.
func withQuery(base, key, value string) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + url.QueryEscape(key) + "=" + url.QueryEscape(value)
}

// pgConnect opens a connection for test setup and inspection.
func pgConnect(t testing.TB, u string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatalf("test connection: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// pgSchema is a test's own schema on the test server.
type pgSchema struct {
	base  string // the server URL
	name  string // the schema
	url   string // the registry URL: base + search_path
	admin *pgx.Conn
}

// newPGSchema creates a fresh schema for a test and returns it; the schema
// is dropped when the test ends.
func newPGSchema(t testing.TB) *pgSchema {
	t.Helper()
	base := pgTestURL(t)
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	s := &pgSchema{base: base, name: "usmp_t_" + hex.EncodeToString(b)}
	s.url = withQuery(base, "options", "-csearch_path="+s.name)
	s.admin = pgConnect(t, withQuery(base, "options", "-csearch_path="+s.name))
	if _, err := s.admin.Exec(context.Background(), "CREATE SCHEMA "+s.name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = s.admin.Exec(context.Background(), "DROP SCHEMA "+s.name+" CASCADE")
	})
	return s
}

// exec runs SQL in the test's schema.
func (s *pgSchema) exec(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	tag, err := s.admin.Exec(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return tag.RowsAffected()
}

// dump returns every row of the registry's tables as text (the "unchanged"
// check and the R22 scan).
func (s *pgSchema) dump(t testing.TB) string {
	t.Helper()
	var out strings.Builder
	for _, q := range []string{
		`SELECT t::text FROM usmp_meta t`,
		`SELECT t::text FROM usmp_devices t ORDER BY id`,
		`SELECT t::text FROM usmp_history t ORDER BY device, n`,
		`SELECT t::text FROM usmp_audit t ORDER BY seq`,
	} {
		rows, err := s.admin.Query(context.Background(), q)
		if err != nil {
			if strings.Contains(err.Error(), "does not exist") {
				continue
			}
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			out.WriteString(line)
			out.WriteByte('\n')
		}
		rows.Close()
	}
	return out.String()
}

// shape describes the registry's tables in the schema — columns (by name:
// an upgrade's dropped column keeps its position), constraints and indexes
// — so that an upgraded schema can be compared with a new one.
func (s *pgSchema) shape(t testing.TB) string {
	t.Helper()
	var out strings.Builder
	for _, q := range []string{
		`SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
		FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1`,
		`SELECT c.relname || ' ' || con.conname || ' ' || pg_get_constraintdef(con.oid)
		FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
		WHERE c.relnamespace = current_schema()::regnamespace ORDER BY 1`,
		`SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1`,
	} {
		rows, err := s.admin.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			out.WriteString(strings.ReplaceAll(line, s.name+".", "") + "\n")
		}
		if rows.Close(); rows.Err() != nil {
			t.Fatal(rows.Err())
		}
	}
	return out.String()
}

// exists reports whether the registry's tables exist.
func (s *pgSchema) exists(t testing.TB) bool {
	t.Helper()
	var ok bool
	if err := s.admin.QueryRow(context.Background(), `SELECT to_regclass('usmp_meta') IS NOT NULL`).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// pgDumpTool runs pg_dump of the test's schema (R22: what a backup holds).
// Without pg_dump it skips, but fails when CI is set.
func (s *pgSchema) pgDumpTool(t testing.TB) []byte {
	t.Helper()
	tool, err := exec.LookPath("pg_dump")
	if err != nil {
		for _, d := range []string{"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"} {
			if _, err2 := os.Stat(filepath.Join(d, "pg_dump")); err2 == nil {
				tool, err = filepath.Join(d, "pg_dump"), nil
				break
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("pg_dump is needed for the R22 scan of a dump (CI is set, so this is not skipped)")
		}
		t.Skip("pg_dump not found")
	}
	cmd := exec.Command(tool, "--no-owner", "--schema="+s.name, "--dbname="+s.base)
	cmd.Env = pgChildEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, stderr.String())
	}
	return out
}

// pgChildEnv is the explicit environment of child processes that talk to
// the test server (R4): where to find programs and the password, nothing
// else.
func pgChildEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "PGPASSFILE", "PGPASSWORD", "PGSSLMODE", "PGSSLROOTCERT", "TMPDIR", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// testRegistryKey returns a fresh random registry key.
func testRegistryKey(t testing.TB) *psk.Secret {
	t.Helper()
	b := make([]byte, RegistryKeyBytes)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return psk.NewSecret(b)
}

// fixture is a registry on one engine, for the tests that run on both:
// the location, a Registry on it (env.reg, with the usual test options)
// and ways to open more Registries on it, to read back what is stored and
// to tell whether it exists.
type fixture struct {
	kind string // "sqlite" or "postgres"
	loc  string
	env  *testEnv
	key  *psk.Secret // the registry key (postgres)
	pg   *pgSchema   // postgres
	mods []func(*Options)
}

// testOptions are newEnv's options, warnings and creations collected in e.
func testOptions(e *testEnv) Options {
	return Options{
		Now:    clock(),
		User:   func() string { return "tester" },
		Getenv: func(string) string { return "" },
		Warn: func(m string) {
			e.mu.Lock()
			e.warns = append(e.warns, m)
			e.mu.Unlock()
		},
		OnCreate: func(loc string) {
			e.mu.Lock()
			e.made = append(e.made, loc)
			e.mu.Unlock()
		},
		LockTimeout: 30 * time.Second,
		RegistryKey: func() (string, bool) { return "", false },
	}
}

// open returns another Registry on the fixture's registry.
func (f *fixture) open(t testing.TB, opts Options) *Registry {
	t.Helper()
	if f.key != nil {
		hexKey := hex.EncodeToString(f.key.Expose())
		opts.RegistryKey = func() (string, bool) { return hexKey, true }
	}
	reg, err := Open(f.loc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// state returns everything stored, to check that a refused operation
// changed nothing.
func (f *fixture) state(t testing.TB) string {
	t.Helper()
	if f.kind == "sqlite" {
		if !f.exists(t) {
			return ""
		}
		return sqliteDump(t, f.loc)
	}
	return f.pg.dump(t)
}

// exists reports whether the registry exists.
func (f *fixture) exists(t testing.TB) bool {
	t.Helper()
	if f.kind == "sqlite" {
		_, err := os.Stat(f.loc)
		return err == nil
	}
	return f.pg.exists(t)
}

// storeKinds are the engines the shared tests run on.
var storeKinds = []string{"sqlite", "postgres"}

// newFixture makes an empty registry location of kind with a Registry on
// it (newEnv's options, then mods).
func newFixture(t testing.TB, kind string, mods ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{kind: kind, mods: mods}
	e := &testEnv{}
	switch kind {
	case "sqlite":
		f.loc = filepath.Join(t.TempDir(), "usmp-registry.db")
	default:
		f.pg = newPGSchema(t)
		f.loc = f.pg.url
		f.key = testRegistryKey(t)
	}
	e.path = f.loc
	opts := testOptions(e)
	for _, m := range mods {
		m(&opts)
	}
	e.reg = f.open(t, opts)
	f.env = e
	return f
}

// forEachStore runs test on each engine as a subtest.
func forEachStore(t *testing.T, test func(t *testing.T, kind string)) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) { test(t, kind) })
	}
}

// auditLinesOf returns the audit log of a registry in the file form, one
// line per entry (rebuilt from the verified entries).
func auditLinesOf(t testing.TB, reg *Registry) []byte {
	t.Helper()
	var out bytes.Buffer
	if _, err := reg.WriteAuditJSONL(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// checkAllDevices checks that the registry holds exactly the ids, passes
// check, and that its audit log has one init and then exactly one entry
// per id (nothing lost, nothing twice).
func checkAllDevices(t *testing.T, reg *Registry, want []string) {
	t.Helper()
	ctx := context.Background()
	list, err := reg.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	if got := strings.Join(ids(list), ","); got != strings.Join(want, ",") {
		t.Fatalf("devices (%d)\n%s\nwant (%d)\n%s", len(list), got, len(want), strings.Join(want, ","))
	}
	rep, err := reg.Check(ctx, nil)
	if err != nil || len(rep.Findings) > 0 {
		t.Fatalf("check: %v %v", err, rep)
	}
	entries := auditEntries(t, reg)
	if len(entries) != len(want)+1 || entries[0].Event != EventInit {
		t.Fatalf("%d audit entries, want %d starting with init", len(entries), len(want)+1)
	}
	seen := map[string]bool{}
	for _, e := range entries[1:] {
		if e.Device == "" || seen[e.Device] {
			t.Fatalf("audit entry %d: device %q is not new", e.Seq, e.Device)
		}
		seen[e.Device] = true
	}
	if rep, err := reg.VerifyAudit(ctx, nil); err != nil || len(rep.Findings) > 0 {
		t.Fatal(err, rep)
	}
}

// collector gathers warnings of concurrent registries.
type collector struct {
	mu   sync.Mutex
	msgs []string
}

func (c *collector) add(m string) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *collector) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

func seqIDs(format string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i)
	}
	return out
}

// auditEntries returns the verified entries of a registry's audit log.
func auditEntries(t testing.TB, reg *Registry) []AuditEntry {
	t.Helper()
	var out []AuditEntry
	err := reg.st.read(context.Background(), func(tx *tx) error {
		snap, err := tx.snapshot()
		if err != nil {
			return err
		}
		snap.destroy()
		out = snap.entries
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sqliteDump returns every row of a SQLite registry's tables as text.
func sqliteDump(t testing.TB, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out strings.Builder
	for _, table := range []string{"usmp_meta", "usmp_devices", "usmp_history", "usmp_audit"} {
		rows, err := db.Query("SELECT * FROM " + table + " ORDER BY 1, 2")
		if err != nil {
			if strings.Contains(err.Error(), "no such table") {
				continue
			}
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&out, "%s %q\n", table, vals)
		}
		rows.Close()
	}
	return out.String()
}
