package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigTrust is the trust model of issue 13 item 1: the working
// directory's usmp-psk.yaml may set plain settings but never one that
// weakens a safety rule or chooses where a secret comes from or goes; from
// the environment, the user's own config file or --config such settings
// apply and are announced with their source; unknown keys are warnings
// naming the key and the file; no message blames a flag that was not passed.
func TestConfigTrust(t *testing.T) {
	tests := []struct {
		name      string
		workDir   string // ./usmp-psk.yaml
		user      string // $XDG_CONFIG_HOME/usmp-psk/config.yaml
		explicit  string // written to named.yaml and passed with --config
		env       map[string]string
		master    bool // $USMP_MASTER_SECRET is set
		args      []string
		code      int
		stderr    []string
		notStderr []string
	}{
		{
			name: "force in the working directory is ignored", workDir: "force: true\n",
			args: []string{"generate", "-o", "exists.psk"}, code: exitUsage,
			stderr:    []string{"warning: ignoring force in ./usmp-psk.yaml: settings that weaken a safety rule", "exists.psk: already exists"},
			notStderr: []string{"force: true from"},
		},
		{
			name: "force from the environment is announced", env: map[string]string{"USMP_PSK_FORCE": "true"},
			args: []string{"generate", "-o", "exists.psk"}, code: exitOK,
			stderr: []string{"usmp-psk: force: true from $USMP_PSK_FORCE\n", "wrote 32-byte key to exists.psk"},
		},
		{
			name: "force from the user's file is announced", user: "force: true\n",
			args: []string{"generate", "-o", "exists.psk"}, code: exitOK,
			stderr: []string{"usmp-psk: force: true from USER\n"},
		},
		{
			name: "force from --config is announced", explicit: "force: true\n",
			args: []string{"generate", "-o", "exists.psk", "--config", "named.yaml"}, code: exitOK,
			stderr: []string{"usmp-psk: force: true from named.yaml\n"},
		},
		{
			name: "a flag is not announced", env: map[string]string{"USMP_PSK_FORCE": "true"},
			args: []string{"generate", "-o", "exists.psk", "--force"}, code: exitOK,
			notStderr: []string{"force: true from"},
		},
		{
			name: "master-file in the working directory is ignored", workDir: "master-file: master.txt\n",
			args: []string{"derive", "dev-1", "-o", "d.psk"}, code: exitError,
			stderr:    []string{"warning: ignoring master-file in ./usmp-psk.yaml", "no master secret"},
			notStderr: []string{"master-file: master.txt from"},
		},
		{
			name: "master-file from the user's file is announced", user: "master-file: master.txt\n",
			args: []string{"derive", "dev-1", "-o", "d.psk"}, code: exitOK,
			stderr: []string{"usmp-psk: master-file: master.txt from USER\n"},
		},
		{
			name: "master-file from the environment is named in a conflict", env: map[string]string{"USMP_PSK_MASTER_FILE": "master.txt"},
			args: []string{"derive", "dev-1", "-o", "d.psk"}, code: exitUsage, master: true,
			stderr:    []string{"both master-file from $USMP_PSK_MASTER_FILE and $USMP_MASTER_SECRET are set"},
			notStderr: []string{"--master-file"},
		},
		{
			name: "plain settings still come from the working directory", workDir: "encoding: base64\nforce: true\nallow-unignored: true\n",
			args: []string{"generate", "-o", "new.psk"}, code: exitOK,
			stderr: []string{"ignoring allow-unignored, force in ./usmp-psk.yaml", "(base64, kcv"},
		},
		{
			name: "the working directory's plain settings override the user's", workDir: "encoding: c\n", user: "encoding: base64\nforce: true\n",
			args: []string{"generate", "-o", "exists.psk"}, code: exitOK,
			stderr: []string{"force: true from USER", "(c, kcv"},
		},
		{
			name: "a registry path from the environment is announced with its value", env: map[string]string{"USMP_PSK_REGISTRY": "plain-place.db"},
			args: []string{"registry", "init"}, code: exitOK,
			stderr: []string{"usmp-psk: registry: plain-place.db from $USMP_PSK_REGISTRY\n", "usmp-psk: created registry plain-place.db\n"},
		},
		{
			name: "a registry URL from the environment is announced without its value", env: map[string]string{"USMP_PSK_REGISTRY": "postgres://alice@127.0.0.1:1/secretdb"},
			args: []string{"registry", "list"}, code: exitError,
			stderr:    []string{"usmp-psk: registry: set by $USMP_PSK_REGISTRY (the value is not shown)\n"},
			notStderr: []string{"secretdb", "alice"},
		},
		{
			name: "a setting the command ignores is not announced", env: map[string]string{"USMP_PSK_EPOCH": "3"},
			args: []string{"registry", "add", "dev-x", "--random"}, code: exitOK,
			stderr:    []string{"added device dev-x"},
			notStderr: []string{"epoch: 3", "USMP_PSK_EPOCH"},
		},
		{
			name: "where it applies, it is", env: map[string]string{"USMP_PSK_EPOCH": "3"},
			args: []string{"registry", "add", "dev-y", "--derive"}, code: exitOK, master: true,
			stderr: []string{"usmp-psk: epoch: 3 from $USMP_PSK_EPOCH\n", "epoch 3"},
		},
		{
			name: "a key pasted into a setting is not repeated", env: map[string]string{"USMP_PSK_OUTPUT": "5c0ffee1d2e3f4a5b6c7d8e9fa0b1c2d3e4f5a6b7c8d9eafb0c1d2e3f4a5b6c7/d.psk"},
			args: []string{"generate"}, code: exitError,
			stderr:    []string{"usmp-psk: output: " + keySettingRedaction + "/d.psk from $USMP_PSK_OUTPUT\n", "stat " + keySettingRedaction + ": no such file"},
			notStderr: []string{"5c0ffee1"},
		},
		{
			name: "a registry not shown is not shown by its errors", env: map[string]string{"USMP_PSK_REGISTRY": "POSTGRES://alice@127.0.0.1:1/secretdb"},
			args: []string{"registry", "list"}, code: exitError,
			stderr:    []string{"usmp-psk: the registry set by $USMP_PSK_REGISTRY: connect to 127.0.0.1:1"},
			notStderr: []string{"secretdb", "alice"},
		},
		{
			name: "nor when it comes from the user's file", user: "registry: postgres://alice@127.0.0.1:1/secretdb\n",
			args: []string{"registry", "list"}, code: exitError,
			stderr:    []string{"usmp-psk: the registry set by USER: connect to 127.0.0.1:1"},
			notStderr: []string{"secretdb", "alice"},
		},
		{
			name: "a global setting is announced only where it matters",
			env:  map[string]string{"USMP_PSK_REGISTRY": "r.json", "USMP_PSK_ALLOW_UNIGNORED": "true", "USMP_PSK_MASTER_FILE": "master.txt"},
			args: []string{"fingerprint", "exists.psk"}, code: exitUsage,
			notStderr: []string{"from $USMP_PSK"},
		},
		{
			name: "master-file is announced when it is read", env: map[string]string{"USMP_PSK_MASTER_FILE": "master.txt"},
			args: []string{"provision", "dev-1", "--random", "-o", "p.bin"}, code: exitOK,
			notStderr: []string{"master-file: master.txt from"},
		},
		{
			name: "an unknown key is a warning naming it and the file", workDir: "forse: true\nnvs:\n  namespce: x\n",
			args: []string{"generate", "-o", "new.psk"}, code: exitOK,
			stderr: []string{`warning: ./usmp-psk.yaml: unknown setting "forse" (ignored`, `warning: ./usmp-psk.yaml: unknown setting "nvs.namespce"`},
		},
		{
			name: "an unknown key in the user's file too", user: "lock_timeout: 5s\n",
			args: []string{"generate", "-o", "new.psk"}, code: exitOK,
			stderr: []string{`USER: unknown setting "lock_timeout"`},
		},
		{
			name: "an unknown key that looks like a key is not repeated", workDir: "82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a: x\n",
			args: []string{"generate", "-o", "new.psk"}, code: exitOK,
			stderr: []string{"./usmp-psk.yaml: an unknown setting whose name looks like key material (not repeated)"}, notStderr: []string{"82f1373a"},
		},
		{
			name: "a secret in a config file gets a hint", workDir: "master-secret: hunter2\n",
			args: []string{"generate", "-o", "new.psk"}, code: exitOK,
			stderr: []string{`unknown setting "master-secret" (ignored); secrets are never configuration`}, notStderr: []string{"hunter2"},
		},
		{
			name: "a bad value names its source, not the value", env: map[string]string{"USMP_PSK_BYTES": "Zq9canary"},
			args: []string{"generate", "-o", "new.psk"}, code: exitUsage,
			stderr: []string{"invalid value for bytes from $USMP_PSK_BYTES (want a whole number)"}, notStderr: []string{"canary"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			userDir := filepath.Join(t.TempDir(), "xdg")
			userFile := filepath.Join(userDir, "usmp-psk", "config.yaml")
			write := func(p, content string) {
				t.Helper()
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write(filepath.Join(dir, "exists.psk"), "sentinel\n")
			write(filepath.Join(dir, "master.txt"), strings.Repeat("m", 40)+"\n")
			if tt.workDir != "" {
				write(filepath.Join(dir, "usmp-psk.yaml"), tt.workDir)
			}
			if tt.user != "" {
				write(userFile, tt.user)
			}
			if tt.explicit != "" {
				write(filepath.Join(dir, "named.yaml"), tt.explicit)
			}
			env := map[string]string{"XDG_CONFIG_HOME": userDir}
			for k, v := range tt.env {
				env[k] = v
			}
			master := ""
			if tt.master {
				master = canaryMaster(t)
			}
			f, _, _, errOut := testFactory(t, master)
			f.Getenv = func(k string) string { return env[k] }
			code := runCLI(t, f, dir, tt.args...)
			got := errOut.String()
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, got)
			}
			for _, want := range tt.stderr {
				if want = strings.ReplaceAll(want, "USER", userFile); !strings.Contains(got, want) {
					t.Errorf("stderr lacks %q:\n%s", want, got)
				}
			}
			for _, not := range tt.notStderr {
				if strings.Contains(got, not) {
					t.Errorf("stderr has %q:\n%s", not, got)
				}
			}
		})
	}
}

// TestEverySettingIsClassified makes every flag decide whether it is a
// guarded setting (never from the working directory's config file) or a
// plain one: a new flag that names a file or a key source must be added to
// guardedSettings or, after thought, to plainSettings here.
func TestEverySettingIsClassified(t *testing.T) {
	plainSettings := map[string]string{
		"config":             "names the config file itself; never read from one",
		"head":               "registry audit prints a checkpoint",
		"expect":             "registry audit compares with a checkpoint",
		"jsonl":              "where registry audit writes the audit log, which holds no secret",
		"lock-timeout":       "how long to wait for the registry lock",
		"encoding":           "the form a key is written in",
		"psk-encoding":       "the form of --psk-file, which is guarded",
		"bytes":              "key length, at least 32 whatever the setting",
		"json":               "output format",
		"dry-run":            "writes nothing",
		"count":              "batch size",
		"prefix":             "id prefix",
		"start":              "first number",
		"ids":                "the list of device ids (public)",
		"jobs":               "parallelism",
		"shard":              "which part of a batch",
		"encrypt-per-device": "strengthens: encrypts every image",
		"size":               "partition size",
		"partition":          "partition name",
		"partition-table":    "partition layout (public)",
		"version":            "NVS format version",
		"base":               "an image read off the device; its keys are --keys/--hmac-key",
		"device":             "the id an image must belong to; only narrows verify",
		"reason":             "free text for the history",
		"format":             "export format",
		"armor":              "the text form of an encrypted export",
		"namespace":          "NVS namespace to edit",
		"key":                "NVS key name to edit",
		"type":               "NVS value type",
		"port":               "serial port",
		"baud":               "serial speed",
		"chip":               "chip type for esptool",
		"offset":             "flash offset",
		"print":              "prints the esptool command instead of running it",
		"no-descriptions":    "completion output",
	}
	f, _, _, _ := testFactory(t, "")
	for name := range knownSettings(newRootCmd(f)) {
		if strings.HasPrefix(name, "nvs.") {
			continue
		}
		_, plain := plainSettings[name]
		if plain == GuardedSetting(name) {
			t.Errorf("setting %q must be exactly one of guardedSettings (config.go) and plainSettings (this test)", name)
		}
	}
}
