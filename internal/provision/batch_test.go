package provision

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usmp/usmp-psk/internal/nvs/nvscrypt"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
	"github.com/usmp/usmp-psk/internal/secfile"
)

func TestCountIDs(t *testing.T) {
	c, err := NewCountIDs("fac-", 1, 2000)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID(0) != "fac-0001" || c.ID(1999) != "fac-2000" || c.Len() != 2000 {
		t.Fatalf("%s … %s", c.ID(0), c.ID(1999))
	}
	c, _ = NewCountIDs("d", 95, 10)
	if c.ID(0) != "d095" || c.ID(9) != "d104" {
		t.Fatalf("%s … %s", c.ID(0), c.ID(9))
	}
	for _, bad := range []struct {
		prefix       string
		start, count int
	}{{"bad id-", 1, 3}, {"", 1, 0}, {".x", 1, 2}, {strings.Repeat("p", 63), 1, 100}} {
		if _, err := NewCountIDs(bad.prefix, bad.start, bad.count); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	// An empty prefix gives plain numbers, which are valid ids.
	if c, err := NewCountIDs("", 7, 3); err != nil || c.ID(2) != "9" {
		t.Fatalf("empty prefix: %v", err)
	}
}

func TestReadIDs(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		errHas   string
	}{
		{"lines", "a\n# comment\n\nb\r\nc\n", []string{"a", "b", "c"}, ""},
		{"csv", "mac,id,batch\nx,dev-1,7\ny,\"dev-2\",7\n", []string{"dev-1", "dev-2"}, ""},
		{"header only id", "id\ndev-1\n", []string{"dev-1"}, ""},
		{"duplicate", "a\nb\na\n", nil, "ids:3: device a is listed twice (first on line 1)"},
		{"invalid", "a\nb c\n", nil, "ids:2: device id: character 2"},
		{"csv no id column", "mac,name\nx,y\n", nil, "needs an \"id\" column"},
		{"csv ragged", "id,x\na\n", nil, "ids:2: 1 fields"},
		{"empty", "\n# nothing\n", nil, "no device ids"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadIDs(strings.NewReader(tt.in), "ids")
			if tt.errHas != "" {
				var ie *IDError
				if err == nil || !strings.Contains(err.Error(), tt.errHas) || !errors.As(err, &ie) {
					t.Fatalf("err = %v, want %q", err, tt.errHas)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
}

// TestShardsSplitExactly: every position in exactly one shard, in order.
func TestShardsSplitExactly(t *testing.T) {
	for _, total := range []int{1, 7, 100, 1001} {
		for n := 1; n <= 5; n++ {
			seen := make([]int, total)
			for i := 1; i <= n; i++ {
				prev := -1
				s := Shard{I: i, N: n}
				if got, want := s.Count(total), len(s.Positions(total)); got != want {
					t.Fatalf("shard %d/%d of %d: Count %d, %d positions", i, n, total, got, want)
				}
				for _, p := range s.Positions(total) {
					if p%n != i-1 || p <= prev {
						t.Fatalf("shard %d/%d has position %d", i, n, p)
					}
					prev = p
					seen[p]++
				}
			}
			for p, c := range seen {
				if c != 1 {
					t.Fatalf("total %d n %d: position %d in %d shards", total, n, p, c)
				}
			}
		}
	}
	for _, bad := range []string{"0/2", "3/2", "1", "a/b", "1/0", "-1/2"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) accepted", bad)
		}
	}
}

func batchReg(t *testing.T, path string) *registry.Registry {
	t.Helper()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	reg, err := registry.Open(path, registry.Options{Now: func() time.Time { return now }, User: func() string { return "tester" }, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// snapshot returns every file under dir, byte for byte, but for a
// registry database (reg.db and its -wal and -shm files), whose bytes
// change with every connection: its records and audit log stand for it.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(filepath.Base(p), "reg.db") {
			if filepath.Base(p) == "reg.db" {
				out[rel] = []byte((&regFiles{reg: batchReg(t, p)}).snapshot(t))
			}
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameFiles(t *testing.T, a, b map[string][]byte) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d files, then %d", len(a), len(b))
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			t.Fatalf("%s differs", k)
		}
	}
}

type manifestFile struct {
	Manifest
	Devices []ManifestDevice `json:"devices"`
}

func TestBatchDerived(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	out := filepath.Join(root, "out")
	regPath := filepath.Join(root, "reg.db")
	ids, _ := NewCountIDs("fac-", 1, 60)
	spec := BatchSpec{IDs: ids, Source: Derive, Master: master, Out: out, Image: ImageOptions{Layout: DefaultLayout()}, Offset: DefaultOffset, Jobs: 3, Chunk: 25}
	res, err := RunBatch(ctx, batchReg(t, regPath), spec)
	if err != nil {
		t.Fatal(err)
	}
	if res.Devices != 60 || res.New != 60 || res.Existing != 0 {
		t.Fatalf("result %+v", res)
	}
	var m manifestFile
	mb, _ := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	if m.Version != 1 || len(m.Devices) != 60 || m.Count != 60 || m.Encrypted != "none" {
		t.Fatalf("manifest head %+v, %d devices", m.Manifest, len(m.Devices))
	}
	for i, d := range m.Devices {
		if d.ID != ids.ID(i) || d.Image != d.ID+".bin" || d.Offset != DefaultOffset || d.Source != registry.SourceDerived {
			t.Fatalf("manifest entry %d: %+v", i, d)
		}
		img, err := os.ReadFile(filepath.Join(out, d.Image))
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(filepath.Join(out, d.Image))
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("image mode %o", fi.Mode().Perm())
		}
		sum := sha256.Sum256(img)
		if hex.EncodeToString(sum[:]) != d.SHA256 {
			t.Fatal("sha256 in manifest is wrong")
		}
		di, err := ReadImage(img, ImageOptions{Layout: DefaultLayout()})
		key := psk.Derive(master, d.ID, 0)
		if err != nil || di.ID != d.ID || !di.Key.Equal(key) || psk.KCV(key) != d.KCV {
			t.Fatalf("image of %s does not hold its id and key", d.ID)
		}
		// No key bytes in the manifest (R18).
		if bytes.Contains(mb, []byte(hex.EncodeToString(key.Expose()))) {
			t.Fatal("manifest holds a key")
		}
	}
	before := snapshot(t, root)
	// A re-run changes nothing, byte for byte.
	res, err = RunBatch(ctx, batchReg(t, regPath), spec)
	if err != nil || res.Existing != 60 || res.New != 0 {
		t.Fatalf("re-run: %+v %v", res, err)
	}
	sameFiles(t, before, snapshot(t, root))
}

func TestBatchRandomPerDeviceKeysResumes(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	out := filepath.Join(root, "out")
	regPath := filepath.Join(root, "reg.db")
	ids := ListIDs{"24:6F:28:AA", "dev-b", "dev-c", "dev-d", "dev-e", "dev-f", "dev-g"}
	spec := BatchSpec{IDs: ids, Source: Random, Out: out, Image: ImageOptions{Layout: DefaultLayout()}, PerDeviceKeys: true, Jobs: 2, Chunk: 3}

	// Interrupted after the first chunk: the registry holds what was done.
	cctx, cancel := context.WithCancel(ctx)
	spec.Progress = func(done int) {
		if done >= 3 {
			cancel()
		}
	}
	if _, err := RunBatch(cctx, batchReg(t, regPath), spec); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "manifest.json")); err == nil {
		t.Fatal("a manifest was published by an interrupted run")
	}
	spec.Progress = nil
	res, err := RunBatch(ctx, batchReg(t, regPath), spec)
	if err != nil || res.Devices != 7 || res.Existing < 3 {
		t.Fatalf("resume: %+v %v", res, err)
	}
	reg := batchReg(t, regPath)
	for _, id := range ids {
		name := ImageName(id)
		kb, err := os.ReadFile(filepath.Join(out, "keys", name))
		if err != nil {
			t.Fatal(err)
		}
		keys, err := nvscrypt.ParseKeysPartition(kb)
		if err != nil {
			t.Fatal(err)
		}
		img, _ := os.ReadFile(filepath.Join(out, name))
		di, err := ReadImage(img, ImageOptions{Layout: DefaultLayout(), Keys: keys})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		want, _, err := reg.Key(ctx, id, nil)
		if err != nil || !di.Key.Equal(want) {
			t.Fatalf("%s: image key is not the registry's", id)
		}
		if bytes.Contains(img, want.Expose()) {
			t.Fatal("encrypted image holds the key in clear (R21)")
		}
	}
	if !strings.Contains(filepath.Base(filepath.Join(out, ImageName("24:6F:28:AA"))), "%3A") {
		t.Fatal("file name not escaped")
	}
	before := snapshot(t, root)
	if _, err := RunBatch(ctx, batchReg(t, regPath), spec); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, before, snapshot(t, root))
}

func TestBatchShardsAndPlan(t *testing.T) {
	ctx := context.Background()
	ids, _ := NewCountIDs("s-", 1, 10)
	var all []string
	for i := 1; i <= 3; i++ {
		root := t.TempDir()
		spec := BatchSpec{IDs: ids, Shard: Shard{I: i, N: 3}, Source: Derive, Master: master, Out: filepath.Join(root, "out"), Image: ImageOptions{Layout: DefaultLayout()}}
		var planned []string
		if err := Plan(spec, func(d PlannedDevice) error { planned = append(planned, d.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(spec.Out); err == nil {
			t.Fatal("Plan wrote something")
		}
		res, err := RunBatch(ctx, batchReg(t, filepath.Join(root, "reg.db")), spec)
		if err != nil || res.Devices != len(planned) {
			t.Fatalf("shard %d: %+v %v", i, res, err)
		}
		all = append(all, planned...)
	}
	if len(all) != 10 {
		t.Fatalf("shards cover %d devices", len(all))
	}
}

func TestBatchConflictsWithRecord(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := batchReg(t, filepath.Join(root, "reg.db"))
	if _, err := reg.Add(ctx, "c-1", registry.Random()); err != nil {
		t.Fatal(err)
	}
	ids, _ := NewCountIDs("c-", 1, 2)
	spec := BatchSpec{IDs: ids, Source: Derive, Master: master, Out: filepath.Join(root, "out"), Image: ImageOptions{Layout: DefaultLayout()}}
	var ce *ConflictError
	if _, err := RunBatch(ctx, reg, spec); !errors.As(err, &ce) {
		t.Fatalf("err = %v", err)
	}
}

func TestChunkBounds(t *testing.T) {
	tests := []struct {
		n, max int
		want   string
	}{
		{0, 16384, "[]"},
		{10, 16384, "[[0 10]]"},
		{3000, 16384, "[[0 512] [512 1536] [1536 3000]]"},
		{10, 3, "[[0 3] [3 6] [6 9] [9 10]]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(chunkBounds(tt.n, tt.max)); got != tt.want {
			t.Errorf("chunkBounds(%d, %d) = %s, want %s", tt.n, tt.max, got, tt.want)
		}
	}
}

// A shard with no devices (more shards than devices) writes an empty
// manifest.
func TestBatchEmptyShard(t *testing.T) {
	root := t.TempDir()
	ids := ListIDs{"only"}
	spec := BatchSpec{IDs: ids, Shard: Shard{I: 2, N: 2}, Source: Derive, Master: master, Out: filepath.Join(root, "out"), Image: ImageOptions{Layout: DefaultLayout()}}
	res, err := RunBatch(context.Background(), batchReg(t, filepath.Join(root, "reg.db")), spec)
	if err != nil || res.Devices != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	var m manifestFile
	b, _ := os.ReadFile(filepath.Join(root, "out", "manifest.json"))
	if err := json.Unmarshal(b, &m); err != nil || len(m.Devices) != 0 {
		t.Fatalf("manifest %s: %v", b, err)
	}
}

// panicReader panics when asked for random bytes (per-device keys).
type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("injected panic in a batch worker") }

// TestBatchWorkerPanic is R12 for the worker goroutines: a panic becomes an
// error without its value, and the process does not crash.
func TestBatchWorkerPanic(t *testing.T) {
	root := t.TempDir()
	spec := BatchSpec{IDs: ListIDs{"p-1", "p-2"}, Source: Random, Out: filepath.Join(root, "out"), Image: ImageOptions{Layout: DefaultLayout()}, PerDeviceKeys: true, Rand: panicReader{}}
	_, err := RunBatch(context.Background(), batchReg(t, filepath.Join(root, "reg.db")), spec)
	if !errors.Is(err, errWorkerPanic) || strings.Contains(err.Error(), "injected") {
		t.Fatalf("err = %v", err)
	}
}

// TestBatchRefusedLeavesNoDirectory (design §7, "nothing is left behind";
// R8): a batch that fails before it writes an image — here its registry is
// refused, in a directory others can write (R7) — removes the output
// directories it created; one that existed stays.
func TestBatchRefusedLeavesNoDirectory(t *testing.T) {
	for _, tt := range []struct {
		name    string
		out     string
		made    string // the first directory the batch creates
		perDev  bool
		existed bool
	}{
		{name: "new output directory", out: "a/b/out", made: "a"},
		{name: "new output and keys directories", out: "a/out", made: "a", perDev: true},
		{name: "existing output directory, new keys directory", out: "out", made: "out/keys", perDev: true, existed: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			open := filepath.Join(root, "open")
			if err := os.Mkdir(open, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(open, 0o777); err != nil {
				t.Fatal(err)
			}
			if tt.existed {
				if err := os.Mkdir(filepath.Join(root, tt.out), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			ids, _ := NewCountIDs("r-", 1, 2)
			spec := BatchSpec{IDs: ids, Source: Derive, Master: master, Out: filepath.Join(root, tt.out), Image: ImageOptions{Layout: DefaultLayout()}, PerDeviceKeys: tt.perDev}
			_, err := RunBatch(context.Background(), batchReg(t, filepath.Join(open, "reg.db")), spec)
			var ue *secfile.UnsafeError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want the registry refused", err)
			}
			if _, err := os.Lstat(filepath.Join(root, tt.made)); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s left behind: %v", tt.made, err)
			}
			if _, err := os.Lstat(filepath.Join(root, tt.out)); tt.existed && err != nil {
				t.Fatalf("the existing output directory: %v", err)
			}
		})
	}
}
