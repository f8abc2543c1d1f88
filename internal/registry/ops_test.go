package registry

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/usmp/usmp-psk/internal/psk"
)

type badInput interface{ BadInput() bool }
type verifyFailed interface{ VerifyFailed() bool }

func isBadInput(err error) bool {
	var b badInput
	return errors.As(err, &b) && b.BadInput()
}

// TestGoldenOperations pins the registry and the audit log after a fixed
// sequence of operations (design §5): the file layout, the audit line
// format, the actor with CI identifiers and the hash chain.
func TestGoldenOperations(t *testing.T) {
	env := map[string]string{"GITHUB_RUN_ID": "42", "GITHUB_JOB": "provision", "USMP_MASTER_SECRET": "never read"}
	e := newEnv(t, func(o *Options) {
		o.Rand = &counterReader{}
		o.Getenv = func(k string) string { return env[k] }
	})
	ctx := context.Background()
	master := psk.NewSecret([]byte("golden master secret"))
	steps := []func() error{
		func() error { return e.reg.Init(ctx) },
		func() error { _, err := e.reg.Add(ctx, "dev-1", Derived(master, 0)); return err },
		func() error { _, err := e.reg.Add(ctx, "rnd-1", Random()); return err },
		func() error {
			_, err := e.reg.Rotate(ctx, "dev-1", RotateOptions{Master: master, Reason: "scheduled"})
			return err
		},
		func() error { _, err := e.reg.Revoke(ctx, "rnd-1", "lost"); return err },
		func() error {
			set, err := ParseImport("in.csv", []byte("id,psk\nimp-1,000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"))
			if err != nil {
				return err
			}
			_, err = e.reg.Import(ctx, set)
			return err
		},
		func() error {
			ex, err := e.reg.Export(ctx, master)
			ex.Destroy()
			return err
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	golden(t, "TestGoldenOperations.registry", readFile(t, e.path))
	golden(t, "TestGoldenOperations.audit", readFile(t, AuditPath(e.path)))
	rep, err := e.reg.VerifyAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 7 || rep.Uncommitted != 0 {
		t.Fatalf("audit report %+v", rep)
	}
	if strings.Contains(string(readFile(t, AuditPath(e.path))), "never read") {
		t.Fatal("the actor read the master secret variable")
	}
}

func TestAddLookupRotateRevoke(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	master := canaryMaster(t)

	if _, err := e.reg.List(ctx); !errors.Is(err, ErrNoRegistry) || !isBadInput(err) {
		t.Fatalf("list of a missing registry: %v", err)
	}
	if _, err := e.reg.Revoke(ctx, "x", ""); !errors.Is(err, ErrNoRegistry) {
		t.Fatalf("revoke in a missing registry: %v", err)
	}
	if _, err := os.Stat(e.path); err == nil {
		t.Fatal("revoke created the registry")
	}

	// add creates a missing registry and says so once.
	d, err := e.reg.Add(ctx, "d", Derived(master, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.made) != 1 || e.made[0] != e.path {
		t.Fatalf("OnCreate calls %v", e.made)
	}
	if want := psk.Derive(master, "d", 0); !d.Key.Equal(want) || d.Device.KCV != psk.KCV(want) || d.Device.Source != SourceDerived {
		t.Fatal("derived add returned the wrong key or KCV")
	}
	if err := e.reg.Init(ctx); !errors.Is(err, ErrRegistryExists) {
		t.Fatalf("init over an existing registry: %v", err)
	}
	r, err := e.reg.Add(ctx, "r", Random())
	if err != nil {
		t.Fatal(err)
	}
	if r.Key.Len() != 32 {
		t.Fatalf("random key of %d bytes", r.Key.Len())
	}
	imp := psk.CopySecret([]byte("0123456789abcdef"))
	if _, err := e.reg.Add(ctx, "i", Imported(imp)); err != nil {
		t.Fatal(err)
	}
	if w := e.warnings(); len(w) != 1 || !strings.Contains(w[0], "16 bytes") {
		t.Fatalf("warnings %q", w)
	}
	if len(e.made) != 1 {
		t.Fatal("OnCreate called again")
	}

	tests := []struct {
		name    string
		id      string
		master  *psk.Secret
		want    *psk.Secret
		wantErr error
	}{
		{"derived", "d", master, psk.Derive(master, "d", 0), nil},
		{"random", "r", nil, r.Key, nil},
		{"imported", "i", nil, imp, nil},
		{"unknown", "nobody", master, nil, ErrUnknownDevice},
		{"no master", "d", nil, nil, ErrNeedMaster},
		{"wrong master", "d", canaryMaster(t), nil, ErrMasterMismatch},
	}
	for _, tt := range tests {
		t.Run("key/"+tt.name, func(t *testing.T) {
			k, _, err := e.reg.Key(ctx, tt.id, tt.master)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.want != nil && !k.Equal(tt.want) {
				t.Fatal("wrong key")
			}
		})
	}

	// A second add of the same id is refused; the registry is unchanged.
	before := readFile(t, e.path)
	if _, err := e.reg.Add(ctx, "d", Random()); !errors.Is(err, ErrDeviceExists) || !isBadInput(err) {
		t.Fatalf("second add: %v", err)
	}
	// A derived add with another master is refused (R14: checked by KCV).
	var me *MismatchError
	if _, err := e.reg.Add(ctx, "d2", Derived(canaryMaster(t), 0)); !errors.As(err, &me) {
		t.Fatalf("add with a wrong master: %v", err)
	}
	if !bytes.Equal(before, readFile(t, e.path)) {
		t.Fatal("a refused add changed the registry")
	}

	// Rotation of each source.
	rot, err := e.reg.Rotate(ctx, "d", RotateOptions{Master: master, Reason: "compromised"})
	if err != nil {
		t.Fatal(err)
	}
	if rot.Device.Epoch != 1 || rot.OldEpoch != 0 || !rot.Key.Equal(psk.Derive(master, "d", 1)) || rot.OldKCV != d.Device.KCV {
		t.Fatal("derived rotation did not move to epoch 1")
	}
	if h := rot.Device.History; len(h) != 1 || h[0].KCV != d.Device.KCV || h[0].Reason != "compromised" || h[0].Epoch != 0 || h[0].Retired.IsZero() {
		t.Fatalf("history %+v", h)
	}
	rot2, err := e.reg.Rotate(ctx, "r", RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rot2.Key.Equal(r.Key) || rot2.Device.Source != SourceRandom || rot2.Device.Epoch != 1 {
		t.Fatal("random rotation kept the key")
	}
	rot3, err := e.reg.Rotate(ctx, "i", RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rot3.Device.Source != SourceRandom || rot3.Key.Len() != 32 {
		t.Fatal("imported rotation did not give a random key")
	}
	nk := psk.CopySecret(bytes.Repeat([]byte{7}, 32))
	rot4, err := e.reg.Rotate(ctx, "i", RotateOptions{NewKey: nk})
	if err != nil {
		t.Fatal(err)
	}
	if rot4.Device.Source != SourceImported || len(rot4.Device.History) != 2 || rot4.Device.History[1].Source != SourceRandom {
		t.Fatal("rotation to an imported key")
	}
	if _, err := e.reg.Rotate(ctx, "d", RotateOptions{Master: canaryMaster(t)}); !errors.Is(err, ErrMasterMismatch) {
		t.Fatalf("rotation with a wrong master: %v", err)
	}
	if _, err := e.reg.Rotate(ctx, "ghost", RotateOptions{Master: master}); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("rotation of an unknown device: %v", err)
	}
	reg, err := e.reg.Rotate(ctx, "ghost", RotateOptions{Master: master, Register: true})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Device.Epoch != 1 || reg.OldKCV != psk.KCV(psk.Derive(master, "ghost", 0)) {
		t.Fatal("registering rotation")
	}

	// Revocation drops a stored key and leaves the export.
	dev, err := e.reg.Revoke(ctx, "r", "decommissioned")
	if err != nil {
		t.Fatal(err)
	}
	if dev.Status != StatusRevoked || dev.RevokeReason != "decommissioned" || dev.Revoked.IsZero() {
		t.Fatalf("revoked device %+v", dev)
	}
	assertNoKey(t, "registry", readFile(t, e.path), rot2.Key)
	if _, err := e.reg.Revoke(ctx, "r", ""); !errors.Is(err, ErrRevoked) {
		t.Fatalf("second revoke: %v", err)
	}
	if _, err := e.reg.Rotate(ctx, "r", RotateOptions{}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("rotate revoked: %v", err)
	}
	if _, _, err := e.reg.Key(ctx, "r", nil); !errors.Is(err, ErrRevoked) {
		t.Fatalf("key of a revoked device: %v", err)
	}

	st, err := e.reg.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st != (Stats{Devices: 4, Active: 3, Revoked: 1, ActiveDerived: 2, ActiveStored: 1}) || !st.NeedsMaster() {
		t.Fatalf("stats %+v", st)
	}
	if _, err := e.reg.Export(ctx, nil); !errors.Is(err, ErrNeedMaster) {
		t.Fatalf("export without master: %v", err)
	}
	ex, err := e.reg.Export(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Destroy()
	var buf bytes.Buffer
	if err := ex.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal("export is not JSON")
	}
	want := map[string]string{
		"d":     hex.EncodeToString(psk.Derive(master, "d", 1).Expose()),
		"ghost": hex.EncodeToString(psk.Derive(master, "ghost", 1).Expose()),
		"i":     hex.EncodeToString(nk.Expose()),
	}
	if len(m) != len(want) {
		t.Fatalf("export has devices %v", ex.IDs())
	}
	for id, k := range want {
		if m[id] != k {
			t.Errorf("export: device %s has the wrong key", id)
		}
	}

	list, err := e.reg.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ids(list), ","); got != "d,ghost,i,r" {
		t.Fatalf("list %s", got)
	}
	sum, _ := json.Marshal(list[0].Summary())
	if !bytes.HasPrefix(sum, []byte(`{"id":"d","source":"derived","epoch":1,"status":"active","kcv":"`)) || !bytes.Contains(sum, []byte(`"created":"2025-03-14T15:09:`)) {
		t.Fatalf("summary JSON %s", sum)
	}
	show, err := e.reg.Show(ctx, "i")
	if err != nil || len(show.History) != 2 {
		t.Fatalf("show: %v %+v", err, show)
	}
	if _, err := e.reg.Show(ctx, "zz"); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("show unknown: %v", err)
	}
	rep, err := e.reg.Check(ctx, master)
	if err != nil || len(rep.Findings) != 0 || rep.Devices != 4 || rep.Checked != 2 {
		t.Fatalf("check: %v %+v", err, rep)
	}
	if _, err := e.reg.VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestImportedKeyRules: placeholders are refused wherever a key is taken in
// (design §3), with the rule's message; short keys are accepted with a
// warning.
func TestImportedKeyRules(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for _, k := range [][]byte{
		[]byte("7f3a1b9e2c4d5f6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a"),
		mustDecodeHex("7f3a1b9e2c4d5f6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a"),
		[]byte("your-generated-psk-here"),
		[]byte("unique-psk-for-device-1"),
	} {
		_, err := e.reg.Add(ctx, "p", Imported(psk.CopySecret(k)))
		if err == nil || !strings.Contains(err.Error(), "placeholder") || !isBadInput(err) {
			t.Fatalf("placeholder accepted or wrong error: %v", err)
		}
		if _, err := os.Stat(e.path); err == nil {
			t.Fatal("a refused add created the registry")
		}
	}
	if _, err := e.reg.Add(ctx, "bad id", Random()); !isBadInput(err) {
		t.Fatalf("bad id: %v", err)
	}
	if _, err := e.reg.Add(ctx, "d", Derived(nil, 0)); !errors.Is(err, ErrNeedMaster) {
		t.Fatalf("derived without master: %v", err)
	}
}

func mustDecodeHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestAddManyRerun: a batch re-run finds its devices and gets the same keys
// back; a conflicting re-run changes nothing.
func TestAddManyRerun(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	master := canaryMaster(t)
	reqs := []AddRequest{{"b-1", Derived(master, 0)}, {"b-2", Random()}, {"b-3", Imported(psk.CopySecret(bytes.Repeat([]byte{9}, 32)))}}
	first, err := e.reg.AddMany(ctx, reqs, AddOptions{Event: EventBatch, KeepExisting: true})
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.reg.AddMany(ctx, reqs, AddOptions{Event: EventBatch, KeepExisting: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		if first[i].Existing || !again[i].Existing || !first[i].Key.Equal(again[i].Key) {
			t.Fatalf("device %s: re-run differs", reqs[i].ID)
		}
	}
	before := readFile(t, e.path)
	beforeAudit := readFile(t, AuditPath(e.path))
	_, err = e.reg.AddMany(ctx, []AddRequest{{"b-4", Random()}, {"b-1", Derived(master, 1)}}, AddOptions{Event: EventBatch, KeepExisting: true})
	if !errors.Is(err, ErrDeviceExists) {
		t.Fatalf("conflicting re-run: %v", err)
	}
	if !bytes.Equal(before, readFile(t, e.path)) || !bytes.Equal(beforeAudit, readFile(t, AuditPath(e.path))) {
		t.Fatal("a failed batch changed the registry or the audit log")
	}
	entries, err := ReadAudit(AuditPath(e.path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 || entries[1].Event != EventBatch || entries[3].Device != "b-3" {
		t.Fatalf("audit entries %+v", entries)
	}
}

// TestCheckFindings: 'registry check' reports a wrong master per device, a
// stored placeholder, and an open mode on a registry with keys.
func TestCheckFindings(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	master := canaryMaster(t)
	for _, id := range []string{"a", "b"} {
		if _, err := e.reg.Add(ctx, id, Derived(master, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.reg.Rotate(ctx, "b", RotateOptions{Master: master}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Add(ctx, "r", Random()); err != nil {
		t.Fatal(err)
	}
	rep, err := e.reg.Check(ctx, canaryMaster(t))
	if err != nil {
		t.Fatal(err)
	}
	// a: kcv; b: kcv and its retired epoch-0 kcv.
	if len(rep.Findings) != 3 {
		t.Fatalf("findings %v", rep.Findings)
	}
	if err := os.Chmod(e.path, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = e.reg.Check(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || !strings.Contains(rep.Findings[0].Problem, "0644") {
		t.Fatalf("findings %v", rep.Findings)
	}
	if _, err := e.reg.List(ctx); err != nil {
		t.Fatal(err)
	}
	if w := e.warnings(); len(w) != 1 || !strings.Contains(w[0], "0644") {
		t.Fatalf("no warning for an open registry: %q", w)
	}
	// The next write makes it 0600 again (R5).
	if _, err := e.reg.Add(ctx, "c", Derived(master, 0)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(e.path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v after a write", fi.Mode())
	}
}
