//go:build unix

package registry

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/usmp/usmp-psk/internal/secfile"
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

// TestExportFileInPlaceDespiteDirSync: 'export -o FILE' whose file is
// renamed into place but whose directory sync then fails delivered the
// keys: its audit entry stays, committed, and the error says so
// (*DeliveredError, not Partial). A file refused before the rename
// delivered nothing: its entry is removed again.
func TestExportFileInPlaceDespiteDirSync(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if _, err := e.reg.Add(ctx, "d1", Random()); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "export.json")
	ap := AuditPath(e.path)
	// The output directory moves away just before its sync, which then
	// fails.
	secfile.CrashHookAt = func(step, p string) {
		if step == "before-dirsync" && p == out {
			_ = os.Rename(dir, dir+".away")
		}
	}
	t.Cleanup(func() { secfile.CrashHookAt = nil })
	_, err := e.reg.ExportTo(ctx, nil, func(ex *Export) error {
		return ex.DeliverJSONFile(out, secfile.Options{})
	})
	secfile.CrashHookAt = nil
	var de *DeliveredError
	if !errors.As(err, &de) || de.Partial || de.To != out || !strings.Contains(err.Error(), "directory "+dir) || !strings.Contains(err.Error(), "recorded in the audit log") {
		t.Fatalf("err = %v, want a *DeliveredError for %s", err, out)
	}
	if b := readFile(t, filepath.Join(dir+".away", "export.json")); !bytes.Contains(b, []byte(`"d1": "`)) {
		t.Fatalf("the file holds %q", b)
	}
	rep, err := e.reg.VerifyAudit(ctx)
	if err != nil || rep.Uncommitted != 0 || rep.Entries != 3 {
		t.Fatalf("audit: %v %+v, want the export's entry committed", err, rep)
	}
	if lines := auditLines(t, ap); !bytes.Contains(lines[2], []byte(`"event":"export"`)) {
		t.Fatalf("the last entry is %s", lines[2])
	}

	// Refused before the rename (an existing file): nothing delivered, the
	// entry goes again.
	logBefore := readFile(t, ap)
	existing := filepath.Join(dir+".away", "export.json")
	_, err = e.reg.ExportTo(ctx, nil, func(ex *Export) error {
		return ex.DeliverJSONFile(existing, secfile.Options{})
	})
	var ee *secfile.ExistsError
	if !errors.As(err, &ee) || errors.As(err, &de) {
		t.Fatalf("err = %v, want the existing file refused", err)
	}
	if !bytes.Equal(readFile(t, ap), logBefore) {
		t.Fatal("the log changed")
	}
}
