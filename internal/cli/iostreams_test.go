package cli

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// testIOStreams returns streams backed by buffers: stdin, stdout, stderr. It and
// the Set*TTY overrides below are for this package's tests only.
func testIOStreams() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// SetStderrTTY overrides terminal detection.
func (s *IOStreams) SetStderrTTY(v bool) { s.stderrTTY = v }

// SetStdinTTY overrides terminal detection.
func (s *IOStreams) SetStdinTTY(v bool) { s.stdinTTY = v }

// SetStdoutTTY overrides terminal detection.
func (s *IOStreams) SetStdoutTTY(v bool) { s.stdoutTTY = v }

// TestWarnOnce: a warning is printed once however often it is raised — the
// git guard runs before a write and again inside it, and batch workers warn
// concurrently — while distinct warnings all appear, in order.
func TestWarnOnce(t *testing.T) {
	tests := []struct {
		name  string
		raise []string
		want  []string
	}{
		{"one", []string{"a"}, []string{"a"}},
		{"repeated", []string{"a", "a", "a"}, []string{"a"}},
		{"distinct kept in order", []string{"b", "a", "b", "c", "a"}, []string{"b", "a", "c"}},
		{"formatted equal", []string{"x 1", "x 1"}, []string{"x 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			io, _, _, errOut := testIOStreams()
			for _, w := range tt.raise {
				io.Warn(w)
			}
			var want strings.Builder
			for _, w := range tt.want {
				want.WriteString("usmp-psk: warning: " + w + "\n")
			}
			if errOut.String() != want.String() {
				t.Fatalf("stderr = %q, want %q", errOut.String(), want.String())
			}
		})
	}
	t.Run("concurrent", func(t *testing.T) {
		io, _, _, errOut := testIOStreams()
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for range 100 {
					io.Warnf("worker %s", "warning")
				}
			})
		}
		wg.Wait()
		if errOut.String() != "usmp-psk: warning: worker warning\n" {
			t.Fatalf("stderr = %q", errOut.String())
		}
	})
}

// SetTerminalWidth overrides the terminal's width.
func (s *IOStreams) SetTerminalWidth(w int) { s.termWidth = w }
