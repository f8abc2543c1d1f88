package registry

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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
	for _, k := range []string{"PATH", "HOME", "PYENV_ROOT", "PYENV_VERSION", "SYSTEMROOT", "LANG"} {
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
	py := python3(t)
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
