package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/usmp/usmp-psk/internal/leakcheck"
	"github.com/usmp/usmp-psk/internal/psk"
)

// canaryMaster returns a fresh random master (printable, as an environment
// value would be) for one test (R22), in the alphabet that no hex or base64
// output can collide with (leakcheck.CanaryMaster).
func canaryMaster(t testing.TB) string {
	t.Helper()
	return leakcheck.CanaryMaster()
}

// testFactory returns a factory with buffers, a canary master in place of
// the environment, and no terminal.
func testFactory(t testing.TB, master string) (*Factory, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	ios, in, out, errOut := testIOStreams()
	return &Factory{
		IO:           ios,
		Now:          func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) },
		Rand:         rand.Reader,
		Getenv:       func(string) string { return "" },
		masterEnv:    master,
		hasMasterEnv: master != "",
		Config:       defaultConfig(),
	}, in, out, errOut
}

// runCLI runs one command line in-process in dir.
func runCLI(t testing.TB, f *Factory, dir string, args ...string) int {
	t.Helper()
	if dir != "" {
		t.Chdir(dir)
	}
	return run(context.Background(), f, args)
}

// newScanner registers the canary master and the keys derived from it for
// the device ids tests use, at the epochs they use (R22).
func newScanner(master string, ids ...string) *leakcheck.Scanner {
	s := &leakcheck.Scanner{}
	s.Add("master", []byte(master))
	m := psk.CopySecret([]byte(master))
	for _, id := range ids {
		for _, e := range []uint32{0, 1, 2} {
			s.Add("derived "+id, psk.Derive(m, id, e).Expose())
		}
	}
	return s
}

// allCommands walks the command tree.
func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}

func commandArgs(c *cobra.Command) []string {
	path := strings.Fields(c.CommandPath())
	return path[1:]
}

// TestNoLeakInHelpUsageAndErrors is R22/R23 over the whole tree: --help,
// an unknown flag, a bad value for every flag, and a bare run of every
// command, with the canary master available. Nothing may show a secret.
func TestNoLeakInHelpUsageAndErrors(t *testing.T) {
	master := canaryMaster(t)
	scan := newScanner(master, "device-id-1", "dev")
	f0, _, _, _ := testFactory(t, master)
	root := newRootCmd(f0)
	dir := t.TempDir()
	t.Chdir(dir)
	for _, c := range allCommands(root) {
		base := commandArgs(c)
		lines := [][]string{
			append(append([]string{}, base...), "--help"),
			append(append([]string{}, base...), "--bogus-flag"),
			base,
		}
		typed := map[string]bool{}
		c.Flags().VisitAll(func(fl *pflag.Flag) {
			if fl.Value.Type() != "bool" {
				lines = append(lines, append(append([]string{}, base...), "--"+fl.Name, "not-a-valid-value"))
				typed[fl.Name] = fl.Value.Type() != "string"
			}
		})
		for _, args := range lines {
			f, _, out, errOut := testFactory(t, master)
			f.IO.SetStdoutTTY(true) // a bare run must not print a key either
			code := run(context.Background(), f, args)
			for _, leak := range append(scan.Scan("stdout", out.Bytes()), scan.Scan("stderr", errOut.Bytes())...) {
				t.Errorf("usmp-psk %s (exit %d): %s", strings.Join(args, " "), code, leak)
			}
			// pflag quotes a rejected value; ours must not (R23).
			if n := len(args); n >= 2 && typed[strings.TrimPrefix(args[n-2], "--")] && strings.Contains(errOut.String(), args[n-1]) {
				t.Errorf("usmp-psk %s: the error repeats the flag's value", strings.Join(args, " "))
			}
		}
	}
}

// TestNoLeakWhenWorking runs every key command for real (R22): the only
// place a key may appear is its designated output.
func TestNoLeakWhenWorking(t *testing.T) {
	master := canaryMaster(t)
	ids := []string{"device-id-1", "24:6F:28:AA", "dev-a", "b-1", "b-2", "b-3"}
	scan := newScanner(master, ids...)
	dir := t.TempDir()
	// A CSV holding the derived key of device-id-1: a secret input.
	k := psk.Derive(psk.CopySecret([]byte(master)), "device-id-1", 0)
	csv := "key,type,encoding,value\nusmp,namespace,,\ndevice_id,data,string,device-id-1\npsk,data,hex2bin," + hex.EncodeToString(k.Expose()) + "\n"
	mustWrite := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite("dev.csv", csv)
	mustWrite("a.raw", string(psk.Derive(psk.CopySecret([]byte(master)), "24:6F:28:AA", 1).Expose()))
	mustWrite("parts.csv", "nvs,data,nvs,0x9000,0x6000,\nfactory,app,factory,0x10000,1M,\n")
	mustWrite("imp.json", `{"dev-imp": "`+strings.Repeat("5a", 32)+`"}`)
	cases := []struct {
		args   []string
		secret []string // the designated secret outputs, excluded from the scan
	}{
		{[]string{"derive", "device-id-1", "-o", "a.psk"}, []string{"a.psk"}},
		{[]string{"derive", "24:6F:28:AA", "--epoch", "2", "-o", "b.psk", "--encoding", "c"}, []string{"b.psk"}},
		{[]string{"derive", "device-id-1", "-o", "c.psk", "--json"}, []string{"c.psk"}},
		{[]string{"generate", "-o", "g.psk", "--encoding", "base64"}, []string{"g.psk"}},
		{[]string{"fingerprint", "a.psk"}, nil},
		{[]string{"fingerprint", "--json", "g.psk", "--encoding", "base64"}, nil},
		{[]string{"derive", "device-id-1", "-o", "a.psk"}, nil}, // refused: exists
		{[]string{"nvs", "generate", "dev.csv", "dev.bin", "0x6000"}, []string{"dev.csv", "dev.bin"}},
		{[]string{"nvs", "generate-key", "--keyfile", "k.bin"}, []string{"keys/k.bin"}},
		{[]string{"nvs", "encrypt", "dev.csv", "enc.bin", "0x6000", "--inputkey", "keys/k.bin"}, nil},
		{[]string{"nvs", "decrypt", "enc.bin", "keys/k.bin", "dec.bin"}, []string{"dec.bin"}},
		{[]string{"nvs", "dump", "dev.bin"}, nil},
		{[]string{"nvs", "dump", "--json", "enc.bin", "--keys", "keys/k.bin"}, nil},
		{[]string{"nvs", "check", "dev.bin", "--json"}, nil},
		{[]string{"partition", "show", "parts.csv"}, nil},
		{[]string{"nvs", "set", "dev.bin", "--namespace", "wifi", "--key", "ssid", "--type", "string", "--value", "factory-net", "-o", "set.bin"}, []string{"set.bin"}},
		{[]string{"nvs", "set", "set.bin", "--namespace", "usmp", "--key", "psk", "--type", "blob", "--value-file", "a.raw"}, []string{"a.raw"}},
		{[]string{"nvs", "erase", "set.bin", "--namespace", "wifi", "--key", "ssid"}, nil},
		{[]string{"provision", "device-id-1", "--derive", "-o", "p1.bin"}, []string{"p1.bin"}},
		{[]string{"provision", "24:6F:28:AA", "--derive", "--keys", "keys/k.bin", "-o", "p2.bin", "--json"}, nil},
		{[]string{"verify", "p1.bin"}, nil},
		{[]string{"verify", "p2.bin", "--keys", "keys/k.bin", "--json"}, nil},
		{[]string{"rotate", "device-id-1", "--reason", "test", "-o", "p1r.bin"}, []string{"p1r.bin"}},
		// derive of a rotated device warns against the registry (issue 14)
		{[]string{"derive", "device-id-1", "--epoch", "0", "-o", "d0.psk"}, []string{"d0.psk"}},
		{[]string{"batch", "--count", "3", "--prefix", "b-", "--out", "out"}, []string{"out/b-1.bin", "out/b-2.bin", "out/b-3.bin"}},
		{[]string{"batch", "--count", "3", "--prefix", "b-", "--out", "out", "--dry-run", "--json"}, nil},
		{[]string{"flash", "p1.bin", "--port", "/dev/null", "--print"}, nil},
		{[]string{"flash", "p1.bin", "--port", "/dev/null", "--print", "--json"}, nil},
		{[]string{"registry", "init", "--registry", "other.db"}, nil},
		{[]string{"registry", "add", "dev-a", "--derive"}, nil},
		{[]string{"registry", "list"}, nil},
		{[]string{"registry", "list", "--json"}, nil},
		{[]string{"registry", "show", "device-id-1", "--json"}, nil},
		{[]string{"registry", "revoke", "dev-a", "--reason", "lost"}, nil},
		{[]string{"registry", "export", "-o", "export.json"}, []string{"export.json"}},
		{[]string{"registry", "import", "imp.json", "--registry", "imported.db"}, nil},
		{[]string{"registry", "check"}, nil},
		{[]string{"registry", "audit"}, nil},
		{[]string{"registry", "migrate", "--to", "back.db"}, nil},
		{[]string{"registry", "rekey"}, nil},                    // refused: no $USMP_REGISTRY_NEW_KEY
		{[]string{"registry", "grant-gateway", "gateway"}, nil}, // refused: SQLite has no roles
		{[]string{"version"}, nil},
		{[]string{"--version"}, nil},
		// --json of the nvs writers (issue 14 item 11)
		{[]string{"nvs", "generate-key", "--keyfile", "kj.bin", "--json"}, []string{"keys/kj.bin"}},
		{[]string{"nvs", "generate", "dev.csv", "devj.bin", "0x6000", "--json"}, []string{"devj.bin"}},
		{[]string{"nvs", "encrypt", "dev.csv", "encj.bin", "0x6000", "--inputkey", "keys/k.bin", "--json"}, nil},
		{[]string{"nvs", "decrypt", "enc.bin", "keys/k.bin", "decj.bin", "--json"}, []string{"decj.bin"}},
		{[]string{"nvs", "set", "devj.bin", "--namespace", "wifi", "--key", "ssid", "--type", "string", "--value", "lab", "--json"}, nil},
		{[]string{"nvs", "erase", "devj.bin", "--namespace", "wifi", "--key", "ssid", "--json"}, nil},
		{[]string{"selfcheck"}, nil},
		{[]string{"completion", "bash"}, nil},
	}
	secret := map[string]bool{}
	covered := map[string]bool{}
	for _, tt := range cases {
		f, _, out, errOut := testFactory(t, master)
		code := runCLI(t, f, dir, tt.args...)
		for _, leak := range append(scan.Scan("stdout", out.Bytes()), scan.Scan("stderr", errOut.Bytes())...) {
			t.Errorf("usmp-psk %v (exit %d): %s", tt.args, code, leak)
		}
		refused := strings.Join(tt.args, " ") == "derive device-id-1 -o a.psk" && covered["derive"] || tt.args[0] == "registry" && (tt.args[1] == "rekey" || tt.args[1] == "grant-gateway")
		if (code != 0) != refused {
			t.Errorf("usmp-psk %v: exit %d; stderr %s", tt.args, code, errOut)
		}
		for _, s := range tt.secret {
			secret[s] = true
		}
		covered[tt.args[0]] = true
		if len(tt.args) > 1 {
			covered[tt.args[0]+" "+tt.args[1]] = true
		}
	}
	// The harness covers every command that does something (R22).
	f0, _, _, _ := testFactory(t, master)
	for _, c := range allCommands(newRootCmd(f0)) {
		path := strings.Join(commandArgs(c), " ")
		if path == "" || c.HasSubCommands() || strings.HasPrefix(path, "help") || strings.HasPrefix(path, "completion ") {
			continue
		}
		if !covered[path] {
			t.Errorf("the leak harness does not run 'usmp-psk %s'; add a case", path)
		}
	}
	// Every file except the designated secret outputs is clean: registries,
	// audit logs, the manifest, encrypted images, the keys-free outputs.
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if secret[filepath.ToSlash(rel)] {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, leak := range scan.Scan(rel, b) {
			t.Error(leak)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"enc.bin", "p2.bin", "out/manifest.json", "usmp-registry.db", "back.db"} {
		if _, err := os.Stat(filepath.Join(dir, must)); err != nil {
			t.Errorf("%s was not written, so the scan proves nothing about it: %v", must, err)
		}
	}
}

// secretFlagName matches flags that could carry secrets (R1).
var secretFlagName = regexp.MustCompile(`(?i)secret|master|psk|pass|token|key`)

// flagAllowList records the non-boolean flags whose names match but whose
// value is a path or a non-secret name (R1). Keep it short and justified.
var flagAllowList = map[string]string{
	"master-file": "path of the master secret file",
	// nvs encrypt/decrypt/generate-key take the arguments of
	// nvs_partition_gen.py; nvs dump/check take key files. All are paths.
	"inputkey":         "path of an nvs_keys partition file (nvs encrypt)",
	"keyfile":          "name of the keys file to write under DIR/keys/ (nvs encrypt, generate-key)",
	"kp_hmac_inputkey": "path of an HMAC key file (nvs encrypt, generate-key)",
	"kp_hmac_keyfile":  "name of the HMAC key file to write under DIR/keys/ (nvs encrypt, generate-key)",
	"keys":             "path of an nvs_keys partition file (nvs dump, check)",
	"hmac-key":         "path of an HMAC key file (nvs dump, check)",
	// provision and rotate take the key from a file, never a value.
	"key":          "the name of an NVS key (nvs set, nvs erase), not key material",
	"psk-file":     "path of a key file, or - for standard input (provision, rotate, registry add)",
	"psk-encoding": "the name of the encoding of --psk-file (hex, base64, raw)",
}

// TestSecretFlagsArePathsOrSwitches is R1's flag walk.
func TestSecretFlagsArePathsOrSwitches(t *testing.T) {
	f, _, _, _ := testFactory(t, "")
	for _, c := range allCommands(newRootCmd(f)) {
		check := func(fl *pflag.Flag) {
			if !secretFlagName.MatchString(fl.Name) || fl.Value.Type() == "bool" {
				return
			}
			if _, ok := flagAllowList[fl.Name]; !ok {
				t.Errorf("%s --%s (%s) looks like it could take a secret value; make it a path or a switch, or add it to the allow-list with a reason", c.CommandPath(), fl.Name, fl.Value.Type())
			}
		}
		c.Flags().VisitAll(check)
		c.PersistentFlags().VisitAll(check)
	}
}

// TestRefuseKeyOnTerminal is R10 through the injected terminal flag.
func TestRefuseKeyOnTerminal(t *testing.T) {
	for _, args := range [][]string{{"generate"}, {"derive", "device-id-1"}, {"generate", "-o", "-"}} {
		f, _, out, errOut := testFactory(t, canaryMaster(t))
		f.IO.SetStdoutTTY(true)
		code := runCLI(t, f, t.TempDir(), args...)
		if code == 0 || out.Len() != 0 || !strings.Contains(errOut.String(), "refusing to write key bytes to a terminal") {
			t.Errorf("%v: exit %d, stdout %d bytes, stderr %q", args, code, out.Len(), errOut.String())
		}
	}
	// A pipe is fine.
	f, _, out, _ := testFactory(t, canaryMaster(t))
	if code := runCLI(t, f, t.TempDir(), "generate"); code != 0 || out.Len() != 65 {
		t.Fatalf("pipe: exit %d, %d bytes", code, out.Len())
	}
}

// panicReader panics while key material is being produced (R12).
type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("injected panic in key generation") }

// TestPanicShowsNothing is R12: a panic prints a generic message, no value
// and no stack.
func TestPanicShowsNothing(t *testing.T) {
	master := canaryMaster(t)
	f, _, out, errOut := testFactory(t, master)
	f.Rand = panicReader{}
	code := runCLI(t, f, t.TempDir(), "generate", "-o", "k.psk")
	if code != exitError || out.Len() != 0 {
		t.Fatalf("exit %d", code)
	}
	if strings.Contains(errOut.String(), "injected") || strings.Contains(errOut.String(), "goroutine") || !strings.Contains(errOut.String(), "internal error") {
		t.Fatalf("panic output: %q", errOut.String())
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "exists.psk"), []byte("sentinel"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "open.key"), []byte("00"), 0o666)
	_ = os.Chmod(filepath.Join(dir, "open.key"), 0o666)
	_ = os.Mkdir(filepath.Join(dir, "adir"), 0o700)
	tests := []struct {
		name   string
		master string
		args   []string
		want   int
	}{
		{"ok", "m", []string{"derive", "device-id-1", "-o", "new.psk"}, exitOK},
		{"bad id", "m", []string{"derive", "bad id"}, exitUsage},
		{"unknown flag", "m", []string{"derive", "--nope"}, exitUsage},
		{"unknown command", "m", []string{"nope"}, exitUsage},
		{"missing arg", "m", []string{"derive"}, exitUsage},
		{"exists", "m", []string{"derive", "device-id-1", "-o", "exists.psk"}, exitUsage},
		{"no master", "", []string{"derive", "device-id-1", "-o", "x.psk"}, exitError},
		{"open key file", "", []string{"fingerprint", "open.key"}, exitUsage},
		{"missing key file", "", []string{"fingerprint", "missing.key"}, exitUsage},
		{"short bytes", "", []string{"generate", "--bytes", "31", "-o", "y.psk"}, exitUsage},
		{"bad encoding", "", []string{"generate", "--encoding", "pem", "-o", "y.psk"}, exitUsage},
		{"json to stdout", "", []string{"generate", "--json"}, exitUsage},
		{"exclusive flags", "m", []string{"provision", "dev-1", "--derive", "--random", "-o", "z.bin"}, exitUsage},
		// Usage errors that cobra returns untyped are typed where they
		// arise (flag groups, argument validators, an unknown command
		// with a bad flag): the mapping reads no error text.
		{"flag group", "m", []string{"batch", "--derive", "--random", "--count", "2", "--prefix", "g-", "--out", "grp", "--dry-run"}, exitUsage},
		{"unknown command and a bad flag", "m", []string{"nope", "--bogus"}, exitUsage},
		{"bad flag value and an unknown command", "m", []string{"--lock-timeout=zz", "nope"}, exitUsage},
		{"cobra's completion, an extra argument", "m", []string{"completion", "bash", "extra"}, exitUsage},
		// Issue 13 item 8: bad input is 2, not an I/O failure (1) or 0.
		{"master file is a directory", "", []string{"derive", "device-id-1", "-o", "x.psk", "--master-file", "adir"}, exitUsage},
		{"master file missing", "", []string{"derive", "device-id-1", "-o", "x.psk", "--master-file", "missing"}, exitUsage},
		{"master only white space", " \t\n", []string{"derive", "device-id-1", "-o", "x.psk"}, exitUsage},
		{"key file is a directory", "", []string{"fingerprint", "adir"}, exitUsage},
		{"psk file is a directory", "m", []string{"provision", "dev-1", "--psk-file", "adir", "-o", "z.bin"}, exitUsage},
		{"psk-encoding without psk-file", "m", []string{"provision", "dev-1", "--derive", "--psk-encoding", "base64", "-o", "z.bin"}, exitUsage},
		{"rotate psk-encoding without psk-file", "m", []string{"rotate", "dev-1", "--psk-encoding", "raw"}, exitUsage},
		{"jobs above the cap", "m", []string{"batch", "--count", "2", "--prefix", "j-", "--out", "jobs", "--jobs", "257"}, exitUsage},
		{"jobs huge", "m", []string{"batch", "--count", "2", "--prefix", "j-", "--out", "jobs", "--jobs", "1000000000"}, exitUsage},
		{"count above the cap", "m", []string{"batch", "--count", "10000001", "--prefix", "j-", "--out", "jobs", "--dry-run"}, exitUsage},
		{"start above the cap", "m", []string{"batch", "--count", "2", "--start", "1000000000001", "--prefix", "j-", "--out", "jobs", "--dry-run"}, exitUsage},
		{"jobs at the cap", "m", []string{"batch", "--count", "2", "--prefix", "j-", "--out", "jobs", "--jobs", "256", "--dry-run"}, exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _, errOut := testFactory(t, tt.master)
			if got := runCLI(t, f, dir, tt.args...); got != tt.want {
				t.Fatalf("exit %d, want %d; stderr %q", got, tt.want, errOut.String())
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "exists.psk")); string(b) != "sentinel" {
		t.Fatal("existing file changed (R6)")
	}
	for _, p := range []string{"x.psk", "y.psk", "z.bin", "jobs", "usmp-registry.db"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s left behind after an error (R8)", p)
		}
	}
}

// TestFlagParsing captures options through runF (house style §20).
func TestFlagParsing(t *testing.T) {
	f, _, _, _ := testFactory(t, "")
	var got *deriveOptions
	root := newRootCmd(f)
	for _, c := range root.Commands() {
		if c.Name() == "derive" {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(newDeriveCmd(f, &rootOptions{}, func(o *deriveOptions) error { got = o; return nil }))
	root.SetArgs([]string{"derive", "24:6F:28:AA", "--epoch", "3", "-o", "k", "--encoding", "BASE64", "--force"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.deviceID != "24:6F:28:AA" || got.epoch != 3 || got.out.path != "k" || got.out.encoding != psk.Base64 || !got.out.force {
		t.Fatalf("options %+v", got)
	}
}

// TestConfigPrecedence: flag > USMP_PSK_* > config file > default.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "usmp-psk.yaml"), []byte("encoding: base64\nnvs:\n  namespace: cfgns\n"), 0o600)
	encOf := func(env map[string]string, args ...string) string {
		f, _, _, _ := testFactory(t, "m")
		f.Getenv = func(k string) string { return env[k] }
		for k, v := range env {
			t.Setenv(k, v)
		}
		var got *generateOptions
		root := newRootCmd(f)
		for _, c := range root.Commands() {
			if c.Name() == "generate" {
				root.RemoveCommand(c)
			}
		}
		root.AddCommand(newGenerateCmd(f, &rootOptions{}, func(o *generateOptions) error { got = o; return nil }))
		t.Chdir(dir)
		root.SetArgs(append([]string{"generate"}, args...))
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		return string(got.out.encoding) + "/" + f.Config.NVSNamespace
	}
	if got := encOf(nil); got != "base64/cfgns" {
		t.Errorf("config file: %s", got)
	}
	if got := encOf(map[string]string{"USMP_PSK_ENCODING": "raw", "USMP_PSK_NVS_NAMESPACE": "envns"}); got != "raw/envns" {
		t.Errorf("env over config: %s", got)
	}
	if got := encOf(map[string]string{"USMP_PSK_ENCODING": "raw"}, "--encoding", "c"); !strings.HasPrefix(got, "c/") {
		t.Errorf("flag over env: %s", got)
	}
	// An explicit --config that does not exist is an error.
	f, _, _, errOut := testFactory(t, "m")
	if code := runCLI(t, f, dir, "--config", "missing.yaml", "version"); code != exitUsage {
		t.Errorf("missing --config: exit %d %s", code, errOut)
	}
	_ = io.Discard
}

// TestPSKEncodingDefaultFromSettings: --psk-encoding without --psk-file is
// an error only when typed; from the environment it is just a default for
// the commands that read a key (issue 13 item 8).
func TestPSKEncodingDefaultFromSettings(t *testing.T) {
	f, _, _, errOut := testFactory(t, canaryMaster(t))
	f.Getenv = func(k string) string { return map[string]string{"USMP_PSK_PSK_ENCODING": "base64"}[k] }
	if code := runCLI(t, f, t.TempDir(), "provision", "dev-1", "--derive", "-o", "p.bin"); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if f.Config.Sources["psk-encoding"] != "$USMP_PSK_PSK_ENCODING" {
		t.Fatalf("psk-encoding did not come from the environment: %v", f.Config.Sources)
	}
}
