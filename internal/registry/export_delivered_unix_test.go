//go:build unix

package registry

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
)

// shortWriter takes room bytes, then fails as a full disk does (EFBIG).
type shortWriter struct {
	buf  bytes.Buffer
	room int
}

func (w *shortWriter) Write(p []byte) (int, error) {
	if len(p) <= w.room {
		w.room -= len(p)
		return w.buf.Write(p)
	}
	n, _ := w.buf.Write(p[:w.room])
	w.room = 0
	return n, syscall.EFBIG
}

// TestExportPartlyDelivered (docs/registry.md §5): an export whose write
// to standard output fails after some of its bytes went out was delivered,
// in part: its audit entry stays, committed, and the error says so
// (*DeliveredError, Partial). One that fails before any byte went out
// delivered nothing: its entry is removed again.
func TestExportPartlyDelivered(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		room    int
		entries int
	}{
		{name: "a key and a half went out", room: 150, entries: 4},
		{name: "nothing went out", room: 0, entries: 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			for _, id := range []string{"d1", "d2"} {
				if _, err := e.reg.Add(ctx, id, Random()); err != nil {
					t.Fatal(err)
				}
			}
			ap := AuditPath(e.path)
			logBefore := readFile(t, ap)
			w := &shortWriter{room: tt.room}
			_, err := e.reg.ExportTo(ctx, nil, func(ex *Export) error {
				return ex.DeliverJSON(w, "standard output")
			})
			if !errors.Is(err, syscall.EFBIG) {
				t.Fatalf("err = %v, want the failed write", err)
			}
			var de *DeliveredError
			if got := errors.As(err, &de); got != (tt.room > 0) {
				t.Fatalf("err = %v: *DeliveredError %v, want %v", err, got, tt.room > 0)
			}
			if tt.room > 0 && (!de.Partial || !strings.Contains(err.Error(), "partly delivered") || !strings.Contains(err.Error(), "recorded in the audit log")) {
				t.Fatalf("err = %v", err)
			}
			if w.buf.Len() != tt.room || (tt.room > 0 && !bytes.Contains(w.buf.Bytes(), []byte(`"d1": "`))) {
				t.Fatalf("delivered %q", w.buf.Bytes())
			}
			lines := auditLines(t, ap)
			if len(lines) != tt.entries {
				t.Fatalf("%d entries in the log, want %d", len(lines), tt.entries)
			}
			if tt.room > 0 && !bytes.Contains(lines[len(lines)-1], []byte(`"event":"export"`)) {
				t.Fatal("the export's entry is not the last one")
			}
			if tt.room == 0 && !bytes.Equal(readFile(t, ap), logBefore) {
				t.Fatal("the log changed")
			}
			rep, err := e.reg.VerifyAudit(ctx)
			if err != nil || rep.Uncommitted != 0 || int(rep.Entries) != tt.entries {
				t.Fatalf("audit: %v %+v", err, rep)
			}
		})
	}
}
