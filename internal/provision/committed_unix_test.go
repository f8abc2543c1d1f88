//go:build unix

package provision

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usmp/usmp-psk/internal/registry"
	"github.com/usmp/usmp-psk/internal/secfile"
)

// TestRecordedDespiteAFailedWrite: when the registry write fails after
// the rename (the directory's sync), the rotation or the new device IS
// recorded; rotate and provision say so with an *UnwrittenError (epoch,
// KCV; the CLI adds "do not rotate again"), not a bare I/O error.
func TestRecordedDespiteAFailedWrite(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		rotation bool
		op       func(*registry.Registry) error
	}{
		{name: "rotate", rotation: true, op: func(r *registry.Registry) error {
			_, err := Rotate(ctx, r, "dev-a", registry.RotateOptions{Reason: "t", Master: master}, &ImageOptions{Layout: DefaultLayout()}, func([]byte) error { return nil })
			return err
		}},
		{name: "provision", op: func(r *registry.Registry) error {
			_, err := Provision(ctx, r, Request{ID: "dev-b", Source: Random}, ImageOptions{Layout: DefaultLayout()}, func([]byte) error { return nil })
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "reg")
			path := filepath.Join(dir, "reg.json")
			now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
			reg, err := registry.Open(path, registry.Options{Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reg.Add(ctx, "dev-a", registry.Derived(master, 0)); err != nil {
				t.Fatal(err)
			}
			secfile.CrashHookAt = func(step, p string) {
				if step == "before-dirsync" && p == path {
					_ = os.Rename(dir, dir+".away")
				}
			}
			err = tt.op(reg)
			secfile.CrashHookAt = nil
			if err := os.Rename(dir+".away", dir); err != nil {
				t.Fatal(err)
			}
			var ue *UnwrittenError
			var ce *registry.CommittedError
			if !errors.As(err, &ue) || ue.Rotation != tt.rotation || !errors.As(err, &ce) {
				t.Fatalf("err = %v, want an *UnwrittenError wrapping a *registry.CommittedError", err)
			}
			if !strings.Contains(err.Error(), "the registry recorded") || !strings.Contains(err.Error(), "kcv "+ue.Device.KCV) {
				t.Fatalf("err = %v", err)
			}
			dev, err := reg.Show(ctx, ue.Device.ID)
			if err != nil || dev.Epoch != ue.Device.Epoch || dev.KCV != ue.Device.KCV {
				t.Fatalf("the registry holds %+v (%v), the error says %+v", dev, err, ue.Device)
			}
		})
	}
}
