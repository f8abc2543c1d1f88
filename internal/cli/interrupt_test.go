package cli

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestReadInterruptibly covers the helper that keeps a read from a pipe or
// FIFO from holding up an interrupt (issue 13 item 6).
func TestReadInterruptibly(t *testing.T) {
	never := make(chan struct{}) // a read that never delivers
	t.Cleanup(func() { close(never) })
	tests := []struct {
		name       string
		cancel     string // "before", "during" (after the read started), "after" the read ended, or ""
		read       func(started chan<- struct{}) (string, error)
		suspect    bool
		want       string
		wantErr    error
		discarded  bool
		minElapsed time.Duration
	}{
		{name: "plain read", read: func(s chan<- struct{}) (string, error) { close(s); return "key", nil }, want: "key"},
		{name: "interrupted before", cancel: "before", read: func(s chan<- struct{}) (string, error) { close(s); return "key", nil }, wantErr: context.Canceled},
		{name: "blocked read interrupted", cancel: "during", read: func(s chan<- struct{}) (string, error) {
			close(s)
			<-never
			return "late", nil
		}, wantErr: context.Canceled},
		{name: "empty read then interrupt", cancel: "after", suspect: true, read: func(s chan<- struct{}) (string, error) { close(s); return "", nil }, wantErr: context.Canceled, discarded: true},
		{name: "empty read, no interrupt", suspect: true, read: func(s chan<- struct{}) (string, error) { close(s); return "", nil }, want: "", minElapsed: interruptGrace},
		{name: "error read, no interrupt", suspect: true, read: func(s chan<- struct{}) (string, error) { close(s); return "", errors.New("x") }, wantErr: errors.New("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f, _, _, _ := testFactory(t, "")
			f.ctx = ctx
			if tt.cancel == "before" {
				cancel()
			}
			started := make(chan struct{})
			readDone := make(chan struct{})
			discarded := make(chan string, 1)
			go func() {
				<-started
				switch tt.cancel {
				case "during":
					cancel()
				case "after":
					<-readDone
					cancel()
				}
			}()
			if tt.cancel == "before" {
				close(started)
			}
			start := time.Now()
			got, err := readInterruptibly(f, func() (string, error) {
				defer close(readDone)
				return tt.read(started)
			}, func(s string) { discarded <- s }, func(_ string, _ error) bool { return tt.suspect })
			switch {
			case tt.wantErr != nil && (err == nil || err.Error() != tt.wantErr.Error()):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && (err != nil || got != tt.want):
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			case time.Since(start) < tt.minElapsed:
				t.Fatalf("returned after %v, before the grace of %v", time.Since(start), tt.minElapsed)
			}
			if tt.discarded {
				select {
				case <-discarded:
				case <-time.After(5 * time.Second):
					t.Fatal("the abandoned result was not discarded")
				}
			}
		})
	}
}

// TestInterruptiblyGraceStep: a suspect result reaches the step hook's
// graceStep before it waits, so that a test can hold it there until the
// interrupt comes (the test binary's USMP_PSK_TEST_HOLD_AT); a result
// that is not suspect does not.
func TestInterruptiblyGraceStep(t *testing.T) {
	t.Parallel()
	for _, suspect := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var steps []string
		hook := func(step, _ string) {
			steps = append(steps, step)
			cancel() // the interrupt comes while held
		}
		var discarded []string
		got, err := interruptibly(ctx, hook, func() (string, error) { return "", nil },
			func(s string) { discarded = append(discarded, s) }, func(string, error) bool { return suspect })
		switch {
		case suspect && (!errors.Is(err, context.Canceled) || len(steps) != 1 || steps[0] != graceStep || len(discarded) != 1):
			t.Errorf("suspect: got %q, %v; steps %q, discarded %d", got, err, steps, len(discarded))
		case !suspect && (err != nil || len(steps) != 0 || len(discarded) != 0):
			t.Errorf("not suspect: got %q, %v; steps %q, discarded %d", got, err, steps, len(discarded))
		}
	}
}
