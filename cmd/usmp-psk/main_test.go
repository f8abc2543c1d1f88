package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/usmp/usmp-psk/internal/cli"
	"github.com/usmp/usmp-psk/internal/golden"
	"github.com/usmp/usmp-psk/internal/leakcheck"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/sighold"
)

func TestMain(m *testing.M) {
	testscript.Main(releasingM{m}, map[string]func(){
		"usmp-psk":     usmpPSKTestMain,
		"fake-esptool": fakeEsptoolMain,
	})
}

// releasingM runs the tests with Go's own handling of signals. main.go's
// import of package early holds the interrupt signals in this binary too,
// for the usmp-psk it runs as; the test run (and fake-esptool) must not
// keep them held, or Ctrl-C and go test's SIGQUIT would be lost.
type releasingM struct{ m *testing.M }

func (r releasingM) Run() int {
	sighold.Release()
	return r.m.Run()
}

// usmpPSKTestMain is the real command with the step hook of the tests
// (cli.MainOptions), which the production binary never installs: main.go
// calls cli.Main, which passes none. The hook is this test binary's only,
// and driven by the environment so that scripts and tests can set it per
// run. A step is one of a secret-file write (secfile.Options.StepHook), a
// batch's "before-images" (provision.BatchSpec.StepHook), or
// "interrupt-grace", where a read from a pipe that ended empty waits for
// the interrupt that may have caused it:
//
//   - USMP_PSK_TEST_CRASH_AT=<step>[:<file name>] kills the process with
//     SIGKILL at that step (of that file only, when named): R16's crashes;
//   - USMP_PSK_TEST_HOLD_AT=<step>[:<file name>] creates the file named by
//     USMP_PSK_TEST_HOLD_READY at that step and waits there until the run
//     is interrupted, so that a test can signal it at a known point;
//     USMP_PSK_TEST_HOLD_AT=start holds it before cli.MainWith
//     (holdAtStart).
func usmpPSKTestMain() {
	holdAtStart()
	os.Exit(cli.MainWith(cli.MainOptions{StepHook: stepHookFromEnv()}))
}

// holdAtStart is USMP_PSK_TEST_HOLD_AT=start: a process that is slow to
// reach cli.MainWith, as a loaded machine makes it. It creates the file
// named by USMP_PSK_TEST_HOLD_READY and waits until a signal is held
// (package early), so that a test can signal the process after every
// package is initialised and before the run's handler is installed, and
// know that the signal was taken there (issue 13 item 6).
func holdAtStart() {
	if os.Getenv("USMP_PSK_TEST_HOLD_AT") != "start" {
		return
	}
	if err := os.WriteFile(os.Getenv("USMP_PSK_TEST_HOLD_READY"), nil, 0o600); err != nil {
		panic("USMP_PSK_TEST_HOLD_READY: " + err.Error())
	}
	for !sighold.Held() {
		time.Sleep(time.Millisecond)
	}
}

// stepHookFromEnv builds the hook of USMP_PSK_TEST_CRASH_AT and
// USMP_PSK_TEST_HOLD_AT; nil when neither is set.
func stepHookFromEnv() func(ctx context.Context, step, path string) {
	crash, hold := os.Getenv("USMP_PSK_TEST_CRASH_AT"), os.Getenv("USMP_PSK_TEST_HOLD_AT")
	if crash == "" && hold == "" {
		return nil
	}
	at := func(spec, step, path string) bool {
		s, name, _ := strings.Cut(spec, ":")
		return spec != "" && s == step && (name == "" || filepath.Base(path) == name)
	}
	ready := os.Getenv("USMP_PSK_TEST_HOLD_READY")
	return func(ctx context.Context, step, path string) {
		if at(crash, step, path) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		if at(hold, step, path) {
			if err := os.WriteFile(ready, nil, 0o600); err != nil {
				panic("USMP_PSK_TEST_HOLD_READY: " + err.Error())
			}
			<-ctx.Done()
		}
	}
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: false,
		RequireUniqueNames:  true,
		// -update (internal/golden) rewrites the scripts' expected output.
		UpdateScripts: golden.Update(),
		Setup: func(env *testscript.Env) error {
			// A fresh random canary master per script (R22). Scripts put it
			// in USMP_MASTER_SECRET when they need it. Its alphabet keeps
			// it from turning up by chance in the audit log's hex (the
			// batch_basic flake of issue 13).
			env.Setenv("CANARY_MASTER", leakcheck.CanaryMaster())
			env.Setenv("CANARY_IDS", "device-id-1 24:6F:28:AA dev-a dev-b")
			env.Setenv("HOME", env.WorkDir+"/home")
			env.Setenv("XDG_CONFIG_HOME", env.WorkDir+"/.config")
			// The gateway module, for scripts that run it (PYTHONPATH).
			env.Setenv("USMP_SCRIPTS", scriptsDir)
			return setupPostgres(env)
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "python3", "git", "script":
				_, err := exec.LookPath(cond)
				return err == nil, nil
			case "tmpfs":
				return canMountTmpfs(), nil
			case "age":
				// The gateway decrypts exports with Debian's age (issue
				// 15): CI installs it and must run these scripts.
				for _, c := range []string{"age", "age-keygen"} {
					if _, err := exec.LookPath(c); err != nil {
						if os.Getenv("CI") != "" {
							return false, fmt.Errorf("%s is not installed: CI must run the age scripts", c)
						}
						return false, nil
					}
				}
				return true, nil
			case "postgres":
				// CI starts a server (scripts/ci-services.sh) and must
				// run these scripts; elsewhere they skip without one.
				if os.Getenv(pgTestEnv) == "" && os.Getenv("CI") != "" {
					return false, fmt.Errorf("$%s is not set: CI must run the PostgreSQL scripts", pgTestEnv)
				}
				return os.Getenv(pgTestEnv) != "", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exit":        cmdExit,
			"leakscan":    cmdLeakscan,
			"perm":        cmdPerm,
			"derivecheck": cmdDeriveCheck,
			"devimage":    cmdDevImage,
			"tmpfs":       cmdTmpfs,
			"fakeesptool": cmdFakeEsptool,
		},
	})
}

// scriptsDir is the repository's scripts directory (usmp_gateway.py),
// taken before any test changes directory.
var scriptsDir, _ = filepath.Abs(filepath.Join("..", "..", "scripts"))

// pgTestEnv names the test PostgreSQL server (scripts/ci-services.sh).
const pgTestEnv = "USMP_PSK_TEST_POSTGRES"

// setupPostgres gives a script its own schema on the test server, as
// $PGREG (a registry URL with that search_path), and passes the password
// file through. The schema is dropped when the script ends.
func setupPostgres(env *testscript.Env) error {
	base := os.Getenv(pgTestEnv)
	if base == "" {
		return nil
	}
	for _, k := range []string{"PGPASSFILE", "PGPASSWORD"} {
		if v, ok := os.LookupEnv(k); ok {
			env.Setenv(k, v)
		}
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	schema := "usmp_script_" + hex.EncodeToString(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return fmt.Errorf("test PostgreSQL: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		conn.Close(ctx)
		return err
	}
	env.Defer(func() {
		_, _ = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		conn.Close(ctx)
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	env.Setenv("PGREG", base+sep+"options="+url.QueryEscape("-csearch_path="+schema))
	return nil
}

// cmdExit runs a program and checks its exit code: exit N prog args...
func cmdExit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exit CODE program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("bad exit code %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("%v", err)
	}
	if got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

// cmdLeakscan is the R22 scan: leakscan [-key FILE:ENC]... [names...]
// searches the named outputs (files, or stdout, stderr, ttyout; default all
// three) for the canary master, the keys derived from it for $CANARY_IDS at
// epochs 0-3, and the keys in the files given with -key, in every encoding
// leakcheck knows, whole or in part.
func cmdLeakscan(ts *testscript.TestScript, neg bool, args []string) {
	var s leakcheck.Scanner
	master := ts.Getenv("CANARY_MASTER")
	s.Add("master", []byte(master))
	m := psk.CopySecret([]byte(master))
	for _, id := range strings.Fields(ts.Getenv("CANARY_IDS")) {
		for e := uint32(0); e <= 3; e++ {
			s.Add(fmt.Sprintf("derived key of %s@%d", id, e), psk.Derive(m, id, e).Expose())
		}
	}
	var names []string
	for i := 0; i < len(args); i++ {
		if args[i] == "-key" && i+1 < len(args) {
			file, enc, _ := strings.Cut(args[i+1], ":")
			if enc == "" {
				enc = "hex"
			}
			k, err := psk.Decode(file, []byte(ts.ReadFile(file)), psk.Encoding(enc))
			ts.Check(err)
			s.Add("key in "+file, k.Expose())
			i++
			continue
		}
		names = append(names, args[i])
	}
	if len(names) == 0 {
		names = []string{"stdout", "stderr", "ttyout"}
	}
	var found []string
	for _, n := range names {
		for _, f := range s.Scan(n, []byte(ts.ReadFile(n))) {
			found = append(found, f.String())
		}
	}
	if neg && len(found) == 0 {
		ts.Fatalf("no leak found, but one was expected")
	}
	if !neg && len(found) > 0 {
		ts.Fatalf("secret material leaked:\n%s", strings.Join(found, "\n"))
	}
}

// cmdPerm checks a file's permission bits: perm FILE 0600.
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: perm FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := uint64(fi.Mode().Perm()); (got == want) == neg {
		ts.Fatalf("%s has mode %04o, want %s%04o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// cmdDeriveCheck checks a key file against the canary derivation:
// derivecheck FILE DEVICE_ID EPOCH [ENCODING]. The independent check against
// the gateway's Python is TestDeriveMatchesPython in internal/psk.
func cmdDeriveCheck(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 3 {
		ts.Fatalf("usage: derivecheck FILE DEVICE_ID EPOCH [ENCODING]")
	}
	epoch, err := strconv.ParseUint(args[2], 10, 32)
	ts.Check(err)
	enc := psk.Hex
	if len(args) > 3 {
		enc = psk.Encoding(args[3])
	}
	want := psk.Encode(psk.Derive(psk.CopySecret([]byte(ts.Getenv("CANARY_MASTER"))), args[1], uint32(epoch)), enc)
	if (ts.ReadFile(args[0]) == string(want)) == neg {
		ts.Fatalf("%s does not hold the derived key of %s at epoch %d (%s)", args[0], args[1], epoch, enc)
	}
}

// deviceImages is the set of NVS images written by ESP-IDF's own library
// (internal/nvs/testdata/device, whose README.md says how they were made).
const deviceImages = "../../internal/nvs/testdata/device"

// cmdDevImage copies device-written NVS images into the work directory,
// 0600 as images are: devimage NAME...
func cmdDevImage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: devimage NAME...")
	}
	for _, name := range args {
		b, err := os.ReadFile(filepath.Join(deviceImages, filepath.Base(name)))
		ts.Check(err)
		ts.Check(os.WriteFile(ts.MkAbs(filepath.Base(name)), b, 0o600))
	}
}
