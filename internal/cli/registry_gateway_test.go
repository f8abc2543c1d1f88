package cli

// The gateway round trip (issue 5 items 3, 5 and 6; docs/gateway.md): what
// 'registry export' writes, to a file or a pipe, and the registry itself are
// loaded by scripts/usmp_gateway.py, and the gateway gets every device's key
// byte for byte — compared here as SHA-256 digests, so no key is printed
// even when the test fails. A rotation and a revocation reach a running
// make_get_psk without a restart.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

// registryScriptsDir is the repository's scripts directory, taken before any
// test changes directory.
var registryScriptsDir, _ = filepath.Abs(filepath.Join("..", "..", "scripts"))

// gatewayPython finds python3. In CI (CI set) a missing interpreter fails
// the test instead of skipping it.
func gatewayPython(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is needed for the gateway round trip (CI is set, so this is not skipped)")
		}
		t.Skip("python3 not found")
	}
	if _, err := os.Stat(filepath.Join(registryScriptsDir, "usmp_gateway.py")); err != nil {
		t.Fatal(err)
	}
	return p
}

// gatewayEnv is the explicit environment of the Python children (R4): what
// running the interpreter needs, the module's directory and the master.
func gatewayEnv(master string) []string {
	env := []string{"PYTHONDONTWRITEBYTECODE=1", "PYTHONPATH=" + registryScriptsDir, "PYTHONIOENCODING=utf-8", psk.MasterEnv + "=" + master}
	for _, k := range []string{"PATH", "HOME", "PYENV_ROOT", "PYENV_VERSION", "LANG", "SYSTEMROOT"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// gatewayDriver loads an export with load_psk_registry and the registry
// with make_get_psk (lenient and strict), prints the export's digests, then
// answers one device id per line with the digests of both lookups.
const gatewayDriver = `
import hashlib, json, sys
import usmp_gateway as g

def h(b):
    return hashlib.sha256(b).hexdigest()

registry, export = sys.argv[1], sys.argv[2]
keys = g.load_psk_registry(export)
assert g.load_psk_registry(registry) == keys, "the database and the export disagree"
get_psk = g.make_get_psk(registry)
strict = g.make_get_psk(registry, strict=True)
print(json.dumps({k.decode(): h(v) for k, v in keys.items()}), flush=True)
for line in sys.stdin:
    device_id = line.strip()
    out = {}
    for name, fn in (("get", get_psk), ("strict", strict)):
        try:
            out[name] = h(fn(device_id.encode()))
        except KeyError:
            out[name] = "KeyError"
    print(json.dumps(out), flush=True)
`

// gatewayPipe loads an export from standard input, as
// 'usmp-psk registry export | gateway' does.
const gatewayPipe = `
import hashlib, json, sys
import usmp_gateway as g
keys = g.load_psk_registry(sys.stdin.buffer)
print(json.dumps({k.decode(): hashlib.sha256(v).hexdigest() for k, v in keys.items()}))
`

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// expectedDigests are the digests of the keys of every active device,
// from the registry (stored keys) and, for derived devices, from an
// independent derivation at the recorded epoch.
func expectedDigests(t *testing.T, path, master string) map[string]string {
	t.Helper()
	ctx := context.Background()
	reg, err := registry.Open(path, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	devs, err := reg.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := psk.CopySecret([]byte(master))
	defer m.Destroy()
	want := map[string]string{}
	for _, d := range devs {
		if d.Status != registry.StatusActive {
			continue
		}
		key, _, err := reg.Key(ctx, d.ID, m)
		if err != nil {
			t.Fatalf("key of %s: %v", d.ID, err)
		}
		if d.Source == registry.SourceDerived {
			k := psk.Derive(m, d.ID, d.Epoch)
			if !key.Equal(k) {
				t.Fatalf("%s: the registry's key is not the derivation at epoch %d", d.ID, d.Epoch)
			}
			k.Destroy()
		}
		want[d.ID] = digest(key.Expose())
		key.Destroy()
	}
	return want
}

func TestRegistryGatewayRoundTrip(t *testing.T) {
	py := gatewayPython(t)
	master := canaryMaster(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "legacy.psk"), []byte(registryLegacyKey), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) string {
		t.Helper()
		code, out, errOut := registryRun(t, dir, master, args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	cli("registry", "add", "device-id-1", "--derive")
	cli("registry", "add", "24:6F:28:AA", "--derive", "--epoch", "3")
	cli("registry", "add", "dev-a", "--random")
	cli("registry", "add", "legacy-1", "--psk-file", "legacy.psk")
	cli("registry", "add", "dev-b", "--derive")
	cli("rotate", "device-id-1", "--reason", "test")
	cli("registry", "revoke", "dev-b")
	cli("registry", "export", "-o", "exp.json")
	piped := cli("registry", "export")
	regPath := filepath.Join(dir, "usmp-registry.db")
	want := expectedDigests(t, regPath, master)
	if len(want) != 4 {
		t.Fatalf("%d active devices, want 4", len(want))
	}

	// The pipe: usmp-psk registry export | python3 … load_psk_registry(sys.stdin.buffer)
	checkDigests(t, "load_psk_registry(stdin)", loadPSKRegistry(t, py, []byte(piped)), want)

	// The file, and make_get_psk on the registry, in one running gateway.
	gw := startGateway(t, py, master, regPath, filepath.Join(dir, "exp.json"))
	defer gw.stop(t)
	checkDigests(t, "load_psk_registry(file)", gw.next(t), want)
	m := psk.CopySecret([]byte(master))
	defer m.Destroy()
	derived := func(id string, epoch uint32) string {
		k := psk.Derive(m, id, epoch)
		defer k.Destroy()
		return digest(k.Expose())
	}
	// Every active device: the same key as the registry and the export.
	for id, d := range want {
		if a := gw.ask(t, id); a.Get != d || a.Strict != d {
			t.Errorf("make_get_psk(%s): get %s, strict %s; want %s", id, a.Get, a.Strict, d)
		}
	}
	// Revoked: KeyError. Unknown: the epoch-0 derived key, or KeyError
	// when strict (design §5).
	if a := gw.ask(t, "dev-b"); a.Get != "KeyError" || a.Strict != "KeyError" {
		t.Errorf("revoked dev-b: %+v, want KeyError", a)
	}
	if a := gw.ask(t, "dev-unknown"); a.Get != derived("dev-unknown", 0) || a.Strict != "KeyError" {
		t.Errorf("unknown device: %+v", a)
	}

	// A rotation, a revocation and a new device reach the running gateway
	// without a restart.
	cli("rotate", "device-id-1", "--reason", "stolen")
	cli("registry", "revoke", "dev-a", "--reason", "lost")
	cli("registry", "add", "dev-c", "--random")
	after := expectedDigests(t, regPath, master)
	if a := gw.ask(t, "device-id-1"); a.Get != derived("device-id-1", 2) || a.Get == want["device-id-1"] {
		t.Errorf("device-id-1 after the rotation: %+v, want the epoch-2 key", a)
	}
	if a := gw.ask(t, "dev-a"); a.Get != "KeyError" {
		t.Errorf("dev-a after the revocation: %+v, want KeyError", a)
	}
	if a := gw.ask(t, "dev-c"); a.Get != after["dev-c"] || a.Strict != after["dev-c"] {
		t.Errorf("dev-c added after the start: %+v, want %s", a, after["dev-c"])
	}
	// The new export has the same keys as the registry now.
	cli("registry", "export", "-o", "exp.json", "--force")
	exp, err := os.ReadFile(filepath.Join(dir, "exp.json"))
	if err != nil {
		t.Fatal(err)
	}
	checkDigests(t, "load_psk_registry(new export)", loadPSKRegistry(t, py, exp), after)
}

// loadPSKRegistry runs the gateway's load_psk_registry on an export given
// on its standard input, as in `usmp-psk registry export | python3 …`, and
// returns the digests it prints.
func loadPSKRegistry(t *testing.T, py string, export []byte) []byte {
	t.Helper()
	pipe := exec.Command(py, "-c", gatewayPipe)
	pipe.Env = gatewayEnv("")
	pipe.Stdin = bytes.NewReader(export)
	var pipeErr bytes.Buffer
	pipe.Stderr = &pipeErr
	out, err := pipe.Output()
	if err != nil {
		t.Fatalf("load_psk_registry from a pipe: %v\n%s", err, pipeErr.String())
	}
	return out
}

// runningGateway is a running gateway (the gatewayDriver script) that loads
// an export, then answers make_get_psk look-ups of the ids written to it.
type runningGateway struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr bytes.Buffer
}

// gatewayAnswer is the driver's answer for one id: make_get_psk's key
// digest, or the exception's name, plain and strict.
type gatewayAnswer struct{ Get, Strict string }

// startGateway starts the driver on the registry and the export file.
func startGateway(t *testing.T, py, master, regPath, exportPath string) *runningGateway {
	t.Helper()
	g := &runningGateway{cmd: exec.Command(py, "-c", gatewayDriver, regPath, exportPath)}
	g.cmd.Env = gatewayEnv(master)
	g.cmd.Stderr = &g.stderr
	var err error
	if g.stdin, err = g.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := g.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g.lines = bufio.NewScanner(stdout)
	return g
}

// next is the driver's next line of output.
func (g *runningGateway) next(t *testing.T) []byte {
	t.Helper()
	if !g.lines.Scan() {
		g.stdin.Close()
		_ = g.cmd.Wait()
		t.Fatalf("gateway driver stopped: %v\n%s", g.lines.Err(), g.stderr.String())
	}
	return g.lines.Bytes()
}

// ask looks id up in the running gateway.
func (g *runningGateway) ask(t *testing.T, id string) gatewayAnswer {
	t.Helper()
	if _, err := io.WriteString(g.stdin, id+"\n"); err != nil {
		t.Fatal(err)
	}
	var a gatewayAnswer
	if err := json.Unmarshal(g.next(t), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// stop ends the driver, which must exit cleanly.
func (g *runningGateway) stop(t *testing.T) {
	g.stdin.Close()
	if err := g.cmd.Wait(); err != nil {
		t.Errorf("gateway driver: %v\n%s", err, g.stderr.String())
	}
}

// checkDigests compares a {"id": "sha256 hex"} line with want.
func checkDigests(t *testing.T, what string, line []byte, want map[string]string) {
	t.Helper()
	var got map[string]string
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d devices, want %d", what, len(got), len(want))
	}
	for id, d := range want {
		if got[id] != d {
			t.Errorf("%s: device %s: key digest %s, want %s", what, id, got[id], d)
		}
	}
}
