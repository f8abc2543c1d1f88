package registry

// The registry's behaviour, run on both engines: SQLite and PostgreSQL.
// What is specific to one (file modes, the git guard; the registry key
// requirement, schema upgrades) is tested in that engine's own tests.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usmp/usmp-psk/internal/golden"
	"github.com/usmp/usmp-psk/internal/psk"
)

// TestStoresGoldenOperations: the same operations give the same audit log,
// byte for byte, on both stores (the golden file of TestGoldenOperations):
// the PostgreSQL store chains and hashes its entries exactly like the file.
func TestStoresGoldenOperations(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		env := map[string]string{"GITHUB_RUN_ID": "42", "GITHUB_JOB": "provision", "USMP_MASTER_SECRET": "never read"}
		f := newFixture(t, kind, func(o *Options) {
			o.Rand = &counterReader{}
			o.Getenv = func(k string) string { return env[k] }
		})
		reg := f.env.reg
		ctx := context.Background()
		master := psk.NewSecret([]byte("golden master secret"))
		if _, err := reg.Init(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Add(ctx, "dev-1", Derived(master, 0)); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Add(ctx, "rnd-1", Random()); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Rotate(ctx, "dev-1", RotateOptions{Master: master, Reason: "scheduled"}); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Revoke(ctx, "rnd-1", "lost"); err != nil {
			t.Fatal(err)
		}
		set, err := ParseImport("in.csv", []byte("id,psk\nimp-1,000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Import(ctx, set); err != nil {
			t.Fatal(err)
		}
		ex, err := reg.Export(ctx, master)
		if err != nil {
			t.Fatal(err)
		}
		ex.Destroy()
		golden.CheckFile(t, filepath.Join("testdata", "TestGoldenOperations.audit.golden"), auditLinesOf(t, reg))
		rep, err := reg.VerifyAudit(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Entries != 7 || len(rep.Findings) != 0 || rep.Head.Seq != 7 {
			t.Fatalf("audit report %+v", rep)
		}
	})
}

// TestStoresAddLookupRotateRevoke is TestAddLookupRotateRevoke on both
// stores.
func TestStoresAddLookupRotateRevoke(t *testing.T) { //nolint:gocognit,gocyclo // one scenario per store, each step building on the one before
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f := newFixture(t, kind)
		e := f.env
		master := canaryMaster(t)

		if _, err := e.reg.List(ctx); !errors.Is(err, ErrNoRegistry) || !isBadInput(err) {
			t.Fatalf("list of a missing registry: %v", err)
		}
		if _, err := e.reg.Revoke(ctx, "x", ""); !errors.Is(err, ErrNoRegistry) {
			t.Fatalf("revoke in a missing registry: %v", err)
		}
		if _, err := e.reg.VerifyAudit(ctx, nil); !errors.Is(err, ErrNoRegistry) {
			t.Fatalf("audit of a missing registry: %v", err)
		}
		if f.exists(t) {
			t.Fatal("revoke created the registry")
		}
		d, err := e.reg.Add(ctx, "d", Derived(master, 0))
		if err != nil {
			t.Fatal(err)
		}
		if len(e.made) != 1 || e.made[0] != f.loc {
			t.Fatalf("OnCreate calls %v", e.made)
		}
		if want := psk.Derive(master, "d", 0); !d.Key.Equal(want) || d.Device.KCV != psk.KCV(want) {
			t.Fatal("derived add returned the wrong key or KCV")
		}
		if _, err := e.reg.Init(ctx); !errors.Is(err, ErrRegistryExists) || !isBadInput(err) {
			t.Fatalf("init over an existing registry: %v", err)
		}
		r, err := e.reg.Add(ctx, "r", Random())
		if err != nil {
			t.Fatal(err)
		}
		imp := psk.CopySecret([]byte("0123456789abcdef"))
		if _, err := e.reg.Add(ctx, "i", Imported(imp)); err != nil {
			t.Fatal(err)
		}
		if w := e.warnings(); len(w) != 1 || !strings.Contains(w[0], "16 bytes") {
			t.Fatalf("warnings %q", w)
		}
		for _, tt := range []struct {
			id      string
			master  *psk.Secret
			want    *psk.Secret
			wantErr error
		}{
			{"d", master, psk.Derive(master, "d", 0), nil},
			{"r", nil, r.Key, nil},
			{"i", nil, imp, nil},
			{"nobody", master, nil, ErrUnknownDevice},
			{"d", nil, nil, ErrNeedMaster},
			{"d", canaryMaster(t), nil, ErrMasterMismatch},
		} {
			k, _, err := e.reg.Key(ctx, tt.id, tt.master)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("key %s: err = %v, want %v", tt.id, err, tt.wantErr)
			}
			if tt.want != nil && !k.Equal(tt.want) {
				t.Fatalf("key %s: wrong key", tt.id)
			}
		}

		// Refused changes change nothing.
		before := f.state(t)
		if _, err := e.reg.Add(ctx, "d", Random()); !errors.Is(err, ErrDeviceExists) || !isBadInput(err) {
			t.Fatalf("second add: %v", err)
		}
		var me *MismatchError
		if _, err := e.reg.Add(ctx, "d2", Derived(canaryMaster(t), 0)); !errors.As(err, &me) {
			t.Fatalf("add with a wrong master: %v", err)
		}
		if _, err := e.reg.Rotate(ctx, "d", RotateOptions{Master: canaryMaster(t)}); !errors.Is(err, ErrMasterMismatch) {
			t.Fatalf("rotation with a wrong master: %v", err)
		}
		if _, err := e.reg.Rotate(ctx, "ghost", RotateOptions{Master: master}); !errors.Is(err, ErrUnknownDevice) {
			t.Fatalf("rotation of an unknown device: %v", err)
		}
		if f.state(t) != before {
			t.Fatal("a refused operation changed the registry")
		}

		rot, err := e.reg.Rotate(ctx, "d", RotateOptions{Master: master, Reason: "compromised"})
		if err != nil {
			t.Fatal(err)
		}
		if rot.Device.Epoch != 1 || !rot.Key.Equal(psk.Derive(master, "d", 1)) || rot.OldKCV != d.Device.KCV {
			t.Fatal("derived rotation did not move to epoch 1")
		}
		rot2, err := e.reg.Rotate(ctx, "r", RotateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rot2.Key.Equal(r.Key) || rot2.Device.Source != SourceRandom || rot2.Device.Epoch != 1 {
			t.Fatal("random rotation kept the key")
		}
		nk := psk.CopySecret(bytes.Repeat([]byte{7}, 32))
		rot4, err := e.reg.Rotate(ctx, "i", RotateOptions{NewKey: nk})
		if err != nil {
			t.Fatal(err)
		}
		if rot4.Device.Source != SourceImported || len(rot4.Device.History) != 1 || rot4.Device.History[0].Source != SourceImported {
			t.Fatalf("rotation to an imported key: %+v", rot4.Device)
		}
		ghost, err := e.reg.Rotate(ctx, "ghost", RotateOptions{Master: master, Register: true})
		if err != nil {
			t.Fatal(err)
		}
		if ghost.Device.Epoch != 1 || ghost.OldKCV != psk.KCV(psk.Derive(master, "ghost", 0)) {
			t.Fatal("registering rotation")
		}
		dev, err := e.reg.Revoke(ctx, "r", "decommissioned")
		if err != nil {
			t.Fatal(err)
		}
		if dev.Status != StatusRevoked || dev.RevokeReason != "decommissioned" || dev.Revoked.IsZero() {
			t.Fatalf("revoked device %+v", dev)
		}
		if _, err := e.reg.Revoke(ctx, "r", ""); !errors.Is(err, ErrRevoked) {
			t.Fatalf("second revoke: %v", err)
		}
		if _, _, err := e.reg.Key(ctx, "r", nil); !errors.Is(err, ErrRevoked) {
			t.Fatalf("key of a revoked device: %v", err)
		}
		// The revoked key is gone from the storage (the file: in clear;
		// PostgreSQL: not even sealed).
		assertNoKey(t, "the registry", []byte(f.state(t)), rot2.Key)
		assertNoKey(t, "the registry", []byte(f.state(t)), r.Key)

		st, err := e.reg.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st != (Stats{Devices: 4, Active: 3, Revoked: 1, ActiveDerived: 2, ActiveStored: 1}) {
			t.Fatalf("stats %+v", st)
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
			t.Fatalf("export has devices %v", ex.ids)
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
		show, err := e.reg.Show(ctx, "i")
		if err != nil || len(show.History) != 1 || show.History[0].Retired.Location() != time.UTC || show.Created.Location() != time.UTC || show.Created.Before(t0) {
			t.Fatalf("show: %v %+v", err, show)
		}
		rep, err := e.reg.Check(ctx, master)
		if err != nil || len(rep.Findings) != 0 || rep.Devices != 4 || rep.Checked != 2 {
			t.Fatalf("check: %v %+v", err, rep)
		}
		if _, err := e.reg.VerifyAudit(ctx, nil); err != nil {
			t.Fatal(err)
		}
		// Another master: one finding per derived KCV, current and retired.
		rep, err = e.reg.Check(ctx, canaryMaster(t))
		if err != nil || len(rep.Findings) != 4 {
			t.Fatalf("check with another master: %v %v", err, rep.Findings)
		}
	})
}

// TestStoresRefusedAddCreatesNothing: an add refused before or inside the
// transaction leaves no registry behind.
func TestStoresRefusedAddCreatesNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f := newFixture(t, kind)
		if _, err := f.env.reg.Add(ctx, "p", Imported(psk.CopySecret([]byte("your-generated-psk-here")))); err == nil || !isBadInput(err) {
			t.Fatalf("placeholder: %v", err)
		}
		if _, err := f.env.reg.Add(ctx, "bad id", Random()); !isBadInput(err) {
			t.Fatalf("bad id: %v", err)
		}
		// Refused inside the transaction that would create the registry:
		// registering an unknown device without the master secret.
		if _, err := f.env.reg.Rotate(ctx, "x", RotateOptions{Register: true}); !errors.Is(err, ErrNeedMaster) {
			t.Fatalf("register without master: %v", err)
		}
		if f.exists(t) {
			t.Fatal("a refused add created the registry")
		}
		if len(f.env.made) != 0 {
			t.Fatal("OnCreate for a refused add")
		}
	})
}

// TestStoresAddManyRerun is TestAddManyRerun on both stores.
func TestStoresAddManyRerun(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f := newFixture(t, kind)
		master := canaryMaster(t)
		reqs := []AddRequest{{"b-1", Derived(master, 0)}, {"b-2", Random()}, {"b-3", Imported(psk.CopySecret(bytes.Repeat([]byte{9}, 32)))}}
		first, err := f.env.reg.AddMany(ctx, reqs, AddOptions{Event: EventBatch, KeepExisting: true})
		if err != nil {
			t.Fatal(err)
		}
		again, err := f.env.reg.AddMany(ctx, reqs, AddOptions{Event: EventBatch, KeepExisting: true})
		if err != nil {
			t.Fatal(err)
		}
		for i := range first {
			if first[i].Existing || !again[i].Existing || !first[i].Key.Equal(again[i].Key) {
				t.Fatalf("device %s: re-run differs", reqs[i].ID)
			}
		}
		before := f.state(t)
		_, err = f.env.reg.AddMany(ctx, []AddRequest{{"b-4", Random()}, {"b-1", Derived(master, 1)}}, AddOptions{Event: EventBatch, KeepExisting: true})
		if !errors.Is(err, ErrDeviceExists) {
			t.Fatalf("conflicting re-run: %v", err)
		}
		if f.state(t) != before {
			t.Fatal("a failed batch changed the registry or the audit log")
		}
		entries := auditEntries(t, f.env.reg)
		if len(entries) != 4 || entries[1].Event != EventBatch || entries[3].Device != "b-3" {
			t.Fatalf("audit entries %+v", entries)
		}
	})
}

// TestStoresInit: init creates an empty registry with its init entry and
// refuses an existing one, which it leaves as it is.
func TestStoresInit(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f := newFixture(t, kind)
		if _, err := f.env.reg.Init(ctx); err != nil {
			t.Fatal(err)
		}
		before := f.state(t)
		_, err := f.env.reg.Init(ctx)
		if !errors.Is(err, ErrRegistryExists) || !isBadInput(err) {
			t.Fatalf("second init: %v", err)
		}
		if f.state(t) != before {
			t.Fatal("init changed an existing registry")
		}
		if len(f.env.made) != 0 {
			t.Fatal("init reported an implicit creation")
		}
		list, err := f.env.reg.List(ctx)
		if err != nil || len(list) != 0 {
			t.Fatalf("list of an empty registry: %v %v", err, list)
		}
		entries := auditEntries(t, f.env.reg)
		if len(entries) != 1 || entries[0].Event != EventInit {
			t.Fatalf("audit of a new registry: %+v", entries)
		}
	})
}

// TestStoresOrder: list and export follow byte order of the ids, whatever
// the database's collation (the CI database sorts with ICU en-US).
func TestStoresOrder(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f := newFixture(t, kind)
		in := []string{"b", "B", "a", "A_2", "a-1", "a.1", "a:1", "Z", "0", "a1", "aB", "ab", "24:6F:28:AA"}
		var reqs []AddRequest
		master := canaryMaster(t)
		for _, id := range in {
			reqs = append(reqs, AddRequest{id, Derived(master, 0)})
		}
		if _, err := f.env.reg.AddMany(ctx, reqs, AddOptions{}); err != nil {
			t.Fatal(err)
		}
		want := append([]string(nil), in...)
		sortStrings(want)
		list, err := f.env.reg.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(ids(list), " "); got != strings.Join(want, " ") {
			t.Fatalf("order\n%s\nwant\n%s", got, strings.Join(want, " "))
		}
		ex, err := f.env.reg.Export(ctx, master)
		if err != nil {
			t.Fatal(err)
		}
		defer ex.Destroy()
		if got := strings.Join(ex.ids, " "); got != strings.Join(want, " ") {
			t.Fatalf("export order %s", got)
		}
	})
}

// TestStoresConcurrentGoroutines (R17, under -race): 32 goroutines, each
// with its own Registry (and so its own lock or connection), add devices
// to one registry that none of them created; nothing is lost, the registry
// is created once.
func TestStoresConcurrentGoroutines(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		const n = 32
		f := newFixture(t, kind)
		master := canaryMaster(t)
		var created collector
		var wg sync.WaitGroup
		errc := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reg := f.open(t, Options{LockTimeout: time.Minute, Now: clock(), User: func() string { return "g" }, Getenv: func(string) string { return "" },
					OnCreate: created.add})
				spec := Random()
				if i%2 == 0 {
					spec = Derived(master, uint32(i))
				}
				res, err := reg.Add(context.Background(), fmt.Sprintf("go-%02d", i), spec)
				if err != nil {
					errc <- err
					return
				}
				res.Key.Destroy()
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		if c := created.all(); len(c) != 1 {
			t.Errorf("the registry was created %d times", len(c))
		}
		checkAllDevices(t, f.env.reg, seqIDs("go-%02d", n))
	})
}

// TestStoresConcurrentProcesses (R17): 32 processes add devices to one
// registry at once (TestHelperWriter); every one succeeds, nothing is lost.
func TestStoresConcurrentProcesses(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		const n = 32
		f := newFixture(t, kind)
		var wg sync.WaitGroup
		errs := make([]string, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := helperCmd(t, f.loc, fmt.Sprintf("proc-%02d", i))
				cmd.Env = append(cmd.Env, f.childEnv()...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Run(); err != nil {
					errs[i] = fmt.Sprintf("child %d: %v: %s", i, err, stderr.String())
				}
			}()
		}
		wg.Wait()
		for _, e := range errs {
			if e != "" {
				t.Error(e)
			}
		}
		checkAllDevices(t, f.env.reg, seqIDs("proc-%02d", n))
	})
}

// childEnv is what a child process needs to open the fixture's registry
// with Open: the database password source and the registry key.
func (f *fixture) childEnv() []string {
	if f.kind == "sqlite" {
		return nil
	}
	env := []string{RegistryKeyEnv + "=" + hex.EncodeToString(f.key.Expose())}
	for _, kv := range pgChildEnv() {
		if strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

// Environment of the batch helper process (TestHelperBatchWriter).
const (
	helperBatchPrefix = "USMP_REGISTRY_TEST_PREFIX"
	helperBatchN      = "USMP_REGISTRY_TEST_N"
	helperMaster      = "USMP_REGISTRY_TEST_MASTER"
)

// TestHelperBatchWriter is not a test: it is a child process of
// TestStoresConcurrentBatches. It records N devices PREFIX-000… in chunks
// of 10 the way 'usmp-psk batch' does (AddMany, event batch, KeepExisting),
// every third one random, the others derived; it exits 1 with the error on
// stderr.
func TestHelperBatchWriter(t *testing.T) {
	if os.Getenv(helperEnv) != "batch" {
		t.Skip("helper process for the concurrent batch test")
	}
	reg, err := Open(os.Getenv(helperPath), Options{LockTimeout: 2 * time.Minute, User: func() string { return "batch" }, Getenv: func(string) string { return "" }})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	master := psk.CopySecret([]byte(os.Getenv(helperMaster)))
	var n int
	if _, err := fmt.Sscan(os.Getenv(helperBatchN), &n); err != nil {
		fmt.Fprintln(os.Stderr, "$"+helperBatchN+":", err)
		os.Exit(1)
	}
	prefix := os.Getenv(helperBatchPrefix)
	for start := 0; start < n; start += 10 {
		var reqs []AddRequest
		for i := start; i < min(start+10, n); i++ {
			spec := Derived(master, 0)
			if i%3 == 0 {
				spec = Random()
			}
			reqs = append(reqs, AddRequest{fmt.Sprintf("%s-%03d", prefix, i), spec})
		}
		res, err := reg.AddMany(context.Background(), reqs, AddOptions{Event: EventBatch, KeepExisting: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, r := range res {
			r.Key.Destroy()
		}
	}
	os.Exit(0)
}

// TestStoresConcurrentBatches (issue 8, "judged by"): two batches of 120
// devices in chunks of 10, run as processes at the same time as 16 hand
// adds (processes) and 16 adds from goroutines, into one registry: nothing
// is lost or recorded twice, the audit chain holds one entry per device.
// A second run of both batches (a re-run) changes nothing.
func TestStoresConcurrentBatches(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		const batchN, hand = 120, 16
		f := newFixture(t, kind)
		master := canaryMaster(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []string
		run := func(what string, cmdEnv []string) {
			defer wg.Done()
			helper := "^TestHelperWriter$"
			if cmdEnv[0] == helperEnv+"=batch" {
				helper = "^TestHelperBatchWriter$"
			}
			cmd := exec.Command(os.Args[0], "-test.run="+helper, "-test.count=1")
			cmd.Env = append(append(append(cmdEnv, helperPath+"="+f.loc), f.childEnv()...), pgChildEnv()...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("%s: %v: %s", what, err, stderr.String()))
				mu.Unlock()
			}
		}
		batch := func(prefix string) []string {
			return []string{helperEnv + "=batch", helperBatchPrefix + "=" + prefix, fmt.Sprintf("%s=%d", helperBatchN, batchN), helperMaster + "=" + string(master.Expose())}
		}
		start := func() {
			for _, p := range []string{"line1", "line2"} {
				wg.Add(1)
				go run("batch "+p, batch(p))
			}
		}
		start()
		for i := range hand {
			wg.Add(1)
			go run(fmt.Sprintf("hand add %d", i), []string{helperEnv + "=add", helperID + "=" + fmt.Sprintf("hand-%02d", i)})
			wg.Add(1)
			go func() {
				defer wg.Done()
				reg := f.open(t, Options{LockTimeout: time.Minute, User: func() string { return "g" }, Getenv: func(string) string { return "" }})
				res, err := reg.Add(context.Background(), fmt.Sprintf("goroutine-%02d", i), Derived(master, 1))
				if err != nil {
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
					return
				}
				res.Key.Destroy()
			}()
		}
		wg.Wait()
		for _, e := range errs {
			t.Error(e)
		}
		if t.Failed() {
			return
		}
		want := append(append(seqIDs("line1-%03d", batchN), seqIDs("line2-%03d", batchN)...), append(seqIDs("hand-%02d", hand), seqIDs("goroutine-%02d", hand)...)...)
		checkAllDevices(t, f.env.reg, want)
		before := f.state(t)
		start()
		wg.Wait()
		for _, e := range errs {
			t.Error(e)
		}
		if f.state(t) != before {
			t.Fatal("re-running the batches changed the registry")
		}
	})
}

// sortStrings sorts by bytes (what the stores promise).
func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestStoresExportForGateway (issue 8, "judged by"): the export of a
// registry holds every active device's key, and the gateway module loads
// it byte for byte (load_psk_registry), whatever the store.
func TestStoresExportForGateway(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		ctx := context.Background()
		f := newFixture(t, kind)
		master := canaryMaster(t)
		keys := map[string]*psk.Secret{}
		for _, q := range []AddRequest{{"d0", Derived(master, 0)}, {"d2", Derived(master, 2)}, {"rnd", Random()},
			{"imp", Imported(psk.CopySecret([]byte("an imported key of 28 bytes..")))}, {"24:6F:28:AA", Derived(master, 0)}, {"gone", Random()}} {
			res, err := f.env.reg.Add(ctx, q.ID, q.Key)
			if err != nil {
				t.Fatal(err)
			}
			keys[q.ID] = res.Key
		}
		rot, err := f.env.reg.Rotate(ctx, "rnd", RotateOptions{Reason: "test"})
		if err != nil {
			t.Fatal(err)
		}
		keys["rnd"] = rot.Key
		if _, err := f.env.reg.Revoke(ctx, "gone", "test"); err != nil {
			t.Fatal(err)
		}
		delete(keys, "gone")
		ex, err := f.env.reg.Export(ctx, master)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "export.json")
		out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if err := ex.WriteJSON(out); err != nil {
			t.Fatal(err)
		}
		out.Close()
		ex.Destroy()
		g := startGateway(t)
		r := g.call(map[string]any{"op": "load", "path": path})
		if r.Error != "" || len(r.Keys) != len(keys) {
			t.Fatalf("load_psk_registry: %q, %d keys, want %d", r.Error, len(r.Keys), len(keys))
		}
		for id, k := range keys {
			if r.Keys[id] != hex.EncodeToString(k.Expose()) {
				t.Errorf("load_psk_registry: device %s has the wrong key", id)
			}
		}
		entries := auditEntries(t, f.env.reg)
		if entries[len(entries)-1].Event != EventExport {
			t.Fatal("the export is not in the audit log")
		}
	})
}
