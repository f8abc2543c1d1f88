package registry

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/usmp/usmp-psk/internal/psk"
)

// kcvTwins returns two different 32-byte keys with one KCV, found by a
// deterministic birthday search (about 2^16 KCVs).
func kcvTwins(t testing.TB) (a, b []byte) {
	t.Helper()
	seen := map[string][]byte{}
	for i := uint64(0); i < 1<<22; i++ {
		k := make([]byte, 32)
		binary.BigEndian.PutUint64(k, i)
		copy(k[8:], "usmp-psk kcv twin search 0123456")
		kcv := psk.KCV(psk.NewSecret(k))
		if o, ok := seen[kcv]; ok {
			return o, k
		}
		seen[kcv] = k
	}
	t.Fatal("no KCV collision found")
	return nil, nil
}

// TestKeyReuse: one key imported for several devices, in one file or
// against a recorded device, is a warning naming the devices (never the
// key) and a finding of 'registry check'; two different keys that share a
// KCV are neither.
func TestKeyReuse(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f := newFixture(t, kind)
		e := f.env
		twinA, twinB := kcvTwins(t)
		same := strings.Repeat("5a17", 16)
		importCSV := func(t *testing.T, csv string) []string {
			t.Helper()
			before := len(e.warnings())
			set, err := ParseImport("keys.csv", []byte("id,psk\n"+csv))
			if err != nil {
				t.Fatal(err)
			}
			defer set.Destroy()
			if _, err := e.reg.Import(ctx, set); err != nil {
				t.Fatal(err)
			}
			return e.warnings()[before:]
		}
		if w := importCSV(t, "a,"+same+"\nb,"+same+"\nc,"+hex.EncodeToString(twinA)+"\nd,"+hex.EncodeToString(twinB)+"\n"); len(w) != 1 ||
			!strings.Contains(w[0], `2 devices: "a", "b"`) {
			t.Fatalf("warnings of an import with one key twice: %q", w)
		}
		if w := importCSV(t, "e,"+same+"\n"); len(w) != 1 || !strings.Contains(w[0], `3 devices: "a", "b", "e"`) {
			t.Fatalf("warnings of an import of a recorded key: %q", w)
		}
		before := len(e.warnings())
		res, err := e.reg.Add(ctx, "f", Imported(psk.NewSecret(append([]byte(nil), twinB...))))
		if err != nil {
			t.Fatal(err)
		}
		res.Key.Destroy()
		w := e.warnings()[before:]
		if len(w) != 1 || !strings.Contains(w[0], `2 devices: "d", "f"`) {
			t.Fatalf("warnings of an add of a recorded key: %q", w)
		}
		for _, msg := range e.warnings() {
			for _, k := range []string{same, hex.EncodeToString(twinA), hex.EncodeToString(twinB)} {
				if strings.Contains(msg, k) || strings.Contains(msg, k[:12]) {
					t.Fatalf("a warning repeats a key: %q", msg)
				}
			}
		}
		rep, err := e.reg.Check(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, fd := range rep.Findings {
			got = append(got, fd.Problem)
		}
		if len(got) != 2 || !strings.Contains(got[0], `3 devices: "a", "b", "e"`) || !strings.Contains(got[1], `2 devices: "d", "f"`) {
			t.Fatalf("check findings: %q", got)
		}
	})
}
