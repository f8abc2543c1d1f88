package gitleaksrule

// The keys in the fixtures are random per run: nothing in this file is a
// key. Fixtures are written under a temporary directory, gitleaks scans it
// once, and each fixture's findings are compared with what it must give.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
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
	ruleDB       = "usmp-psk-registry-db"
	// One of gitleaks' default rules, which [extend] useDefault keeps on.
	ruleAWS = "aws-access-token"

	// The USMP documentation's example key (design §3): allowed.
	docsExampleKey = "7f3a1b9e2c4d5f6a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a" // gitleaks:allow (public example)
)

// moduleRoot is the module's root, seen from this package's directory.
const moduleRoot = "../../.."

// gitleaksBin returns the gitleaks on PATH. Without one the test skips, but
// not in CI, which installs it (scripts/install-gitleaks.sh).
func gitleaksBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("gitleaks")
	if err == nil {
		return bin
	}
	if os.Getenv("CI") != "" {
		t.Fatal("gitleaks is not on PATH, and CI is set: CI must run this test (scripts/install-gitleaks.sh installs it)")
	}
	t.Skip("gitleaks is not installed (scripts/install-gitleaks.sh); CI runs this test")
	return ""
}

// finding is one report of gitleaks: the rule and the secret it extracted
// ("" for a path-only rule).
type finding struct{ rule, secret string }

// scan runs gitleaks with the repository's configuration over dir and
// returns its findings by file, relative to dir.
func scan(t *testing.T, bin, dir string) map[string][]finding {
	t.Helper()
	cfg, err := filepath.Abs(filepath.Join(moduleRoot, ".gitleaks.toml"))
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.CommandContext(t.Context(), bin, "dir", "--config", cfg, "--no-banner", "--log-level", "error",
		"--report-format", "json", "--report-path", report, "--exit-code", "0", ".")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gitleaks: %v\n%s", err, out)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var results []struct{ RuleID, File, Secret string }
	if err := json.Unmarshal(data, &results); err != nil {
		t.Fatal(err)
	}
	got := map[string][]finding{}
	for _, r := range results {
		p := filepath.ToSlash(strings.TrimPrefix(r.File, "./"))
		got[p] = append(got[p], finding{r.RuleID, r.Secret})
	}
	return got
}

// fixture is a file to scan and what gitleaks must find in it: rule id ->
// secrets (nil: at least one finding of that rule, whatever its secret).
type fixture struct {
	path string
	want map[string][]string
}

type fixtures struct {
	t    *testing.T
	root string
	list []fixture
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
	fx.list = append(fx.list, fixture{path, want})
}

// copyFile adds a copy of a file some code wrote, under path.
func (fx *fixtures) copyFile(src, path string, want map[string][]string) {
	fx.t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.add(path, data, want)
}

func randomKey(t *testing.T, n int) *psk.Secret {
	t.Helper()
	s, err := psk.Generate(rand.Reader, n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hexOf(s *psk.Secret) string { return hex.EncodeToString(s.Expose()) }

// openRegistry opens a new SQLite registry under dir.
func openRegistry(t *testing.T, dir string) *registry.Registry {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(filepath.Join(dir, "usmp-registry.db"), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

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

// registryFixtures adds what a registry with stored keys leaks through: a
// JSON registry of an earlier usmp-psk (every stored key found, nothing
// else), its audit log (nothing), the gateway's export (its first member),
// and the database's files. gitleaks skips binary files before any rule,
// so the database itself is not reported (a known limit: .gitignore and the
// git guard keep it out of commits); its -wal and -shm files are, by name.
func registryFixtures(fx *fixtures, master *psk.Secret) {
	t, ctx := fx.t, fx.t.Context()
	dir := t.TempDir()
	reg := openRegistry(t, dir)
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
		key := ""
		if d.spec.Source != registry.SourceDerived && d.id != "device-revoked-1" {
			key = hexOf(res.Key)
			stored = append(stored, key)
		}
		records = append(records, legacyRecord(d.id, res.Device, key))
		res.Key.Destroy()
	}
	if _, err := reg.Revoke(ctx, "device-revoked-1", "lost"); err != nil {
		t.Fatal(err)
	}
	fx.add("keys/usmp-registry.json", legacyRegistry(records), map[string][]string{ruleRegistry: stored})
	fx.add("keys/usmp-registry.audit.jsonl", auditLines(t, reg), nil)

	ex, err := reg.Export(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	var exp strings.Builder
	if err := ex.WriteJSON(&exp); err != nil {
		t.Fatal(err)
	}
	ex.Destroy()
	// The first member: the smallest id, as WriteJSON writes in id order.
	var members map[string]string
	if err := json.Unmarshal([]byte(exp.String()), &members); err != nil {
		t.Fatal(err)
	}
	first := members[slices.Min(slices.Collect(maps.Keys(members)))]
	fx.add("keys/gateway-keys.json", []byte(exp.String()), map[string][]string{ruleExport: {first}})
	fx.add("testdata/export.json", []byte(exp.String()), nil) // a test vector: allowed

	// The database, copied while it is open so that -wal and -shm exist.
	db := filepath.Join(dir, "usmp-registry.db")
	fx.copyFile(db, "committed/usmp-registry.db", nil)
	fx.copyFile(db+"-wal", "committed/usmp-registry.db-wal", map[string][]string{ruleDB: nil})
	fx.copyFile(db+"-shm", "committed/usmp-registry.db-shm", map[string][]string{ruleDB: nil})
	fx.copyFile(db+"-shm", "internal/registry/testdata/usmp-registry.db-shm", nil) // a test vector
}

// derivedFixtures adds a registry of derived devices only, which holds no
// key, even with hex-looking device ids, epochs and a revocation. (Ids
// with 32 or more hex digits in a row are refused as looking like keys.)
func derivedFixtures(fx *fixtures, master *psk.Secret) {
	t, ctx := fx.t, fx.t.Context()
	der := openRegistry(t, t.TempDir())
	var recs []string
	for i, id := range []string{"device-id-1", "0123456789abcdef0123456789abcde", strings.Repeat("a1b2c3d4-", 6) + "a1b2c3d4", "24:6F:28:AA:BB:CC"} {
		res, err := der.Add(ctx, id, registry.Derived(master, uint32(i)))
		if err != nil {
			t.Fatalf("registry add %s: %v", id, err)
		}
		recs = append(recs, legacyRecord(id, res.Device, ""))
		res.Key.Destroy()
	}
	if _, err := der.Revoke(ctx, "device-id-1", "rotated out"); err != nil {
		t.Fatal(err)
	}
	fx.add("fleet/usmp-registry.json", legacyRegistry(recs), nil)
	fx.add("fleet/usmp-registry.audit.jsonl", auditLines(t, der), nil)
}

// keyFileFixtures adds key files as `generate`/`derive -o FILE --encoding
// E` write them, and the same formats where they are test vectors.
func keyFileFixtures(fx *fixtures, master *psk.Secret) {
	t := fx.t
	k32, k48 := randomKey(t, 32), randomKey(t, 48)
	derived := psk.Derive(master, "device-id-1", 0)
	defer func() { k32.Destroy(); k48.Destroy(); derived.Destroy() }()
	fx.add("device-id-1.psk", psk.Encode(derived, psk.Hex), map[string][]string{ruleHex: {hexOf(derived)}})
	fx.add("gateway.key", psk.Encode(k48, psk.Hex), map[string][]string{ruleHex: {hexOf(k48)}})
	b64 := psk.Encode(k32, psk.Base64)
	fx.add("device-b64.psk", b64, map[string][]string{ruleBase64: {strings.TrimSpace(string(b64))}})
	b64u := psk.Encode(k48, psk.Base64) // 64 characters, no padding
	fx.add("device-48-b64.key", b64u, map[string][]string{ruleBase64: {strings.TrimSpace(string(b64u))}})
	cArr := psk.Encode(k32, psk.C)
	cBytes := strings.TrimSpace(strings.SplitN(strings.SplitN(string(cArr), "{", 2)[1], "}", 2)[0])
	cBytes = strings.TrimSuffix(cBytes, ",")
	fx.add("firmware/main/usmp_psk.h", cArr, map[string][]string{ruleC: {cBytes}})
	fx.add("firmware/main/usmp_psk.c", append([]byte("#include <stdint.h>\n\n"), cArr...), map[string][]string{ruleC: {cBytes}})
	// Hex typed by hand: upper case, CRLF, a comment line above it.
	upper := strings.ToUpper(hexOf(k32))
	fx.add("notes/typed.psk", []byte("# device 7\r\n"+upper+"\r\n"), map[string][]string{ruleHex: {upper}})
	fx.add("raw.psk.bin", psk.Encode(k32, psk.Raw), nil) // raw bytes: not text, not matched

	// A registry record written by hand in the legacy layout.
	rec := fmt.Sprintf(`{"version":1,"devices":[`+"\n"+`{"id":"b","source":"random","epoch":1,"status":"active","kcv":"%s","psk":"%s","created":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z"}`+"\n]}\n", psk.KCV(k32), hexOf(k32))
	fx.add("backup/old-registry.json", []byte(rec), map[string][]string{ruleRegistry: {hexOf(k32)}})

	// Test vectors under testdata/ are allowed in every format, and so are
	// our formats in Go tests (fuzz seeds); gitleaks' own rules still run
	// on Go tests.
	fx.add("internal/registry/fuzz_test.go", []byte("package registry\n\nvar seed = `"+rec+"`\nvar c = `"+string(cArr)+"`\n"), nil)
	fx.add("internal/nvs/testdata/usmp.psk", psk.Encode(k32, psk.Hex), nil)
	fx.add("internal/psk/testdata/usmp_psk.h", cArr, nil)
	fx.add("internal/registry/testdata/keys.json", []byte(rec), nil)
}

// publicFixtures adds files meant to be shared, which must stay silent:
// a factory manifest (design §5), KCV listings, checksums, placeholders,
// the documentation's example key. And one secret of another kind, which
// gitleaks' default rules must still find.
func publicFixtures(fx *fixtures) {
	sum := strings.Repeat("9f86d081884c7d65", 4)
	manifest := fmt.Sprintf(`{"version":1,"devices":[{"id":"fac-0001","image":"fac-0001.bin","sha256":"%s","kcv":"73b52cac","epoch":0,"source":"derived","offset":36864},{"id":"%s","image":"x.bin","sha256":"%s","kcv":"0badc0de","epoch":0,"source":"random","offset":36864}]}`+"\n", sum, strings.Repeat("ab", 16), sum)
	fx.add("out/manifest.json", []byte(manifest), nil)
	fx.add("out/manifest-pretty.json", []byte("{\n  \"sha256\": \""+sum+"\",\n  \"kcv\": \"73b52cac\"\n}\n"), nil)
	fx.add("dist/checksums.txt", []byte(sum+"  usmp-psk_linux_amd64.tar.gz\n"), nil)
	fx.add("device.kcv.psk", []byte("73b52cac\n"), nil)
	fx.add("placeholder.psk", []byte(strings.Repeat("0", 64)+"\n"), nil)
	fx.add("example.psk", []byte(docsExampleKey+"\n"), nil)
	fx.add("README.md", []byte("Run `usmp-psk generate -o device.psk`; the key check value is 73b52cac.\n"), nil)
	fx.add("usmp-registry.db.md", []byte("Keep usmp-registry.db out of git.\n"), nil) // only the name looks alike

	// An AWS access key id, made up per run: [extend] useDefault keeps
	// gitleaks' own rules on next to ours.
	const b32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	id := []byte("AKIA")
	for _, b := range randomKey(fx.t, 32).Expose()[:16] {
		id = append(id, b32[int(b)%len(b32)])
	}
	fx.add("deploy/aws.env", []byte("AWS_ACCESS_KEY_ID="+string(id)+"\n"), map[string][]string{ruleAWS: {string(id)}})
}

// ours reports whether a finding is for the fixture to judge: every rule
// of .gitleaks.toml, and the default rules the fixture names.
func ours(rule string, want map[string][]string) bool {
	_, named := want[rule]
	return named || strings.HasPrefix(rule, "usmp-psk-")
}

func checkFixture(t *testing.T, fx fixture, found []finding) {
	t.Helper()
	got := map[string][]string{}
	for _, f := range found {
		if ours(f.rule, fx.want) {
			got[f.rule] = append(got[f.rule], f.secret)
		}
	}
	for rule, secrets := range fx.want {
		g := got[rule]
		sort.Strings(g)
		want := slices.Clone(secrets)
		sort.Strings(want)
		switch {
		case len(g) == 0:
			t.Errorf("%s: rule %s did not fire", fx.path, rule)
		case secrets != nil && !slices.Equal(g, want):
			t.Errorf("%s: rule %s found %d secrets %q, want %d %q", fx.path, rule, len(g), g, len(want), want)
		}
		delete(got, rule)
	}
	for rule, g := range got {
		t.Errorf("%s: unexpected %s finding(s) %q", fx.path, rule, g)
	}
}

// TestGitleaksRules runs gitleaks with .gitleaks.toml over the fixtures:
// each must give exactly the findings it names, and our rules fire on no
// other file.
func TestGitleaksRules(t *testing.T) {
	t.Parallel()
	bin := gitleaksBin(t)
	fx := &fixtures{t: t, root: t.TempDir()}
	master := randomKey(t, 32)
	registryFixtures(fx, master)
	derivedFixtures(fx, master)
	keyFileFixtures(fx, master)
	publicFixtures(fx)
	master.Destroy()

	got := scan(t, bin, fx.root)
	for _, f := range fx.list {
		checkFixture(t, f, got[f.path])
		delete(got, f.path)
	}
	for p, fs := range got {
		for _, f := range fs {
			if strings.HasPrefix(f.rule, "usmp-psk-") {
				t.Errorf("%s: finding on a file the test did not write: %v", p, f)
			}
		}
	}
}
