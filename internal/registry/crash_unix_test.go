//go:build unix

package registry

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/usmp/usmp-psk/internal/secfile"
)

// installCrashHook makes the process kill itself with SIGKILL at a secfile
// write step (R16: USMP_PSK_TEST_CRASH_AT).
func installCrashHook(at string) {
	if at == "" {
		return
	}
	secfile.CrashHook = func(step string) {
		if step == at {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}

// TestCrashAtEveryStep (R16): a writer killed at each step of the write
// leaves exactly the old or the new registry, parseable; a leftover
// temporary file is 0600 in the registry's directory and the next writer
// removes it; the audit chain stays intact.
func TestCrashAtEveryStep(t *testing.T) {
	tests := []struct {
		step    string
		wantNew bool
		tmpLeft bool
	}{
		{"after-write", false, true},
		{"after-fsync", false, true},
		{"after-rename", true, false},
		{"before-dirsync", true, false},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.step, func(t *testing.T) {
			e := newEnv(t)
			for _, id := range []string{"old-1", "old-2", "old-3"} {
				if _, err := e.reg.Add(ctx, id, Random()); err != nil {
					t.Fatal(err)
				}
			}
			old := readFile(t, e.path)

			cmd := helperCmd(t, e.path, "crash-dev", tt.step)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the writer was not killed: %v %s", err, stderr.String())
			}

			now := readFile(t, e.path)
			reg, problems := decodeRegistry(e.path, bytes.Clone(now))
			if len(problems) > 0 {
				t.Fatalf("registry after the crash: %v", problems[0])
			}
			_, hasNew := (&fileReader{reg: reg}).Get("crash-dev")
			switch {
			case tt.wantNew && !hasNew, !tt.wantNew && hasNew:
				t.Fatalf("new device present = %v, want %v", hasNew, tt.wantNew)
			case !tt.wantNew && !bytes.Equal(now, old):
				t.Fatal("the registry is neither the old nor the new one")
			case tt.wantNew && reg.head.Seq != 5:
				t.Fatalf("new registry has audit head %d", reg.head.Seq)
			}
			if tt.wantNew {
				// Exactly the new one: the old records are unchanged and one
				// record was added.
				for _, line := range bytes.Split(old, []byte("\n")) {
					if bytes.HasPrefix(line, []byte(`    {"id":"old-`)) && !bytes.Contains(now, bytes.TrimSuffix(line, []byte(","))) {
						t.Fatal("an old record changed")
					}
				}
				if len(reg.recs) != 4 {
					t.Fatalf("%d records", len(reg.recs))
				}
			}
			if fi, err := os.Stat(e.path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("registry mode: %v %v", err, fi.Mode())
			}
			temps, _ := filepath.Glob(filepath.Join(filepath.Dir(e.path), ".usmp-registry.json.tmp-*"))
			if (len(temps) > 0) != tt.tmpLeft {
				t.Fatalf("temporary files %v", temps)
			}
			for _, tmp := range temps {
				if fi, _ := os.Stat(tmp); fi.Mode().Perm() != 0o600 {
					t.Fatalf("leftover %s has mode %v", tmp, fi.Mode())
				}
			}
			// The audit chain is intact; entries of a change that did not
			// land are uncommitted, not damage.
			rep, err := e.reg.VerifyAudit(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]uint64{false: 1, true: 0}[tt.wantNew]; rep.Uncommitted != want {
				t.Fatalf("uncommitted %d, want %d", rep.Uncommitted, want)
			}

			// The next run cleans up and works.
			if _, err := e.reg.Add(ctx, "next", Random()); err != nil {
				t.Fatal(err)
			}
			temps, _ = filepath.Glob(filepath.Join(filepath.Dir(e.path), ".usmp-registry.json.tmp-*"))
			if len(temps) > 0 {
				t.Fatalf("temporary files left after the next write: %v", temps)
			}
			list, err := e.reg.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := "next,old-1,old-2,old-3"
			if tt.wantNew {
				want = "crash-dev," + want
			}
			if got := strings.Join(ids(list), ","); got != want {
				t.Fatalf("devices %s, want %s", got, want)
			}
			if rep, err := e.reg.VerifyAudit(ctx); err != nil || rep.Uncommitted != 0 {
				t.Fatalf("audit after the next write: %v %+v", err, rep)
			}
		})
	}
}
