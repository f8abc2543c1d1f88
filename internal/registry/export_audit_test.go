package registry

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
)

// failAuditAppend makes the next audit append write only n bytes and fail,
// as a full disk or a file size limit would, until the test ends.
func failAuditAppend(t *testing.T, n int) {
	t.Helper()
	saved := auditWrite
	auditWrite = func(f *os.File, b []byte) (int, error) {
		if len(b) > n {
			w, _ := f.Write(b[:n])
			return w, errors.New("write: file too large")
		}
		return f.Write(b)
	}
	t.Cleanup(func() { auditWrite = saved })
}

// TestExportAuditedBeforeDelivery (docs/registry.md §5): an export's audit
// entry is appended and synced before its keys are delivered, so a
// delivered export always has its entry; a delivery that fails takes the
// entry back, and an append that fails delivers nothing.
func TestExportAuditedBeforeDelivery(t *testing.T) {
	ctx := context.Background()
	master := canaryMaster(t)
	tests := []struct {
		name      string
		deliver   error // what the delivery returns
		append    bool  // appending the entry fails
		delivered bool
		entries   int // in the log afterwards
	}{
		{name: "delivered", delivered: true, entries: 3},
		{name: "the delivery fails", deliver: errors.New("disk full"), delivered: true, entries: 2},
		{name: "the append fails", append: true, entries: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if _, err := e.reg.Add(ctx, "d1", Derived(master, 0)); err != nil {
				t.Fatal(err)
			}
			ap := AuditPath(e.path)
			logBefore := readFile(t, ap)
			if tt.append {
				// The append fails part way (a full disk, prlimit --fsize).
				failAuditAppend(t, 20)
			}
			delivered := false
			_, err := e.reg.ExportTo(ctx, master, func(ex *Export) error {
				delivered = true
				lines := auditLines(t, ap)
				if len(lines) != 3 || !bytes.Contains(lines[2], []byte(`"event":"export"`)) {
					t.Errorf("at the delivery the log holds %d lines, want the export entry last", len(lines))
				}
				return tt.deliver
			})
			if (err == nil) != (tt.deliver == nil && !tt.append) {
				t.Fatalf("err = %v", err)
			}
			if delivered != tt.delivered {
				t.Fatalf("delivered = %v, want %v", delivered, tt.delivered)
			}
			if got := len(auditLines(t, ap)); got != tt.entries {
				t.Fatalf("%d entries in the log, want %d", got, tt.entries)
			}
			if tt.entries == 2 && !bytes.Equal(readFile(t, ap), logBefore) {
				t.Fatal("the log changed")
			}
			rep, err := e.reg.VerifyAudit(ctx)
			if err != nil || rep.Uncommitted != 0 {
				t.Fatalf("audit: %v %+v", err, rep)
			}
		})
	}
}
