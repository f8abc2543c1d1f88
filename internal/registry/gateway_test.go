package registry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/usmp/usmp-psk/internal/psk"
)

// scriptsDir is the repository's scripts directory.
var scriptsDir = filepath.Join("..", "..", "scripts")

// python3 finds the interpreter. CI must run the gateway tests: there a
// missing python3 fails instead of skipping.
func python3(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is needed to test scripts/usmp_gateway.py (CI is set, so this is not skipped)")
		}
		t.Skip("python3 not found")
	}
	return p
}

// pythonEnv is the explicit environment of the Python children (R4): what
// finding and running the interpreter needs, nothing else, plus extra.
func pythonEnv(extra ...string) []string {
	env := []string{"PYTHONDONTWRITEBYTECODE=1", "PYTHONPATH=" + scriptsDir, "PYTHONIOENCODING=utf-8"}
	// CI too: the Python tests that need age or PostgreSQL fail there
	// instead of skipping.
	for _, k := range []string{"PATH", "HOME", "PYENV_ROOT", "PYENV_VERSION", "SYSTEMROOT", "LANG", "CI"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

// TestPythonUnittest runs scripts/test_usmp_gateway.py.
func TestPythonUnittest(t *testing.T) {
	py := python3(t)
	cmd := exec.Command(py, "-m", "unittest", "-q", "test_usmp_gateway")
	cmd.Dir = scriptsDir
	cmd.Env = pythonEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python unittest: %v\n%s", err, out)
	}
}

// gateway is a running driver process.
type gateway struct {
	t   *testing.T
	in  *json.Encoder
	out *bufio.Scanner
}

func startGateway(t *testing.T, env ...string) *gateway {
	t.Helper()
	return startGatewayWith(t, python3(t), env...)
}

// startGatewayWith runs the driver with the interpreter py.
func startGatewayWith(t *testing.T, py string, env ...string) *gateway {
	t.Helper()
	driver, _ := filepath.Abs(filepath.Join("testdata", "gateway_driver.py"))
	cmd := exec.Command(py, driver)
	cmd.Env = pythonEnv(env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	return &gateway{t: t, in: json.NewEncoder(stdin), out: bufio.NewScanner(stdout)}
}

type reply struct {
	OK    bool              `json:"ok"`
	Key   string            `json:"key"`
	Keys  map[string]string `json:"keys"`
	Error string            `json:"error"`
}

func (g *gateway) call(cmd map[string]any) reply {
	g.t.Helper()
	if err := g.in.Encode(cmd); err != nil {
		g.t.Fatal(err)
	}
	if !g.out.Scan() {
		g.t.Fatalf("the driver stopped: %v", g.out.Err())
	}
	var r reply
	if err := json.Unmarshal(g.out.Bytes(), &r); err != nil {
		g.t.Fatal(err)
	}
	return r
}

// expectKey checks one lookup: a key (byte for byte) or an exception type.
func (g *gateway) expectKey(id string, want *psk.Secret, wantErr string) {
	g.t.Helper()
	r := g.call(map[string]any{"op": "get", "id": id})
	switch {
	case wantErr != "":
		if r.Error != wantErr {
			g.t.Errorf("get_psk(%s): error %q, want %s", id, r.Error, wantErr)
		}
	case r.Error != "":
		g.t.Errorf("get_psk(%s): %s", id, r.Error)
	case r.Key != hex.EncodeToString(want.Expose()):
		g.t.Errorf("get_psk(%s): wrong key, want KCV %s", id, psk.KCV(want))
	}
}

// TestPythonGateway checks scripts/usmp_gateway.py against registries and
// exports the Go code wrote: every device's key byte for byte (derived at
// epochs 0 and 2, random, imported; stored keys in clear and sealed with a
// registry key), revoked and unknown devices, strict mode, the master as
// str, bytes or $USMP_MASTER_SECRET, and a rotation and a revocation seen
// at the next look-up, without a restart.
func TestPythonGateway(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the driver talks over pipes with a POSIX python3")
	}
	for _, sealed := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "sealed"}[sealed], func(t *testing.T) { pythonGateway(t, sealed) })
	}
}

func pythonGateway(t *testing.T, sealed bool) {
	ctx := context.Background()
	f := newFixture(t, "sqlite")
	var env []string
	if sealed {
		f.key = testRegistryKey(t)
		f.env.reg = f.open(t, testOptions(f.env))
		env = append(env, RegistryKeyEnv+"="+hex.EncodeToString(f.key.Expose()))
	}
	e := f.env
	master := canaryMaster(t)
	must := func(res *AddResult, err error) *psk.Secret {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return res.Key
	}
	keys := map[string]*psk.Secret{
		"d0":          must(e.reg.Add(ctx, "d0", Derived(master, 0))),
		"d2":          must(e.reg.Add(ctx, "d2", Derived(master, 2))),
		"rnd":         must(e.reg.Add(ctx, "rnd", Random())),
		"imp":         must(e.reg.Add(ctx, "imp", Imported(psk.CopySecret([]byte("an imported key of 28 bytes.."))))),
		"24:6F:28:AA": must(e.reg.Add(ctx, "24:6F:28:AA", Derived(master, 0))),
		"rot":         must(e.reg.Add(ctx, "rot", Derived(master, 0))),
	}
	for range 2 {
		res, err := e.reg.Rotate(ctx, "rot", RotateOptions{Master: master, Reason: "test"})
		if err != nil {
			t.Fatal(err)
		}
		keys["rot"] = res.Key
	}
	if !keys["rot"].Equal(psk.Derive(master, "rot", 2)) {
		t.Fatal("rot is not at epoch 2")
	}
	for _, id := range []string{"gone", "gone-d"} {
		spec := Random()
		if id == "gone-d" {
			spec = Derived(master, 0)
		}
		must(e.reg.Add(ctx, id, spec))
		if _, err := e.reg.Revoke(ctx, id, "test"); err != nil {
			t.Fatal(err)
		}
	}
	exportPath := filepath.Join(filepath.Dir(e.path), "export.json")
	ex, err := e.reg.Export(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(exportPath, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.WriteJSON(out); err != nil {
		t.Fatal(err)
	}
	out.Close()
	ex.Destroy()

	masterText := string(master.Expose())
	g := startGateway(t, append(env, psk.MasterEnv+"="+masterText)...)

	// load_psk_registry, of the export and of the database: exactly the
	// active devices, byte for byte.
	for _, path := range []string{exportPath, e.path} {
		r := g.call(map[string]any{"op": "load", "path": path})
		if r.Error != "" || len(r.Keys) != len(keys) {
			t.Fatalf("load_psk_registry(%s): %q, %d keys, want %d", path, r.Error, len(r.Keys), len(keys))
		}
		for id, k := range keys {
			if r.Keys[id] != hex.EncodeToString(k.Expose()) {
				t.Errorf("load_psk_registry(%s): device %s has the wrong key", path, id)
			}
		}
	}

	unknown := psk.Derive(master, "new-device", 0)
	for _, mode := range []struct {
		name   string
		master any
		strict bool
	}{
		{"env", nil, false},
		{"str", map[string]string{"str": masterText}, false},
		{"bytes strict", map[string]string{"hex": hex.EncodeToString(master.Expose())}, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			g.t = t
			if r := g.call(map[string]any{"op": "make", "registry": e.path, "master": mode.master, "strict": mode.strict}); !r.OK {
				t.Fatalf("make_get_psk: %s", r.Error)
			}
			for id, k := range keys {
				g.expectKey(id, k, "")
			}
			g.expectKey("gone", nil, "KeyError")
			g.expectKey("gone-d", nil, "KeyError")
			if mode.strict {
				g.expectKey("new-device", nil, "KeyError")
			} else {
				g.expectKey("new-device", unknown, "")
			}
		})
	}
	g.t = t

	// The same get_psk sees a rotation and a revocation at its next call.
	if r := g.call(map[string]any{"op": "make", "registry": e.path}); !r.OK {
		t.Fatal(r.Error)
	}
	g.expectKey("d0", keys["d0"], "")
	g.expectKey("rnd", keys["rnd"], "")
	rot, err := e.reg.Rotate(ctx, "d0", RotateOptions{Master: master, Reason: "reload test"})
	if err != nil {
		t.Fatal(err)
	}
	rot2, err := e.reg.Rotate(ctx, "imp", RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g.expectKey("d0", rot.Key, "")
	g.expectKey("imp", rot2.Key, "")
	if _, err := e.reg.Revoke(ctx, "rnd", "reload test"); err != nil {
		t.Fatal(err)
	}
	g.expectKey("rnd", nil, "KeyError")

	// A wrong master secret is caught by the KCV, not served.
	if r := g.call(map[string]any{"op": "make", "registry": e.path, "master": map[string]string{"str": "wrong master"}}); !r.OK {
		t.Fatal(r.Error)
	}
	g.expectKey("d2", nil, "RegistryError")
	g.expectKey("rot", nil, "RegistryError")
}

// TestLooksLikeKeyAgreesWithPython: the gateway module's looks_like_key
// and psk.LooksLikeKey give the same answer, over fixed ids and keys and
// over random strings of their alphabets (seeded: the same every run).
func TestLooksLikeKeyAgreesWithPython(t *testing.T) {
	py := python3(t)
	cases := []string{"device-id-1", "24:6F:28:AA:BB:CC", "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef",
		strings.Repeat("9f:", 15) + "9f", strings.Repeat("9f:", 14) + "9f", "gggggggggggggggggggggggggggggggggggggggggggg",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="}
	rng := rand.New(rand.NewPCG(13, 9))
	const alphabet = "0123456789abcdefABCDEFgG:+/-_="
	for range 1000 {
		n := 30 + rng.IntN(20)
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	// Keys in every encoding, and each with one character changed.
	for range 300 {
		k := make([]byte, 32)
		for i := range k {
			k[i] = byte(rng.Uint32())
		}
		for _, enc := range []string{hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), base64.RawStdEncoding.EncodeToString(k),
			base64.URLEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k), colonHex(k)} {
			b := []byte(enc)
			b[rng.IntN(len(b))] = alphabet[rng.IntN(len(alphabet))]
			cases = append(cases, enc, string(b))
		}
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", "import json, sys, usmp_gateway as g; print(json.dumps([g.looks_like_key(s) for s in json.load(sys.stdin)]))")
	cmd.Dir, cmd.Env, cmd.Stdin = scriptsDir, pythonEnv(), bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var got []bool
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(cases) {
		t.Fatalf("python answered %q (%v)", out, err)
	}
	for i, s := range cases {
		if want := psk.LooksLikeKey(s); got[i] != want {
			t.Errorf("%q: python %v, Go %v", s, got[i], want)
		}
	}
}

func colonHex(k []byte) string {
	parts := make([]string, len(k))
	for i, c := range k {
		parts[i] = hex.EncodeToString([]byte{c})
	}
	return strings.Join(parts, ":")
}
