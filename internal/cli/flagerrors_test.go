package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// flagValueCanary is given as the value of every flag: it is no valid
// encoding, number, size, id, NVS name or enumeration, so each flag rejects
// it, and the rejection must not repeat it (issue 13 item 5, R23).
const flagValueCanary = "Zq9/not-a-value/canary"

// pathFlags name files, directories, ports or a registry: an error about
// them names the path on purpose ("open X: no such file"), so they are the
// exception to the rule.
var pathFlags = map[string]bool{
	"base": true, "config": true, "hmac-key": true, "ids": true, "inputkey": true, "keyfile": true,
	"keys": true, "kp_hmac_inputkey": true, "kp_hmac_keyfile": true, "master-file": true, "out": true,
	"outdir": true, "output": true, "partition-table": true, "port": true, "psk-file": true,
	"recipients-file": true, "registry": true, "to": true, "value-file": true,
}

// mustReject are flags whose canary run must fail, so that the test cannot
// pass by never reaching their validation.
var mustReject = []string{
	"batch --count", "batch --jobs", "batch --prefix", "batch --shard", "batch --size", "batch --partition",
	"derive --encoding", "derive --epoch", "fingerprint --encoding", "flash --offset", "flash --baud",
	"generate --bytes", "generate --encoding", "nvs set --type", "nvs set --key", "nvs set --namespace",
	"provision --psk-encoding", "provision --size", "provision --partition", "provision --version",
	"registry export --format", "rotate --psk-encoding", "verify --device", "derive --lock-timeout",
}

// flagFixtures are the other arguments of each command, valid ones, so
// that the flag under test is what gets rejected.
var flagFixtures = map[string][]string{
	"derive":           {"device-id-1", "-o", "out.psk"},
	"generate":         {"-o", "out.psk"},
	"fingerprint":      {"k.psk"},
	"provision":        {"dev-1", "--derive", "-o", "p.bin", "--partition-table", "parts.csv", "--psk-file", "k.psk"},
	"rotate":           {"device-id-1", "--psk-file", "k.psk"},
	"verify":           {"img.bin"},
	"batch":            {"--count", "2", "--prefix", "b-", "--out", "out", "--partition-table", "parts.csv"},
	"flash":            {"img.bin", "--port", "/dev/null", "--print"},
	"nvs generate":     {"dev.csv", "g.bin", "0x6000"},
	"nvs encrypt":      {"dev.csv", "e.bin", "0x6000", "--keygen"},
	"nvs decrypt":      {"enc.bin", "keys/k.bin", "d.bin"},
	"nvs generate-key": {"--keyfile", "k2.bin"},
	"nvs dump":         {"img.bin"},
	"nvs check":        {"img.bin"},
	"nvs set":          {"img.bin", "--namespace", "wifi", "--key", "ssid", "--type", "string", "--value", "x", "-o", "s.bin"},
	"nvs erase":        {"img.bin", "--namespace", "usmp", "--key", "device_id", "-o", "e2.bin"},
	"partition show":   {"parts.csv"},
	"registry add":     {"dev-2", "--psk-file", "k.psk"},
	"registry show":    {"device-id-1"},
	"registry revoke":  {"device-id-1"},
	"registry export":  {"-o", "x.json"},
	"registry import":  {"imp.json"},
	"registry migrate": {"--to", "m.json"},
}

// TestFlagErrorsNeverRepeatTheValue gives every flag of every command a
// canary value and checks that no rejection repeats it (issue 13 item 5).
func TestFlagErrorsNeverRepeatTheValue(t *testing.T) {
	master := canaryMaster(t)
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("k.psk", strings.Repeat("5a", 32)+"\n")
	write("parts.csv", "nvs,data,nvs,0x9000,0x6000,\n")
	write("dev.csv", "key,type,encoding,value\nusmp,namespace,,\ndevice_id,data,string,dev-9\n")
	write("imp.json", `{"dev-imp": "`+strings.Repeat("5b", 32)+`"}`)
	for _, setup := range [][]string{
		{"provision", "device-id-1", "--derive", "-o", "img.bin"},
		{"nvs", "generate-key", "--keyfile", "k.bin"},
		{"nvs", "encrypt", "dev.csv", "enc.bin", "0x6000", "--inputkey", "keys/k.bin"},
	} {
		f, _, _, errOut := testFactory(t, master)
		if code := runCLI(t, f, dir, setup...); code != 0 {
			t.Fatalf("setup %v: exit %d: %s", setup, code, errOut)
		}
	}
	rejected := map[string]bool{}
	f0, _, _, _ := testFactory(t, master)
	for _, c := range allCommands(newRootCmd(f0)) {
		path := strings.Join(commandArgs(c), " ")
		if c.HasSubCommands() || strings.HasPrefix(path, "completion") || path == "help" || path == "" {
			continue
		}
		visit := func(fl *pflag.Flag) {
			if fl.Value.Type() == "bool" || pathFlags[fl.Name] || fl.Name == "help" {
				return
			}
			args := append(append(commandArgs(c), flagFixtures[path]...), "--"+fl.Name, flagValueCanary)
			f, _, out, errOut := testFactory(t, master)
			code := runCLI(t, f, dir, args...)
			if code == 0 {
				return // accepted: an accepted value may be shown (a --reason, a --value)
			}
			rejected[path+" --"+fl.Name] = true
			if strings.Contains(errOut.String()+out.String(), "canary") {
				t.Errorf("usmp-psk %s --%s CANARY (exit %d) repeats the value:\n%s", path, fl.Name, code, errOut)
			}
		}
		c.LocalFlags().VisitAll(visit)
		c.InheritedFlags().VisitAll(visit)
	}
	for _, want := range mustReject {
		if !rejected[want] {
			t.Errorf("usmp-psk %s CANARY was not rejected, so the test proves nothing about it", want)
		}
	}
}

// TestArgumentErrorsNeverRepeatTheArgument covers the arguments cobra or
// pflag would quote: an unknown command or help topic (also under a command
// that only groups others, where cobra printed the help and exited 0), an
// unknown flag that does not look like one, bad flag syntax, and a SIZE.
func TestArgumentErrorsNeverRepeatTheArgument(t *testing.T) {
	const key = "82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{key}, "unknown command (not repeated); the commands are: batch, completion, derive"},
		{"unknown nvs command", []string{"nvs", key}, "unknown nvs command (not repeated); the nvs commands are: check, decrypt"},
		{"unknown registry command", []string{"registry", key, "--registry", "r.json"}, "unknown registry command (not repeated)"},
		{"unknown completion shell", []string{"completion", key}, "unknown completion command (not repeated); the completion commands are: bash, fish, powershell, zsh"},
		{"suggestion", []string{"nvs", "dumq"}, "hint: did you mean 'usmp-psk nvs dump'?"},
		{"unknown help topic", []string{"help", key}, "unknown command (not repeated)"},
		{"unknown command and a bad flag", []string{key, "--bogus"}, "unknown command (not repeated); the commands are: batch"},
		{"unknown help subtopic", []string{"help", "nvs", key}, "unknown nvs command (not repeated)"},
		{"key as a flag", []string{"--" + key}, "unknown flag (not repeated: it does not look like a flag name)"},
		{"key as shorthand flags", []string{"-" + key}, "unknown shorthand flag: -8"},
		{"bad flag syntax", []string{"---" + key}, "bad flag syntax (not repeated)"},
		{"key as a bool value", []string{"derive", "dev", "--force=" + key}, "invalid value for --force (want true or false)"},
		{"key as a number", []string{"generate", "--bytes", key}, "invalid value for --bytes (want a whole number)"},
		{"key as SIZE", []string{"nvs", "generate", "a.csv", "a.bin", key}, "SIZE: not a partition size"},
		{"key as --size", []string{"provision", "dev", "--derive", "-o", "a.bin", "--size", key}, "--size: not a partition size"},
		// A key where a path or a name is expected: the error would name
		// the path; the key-like argument is redacted from any message.
		{"key as the KEYS path", []string{"nvs", "decrypt", "a.bin", key, "o.bin"}, "KEYS " + keyArgRedaction},
		{"key as a --keys path", []string{"nvs", "dump", "a.csv", "--keys=" + key}, "--keys: open " + keyArgRedaction + ": no such file"},
		{"key as a --partition-table path", []string{"provision", "dev", "--derive", "-o", "a.bin", "--partition-table", "./" + key}, keyArgRedaction},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_ = os.WriteFile(filepath.Join(dir, "a.csv"), []byte("key,type,encoding,value\nusmp,namespace,,\n"), 0o600)
			f, _, out, errOut := testFactory(t, canaryMaster(t))
			code := runCLI(t, f, dir, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stdout %q", code, exitUsage, out)
			}
			if !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("stderr %q, want %q", errOut, tt.want)
			}
			if strings.Contains(errOut.String()+out.String(), key[1:9]) {
				t.Errorf("the argument is repeated: %q", errOut)
			}
		})
	}
}
