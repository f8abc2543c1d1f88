package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/nvs/nvscrypt"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

// regFiles is a registry and the files it keeps, to prove that a failed
// operation left them byte for byte as they were.
type regFiles struct {
	reg  *registry.Registry
	path string
}

func newRegFiles(t *testing.T) *regFiles {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reg.db")
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	reg, err := registry.Open(path, registry.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return &regFiles{reg: reg, path: path}
}

// snapshot returns every record and the audit log ("" when the registry
// does not exist).
func (r *regFiles) snapshot(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	devs, err := r.reg.List(ctx)
	if errors.Is(err, registry.ErrNoRegistry) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, d := range devs {
		full, err := r.reg.Show(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%+v\n", full)
	}
	if _, err := r.reg.WriteAuditJSONL(ctx, &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// fullBase is a 3-page image whose pages are filled with u8 entries: it
// mounts, but it has no room for the device id and key.
func fullBase(t *testing.T) []byte {
	t.Helper()
	ed, err := nvs.OpenEditor(bytes.Repeat([]byte{0xff}, 3*nvs.PageSize), nvs.EditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if err := ed.SetUint("fill", fmt.Sprintf("k%d", i), nvs.TypeU8, 1); err != nil {
			break
		}
		if i > 1000 {
			t.Fatal("the image never filled up")
		}
	}
	return ed.Bytes()
}

// failingBase is a base image a device's id and key cannot go into, and
// the error it gives (nil: any).
type failingBase struct {
	name string
	o    ImageOptions
	want error
}

// failingBases are the failing bases of the order tests.
func failingBases(t *testing.T) []failingBase {
	other, err := nvscrypt.GenerateKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	return []failingBase{
		{"encrypted base without keys", ImageOptions{Layout: DefaultLayout(), Base: readFile(t, "base_usmp_enc.bin")}, ErrLooksEncrypted},
		{"encrypted base, wrong keys", ImageOptions{Layout: DefaultLayout(), Base: readFile(t, "base_usmp_enc.bin"), Keys: other}, ErrWrongKeys},
		{"full base", ImageOptions{Layout: DefaultLayout(), Base: fullBase(t)}, nil},
		{"all-zero base", ImageOptions{Layout: DefaultLayout(), Base: make([]byte, nvs.PageSize)}, nil},
	}
}

var errDiskFull = errors.New("no space left on device")

// rotateSource is a device as the registry holds it before a rotation
// (add; nil: not recorded), and the options of that rotation.
type rotateSource struct {
	name string
	add  func(*registry.Registry) error
	ro   registry.RotateOptions
}

// setup is a fresh registry holding the device as src says.
func (src rotateSource) setup(t *testing.T) *regFiles {
	t.Helper()
	r := newRegFiles(t)
	if src.add != nil {
		if err := src.add(r.reg); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// rotateSources are the devices of TestRotateOrder.
func rotateSources(ctx context.Context) []rotateSource {
	imported := psk.CopySecret(bytes.Repeat([]byte{0x5a}, 48))
	add := func(ks func() registry.KeySpec) func(*registry.Registry) error {
		return func(r *registry.Registry) error {
			_, err := r.Add(ctx, "dev-a", ks())
			return err
		}
	}
	derived := add(func() registry.KeySpec { return registry.Derived(master, 0) })
	random := add(registry.Random)
	return []rotateSource{
		{"derived", derived, registry.RotateOptions{Reason: "t", Master: master, Register: true}},
		{"random", random, registry.RotateOptions{Reason: "t", Register: true}},
		{"imported to random", add(func() registry.KeySpec { return registry.Imported(imported) }), registry.RotateOptions{Reason: "t", Register: true}},
		{"derived to --random", derived, registry.RotateOptions{Reason: "t", Master: master, Random: true, Register: true}},
		{"new key imported", random, registry.RotateOptions{Reason: "t", NewKey: psk.CopySecret(bytes.Repeat([]byte{0x33}, 40)), Register: true}},
		{"unknown device", nil, registry.RotateOptions{Reason: "t", Master: master, Register: true}},
	}
}

// TestRotateOrder: a rotation whose image cannot be built records nothing;
// one whose image cannot be written is recorded and says so.
func TestRotateOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, src := range rotateSources(ctx) {
		for _, base := range failingBases(t) {
			t.Run(src.name+"/"+base.name, func(t *testing.T) { testRotateRefused(t, src, base) })
		}
		t.Run(src.name+"/write fails", func(t *testing.T) { testRotateWriteFails(t, src) })
		t.Run(src.name+"/written", func(t *testing.T) { testRotateWritten(t, src) })
	}
}

// testRotateRefused: onto a base that cannot take the key, nothing is
// recorded and nothing is written.
func testRotateRefused(t *testing.T, src rotateSource, base failingBase) {
	ctx := context.Background()
	r := src.setup(t)
	before := r.snapshot(t)
	wrote := false
	o := base.o
	_, err := Rotate(ctx, r.reg, "dev-a", src.ro, &o, func([]byte) error { wrote = true; return nil })
	if err == nil {
		t.Fatal("rotated onto a base that cannot take the key")
	}
	if base.want != nil && !errors.Is(err, base.want) {
		t.Fatalf("error %v, want %v", err, base.want)
	}
	var ue *UnwrittenError
	if errors.As(err, &ue) {
		t.Fatalf("the rotation was recorded before the image was built: %v", err)
	}
	if wrote {
		t.Fatal("an image was written")
	}
	if after := r.snapshot(t); after != before {
		t.Fatalf("the registry or its audit log changed:\n%s\n---\n%s", before, after)
	}
}

// testRotateWriteFails: a rotation whose image cannot be written is
// recorded, and the error says so.
func testRotateWriteFails(t *testing.T, src rotateSource) {
	ctx := context.Background()
	r := src.setup(t)
	o := ImageOptions{Layout: DefaultLayout(), Base: readFile(t, "gen_add_erase.bin")}
	_, err := Rotate(ctx, r.reg, "dev-a", src.ro, &o, func([]byte) error { return errDiskFull })
	var ue *UnwrittenError
	if !errors.As(err, &ue) || !ue.Rotation || !errors.Is(err, errDiskFull) {
		t.Fatalf("error %v, want an UnwrittenError for a rotation wrapping the write's", err)
	}
	dev, serr := r.reg.Show(ctx, "dev-a")
	if serr != nil || dev.Epoch != 1 || ue.Device.Epoch != 1 || ue.Device.KCV != dev.KCV {
		t.Fatalf("the error says epoch %d kcv %s; the registry has %+v (%v)", ue.Device.Epoch, ue.Device.KCV, dev, serr)
	}
	for _, want := range []string{"the registry recorded the rotation of device dev-a", "epoch 1", "kcv " + dev.KCV, "not written", errDiskFull.Error()} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Fatalf("%q does not say %q", err, want)
		}
	}
}

// testRotateWritten: the image written holds the new key.
func testRotateWritten(t *testing.T, src rotateSource) {
	ctx := context.Background()
	r := src.setup(t)
	o := ImageOptions{Layout: DefaultLayout(), Base: readFile(t, "gen_add_erase.bin")}
	var written []byte
	res, err := Rotate(ctx, r.reg, "dev-a", src.ro, &o, func(b []byte) error { written = bytes.Clone(b); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(written, res.Image) {
		t.Fatal("the image written is not the one returned")
	}
	m := func() (*psk.Secret, error) { return master, nil }
	if v, err := Verify(ctx, r.reg, written, o, "dev-a", m); err != nil || !v.Match || v.Epoch != 1 {
		t.Fatalf("the image written does not hold the new key: %+v %v", v, err)
	}
}

// TestRotateKey: the key guessed before the commit is the one the registry
// gives, or has its length where the registry makes a random one.
func TestRotateKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRegFiles(t)
	imported := psk.CopySecret(bytes.Repeat([]byte{0x5a}, 48))
	if _, err := r.reg.Add(ctx, "dev-d", registry.Derived(master, 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.reg.Add(ctx, "dev-i", registry.Imported(imported)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"dev-r", "dev-r2"} {
		if _, err := r.reg.Add(ctx, id, registry.Random()); err != nil {
			t.Fatal(err)
		}
	}
	newKey := psk.CopySecret(bytes.Repeat([]byte{0x33}, 40))
	tests := []struct {
		name  string
		id    string
		ro    registry.RotateOptions
		exact *psk.Secret // the key itself, or nil: only the length is known
		n     int
	}{
		{"derived: the next epoch", "dev-d", registry.RotateOptions{Master: master}, psk.Derive(master, "dev-d", 4), 32},
		{"unknown: epoch 1", "dev-u", registry.RotateOptions{Master: master, Register: true}, psk.Derive(master, "dev-u", 1), 32},
		{"new key", "dev-r2", registry.RotateOptions{NewKey: newKey}, newKey, 40},
		{"random", "dev-r", registry.RotateOptions{}, nil, 32},
		{"derived made random", "dev-d", registry.RotateOptions{Master: master, Random: true}, nil, 32},
		{"imported: random, as long", "dev-i", registry.RotateOptions{}, nil, 48},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := rotateKey(ctx, r.reg, tt.id, tt.ro)
			if err != nil {
				t.Fatal(err)
			}
			defer k.Destroy()
			if k.Len() != tt.n || (tt.exact != nil && !k.Equal(tt.exact)) {
				t.Fatalf("guessed a %d-byte key (exact %v), want %d bytes", k.Len(), tt.exact != nil && k.Equal(tt.exact), tt.n)
			}
			res, err := r.reg.Rotate(ctx, tt.id, tt.ro)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Key.Destroy()
			if res.Key.Len() != k.Len() || (tt.exact != nil && !res.Key.Equal(k)) {
				t.Fatalf("the registry made a %d-byte key, the guess was %d bytes", res.Key.Len(), k.Len())
			}
		})
	}
}

// TestProvisionOrder: a device whose image cannot be built is not
// recorded; one whose image cannot be written is, and the error says so.
func TestProvisionOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sources := []Request{
		{ID: "dev-a", Source: Derive, Master: master},
		{ID: "dev-a", Source: Random},
		{ID: "dev-a", Source: Imported, PSK: psk.CopySecret(bytes.Repeat([]byte{0x77}, 32))},
	}
	for _, q := range sources {
		name := map[Source]string{Derive: "derive", Random: "random", Imported: "imported"}[q.Source]
		for _, base := range failingBases(t) {
			t.Run(name+"/"+base.name, func(t *testing.T) {
				r := newRegFiles(t)
				wrote := false
				_, err := Provision(ctx, r.reg, q, base.o, func([]byte) error { wrote = true; return nil })
				if err == nil {
					t.Fatal("provisioned onto a base that cannot take the key")
				}
				if base.want != nil && !errors.Is(err, base.want) {
					t.Fatalf("error %v, want %v", err, base.want)
				}
				if wrote {
					t.Fatal("an image was written")
				}
				if _, err := os.Stat(r.path); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("the registry was created or changed: %v", err)
				}
			})
		}
		t.Run(name+"/write fails", func(t *testing.T) {
			r := newRegFiles(t)
			_, err := Provision(ctx, r.reg, q, ImageOptions{Layout: DefaultLayout()}, func([]byte) error { return errDiskFull })
			var ue *UnwrittenError
			if !errors.As(err, &ue) || ue.Rotation || !errors.Is(err, errDiskFull) {
				t.Fatalf("error %v, want an UnwrittenError wrapping the write's", err)
			}
			dev, serr := r.reg.Show(ctx, "dev-a")
			if serr != nil || ue.Device.KCV != dev.KCV {
				t.Fatalf("the error says kcv %s; the registry has %+v (%v)", ue.Device.KCV, dev, serr)
			}
			// Again, now that the device is known: nothing is recorded,
			// so the error is the write's own.
			_, err = Provision(ctx, r.reg, Request{ID: "dev-a", Source: FromRegistry, Master: master}, ImageOptions{Layout: DefaultLayout()}, func([]byte) error { return errDiskFull })
			if !errors.Is(err, errDiskFull) || errors.As(err, &ue) {
				t.Fatalf("known device: %v", err)
			}
		})
	}
}

// TestProvisionExistingDeviceBase: a base that fails for a known device
// changes nothing either.
func TestProvisionExistingDeviceBase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRegFiles(t)
	if _, err := r.reg.Add(ctx, "dev-a", registry.Derived(master, 0)); err != nil {
		t.Fatal(err)
	}
	before := r.snapshot(t)
	for _, base := range failingBases(t) {
		for _, src := range []Source{FromRegistry, Derive} {
			_, err := Provision(ctx, r.reg, Request{ID: "dev-a", Source: src, Master: master}, base.o, func([]byte) error {
				t.Fatal("an image was written")
				return nil
			})
			if err == nil {
				t.Fatalf("%s: accepted", base.name)
			}
		}
	}
	if after := r.snapshot(t); after != before {
		t.Fatal("the registry or its audit log changed")
	}
}
