package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestBatchProgressWithJSON: on a terminal's stderr the bar is drawn with
// --json too, and stdout stays pure JSON (issue 14 item 9).
func TestBatchProgressWithJSON(t *testing.T) {
	for _, tty := range []bool{true, false} {
		t.Run(fmt.Sprint("stderr tty ", tty), func(t *testing.T) {
			f, _, out, errOut := testFactory(t, canaryMaster(t))
			f.IO.SetStderrTTY(tty)
			if code := runCLI(t, f, t.TempDir(), "batch", "--count", "40", "--prefix", "p-", "--out", "out", "--json"); code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var sum map[string]any
			if err := json.Unmarshal(out.Bytes(), &sum); err != nil || sum["devices"] != float64(40) {
				t.Fatalf("stdout is not the JSON summary: %v %q", err, out)
			}
			if got := strings.Contains(errOut.String(), "usmp-psk: batch"); got != tty {
				t.Errorf("bar on stderr: %v, want %v; stderr %q", got, tty, errOut)
			}
		})
	}
}

// TestBatchInterruptedSaysHowToFinish: an interrupted batch says how far
// it got and how to finish; other errors are left alone.
func TestBatchInterruptedSaysHowToFinish(t *testing.T) {
	p := &batchProgress{total: 10}
	p.done.Store(3)
	tests := []struct {
		name     string
		err      error
		wantMsg  string
		wantCode int
	}{
		{"interrupt", fmt.Errorf("write images: %w", context.Canceled), "interrupted; re-run the same command to finish: 3 of 10 done", exitCancel},
		{"disk full", errors.New("write out/p-3.bin: no space left on device"), "write out/p-3.bin: no space left on device", exitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.interrupted(tt.err)
			if err.Error() != tt.wantMsg || exitCodeFor(err) != tt.wantCode {
				t.Fatalf("%q exit %d", err, exitCodeFor(err))
			}
		})
	}
	var nilProgress *batchProgress
	if err := nilProgress.interrupted(context.Canceled); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
