package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/usmp/usmp-psk/internal/registry"
)

// TestDeriveWarnings: what derive says about a device the registry knows
// (issue 14 item 5).
func TestDeriveWarnings(t *testing.T) {
	retired := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	rotated := registry.Device{ID: "dev-1", Source: registry.SourceDerived, Epoch: 2, Status: registry.StatusActive, KCV: "22222222",
		History: []registry.Retired{
			{KCV: "00000000", Epoch: 0, Source: registry.SourceDerived, Reason: "stolen", Retired: retired},
			{KCV: "11111111", Epoch: 1, Source: registry.SourceDerived, Retired: retired},
		}}
	revoked := rotated
	revoked.Status = registry.StatusRevoked
	random := registry.Device{ID: "dev-r", Source: registry.SourceRandom, Status: registry.StatusActive, KCV: "abcdef01"}
	tests := []struct {
		name  string
		dev   registry.Device
		epoch uint32
		kcv   string
		want  []string // substrings, one per warning, in order
	}{
		{"current epoch, right master", rotated, 2, "22222222", nil},
		{"current epoch, wrong master", rotated, 2, "99999999", []string{"the master secret does not reproduce the registry's key of device dev-1 at epoch 2 (registry kcv 22222222, derived kcv 99999999)"}},
		{"retired epoch", rotated, 0, "00000000", []string{`epoch 0 is a retired key (retired 2026-11-01T03:00:00Z: "stolen") that the gateway no longer accepts` + "\nhint: the current key is usmp-psk derive dev-1 --epoch 2"}},
		{"retired epoch, wrong master", rotated, 1, "99999999", []string{"registry kcv 11111111, derived kcv 99999999", "epoch 1 is a retired key"}},
		{"future epoch", rotated, 3, "33333333", []string{"epoch 3 is not in use yet"}},
		{"revoked", revoked, 2, "22222222", []string{"device dev-1 is revoked"}},
		{"random key", random, 0, "12345678", []string{"with a random key (kcv abcdef01), not a derived one"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := deriveWarnings(tt.dev, tt.epoch, tt.kcv, "reg.db")
			if len(got) != len(tt.want) {
				t.Fatalf("got %d warnings %q, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("warning %d: %q lacks %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}
