//go:build unix

package registry

// Crash safety: a writer killed with SIGKILL at any point of add, rotate,
// revoke or a batch chunk leaves a registry whose records and audit log
// agree — 'registry check' and 'registry audit' find nothing — because
// each write is one transaction. The kill points come from a seeded
// sequence of delays: where they land varies with the machine, but the
// invariant must hold wherever they land, so the test cannot flake.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const helperSeed = "USMP_REGISTRY_TEST_SEED"

// TestHelperCrashWriter is not a test: it is the writer that TestCrash
// kills. It adds, rotates, revokes and records batch chunks in a loop,
// printing "ready" once it has opened the registry.
func TestHelperCrashWriter(t *testing.T) {
	if os.Getenv(helperEnv) != "crash" {
		t.Skip("helper process for the crash test")
	}
	seed, _ := strconv.ParseUint(os.Getenv(helperSeed), 10, 64)
	rnd := rand.New(rand.NewPCG(seed, 7))
	reg, err := Open(os.Getenv(helperPath), Options{LockTimeout: time.Minute, User: func() string { return "crash" }, Getenv: func(string) string { return "" }})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	master := benchMaster
	ctx := context.Background()
	for i := 0; ; i++ {
		id := fmt.Sprintf("c%d-%d", seed, i)
		var err error
		switch rnd.IntN(4) {
		case 0:
			_, err = reg.Add(ctx, id, Random())
		case 1:
			_, err = reg.Rotate(ctx, id, RotateOptions{Master: master, Register: true, Reason: "crash test"})
		case 2:
			if _, err = reg.Add(ctx, id, Derived(master, 0)); err == nil {
				_, err = reg.Revoke(ctx, id, "crash test")
			}
		default:
			reqs := make([]AddRequest, 50)
			for j := range reqs {
				reqs[j] = AddRequest{fmt.Sprintf("%s-b%03d", id, j), Random()}
			}
			_, err = reg.AddMany(ctx, reqs, AddOptions{Event: EventBatch, KeepExisting: true})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func TestCrash(t *testing.T) {
	runs := map[string]int{"sqlite": 60, "postgres": 20}
	forEachStore(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind)
		rnd := rand.New(rand.NewPCG(20261206, 1))
		// Killed while its first write creates the registry: there is a
		// registry, whole, or none.
		for run := range 5 {
			crashOnce(t, f, uint64(1000+run), time.Duration(rnd.IntN(3))*time.Millisecond)
			if _, err := f.env.reg.List(context.Background()); err != nil && !errors.Is(err, ErrNoRegistry) {
				t.Fatalf("killed while creating the registry: %v", err)
			}
		}
		if _, err := f.env.reg.Init(context.Background()); err != nil && !errors.Is(err, ErrRegistryExists) {
			t.Fatal(err)
		}
		for run := range runs[kind] {
			crashOnce(t, f, uint64(run), time.Duration(rnd.IntN(80))*time.Millisecond)
			rep, err := f.env.reg.Check(context.Background(), nil)
			if err != nil || len(rep.Findings) > 0 {
				t.Fatalf("run %d: after a kill, check: %v %v", run, err, rep.Findings)
			}
			if _, err := f.env.reg.VerifyAudit(context.Background(), nil); err != nil {
				t.Fatalf("run %d: after a kill, audit: %v", run, err)
			}
		}
		devs, err := f.env.reg.List(context.Background())
		if err != nil || len(devs) == 0 {
			t.Fatalf("the writers recorded nothing before the kills: %v", err)
		}
		t.Logf("%d devices after %d kills", len(devs), runs[kind])
	})
}

// crashOnce starts the writer, lets it run for delay after it is ready,
// and kills it with SIGKILL.
func crashOnce(t *testing.T, f *fixture, seed uint64, delay time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCrashWriter$", "-test.count=1")
	cmd.Env = append(append([]string{helperEnv + "=crash", helperPath + "=" + f.loc, helperSeed + "=" + strconv.FormatUint(seed, 10)}, f.childEnv()...), pgChildEnv()...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || !strings.HasPrefix(string(buf), "ready") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the writer did not start: %v %s", err, stderr.String())
	}
	time.Sleep(delay)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Fatalf("the writer stopped before the kill: %v %s", err, stderr.String())
	}
}
