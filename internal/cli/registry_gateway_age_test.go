package cli

// The encrypted gateway round trip (issue 15 part 2, docs/gateway.md): what
// 'registry export --recipient' writes, the real age CLI decrypts to exactly
// the plaintext export, and scripts/usmp_gateway.py loads it — from the file
// with identity=, and from age's pipe — getting every device's key byte for
// byte (compared as SHA-256 digests, so no key is printed even when the test
// fails). CI must run it (CI set): there a missing age fails, not skips.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needAge finds the age and age-keygen commands (Debian: age).
func needAge(t *testing.T) {
	t.Helper()
	for _, c := range []string{"age", "age-keygen"} {
		if _, err := exec.LookPath(c); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is needed for the age export tests (CI is set, so this is not skipped; apt-get install age)", c)
			}
			t.Skipf("%s not installed", c)
		}
	}
}

// runTool runs a command in dir with an explicit environment (R4) and
// returns its stdout and stderr.
func runTool(t *testing.T, dir string, env []string, stdin []byte, name string, args ...string) ([]byte, string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	return out, stderr.String(), err
}

// gatewayAgeFile loads an encrypted export with identity=.
const gatewayAgeFile = `
import hashlib, json, sys
import usmp_gateway as g
keys = g.load_psk_registry(sys.argv[1], identity=sys.argv[2])
print(json.dumps({k.decode(): hashlib.sha256(v).hexdigest() for k, v in keys.items()}))
`

func TestRegistryGatewayAgeRoundTrip(t *testing.T) {
	py := gatewayPython(t)
	needAge(t)
	master := canaryMaster(t)
	dir := registryFixture(t, master)
	toolEnv := []string{"PATH=" + os.Getenv("PATH")}
	if _, _, err := runTool(t, dir, toolEnv, nil, "age-keygen", "-o", "gw.key"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runTool(t, dir, toolEnv, nil, "age-keygen", "-o", "other.key"); err != nil {
		t.Fatal(err)
	}
	pub, _, err := runTool(t, dir, toolEnv, nil, "age-keygen", "-y", "gw.key")
	if err != nil {
		t.Fatal(err)
	}
	code, plain, errOut := registryRun(t, dir, master, "registry", "export")
	if code != exitOK {
		t.Fatalf("plaintext export: exit %d, %s", code, errOut)
	}
	for _, armored := range []bool{false, true} {
		args := []string{"registry", "export", "-o", "exp.json.age", "--force", "--recipient", strings.TrimSpace(string(pub))}
		if armored {
			args = append(args, "--armor")
		}
		if code, _, errOut := registryRun(t, dir, master, args...); code != exitOK {
			t.Fatalf("encrypted export: exit %d, %s", code, errOut)
		}
		// The real age decrypts it to exactly the plaintext export.
		got, stderr, err := runTool(t, dir, toolEnv, nil, "age", "-d", "-i", "gw.key", "exp.json.age")
		if err != nil || string(got) != plain {
			t.Fatalf("armored %v: age -d: %v, %s; %d bytes, equal to the plaintext export: %v", armored, err, stderr, len(got), string(got) == plain)
		}
		// A wrong identity fails clearly, with nothing on stdout.
		got, stderr, err = runTool(t, dir, toolEnv, nil, "age", "-d", "-i", "other.key", "exp.json.age")
		if err == nil || len(got) != 0 || !strings.Contains(stderr, "no identity matched any of the recipients") {
			t.Fatalf("wrong identity: %v, %d bytes, %q", err, len(got), stderr)
		}
	}
	want := expectedDigests(t, filepath.Join(dir, "usmp-registry.db"), master)

	// The gateway: from the file with identity=, and from age's pipe.
	pyEnv := gatewayEnv("")
	out, stderr, err := runTool(t, dir, pyEnv, nil, py, "-c", gatewayAgeFile, "exp.json.age", "gw.key")
	if err != nil {
		t.Fatalf("load_psk_registry(identity=): %v\n%s", err, stderr)
	}
	checkDigests(t, "load_psk_registry(exp.json.age, identity=gw.key)", out, want)
	dec, _, err := runTool(t, dir, toolEnv, nil, "age", "-d", "-i", "gw.key", "exp.json.age")
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, err = runTool(t, dir, pyEnv, dec, py, "-c", gatewayPipe)
	if err != nil {
		t.Fatalf("age -d | load_psk_registry(stdin): %v\n%s", err, stderr)
	}
	checkDigests(t, "age -d | load_psk_registry(stdin)", out, want)

	// The wrong identity: a RegistryError that says so and holds no key.
	_, stderr, err = runTool(t, dir, pyEnv, nil, py, "-c", gatewayAgeFile, "exp.json.age", "other.key")
	if err == nil || !strings.Contains(stderr, "RegistryError: exp.json.age: the identity other.key is not one the export was encrypted to") {
		t.Fatalf("wrong identity: %v\n%s", err, stderr)
	}
	scan := newScanner(master, "device-id-1", "24:6F:28:AA", "dev-a", "legacy-1")
	ct, err := os.ReadFile(filepath.Join(dir, "exp.json.age"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(scan.Scan("stderr", []byte(stderr)), scan.Scan("exp.json.age", ct)...) {
		t.Errorf("leak: %s", f)
	}
}

// TestGatewayAgeUnittest runs the module's age tests with CI passed on, so
// that in CI a missing age fails them rather than skipping them
// (internal/registry TestPythonUnittest runs the whole module without it).
func TestGatewayAgeUnittest(t *testing.T) {
	py := gatewayPython(t)
	env := gatewayEnv("")
	if ci, ok := os.LookupEnv("CI"); ok {
		env = append(env, "CI="+ci)
	}
	cmd := exec.Command(py, "-m", "unittest", "-q", "test_usmp_gateway.AgeExportTest", "test_usmp_gateway.AgeChildTest")
	cmd.Dir, cmd.Env = registryScriptsDir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python unittest: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("skipped")) {
		t.Logf("%s", out)
	}
}
