package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usmp/usmp-psk/internal/provision"
	"github.com/usmp/usmp-psk/internal/registry"
	"github.com/usmp/usmp-psk/internal/secfile"
)

// TestUnwrittenErrHint: after a commit whose image write failed, the hint
// gives the command that writes the image of the recorded key. It adds
// --force when an image is at the output (the old one a --force run was
// replacing, or the new one when only the directory sync failed — then
// the message says the image is in place; review found it said "not
// written" and gave a command that failed with "already exists").
func TestUnwrittenErrHint(t *testing.T) {
	dev := registry.Device{ID: "dev-1", Source: registry.SourceDerived, Epoch: 1, KCV: "0123abcd"}
	cause := errors.New("sync directory: input/output error")
	tests := []struct {
		name      string
		published bool
		rotation  bool
		exists    bool
		want      []string
		notWant   []string
	}{
		{"not written, no file", false, true, false, []string{"its image was not written", "do not rotate again", "usmp-psk provision dev-1 -o "}, []string{"--force", "in place"}},
		{"not written, old image there", false, true, true, []string{"its image was not written", "--force"}, []string{"in place"}},
		{"in place after a failed sync", true, true, true, []string{"its image is in place", "may not survive a power loss", "do not rotate again", "write it again", "--force"}, []string{"was not written"}},
		{"new device in place", true, false, true, []string{"recorded device dev-1", "its image is in place", "write the same image again", "--force"}, []string{"rotate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "dev-1.bin")
			if tt.exists {
				if err := os.WriteFile(out, []byte("image"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := cause
			if tt.published {
				err = &secfile.PublishedError{Path: out, Err: cause}
			}
			got := unwrittenErr(&provision.UnwrittenError{Device: dev, Rotation: tt.rotation, Err: err}, "dev-1", out, &imageFlags{}, registry.DefaultPath).Error()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("message lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("message has %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestParseSize: a size that is not a number is not repeated; the other
// refusals keep nvs.ParseSize's reason (which does not repeat it either).
func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // the error, "" for none
	}{
		{"0x6000", ""},
		{"12k", "SIZE: not a partition size (want a number in decimal, 0x, 0o or 0b, a multiple of 4096)"},
		{"", "SIZE: invalid partition size: not an integer (use decimal, 0x, 0o or 0b)"},
		{"0x3100", "SIZE: invalid partition size: must be a multiple of 4096"},
	}
	for _, tt := range tests {
		_, err := parseSize("SIZE", tt.in)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.in, err)
		case tt.want != "" && (err == nil || err.Error() != tt.want || exitCodeFor(err) != exitUsage):
			t.Errorf("%q: %v (exit %d), want %q (exit 2)", tt.in, err, exitCodeFor(err), tt.want)
		}
	}
}
