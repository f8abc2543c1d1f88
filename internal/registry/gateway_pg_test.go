//go:build unix

package registry

// A gateway on a PostgreSQL registry (scripts/usmp_gateway.py with
// psycopg): the writers' notifications reach it, so a rotation or a
// revocation is served within a second, without a restart and without an
// export; a server that goes away and comes back is survived, and while
// it is away the gateway refuses to serve keys older than its bound.

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
)

// pythonWithPsycopg finds an interpreter that can import psycopg (Debian's
// python3-psycopg is for /usr/bin/python3); CI must have one.
func pythonWithPsycopg(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if p, err := exec.LookPath(py); err == nil && exec.Command(p, "-c", "import psycopg").Run() == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no python3 with psycopg (apt-get install python3-psycopg): CI must run the PostgreSQL gateway test")
	}
	t.Skip("no python3 with psycopg")
	return ""
}

// waitKey polls the gateway until device id's answer is want (a key's hex,
// or an exception name) and returns how long it took.
func waitKey(t *testing.T, g *gateway, id, want string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r := g.call(map[string]any{"op": "get", "id": id})
		if r.Key == want || r.Error == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("device %s: still %q/%q after %v, want %s", id, r.Key, r.Error, limit, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestPostgresGatewayLive: 20 rotations and a revocation, each seen by a
// running gateway within 1 s (the median is logged for docs/gateway.md).
func TestPostgresGatewayLive(t *testing.T) {
	py := pythonWithPsycopg(t)
	ctx := context.Background()
	f := newFixture(t, "postgres")
	master := canaryMaster(t)
	for _, q := range []AddRequest{{"dev-1", Derived(master, 0)}, {"rnd-1", Random()}} {
		res, err := f.env.reg.Add(ctx, q.ID, q.Key)
		if err != nil {
			t.Fatal(err)
		}
		res.Key.Destroy()
	}
	g := startGatewayWith(t, py, append(pgChildEnv(), psk.MasterEnv+"="+string(master.Expose()), RegistryKeyEnv+"="+hex.EncodeToString(f.key.Expose()))...)
	if r := g.call(map[string]any{"op": "make", "registry": f.loc}); !r.OK {
		t.Fatalf("make_get_psk: %s", r.Error)
	}
	var took []time.Duration
	for i := range 20 {
		waitKey(t, g, "dev-1", hex.EncodeToString(psk.Derive(master, "dev-1", uint32(i)).Expose()), 5*time.Second) // cached now
		res, err := f.env.reg.Rotate(ctx, "dev-1", RotateOptions{Master: master, Reason: "latency"})
		if err != nil {
			t.Fatal(err)
		}
		took = append(took, waitKey(t, g, "dev-1", hex.EncodeToString(res.Key.Expose()), time.Second))
		res.Key.Destroy()
	}
	waitKey(t, g, "rnd-1", "", time.Second)
	if _, err := f.env.reg.Revoke(ctx, "rnd-1", "latency"); err != nil {
		t.Fatal(err)
	}
	took = append(took, waitKey(t, g, "rnd-1", "KeyError", time.Second))
	slices.Sort(took)
	t.Logf("rotation to gateway: median %v, max %v over %d changes", took[len(took)/2], took[len(took)-1], len(took))
}

// TestPostgresGatewayServerRestart: the gateway's own server stops and
// starts again. While it is away the gateway serves nothing older than
// its bound (max_stale 1 s here): it raises RegistryError. Once it is back,
// the gateway reconnects, and a rotation made then reaches it.
func TestPostgresGatewayServerRestart(t *testing.T) {
	py := pythonWithPsycopg(t)
	srv := privatePostgres(t)
	ctx := context.Background()
	reg, err := Open(srv.url, Options{RegistryKey: func() (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	master := canaryMaster(t)
	if _, err := reg.Add(ctx, "dev-1", Derived(master, 0)); err != nil {
		t.Fatal(err)
	}
	g := startGatewayWith(t, py, psk.MasterEnv+"="+string(master.Expose()), "PATH="+os.Getenv("PATH"))
	if r := g.call(map[string]any{"op": "make", "registry": srv.url, "max_stale": 1.0}); !r.OK {
		t.Fatalf("make_get_psk: %s", r.Error)
	}
	key0 := hex.EncodeToString(psk.Derive(master, "dev-1", 0).Expose())
	waitKey(t, g, "dev-1", key0, 5*time.Second)
	srv.pgctl(t, "stop", "-m", "immediate")
	waitKey(t, g, "dev-1", "RegistryError", 10*time.Second)
	srv.pgctl(t, "start", "-w", "-l", filepath.Join(srv.dir, "log"), "-o", srv.opts)
	waitKey(t, g, "dev-1", key0, 20*time.Second)
	res, err := reg.Rotate(ctx, "dev-1", RotateOptions{Master: master, Reason: "after the restart"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Key.Destroy()
	// The listener may still be reconnecting: the bound still holds.
	waitKey(t, g, "dev-1", hex.EncodeToString(res.Key.Expose()), 2*time.Second)
}

// pgServer is a PostgreSQL cluster of a test's own, on loopback with
// trust authentication.
type pgServer struct {
	dir, bin, url, opts string
	uid, gid            int
}

// privatePostgres starts a cluster (as the postgres user when run as root)
// from the binaries of $USMP_PSK_CI_PGBIN, which scripts/ci-services.sh
// exports; it is stopped and removed when the test ends.
func privatePostgres(t *testing.T) *pgServer {
	t.Helper()
	bin := os.Getenv("USMP_PSK_CI_PGBIN")
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("$USMP_PSK_CI_PGBIN is not set: CI must run the server restart test")
		}
		t.Skip("$USMP_PSK_CI_PGBIN is not set (scripts/ci-services.sh)")
	}
	// Not t.TempDir: its long path would not fit the server's socket
	// path (at most 107 bytes).
	dir, err := os.MkdirTemp("", "usmp-pg-restart-") //nolint:usetesting // see above
	if err != nil {
		t.Fatal(err)
	}
	s := &pgServer{dir: dir, bin: bin, uid: -1, gid: -1}
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("no postgres user to run the server as")
		}
		s.uid, _ = strconv.Atoi(u.Uid)
		s.gid, _ = strconv.Atoi(u.Gid)
		if err := os.Chown(dir, s.uid, s.gid); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { s.pgctlQuiet("stop", "-m", "immediate"); os.RemoveAll(dir) })
	s.run(t, filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--no-locale")
	port := freePort(t)
	s.opts = fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off", port, dir)
	s.pgctl(t, "start", "-w", "-l", filepath.Join(dir, "log"), "-o", s.opts)
	s.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", port)
	return s
}

func (s *pgServer) command(name string, args ...string) *exec.Cmd {
	if s.uid >= 0 {
		args = append([]string{"-u", "postgres", "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C"}
	cmd.Dir = s.dir
	return cmd
}

func (s *pgServer) run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := s.command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

func (s *pgServer) pgctl(t *testing.T, args ...string) {
	t.Helper()
	s.run(t, filepath.Join(s.bin, "pg_ctl"), append([]string{"-D", filepath.Join(s.dir, "data")}, args...)...)
}

func (s *pgServer) pgctlQuiet(args ...string) {
	_ = s.command(filepath.Join(s.bin, "pg_ctl"), append([]string{"-D", filepath.Join(s.dir, "data")}, args...)...).Run()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestGrantGateway: grant-gateway gives a role what the gateway module
// reads and nothing more; the module works as that role; a SQLite registry
// has no roles.
func TestGrantGateway(t *testing.T) {
	py := pythonWithPsycopg(t)
	srv := privatePostgres(t)
	ctx := context.Background()
	reg, err := Open(srv.url, Options{RegistryKey: func() (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	master := canaryMaster(t)
	if _, err := reg.Add(ctx, "dev-1", Derived(master, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.GrantGateway(ctx, "gw"); err == nil || !isBadInput(err) || !strings.Contains(err.Error(), "the role does not exist") {
		t.Fatalf("grant to a missing role: %v", err)
	}
	admin := pgConnect(t, srv.url)
	if _, err := admin.Exec(ctx, `CREATE ROLE gw LOGIN`); err != nil {
		t.Fatal(err)
	}
	stmts, err := reg.GrantGateway(ctx, "gw")
	if err != nil || len(stmts) != 3 {
		t.Fatalf("grant: %v %q", err, stmts)
	}
	gwURL := strings.Replace(srv.url, "postgres://postgres@", "postgres://gw@", 1)
	gw := pgConnect(t, gwURL)
	for q, allowed := range map[string]bool{
		`SELECT id, source, epoch, status, kcv, psk_sealed FROM usmp_devices`: true,
		`SELECT schema_version FROM usmp_meta WHERE id = 1`:                   true,
		`SELECT line FROM usmp_audit`:                                         false,
		`SELECT * FROM usmp_history`:                                          false,
		`SELECT created FROM usmp_devices`:                                    false,
		`UPDATE usmp_devices SET status = 'active'`:                           false,
		`DELETE FROM usmp_audit`:                                              false,
	} {
		_, err := gw.Exec(ctx, q)
		if (err == nil) != allowed {
			t.Errorf("%s as the gateway role: %v, allowed %v", q, err, allowed)
		}
	}
	g := startGatewayWith(t, py, psk.MasterEnv+"="+string(master.Expose()), "PATH="+os.Getenv("PATH"))
	if r := g.call(map[string]any{"op": "make", "registry": gwURL, "strict": true}); !r.OK {
		t.Fatalf("make_get_psk as the gateway role: %s", r.Error)
	}
	waitKey(t, g, "dev-1", hex.EncodeToString(psk.Derive(master, "dev-1", 0).Expose()), 5*time.Second)
	lite := newFixture(t, "sqlite")
	if _, err := lite.env.reg.GrantGateway(ctx, "gw"); !isBadInput(err) {
		t.Fatalf("grant on SQLite: %v", err)
	}
}
