package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofrs/flock"
)

// Environment of the helper writer process (TestHelperWriter).
const (
	helperEnv   = "USMP_REGISTRY_TEST_HELPER"
	helperPath  = "USMP_REGISTRY_TEST_PATH"
	helperID    = "USMP_REGISTRY_TEST_ID"
	helperCrash = "USMP_REGISTRY_TEST_CRASH_AT"
)

// TestHelperWriter is not a test: it is the child writer process that the
// R16 and R17 tests start by re-executing the test binary. It adds one
// random device and exits 0, or 1 with the error on stderr.
func TestHelperWriter(t *testing.T) {
	if os.Getenv(helperEnv) != "add" {
		t.Skip("helper process for the crash and concurrency tests")
	}
	installCrashHook(os.Getenv(helperCrash))
	reg, err := Open(os.Getenv(helperPath), Options{
		LockTimeout: 2 * time.Minute,
		User:        func() string { return "child" },
		Getenv:      func(string) string { return "" },
	})
	if err == nil {
		_, err = reg.Add(context.Background(), os.Getenv(helperID), Random())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helperCmd returns the child writer command, with an explicit environment
// (R4: never the parent's, which could hold a master secret).
func helperCmd(t testing.TB, path, id, crashAt string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = []string{helperEnv + "=add", helperPath + "=" + path, helperID + "=" + id}
	if crashAt != "" {
		cmd.Env = append(cmd.Env, helperCrash+"="+crashAt)
	}
	if d := os.Getenv("GOCOVERDIR"); d != "" {
		cmd.Env = append(cmd.Env, "GOCOVERDIR="+d)
	}
	return cmd
}

// TestConcurrentProcesses (R17): 32 processes add different devices to the
// same registry at once; every one succeeds, nothing is lost, the registry
// passes check and the audit chain holds one init and one add per device.
func TestConcurrentProcesses(t *testing.T) {
	const n = 32
	e := newEnv(t)
	var wg sync.WaitGroup
	errs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := helperCmd(t, e.path, fmt.Sprintf("proc-%02d", i), "")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Sprintf("child %d: %v: %s", i, err, stderr.String())
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Error(e)
		}
	}
	checkAllPresent(t, e, "proc-%02d", n)
}

// TestConcurrentGoroutines (R17, under -race): the same with goroutines,
// each with its own Registry and so its own lock file descriptor.
func TestConcurrentGoroutines(t *testing.T) {
	const n = 32
	e := newEnv(t)
	master := canaryMaster(t)
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reg, err := Open(e.path, Options{LockTimeout: time.Minute, Now: clock(), User: func() string { return "g" }, Getenv: func(string) string { return "" }})
			if err != nil {
				errc <- err
				return
			}
			spec := Random()
			if i%2 == 0 {
				spec = Derived(master, uint32(i))
			}
			res, err := reg.Add(context.Background(), fmt.Sprintf("go-%02d", i), spec)
			if err != nil {
				errc <- err
				return
			}
			res.Key.Destroy()
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	checkAllPresent(t, e, "go-%02d", n)
}

func checkAllPresent(t *testing.T, e *testEnv, format string, n int) {
	t.Helper()
	ctx := context.Background()
	list, err := e.reg.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf(format, i))
	}
	if got := strings.Join(ids(list), ","); got != strings.Join(want, ",") {
		t.Fatalf("devices\n%s\nwant\n%s", got, strings.Join(want, ","))
	}
	rep, err := e.reg.Check(ctx, nil)
	if err != nil || len(rep.Findings) > 0 {
		t.Fatalf("check: %v %v", err, rep)
	}
	entries, err := ReadAudit(AuditPath(e.path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n+1 || entries[0].Event != EventInit {
		t.Fatalf("%d audit entries, want %d starting with init", len(entries), n+1)
	}
	if _, err := e.reg.VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(e.path + ".lock"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v %v", err, fi.Mode())
	}
}

// TestLockTimeout (R17): while another holder has the lock, a writer with a
// 1 s timeout fails with the lock message and changes nothing.
func TestLockTimeout(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.LockTimeout = time.Second })
	if _, err := e.reg.Add(ctx, "first", Random()); err != nil {
		t.Fatal(err)
	}
	// A lock file someone made 0644 becomes 0600 (R5).
	if err := os.Chmod(e.path+".lock", 0o644); err != nil {
		t.Fatal(err)
	}
	regBefore, auditBefore := readFile(t, e.path), readFile(t, AuditPath(e.path))
	holder := flock.New(e.path + ".lock")
	if err := holder.Lock(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := e.reg.Add(ctx, "second", Random())
	waited := time.Since(start)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || !strings.HasPrefix(err.Error(), "registry is locked by another process") {
		t.Fatalf("err = %v", err)
	}
	if isBadInput(err) {
		t.Fatal("a lock timeout is a failure (exit 1), not bad input")
	}
	if waited < time.Second || waited > 10*time.Second {
		t.Fatalf("waited %v", waited)
	}
	if !bytes.Equal(regBefore, readFile(t, e.path)) || !bytes.Equal(auditBefore, readFile(t, AuditPath(e.path))) {
		t.Fatal("a writer that timed out changed the registry")
	}
	if fi, _ := os.Stat(e.path + ".lock"); fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file mode %v", fi.Mode())
	}
	// A cancelled context stops the wait with the context's error.
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	reg, _ := Open(e.path, Options{LockTimeout: time.Minute})
	if _, err := reg.Add(cctx, "third", Random()); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	if err := holder.Unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Add(ctx, "second", Random()); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
}

// TestInitAndCreate: init refuses an existing registry; a registry in a
// missing directory is created with a 0700 directory (R5).
func TestInitAndCreate(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "new", "sub")
	path := filepath.Join(dir, "reg.json")
	var made []string
	reg, _ := Open(path, Options{OnCreate: func(s string) { made = append(made, s) }})
	if err := reg.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory: %v %v", err, fi.Mode())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("registry: %v %v", err, fi.Mode())
	}
	before := readFile(t, path)
	err := reg.Init(ctx)
	if !errors.Is(err, ErrRegistryExists) || !isBadInput(err) {
		t.Fatalf("second init: %v", err)
	}
	if !bytes.Equal(before, readFile(t, path)) {
		t.Fatal("init changed an existing registry")
	}
	if len(made) != 0 {
		t.Fatal("init reported an implicit creation")
	}
	if got := AuditPath(path); got != filepath.Join(dir, "reg.audit.jsonl") {
		t.Fatalf("audit path %s", got)
	}
	if got := AuditPath("/x/registry"); got != "/x/registry.audit.jsonl" {
		t.Fatalf("audit path %s", got)
	}
	if _, err := Open("postgres://u:pw@host/db", Options{}); !isBadInput(err) {
		t.Fatalf("postgres: %v", err)
	}
}
