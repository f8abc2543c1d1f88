package gitleaksrule

// Security R20: the rules of .gitleaks.toml find a registry with key bytes,
// a registry export and our key files (hex, base64, C array), and do not
// fire on a registry of derived devices only, an audit log, a factory
// manifest, KCVs or test vectors under testdata/.
//
// The registries, exports and key files are made by internal/registry and
// internal/psk, so a change of format shows up here. The keys are random
// per run: nothing in this file is a key.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

const (
	ruleRegistry = "usmp-psk-registry-key"
	ruleExport   = "usmp-psk-export"
	ruleHex      = "usmp-psk-key-file-hex"
	ruleBase64   = "usmp-psk-key-file-base64"
	ruleC        = "usmp-psk-c-array"

	// The USMP documentation's example key (design §3): allowed.
	docsExampleKey = "7f3a1b9e2c4d5f6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a" // gitleaks:allow (public example)
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

func loadConfig(t *testing.T) (*Config, string) {
	t.Helper()
	path := filepath.Join(repoRoot(t), ".gitleaks.toml")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c, path
}

func randomKey(t *testing.T, n int) *psk.Secret {
	t.Helper()
	s, err := psk.Generate(rand.Reader, n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixture is a file to scan and the findings it must give: rule id ->
// secrets (nil for "any one finding of that rule").
type fixture struct {
	path string
	data []byte
	want map[string][]string
}

type fixtures struct {
	t    *testing.T
	root string
	list []*fixture
}

func (fx *fixtures) add(path string, data []byte, want map[string][]string) {
	fx.t.Helper()
	full := filepath.Join(fx.root, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
		fx.t.Fatal(err)
	}
	if err := os.WriteFile(full, data, 0o600); err != nil {
		fx.t.Fatal(err)
	}
	fx.list = append(fx.list, &fixture{path: path, data: data, want: want})
}

// addFile registers a file some code already wrote under root.
func (fx *fixtures) addFile(path string, want map[string][]string) {
	fx.t.Helper()
	data, err := os.ReadFile(filepath.Join(fx.root, filepath.FromSlash(path)))
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.list = append(fx.list, &fixture{path: path, data: data, want: want})
}

func hexOf(s *psk.Secret) string { return hex.EncodeToString(s.Expose()) }

// legacyRecord is a device of a JSON registry as usmp-psk wrote them before
// the database, with its key when stored.
func legacyRecord(id string, d registry.Device, key string) string {
	psk := ""
	if key != "" {
		psk = `,"psk":"` + key + `"`
	}
	return fmt.Sprintf(`    {"id":%q,"source":%q,"epoch":%d,"status":"active","kcv":%q%s,"created":"2026-11-27T12:00:00Z","updated":"2026-11-27T12:00:00Z"}`,
		id, d.Source, d.Epoch, d.KCV, psk)
}

// legacyRegistry is a JSON registry file of those records.
func legacyRegistry(records []string) []byte {
	return []byte("{\n  \"version\": 1,\n  \"audit\": {\"seq\": 5, \"hash\": \"" + strings.Repeat("ab", 32) + "\"},\n  \"devices\": [\n" +
		strings.Join(records, ",\n") + "\n  ]\n}\n")
}

// auditLines is the audit log of reg as JSON lines.
func auditLines(t *testing.T, reg *registry.Registry) []byte {
	t.Helper()
	var b strings.Builder
	if _, err := reg.WriteAuditJSONL(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}

// makeFixtures writes every fixture under a fresh directory.
func makeFixtures(t *testing.T) *fixtures {
	t.Helper()
	ctx := t.Context()
	fx := &fixtures{t: t, root: t.TempDir()}
	master := randomKey(t, 32)

	// A registry with random and imported keys (and a derived and a revoked
	// device). The registry is a SQLite database now, whose keys no text
	// rule can find (.gitignore keeps it out: usmp-registry.db*); a JSON
	// registry of an earlier usmp-psk may still sit in a repository, and
	// every stored key of it is found, nothing else.
	regPath := filepath.Join(fx.root, "keys", "usmp-registry.db")
	if err := os.MkdirAll(filepath.Dir(regPath), 0o700); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(regPath, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	var stored, records []string
	for _, d := range []struct {
		id   string
		spec registry.KeySpec
	}{
		{"device-random-1", registry.Random()},
		{"24:6F:28:AA:00:01", registry.KeySpec{Source: registry.SourceRandom, Bytes: 48}},
		{"device-imported-1", registry.Imported(randomKey(t, 32))},
		{"device-derived-1", registry.Derived(master, 0)},
		{"device-revoked-1", registry.Random()},
	} {
		res, err := reg.Add(ctx, d.id, d.spec)
		if err != nil {
			t.Fatalf("registry add %s: %v", d.id, err)
		}
		if d.spec.Source != registry.SourceDerived && d.id != "device-revoked-1" {
			stored = append(stored, hexOf(res.Key))
			records = append(records, legacyRecord(d.id, res.Device, hexOf(res.Key)))
		} else {
			records = append(records, legacyRecord(d.id, res.Device, ""))
		}
		res.Key.Destroy()
	}
	if _, err := reg.Revoke(ctx, "device-revoked-1", "lost"); err != nil {
		t.Fatal(err)
	}
	fx.add("keys/usmp-registry.json", legacyRegistry(records), map[string][]string{ruleRegistry: stored})
	fx.add("keys/usmp-registry.audit.jsonl", auditLines(t, reg), nil)

	// Its export, the gateway's key map: the first member is reported.
	ex, err := reg.Export(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	var exp strings.Builder
	if err := ex.WriteJSON(&exp); err != nil {
		t.Fatal(err)
	}
	first := hexOf(ex.Key(ex.IDs()[0]))
	ex.Destroy()
	fx.add("keys/gateway-keys.json", []byte(exp.String()), map[string][]string{ruleExport: {first}})

	// A registry of derived devices only holds no key, even with
	// hex-looking device ids, epochs and a revocation. (Ids with 32 or
	// more hex digits in a row are refused as looking like keys.)
	derPath := filepath.Join(fx.root, "fleet", "usmp-registry.db")
	if err := os.MkdirAll(filepath.Dir(derPath), 0o700); err != nil {
		t.Fatal(err)
	}
	der, err := registry.Open(derPath, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer der.Close()
	var derivedRecs []string
	for i, id := range []string{"device-id-1", "0123456789abcdef0123456789abcde", strings.Repeat("a1b2c3d4-", 6) + "a1b2c3d4", "24:6F:28:AA:BB:CC"} {
		res, err := der.Add(ctx, id, registry.Derived(master, uint32(i)))
		if err != nil {
			t.Fatalf("registry add %s: %v", id, err)
		}
		derivedRecs = append(derivedRecs, legacyRecord(id, res.Device, ""))
		res.Key.Destroy()
	}
	if _, err := der.Revoke(ctx, "device-id-1", "rotated out"); err != nil {
		t.Fatal(err)
	}
	fx.add("fleet/usmp-registry.json", legacyRegistry(derivedRecs), nil)
	fx.add("fleet/usmp-registry.audit.jsonl", auditLines(t, der), nil)

	// Key files as `generate`/`derive -o FILE --encoding E` write them.
	k32, k48 := randomKey(t, 32), randomKey(t, 48)
	derived := psk.Derive(master, "device-id-1", 0)
	fx.add("device-id-1.psk", psk.Encode(derived, psk.Hex), map[string][]string{ruleHex: {hexOf(derived)}})
	fx.add("gateway.key", psk.Encode(k48, psk.Hex), map[string][]string{ruleHex: {hexOf(k48)}})
	b64 := psk.Encode(k32, psk.Base64)
	fx.add("device-b64.psk", b64, map[string][]string{ruleBase64: {strings.TrimSpace(string(b64))}})
	b64u := psk.Encode(k48, psk.Base64) // 64 characters, no padding
	fx.add("device-48-b64.key", b64u, map[string][]string{ruleBase64: {strings.TrimSpace(string(b64u))}})
	cArr := psk.Encode(k32, psk.C)
	cBytes := strings.TrimSpace(strings.TrimSuffix(strings.SplitN(string(cArr), "{", 2)[1], "};\n"))
	cBytes = strings.TrimSuffix(cBytes, ",")
	fx.add("firmware/main/usmp_psk.h", cArr, map[string][]string{ruleC: {cBytes}})
	fx.add("firmware/main/usmp_psk.c", append([]byte("#include <stdint.h>\n\n"), cArr...), map[string][]string{ruleC: {cBytes}})
	// Hex typed by hand: upper case, CRLF, a comment line above it.
	upper := strings.ToUpper(hexOf(k32))
	fx.add("notes/typed.psk", []byte("# device 7\r\n"+upper+"\r\n"), map[string][]string{ruleHex: {upper}})
	fx.add("raw.psk.bin", psk.Encode(k32, psk.Raw), nil) // raw bytes: not text, not matched

	// A registry record written by hand in the documented layout (codec.go).
	rec := fmt.Sprintf(`{"version":1,"devices":[`+"\n"+`{"id":"b","source":"random","epoch":1,"status":"active","kcv":"%s","psk":"%s","created":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z"}`+"\n]}\n", psk.KCV(k32), hexOf(k32))
	fx.add("backup/old-registry.json", []byte(rec), map[string][]string{ruleRegistry: {hexOf(k32)}})

	// Public files: a factory manifest (design §5), KCV listings, checksums.
	sum := strings.Repeat("9f86d081884c7d65", 4)
	manifest := fmt.Sprintf(`{"version":1,"devices":[{"id":"fac-0001","image":"fac-0001.bin","sha256":"%s","kcv":"73b52cac","epoch":0,"source":"derived","offset":"0x9000"},{"id":"%s","image":"x.bin","sha256":"%s","kcv":"0badc0de","epoch":0,"source":"random","offset":"0x9000"}]}`+"\n", sum, strings.Repeat("ab", 16), sum)
	fx.add("out/manifest.json", []byte(manifest), nil)
	fx.add("out/manifest-pretty.json", []byte("{\n  \"sha256\": \""+sum+"\",\n  \"kcv\": \"73b52cac\"\n}\n"), nil)
	fx.add("dist/checksums.txt", []byte(sum+"  usmp-psk_linux_amd64.tar.gz\n"), nil)
	fx.add("device.kcv.psk", []byte("73b52cac\n"), nil)
	fx.add("placeholder.psk", []byte(strings.Repeat("0", 64)+"\n"), nil)
	fx.add("example.psk", []byte(docsExampleKey+"\n"), nil)
	fx.add("README.md", []byte("Run `usmp-psk generate -o device.psk`; the key check value is 73b52cac.\n"), nil)
	fx.add("server.key", []byte("-----BEGIN PRIVATE KEY-----\n"+strings.Repeat("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n", 3)+"-----END PRIVATE KEY-----\n"), nil) // gitleaks:allow (truncated fake)

	// Test vectors under testdata/ are allowed, in every format, and so are
	// our formats in Go tests (fuzz seeds).
	fx.add("internal/registry/fuzz_test.go", []byte("package registry\n\nvar seed = `"+rec+"`\nvar c = `"+string(cArr)+"`\n"), nil)
	fx.add("internal/nvs/testdata/usmp.psk", psk.Encode(k32, psk.Hex), nil)
	fx.add("internal/psk/testdata/usmp_psk.h", cArr, nil)
	fx.add("internal/registry/testdata/keys.json", []byte(rec), nil)
	fx.add("testdata/export.json", []byte(exp.String()), nil)

	for _, s := range []*psk.Secret{k32, k48, derived, master} {
		s.Destroy()
	}
	return fx
}

// findingsByRule groups findings by rule, secrets sorted.
func findingsByRule(fs []Finding) map[string][]string {
	m := map[string][]string{}
	for _, f := range fs {
		m[f.RuleID] = append(m[f.RuleID], f.Secret)
	}
	for _, v := range m {
		sort.Strings(v)
	}
	return m
}

func checkFindings(t *testing.T, who string, fx *fixture, got map[string][]string) {
	t.Helper()
	for rule, secrets := range fx.want {
		g, ok := got[rule]
		switch {
		case !ok:
			t.Errorf("%s: %s: rule %s did not fire", who, fx.path, rule)
		case secrets != nil:
			want := slices.Clone(secrets)
			sort.Strings(want)
			if !slices.Equal(g, want) {
				t.Errorf("%s: %s: rule %s found %d secrets %q, want %d %q", who, fx.path, rule, len(g), g, len(want), want)
			}
		}
	}
	for rule, g := range got {
		if _, ok := fx.want[rule]; !ok {
			t.Errorf("%s: %s: unexpected %s finding(s) %q", who, fx.path, rule, g)
		}
	}
}

func TestRulesOnFixtures(t *testing.T) {
	c, _ := loadConfig(t)
	fx := makeFixtures(t)
	for _, f := range fx.list {
		checkFindings(t, "rules", f, findingsByRule(c.Scan(f.path, f.data)))
	}
}

// TestConfigShape: the rules this test relies on exist, and the default
// rules stay on.
func TestConfigShape(t *testing.T) {
	c, _ := loadConfig(t)
	if !c.UseDefault {
		t.Errorf("[extend] useDefault is off: gitleaks' own rules would not run")
	}
	for _, id := range []string{ruleRegistry, ruleExport, ruleHex, ruleBase64, ruleC} {
		if c.Rule(id) == nil {
			t.Errorf("rule %s is missing", id)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, tt := range []struct{ name, toml string }{
		{"unknown key", "[[rules]]\nid = \"a\"\nregex = 'x'\nsecretgroupp = 1\n"},
		{"bad regex", "[[rules]]\nid = \"a\"\nregex = '('\n"},
		{"group out of range", "[[rules]]\nid = \"a\"\nregex = '(x)'\nsecretGroup = 2\n"},
		{"unknown target rule", "[[rules]]\nid = \"a\"\nregex = 'x'\n[[allowlists]]\ntargetRules = [\"b\"]\npaths = ['y']\n"},
		{"no regex or path", "[[rules]]\nid = \"a\"\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.toml)); err == nil {
				t.Errorf("Parse accepted %q", tt.toml)
			}
		})
	}
}

// TestGitleaks runs gitleaks itself over the same fixtures when it is
// installed (`go install github.com/zricethezav/gitleaks/v8@v8.30.1`), and
// checks that it reports exactly what the model above reports for our
// rules.
func TestGitleaks(t *testing.T) {
	bin, err := exec.LookPath("gitleaks")
	if err != nil {
		t.Skip("gitleaks is not installed; the rules were checked by TestRulesOnFixtures")
	}
	_, cfg := loadConfig(t)
	fx := makeFixtures(t)
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.CommandContext(t.Context(), bin, "dir", "--config", cfg, "--no-banner", "--log-level", "error",
		"--report-format", "json", "--report-path", report, "--exit-code", "0", ".")
	cmd.Dir = fx.root
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gitleaks: %v\n%s", err, out)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var results []struct {
		RuleID string
		File   string
		Secret string
	}
	if err := json.Unmarshal(data, &results); err != nil {
		t.Fatal(err)
	}
	got := map[string][]Finding{}
	for _, r := range results {
		if !strings.HasPrefix(r.RuleID, "usmp-psk-") {
			continue // gitleaks' default rules: not ours to judge here
		}
		p := filepath.ToSlash(strings.TrimPrefix(r.File, "./"))
		got[p] = append(got[p], Finding{RuleID: r.RuleID, Secret: r.Secret})
	}
	for _, f := range fx.list {
		if strings.HasSuffix(f.path, ".bin") {
			continue // gitleaks' default allowlist skips *.bin
		}
		checkFindings(t, "gitleaks", f, findingsByRule(got[f.path]))
		delete(got, f.path)
	}
	for p, fs := range got {
		t.Errorf("gitleaks: findings on a file the test did not write: %s %v", p, fs)
	}
}
