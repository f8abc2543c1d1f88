//go:build unix

package sighold

import (
	"os"
	"os/signal"
	"testing"
	"time"
)

// TestHoldHandoffRelease: a signal that comes while held is held, reported
// once by Handoff, and Release delivers it again. A channel of the test's own
// also wants SIGINT throughout, so that no step can kill the test binary.
// Not parallel: it signals the whole process.
func TestHoldHandoffRelease(t *testing.T) {
	own := make(chan os.Signal, 4)
	signal.Notify(own, os.Interrupt)
	defer signal.Stop(own)
	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	receive := func(what string) {
		t.Helper()
		select {
		case <-own:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no SIGINT after 20 s", what)
		}
	}

	if Handoff() {
		t.Fatal("Handoff without Start reported a signal")
	}
	Start()
	if err := self.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	receive("the first signal")
	for deadline := time.Now().Add(20 * time.Second); !Held(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the signal is not held after 20 s")
		}
	}
	if !Handoff() {
		t.Fatal("Handoff did not report the signal that came while held")
	}
	if Held() || Handoff() {
		t.Fatal("a second Handoff reported the signal again")
	}

	Start()
	if err := self.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	receive("the second signal")
	Release()
	receive("the released signal")
	Release() // nothing held: nothing sent
	select {
	case <-own:
		t.Fatal("Release with nothing held sent a signal")
	default:
	}
}
