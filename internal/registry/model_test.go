package registry

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/<name>.golden, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	want = bytes.ReplaceAll(want, []byte("\r\n"), []byte("\n"))
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// sampleRegistry covers every field of the schema: derived, random and
// imported keys, revocation with a reason that needs escaping, history.
func sampleRegistry() *regData {
	rnd := &counterReader{}
	k1, _ := psk.Generate(rnd, 32)
	k2 := psk.CopySecret([]byte("sixteen byte key"))
	master := psk.NewSecret([]byte("golden master secret"))
	d0 := psk.Derive(master, "24:6F:28:AA", 0)
	d2 := psk.Derive(master, "device-2", 2)
	d2h := psk.Derive(master, "device-2", 1)
	tm := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	return &regData{
		head: AuditHead{Seq: 7, Hash: "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"},
		recs: []*Record{
			{Device: Device{ID: "24:6F:28:AA", Source: SourceDerived, Epoch: 0, Status: StatusActive, KCV: psk.KCV(d0), Created: tm(1), Updated: tm(1)}},
			{Device: Device{ID: "device-2", Source: SourceDerived, Epoch: 2, Status: StatusActive, KCV: psk.KCV(d2), Created: tm(2), Updated: tm(5),
				History: []Retired{
					{KCV: "0badc0de", Epoch: 0, Source: SourceDerived, Reason: "scheduled", Retired: tm(3)},
					{KCV: psk.KCV(d2h), Epoch: 1, Source: SourceDerived, Retired: tm(5)},
				}}},
			{Device: Device{ID: "imported.old", Source: SourceImported, Epoch: 0, Status: StatusRevoked, KCV: psk.KCV(k2), Created: tm(3), Updated: tm(6),
				Revoked: tm(6), RevokeReason: "lost in \"transit\"\nline 2 \\ tab\t é"}},
			{Device: Device{ID: "imported.short", Source: SourceImported, Epoch: 0, Status: StatusActive, KCV: psk.KCV(k2), Created: tm(3), Updated: tm(3)}, Key: k2},
			{Device: Device{ID: "rnd-1", Source: SourceRandom, Epoch: 0, Status: StatusActive, KCV: psk.KCV(k1), Created: tm(4), Updated: tm(4)}, Key: k1},
		},
	}
}

// TestGoldenRegistry pins the file layout: fixed field order, one device per
// line, byte-reproducible (design §5).
func TestGoldenRegistry(t *testing.T) {
	got := encodeRegistry(nil, sampleRegistry())
	golden(t, "TestGoldenRegistry", got)
	if again := encodeRegistry(nil, sampleRegistry()); !bytes.Equal(got, again) {
		t.Fatal("encoding is not deterministic")
	}
}

// TestRoundTrip decodes what the encoder wrote and encodes it again: the
// bytes and the keys are the same.
func TestRoundTrip(t *testing.T) {
	full := sampleRegistry()
	tests := []struct {
		name string
		reg  *regData
	}{
		{"empty", &regData{}},
		{"full", full},
		{"one derived", &regData{head: AuditHead{Seq: 1, Hash: zeroHash}, recs: full.recs[:1]}},
		{"fractional time", &regData{recs: []*Record{{Device: Device{ID: "a", Source: SourceDerived, Status: StatusActive, KCV: "00000000",
			Created: t0.Add(1500 * time.Millisecond), Updated: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := encodeRegistry(nil, tt.reg)
			got, problems := decodeRegistry("r.json", bytes.Clone(data))
			if len(problems) > 0 {
				t.Fatalf("decode: %v", problems[0])
			}
			if again := encodeRegistry(nil, got); !bytes.Equal(again, data) {
				t.Fatalf("round trip differs:\n%s\n%s", again, data)
			}
			if len(got.recs) != len(tt.reg.recs) {
				t.Fatalf("%d records, want %d", len(got.recs), len(tt.reg.recs))
			}
			for i, r := range got.recs {
				w := tt.reg.recs[i]
				if (r.Key == nil) != (w.Key == nil) || r.Key != nil && !r.Key.Equal(w.Key) {
					t.Errorf("%s: key differs after the round trip", r.ID)
				}
				if !r.Created.Equal(w.Created) || !r.Updated.Equal(w.Updated) || r.RevokeReason != w.RevokeReason || len(r.History) != len(w.History) {
					t.Errorf("%s: fields differ after the round trip", r.ID)
				}
			}
		})
	}
}

// TestDecodeAcceptsOtherLayouts reads a registry reformatted by another tool
// (indentation, member order, escapes, unsorted devices) the same way.
func TestDecodeAcceptsOtherLayouts(t *testing.T) {
	text := `{"devices": [
	  {"updated": "2025-03-14T15:09:27Z", "kcv": "00000000", "status": "active", "epoch": 3,
	   "source": "derived", "created": "2025-03-14T16:09:27+01:00", "id": "b\u002d2"},
	  {"id": "a", "source": "derived", "epoch": 0, "status": "revoked", "kcv": "11111111",
	   "created": "2025-03-14T15:09:27Z", "updated": "2025-03-14T15:09:27Z", "revoked": "2025-03-14T15:09:27Z",
	   "revoke_reason": "caf\u00e9 \ud83d\ude00"}
	], "audit": {"hash": "` + zeroHash + `", "seq": 0}, "version": 1}`
	reg, problems := decodeRegistry("x.json", []byte(text))
	if len(problems) > 0 {
		t.Fatal(problems[0])
	}
	if len(reg.recs) != 2 || reg.recs[0].ID != "a" || reg.recs[1].ID != "b-2" || reg.recs[1].Epoch != 3 {
		t.Fatalf("unexpected records")
	}
	if reg.recs[0].RevokeReason != "café 😀" {
		t.Errorf("reason %q", reg.recs[0].RevokeReason)
	}
	if !reg.recs[1].Created.Equal(t0.Add(time.Second)) || reg.recs[1].Created.Location() != time.UTC {
		t.Errorf("created %v", reg.recs[1].Created)
	}
}

// TestDerivedOnlyHoldsNoKey: a registry of derived devices holds no key
// bytes in any encoding (design §5, R18, R22), and its records keep no key
// in memory either.
func TestDerivedOnlyHoldsNoKey(t *testing.T) {
	e := newEnv(t)
	master := canaryMaster(t)
	ctx := context.Background()
	var keys []*psk.Secret
	for i, id := range []string{"dev-a", "dev-b", "24:6F:28:AA:BB:CC"} {
		res, err := e.reg.Add(ctx, id, Derived(master, uint32(i)))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, res.Key)
	}
	res, err := e.reg.Rotate(ctx, "dev-a", RotateOptions{Master: master, Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	keys = append(keys, res.Key, psk.Derive(master, "dev-a", 0))
	for _, f := range []string{e.path, AuditPath(e.path)} {
		data := readFile(t, f)
		for _, k := range keys {
			assertNoKey(t, f, data, k)
		}
		assertNoKey(t, f, data, master)
		if bytes.Contains(data, []byte(`"psk"`)) {
			t.Fatalf("%s has a psk field", f)
		}
	}
	err = e.reg.Store().View(ctx, func(rd Reader) error {
		rd.Range(func(r *Record) bool {
			if r.Key != nil {
				t.Errorf("derived record %s holds a key", r.ID)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKCVChecker: the reading path's KCV equals psk.KCV for keys of every
// length, and rejects every other KCV (R14).
func TestKCVChecker(t *testing.T) {
	var c kcvChecker
	for n := 1; n <= 130; n++ {
		b := make([]byte, n)
		if _, err := (&counterReader{n: byte(n)}).Read(b); err != nil {
			t.Fatal(err)
		}
		k := psk.CopySecret(b)
		want := psk.KCV(k)
		if !c.matches(k, want) {
			t.Fatalf("%d-byte key: KCV differs from psk.KCV", n)
		}
		if c.matches(k, "00000000") && want != "00000000" || c.matches(k, want[:7]) {
			t.Fatalf("%d-byte key: a wrong KCV matched", n)
		}
	}
	if !c.matches(psk.CopySecret(mustDecodeHex("82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a")), "73b52cac") {
		t.Fatal("golden vector")
	}
	for _, b := range c.pad {
		if b != 0 {
			t.Fatal("pad not wiped")
		}
	}
}
