package registry

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
)

// TestExportToRecordsOnlyDelivered: an export whose delivery fails leaves
// no "export" entry in the audit log; a delivered one leaves exactly one.
func TestExportToRecordsOnlyDelivered(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if _, err := e.reg.Add(ctx, "r-1", Random()); err != nil {
		t.Fatal(err)
	}
	countExports := func() int {
		b, err := os.ReadFile(AuditPath(e.path))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Count(b, []byte(`"event":"export"`))
	}
	failed := errors.New("disk full")
	if _, err := e.reg.ExportTo(ctx, nil, func(*Export) error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("err = %v", err)
	}
	if n := countExports(); n != 0 {
		t.Fatalf("%d export entries after a failed delivery", n)
	}
	var buf bytes.Buffer
	ex, err := e.reg.ExportTo(ctx, nil, func(ex *Export) error { return ex.WriteJSON(&buf) })
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Destroy()
	if n := countExports(); n != 1 || !bytes.Contains(buf.Bytes(), []byte(`"r-1"`)) {
		t.Fatalf("%d export entries, export %d bytes", n, buf.Len())
	}
	if _, err := e.reg.VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestExportInterruptedAfterDelivery: once the keys are delivered, an
// interrupt (Ctrl-C cancels the context) no longer stops the write of the
// export's audit entry, in either store. Review found the PostgreSQL store
// checked for cancellation after the delivery and rolled the entry back.
func TestExportInterruptedAfterDelivery(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		f := newFixture(t, kind)
		reg := f.env.reg
		if _, err := reg.Add(context.Background(), "r-1", Random()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var buf bytes.Buffer
		ex, err := reg.ExportTo(ctx, nil, func(ex *Export) error {
			err := ex.WriteJSON(&buf)
			cancel() // Ctrl-C just after the keys went out
			return err
		})
		if err != nil {
			t.Fatalf("ExportTo = %v", err)
		}
		ex.Destroy()
		if !bytes.Contains(auditLinesOf(t, reg), []byte(`"event":"export"`)) {
			t.Fatal("the delivered export has no audit entry")
		}
	})
}
