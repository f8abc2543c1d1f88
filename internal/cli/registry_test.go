package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/golden"
	"github.com/usmp/usmp-psk/internal/registry"
)

// registryGoldenMaster is the master secret of the golden fixture. It is not
// a canary: the goldens hold KCVs and times, never keys, and must be stable.
const registryGoldenMaster = "golden-master-secret-not-used-anywhere-else"

// registryLegacyKey is the imported key of the fixtures (KCV 269dfa59).
const registryLegacyKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n" // gitleaks:allow (a fixture, not a secret)

// registryStep is one command of a fixture, run at a fixed time.
type registryStep struct {
	at   string
	args []string
}

// registryFixture records devices of every kind with a fixed master secret,
// clock and random source, so KCVs and times are the same on every run:
// derived, random, imported, rotated twice, and revoked.
func registryFixture(t *testing.T, master string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "legacy.psk"), []byte(registryLegacyKey), 0o600); err != nil {
		t.Fatal(err)
	}
	rnd := rand.NewChaCha8([32]byte{'u', 's', 'm', 'p'})
	for _, s := range []registryStep{
		{"2026-11-27T12:00:00Z", []string{"registry", "add", "device-id-1", "--derive"}},
		{"2026-11-27T12:05:00Z", []string{"registry", "add", "24:6F:28:AA", "--random"}},
		{"2026-11-27T12:10:00Z", []string{"registry", "add", "dev-a", "--derive", "--epoch", "2"}},
		{"2026-11-27T12:15:00Z", []string{"registry", "add", "legacy-1", "--psk-file", "legacy.psk"}},
		{"2026-11-28T09:30:00Z", []string{"rotate", "device-id-1", "--reason", "device stolen"}},
		{"2026-11-29T08:00:00Z", []string{"rotate", "device-id-1", "--reason", "key seen in a log"}},
		{"2026-11-30T16:45:00Z", []string{"rotate", "24:6F:28:AA"}},
		{"2026-12-01T10:00:00Z", []string{"registry", "revoke", "dev-a", "--reason", "lost in the field"}},
	} {
		f, _, _, errOut := testFactory(t, master)
		at, err := time.Parse(time.RFC3339, s.at)
		if err != nil {
			t.Fatal(err)
		}
		f.Now = func() time.Time { return at }
		f.Rand = rnd
		if code := runCLI(t, f, dir, s.args...); code != exitOK {
			t.Fatalf("%v: exit %d: %s", s.args, code, errOut)
		}
	}
	return dir
}

// registrySQL runs a statement on the registry of dir (a tamper), with
// the sqlite driver the registry package registers.
func registrySQL(t *testing.T, dir, query string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "usmp-registry.db")+"?mode=rw")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// registryAuditLog returns the audit log of the registry in dir (default
// usmp-registry.db) as JSON lines.
func registryAuditLog(t *testing.T, dir string, name ...string) []byte {
	t.Helper()
	file := "usmp-registry.db"
	if len(name) > 0 {
		file = name[0]
	}
	reg, err := registry.Open(filepath.Join(dir, file), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	var b bytes.Buffer
	if _, err := reg.WriteAuditJSONL(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// registryRun runs one command line in dir and returns the exit code,
// stdout and stderr.
func registryRun(t *testing.T, dir, master string, args ...string) (int, string, string) {
	t.Helper()
	f, _, out, errOut := testFactory(t, master)
	code := runCLI(t, f, dir, args...)
	return code, out.String(), errOut.String()
}

// registryTranscript runs command lines against the fixture and returns
// "$ usmp-psk …", the exit code and stdout of each, for a golden file.
func registryTranscript(t *testing.T, lines ...[]string) []byte {
	t.Helper()
	return registryTranscriptOn(t, wideTerminal, lines...)
}

// registryTranscriptOn is registryTranscript with stdout as term says.
func registryTranscriptOn(t *testing.T, term stdoutSpec, lines ...[]string) []byte {
	t.Helper()
	dir := registryFixture(t, registryGoldenMaster)
	var b bytes.Buffer
	for _, args := range lines {
		f, _, outBuf, errBuf := testFactory(t, registryGoldenMaster)
		term.apply(f)
		code := runCLI(t, f, dir, args...)
		out, errOut := outBuf.String(), errBuf.String()
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		if errOut != "" {
			t.Errorf("%v: stderr %q, want nothing: results go to stdout", args, errOut)
		}
		fmt.Fprintf(&b, "$ usmp-psk %s\n%s", strings.Join(args, " "), out)
	}
	return b.Bytes()
}

// TestRegistryListTable is the golden table of 'registry list' (issue 5
// item 3; house style §21).
func TestRegistryListTable(t *testing.T) {
	golden.Check(t, testdataDir, registryTranscript(t, []string{"registry", "list"}))
}

// TestRegistryListJSON is the golden {"devices":[…]} of 'registry list
// --json': times RFC 3339 UTC.
func TestRegistryListJSON(t *testing.T) {
	golden.Check(t, testdataDir, registryTranscript(t, []string{"registry", "list", "--json"}))
}

// TestRegistryShow is the golden 'registry show' of a device rotated twice,
// a revoked one, a rotated random one and an imported one.
func TestRegistryShow(t *testing.T) {
	golden.Check(t, testdataDir, registryTranscript(t,
		[]string{"registry", "show", "device-id-1"},
		[]string{"registry", "show", "dev-a"},
		[]string{"registry", "show", "24:6F:28:AA"},
		[]string{"registry", "show", "legacy-1"},
	))
}

// TestRegistryShowJSON is the golden 'registry show --json'.
func TestRegistryShowJSON(t *testing.T) {
	golden.Check(t, testdataDir, registryTranscript(t,
		[]string{"registry", "show", "device-id-1", "--json"},
		[]string{"registry", "show", "dev-a", "--json"},
	))
}

// TestRegistryListJSONShape decodes the list JSON: exactly the fields of
// issue 5, times in UTC.
func TestRegistryListJSONShape(t *testing.T) {
	dir := registryFixture(t, registryGoldenMaster)
	code, out, _ := registryRun(t, dir, "", "registry", "list", "--json")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var got struct {
		Devices []map[string]any `json:"devices"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Devices) != 4 {
		t.Fatalf("%d devices", len(got.Devices))
	}
	for _, d := range got.Devices {
		if len(d) != 7 {
			t.Errorf("device %v: want exactly id, source, epoch, status, kcv, created, updated", d)
		}
		for _, k := range []string{"created", "updated"} {
			s, _ := d[k].(string)
			if tm, err := time.Parse(time.RFC3339, s); err != nil || tm.Location() != time.UTC || !strings.HasSuffix(s, "Z") {
				t.Errorf("device %v: %s %q is not RFC 3339 UTC", d["id"], k, s)
			}
		}
	}
}

// registryBuild builds a registry subcommand with a capturing runF.
type registryBuild func(f *Factory, r *rootOptions) *cobra.Command

// TestRegistryFlagParsing captures the options of every registry command
// through runF (house style §20); bad combinations are usage errors (exit 2)
// before anything runs.
func TestRegistryFlagParsing(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Run("add", testRegistryAddFlags)
	t.Run("list show revoke", testRegistryListShowRevokeFlags)
	t.Run("export", testRegistryExportFlags)
	t.Run("init import check audit", testRegistryOtherFlags)
}

// testRegistryAddFlags: registry add takes one key source, and its flags only with it.
func testRegistryAddFlags(t *testing.T) {
	var got *registryAddOptions
	build := func(f *Factory, r *rootOptions) *cobra.Command {
		return newRegistryAddCmd(f, r, func(o *registryAddOptions) error { got = o; return nil })
	}
	run := func(args ...string) int {
		got = nil
		return withRunF(t, []string{"registry", "add"}, build, append([]string{"registry", "add"}, args...)...)
	}
	if code := run("24:6F:28:AA", "--derive", "--epoch", "3", "--json"); code != 0 || got.deviceID != "24:6F:28:AA" || !got.derive || got.epoch != 3 || !got.json || got.random || got.pskFile != "" {
		t.Fatalf("--derive: exit %d, options %+v", code, got)
	}
	if code := run("dev-a", "--random"); code != 0 || !got.random || got.derive || got.epoch != 0 {
		t.Fatalf("--random: exit %d, options %+v", code, got)
	}
	if code := run("dev-a", "--psk-file", "-", "--psk-encoding", "BASE64"); code != 0 || got.pskFile != "-" || got.pskEncoding != "base64" {
		t.Fatalf("--psk-file: exit %d, options %+v", code, got)
	}
	if code := run("dev-a", "--psk-file", "k.psk"); code != 0 || got.pskEncoding != "hex" {
		t.Fatalf("default encoding: exit %d, options %+v", code, got)
	}
	for _, bad := range [][]string{
		{"dev-a"},                         // no key source
		{"dev-a", "--derive", "--random"}, // two sources
		{"dev-a", "--random", "--psk-file", "k"},
		{"dev-a", "--random", "--epoch", "1"},          // --epoch without --derive
		{"dev-a", "--random", "--psk-encoding", "raw"}, // --psk-encoding without --psk-file
		{"dev-a", "--psk-file", "k", "--psk-encoding", "pem"},
		{"dev-a", "--derive", "--epoch", "-1"},
		{"dev-a", "--derive", "--epoch", "4294967296"},
		{"bad id", "--random"},
		{"--random"},
		{"a", "b", "--random"},
	} {
		if code := run(bad...); code != exitUsage || got != nil {
			t.Errorf("%v: exit %d, want 2 before running", bad, code)
		}
	}
}

// testRegistryListShowRevokeFlags: list, show and revoke take their options and refuse bad ids and reasons.
func testRegistryListShowRevokeFlags(t *testing.T) {
	var list *registryListOptions
	if code := withRunF(t, []string{"registry", "list"}, func(f *Factory, r *rootOptions) *cobra.Command {
		return newRegistryListCmd(f, r, func(o *registryListOptions) error { list = o; return nil })
	}, "registry", "list", "--json"); code != 0 || !list.json {
		t.Fatalf("list: exit %d, options %+v", code, list)
	}
	var show *registryShowOptions
	build := func(f *Factory, r *rootOptions) *cobra.Command {
		return newRegistryShowCmd(f, r, func(o *registryShowOptions) error { show = o; return nil })
	}
	if code := withRunF(t, []string{"registry", "show"}, build, "registry", "show", "dev-a", "--json"); code != 0 || show.deviceID != "dev-a" || !show.json {
		t.Fatalf("show: exit %d, options %+v", code, show)
	}
	show = nil
	if code := withRunF(t, []string{"registry", "show"}, build, "registry", "show", "dev/a"); code != exitUsage || show != nil {
		t.Fatalf("show of an invalid id: exit %d", code)
	}
	var revoke *registryRevokeOptions
	rb := func(f *Factory, r *rootOptions) *cobra.Command {
		return newRegistryRevokeCmd(f, r, func(o *registryRevokeOptions) error { revoke = o; return nil })
	}
	if code := withRunF(t, []string{"registry", "revoke"}, rb, "registry", "revoke", "dev-a", "--reason", "lost in the field", "--json"); code != 0 || revoke.deviceID != "dev-a" || revoke.reason != "lost in the field" || !revoke.json {
		t.Fatalf("revoke: exit %d, options %+v", code, revoke)
	}
	revoke = nil
	if code := withRunF(t, []string{"registry", "revoke"}, rb, "registry", "revoke", "dev-a", "--reason", strings.Repeat("x", 1025)); code != exitUsage || revoke != nil {
		t.Fatalf("revoke with a long reason: exit %d", code)
	}
}

// testRegistryExportFlags: registry export takes its output and format flags.
func testRegistryExportFlags(t *testing.T) {
	var got *registryExportOptions
	build := func(f *Factory, r *rootOptions) *cobra.Command {
		return newRegistryExportCmd(f, r, func(o *registryExportOptions) error { got = o; return nil })
	}
	run := func(args ...string) int {
		got = nil
		return withRunF(t, []string{"registry", "export"}, build, append([]string{"registry", "export"}, args...)...)
	}
	if code := run("-o", "k.json", "--format", "json", "--force", "--json"); code != 0 || got.output != "k.json" || got.format != "json" || !got.force || !got.json {
		t.Fatalf("exit %d, options %+v", code, got)
	}
	if code := run(); code != 0 || got.output != "" || got.format != "json" || got.force {
		t.Fatalf("defaults: exit %d, options %+v", code, got)
	}
	for _, bad := range [][]string{{"--format", "csv"}, {"--json"}, {"-o", "-", "--json"}, {"extra"}} {
		if code := run(bad...); code != exitUsage || got != nil {
			t.Errorf("%v: exit %d, want 2 before running", bad, code)
		}
	}
}

// testRegistryOtherFlags: init, import, check and audit take --json and refuse extra arguments.
func testRegistryOtherFlags(t *testing.T) {
	for _, tt := range []struct {
		name  string
		build registryBuild
		args  []string
	}{
		{"init", nil, []string{"--json"}},
		{"import", nil, []string{"fleet.csv", "--json"}},
		{"check", nil, []string{"--json"}},
		{"audit", nil, []string{"--json"}},
	} {
		var gotJSON bool
		var file string
		ran := false
		switch tt.name {
		case "init":
			tt.build = func(f *Factory, r *rootOptions) *cobra.Command {
				return newRegistryInitCmd(f, r, func(o *registryInitOptions) error { ran, gotJSON = true, o.json; return nil })
			}
		case "import":
			tt.build = func(f *Factory, r *rootOptions) *cobra.Command {
				return newRegistryImportCmd(f, r, func(o *registryImportOptions) error { ran, gotJSON, file = true, o.json, o.file; return nil })
			}
		case "check":
			tt.build = func(f *Factory, r *rootOptions) *cobra.Command {
				return newRegistryCheckCmd(f, r, func(o *registryCheckOptions) error { ran, gotJSON = true, o.json; return nil })
			}
		case "audit":
			tt.build = func(f *Factory, r *rootOptions) *cobra.Command {
				return newRegistryAuditCmd(f, r, func(o *registryAuditOptions) error { ran, gotJSON = true, o.json; return nil })
			}
		}
		path := []string{"registry", tt.name}
		if code := withRunF(t, path, tt.build, append(path, tt.args...)...); code != 0 || !ran || !gotJSON {
			t.Errorf("%s: exit %d, ran %v, json %v", tt.name, code, ran, gotJSON)
		}
		if tt.name == "import" && file != "fleet.csv" {
			t.Errorf("import: file %q", file)
		}
		ran = false
		extra := append(append([]string{}, path...), "one", "two")
		if code := withRunF(t, path, tt.build, extra...); code != exitUsage || ran {
			t.Errorf("%s with extra arguments: exit %d, ran %v", tt.name, code, ran)
		}
	}
}

// TestRegistryExitCodes: 0 ok, 1 failure (damaged registry, wrong or no
// master secret), 2 bad input (missing registry, unknown device, bad
// files), 3 for check findings and a broken audit chain (design §7).
func TestRegistryExitCodes(t *testing.T) {
	master := canaryMaster(t)
	dir := registryFixture(t, master)
	corrupt := t.TempDir()
	if err := os.WriteFile(filepath.Join(corrupt, "usmp-registry.db"), bytes.Repeat([]byte("not a database\n"), 300), 0o600); err != nil {
		t.Fatal(err)
	}
	tampered := registryFixture(t, master)
	registrySQL(t, tampered, `UPDATE usmp_audit SET line = replace(line, '"event":"add"', '"event":"rotate"') WHERE seq = 3`)
	tests := []struct {
		name   string
		dir    string
		master string
		args   []string
		want   int
	}{
		{"list", dir, "", []string{"registry", "list"}, exitOK},
		{"show", dir, "", []string{"registry", "show", "dev-a"}, exitOK},
		{"check", dir, master, []string{"registry", "check"}, exitOK},
		{"audit", dir, "", []string{"registry", "audit"}, exitOK},
		{"missing registry", dir, "", []string{"--registry", "none.db", "registry", "list"}, exitUsage},
		{"legacy registry", dir, "", []string{"--registry", "old.json", "registry", "list"}, exitUsage},
		{"init existing", dir, "", []string{"registry", "init"}, exitUsage},
		{"unknown device", dir, "", []string{"registry", "show", "dev-x"}, exitUsage},
		{"revoked again", dir, "", []string{"registry", "revoke", "dev-a"}, exitUsage},
		{"add existing", dir, master, []string{"registry", "add", "device-id-1", "--derive"}, exitUsage},
		{"no master", dir, "", []string{"registry", "add", "dev-b", "--derive"}, exitError},
		{"wrong master", dir, "wrong-master", []string{"registry", "add", "dev-b", "--derive"}, exitError},
		{"export without master", dir, "", []string{"registry", "export", "-o", "x.json"}, exitError},
		{"export with wrong master", dir, "wrong-master", []string{"registry", "export", "-o", "x.json"}, exitError},
		{"check with wrong master", dir, "wrong-master", []string{"registry", "check"}, exitMismatch},
		{"import missing file", dir, "", []string{"registry", "import", "missing.csv"}, exitUsage},
		{"corrupt list", corrupt, "", []string{"registry", "list"}, exitError},
		{"corrupt add", corrupt, "", []string{"registry", "add", "dev-b", "--random"}, exitError},
		{"corrupt check", corrupt, "", []string{"registry", "check"}, exitMismatch},
		{"corrupt audit", corrupt, "", []string{"registry", "audit"}, exitMismatch},
		{"tampered audit", tampered, "", []string{"registry", "audit"}, exitMismatch},
		{"tampered check", tampered, "", []string{"registry", "check"}, exitMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := registryRun(t, tt.dir, tt.master, tt.args...)
			if code != tt.want {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.want, errOut)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "x.json")); err == nil {
		t.Error("x.json left behind after a failed export (R8)")
	}
}

// TestRegistryAuditNamesLine: a tampered audit log is reported at its line,
// as text and as JSON (issue 5 item 4).
func TestRegistryAuditNamesLine(t *testing.T) {
	dir := registryFixture(t, registryGoldenMaster)
	registrySQL(t, dir, `UPDATE usmp_audit SET line = replace(line, '"epoch":0', '"epoch":7') WHERE seq = 5`)
	code, out, errOut := registryRun(t, dir, "", "registry", "audit")
	// The verdict on stdout, as every verdict of check and audit, then the
	// record the edited entry now contradicts (compared with the broken log
	// as it stands); the summary on stderr.
	if code != exitMismatch || !strings.Contains(out, "line 5: ") || !strings.Contains(errOut, "broken at line 5") ||
		!strings.Contains(out, `device "legacy-1": epoch: is 0, the audit log says 7`) || !strings.Contains(out, "whose chain is broken") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = registryRun(t, dir, "", "registry", "audit", "--json")
	var rep registryAuditReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitMismatch || rep.Intact || rep.Line != 5 || rep.Problem == "" {
		t.Fatalf("exit %d, %+v, %v", code, rep, err)
	}
}

// TestRegistryExportRefusesTerminal is R10: the key map never goes to a
// terminal, and a refused export is not recorded.
func TestRegistryExportRefusesTerminal(t *testing.T) {
	master := canaryMaster(t)
	dir := registryFixture(t, master)
	for _, args := range [][]string{{"registry", "export"}, {"registry", "export", "-o", "-"}} {
		f, _, out, errOut := testFactory(t, master)
		f.IO.SetStdoutTTY(true)
		code := runCLI(t, f, dir, args...)
		if code != exitUsage || out.Len() != 0 || !strings.Contains(errOut.String(), "refusing to write key bytes to a terminal") {
			t.Errorf("%v: exit %d, stdout %d bytes, stderr %q", args, code, out.Len(), errOut)
		}
	}
	if b := registryAuditLog(t, dir); bytes.Contains(b, []byte(`"event":"export"`)) {
		t.Error("a refused export was recorded in the audit log")
	}
	// To a file from a terminal is fine.
	f, _, out, errOut := testFactory(t, master)
	f.IO.SetStdoutTTY(true)
	if code := runCLI(t, f, dir, "registry", "export", "-o", "k.json"); code != exitOK || out.Len() != 0 {
		t.Fatalf("-o from a terminal: exit %d, %s", code, errOut)
	}
	// A terminal as the import's standard input is refused too: it would
	// echo the keys.
	f, _, _, errOut = testFactory(t, master)
	f.IO.SetStdinTTY(true)
	if code := runCLI(t, f, dir, "registry", "import", "-"); code != exitUsage || !strings.Contains(errOut.String(), "refusing to read keys typed on a terminal") {
		t.Fatalf("import from a terminal: exit %d, %s", code, errOut)
	}
}

// TestRegistryNoLeak is R22 over every registry command with a canary
// master: no key on stdout or stderr except the export's designated output,
// and none in the registry of derived devices or in the audit log.
func TestRegistryNoLeak(t *testing.T) {
	master := canaryMaster(t)
	scan := newScanner(master, "device-id-1", "24:6F:28:AA", "dev-a", "dev-b")
	dir := registryFixture(t, master)
	cases := []struct {
		args      []string
		keyStdout bool // stdout is the export's key map
	}{
		{[]string{"registry", "list"}, false},
		{[]string{"registry", "list", "--json"}, false},
		{[]string{"registry", "show", "device-id-1"}, false},
		{[]string{"registry", "show", "24:6F:28:AA", "--json"}, false},
		{[]string{"registry", "add", "dev-b", "--derive", "--json"}, false},
		{[]string{"registry", "add", "dev-b", "--derive"}, false}, // refused: exists
		{[]string{"registry", "add", "dev-c", "--random"}, false},
		{[]string{"registry", "revoke", "dev-c", "--json"}, false},
		{[]string{"registry", "export", "-o", "k.json", "--json"}, false},
		{[]string{"registry", "export", "-o", "k.json"}, false}, // refused: exists
		{[]string{"registry", "export"}, true},
		{[]string{"--registry", "copy.db", "registry", "import", "k.json", "--json"}, false},
		{[]string{"--registry", "copy.db", "registry", "import", "k.json"}, false},
		{[]string{"registry", "check"}, false},
		{[]string{"registry", "check", "--json"}, false},
		{[]string{"registry", "audit"}, false},
		{[]string{"registry", "audit", "--json"}, false},
		{[]string{"registry", "init", "--json"}, false}, // refused: exists
	}
	for _, tt := range cases {
		code, out, errOut := registryRun(t, dir, master, tt.args...)
		leaks := scan.Scan("stderr", []byte(errOut))
		if !tt.keyStdout {
			leaks = append(leaks, scan.Scan("stdout", []byte(out))...)
		} else if len(scan.Scan("stdout", []byte(out))) == 0 {
			t.Errorf("%v: the export holds no derived key (the scan is blind?)", tt.args)
		}
		for _, leak := range leaks {
			t.Errorf("usmp-psk %v (exit %d): %s", tt.args, code, leak)
		}
	}
	// Files: the export and the imported copy hold keys by design; the
	// registry (derived keys are never stored, and its audit log) does not.
	b, err := os.ReadFile(filepath.Join(dir, "usmp-registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range scan.Scan("usmp-registry.db", b) {
		t.Error(leak)
	}
	for _, leak := range scan.Scan("the audit log of copy.db", registryAuditLog(t, dir, "copy.db")) {
		t.Error(leak)
	}
	for _, name := range []string{"k.json", "copy.db"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600 (R5)", name, fi.Mode().Perm())
		}
	}
}

// TestRegistryConcurrentAdd is R17 in-process under -race: writers in
// goroutines, each with its own factory, lose nothing. (The scripts
// registry_concurrent and registry_lock do the same with processes.)
func TestRegistryConcurrentAdd(t *testing.T) {
	master := canaryMaster(t)
	path := filepath.Join(t.TempDir(), "reg", "usmp-registry.db")
	const n = 16
	var wg sync.WaitGroup
	codes := make([]int, n)
	errs := make([]string, n)
	for i := range n {
		wg.Go(func() {
			f, _, _, errOut := testFactory(t, master)
			args := []string{"--registry", path, "registry", "add", fmt.Sprintf("dev-%d", i), "--random"}
			if i%2 == 1 {
				args[len(args)-1] = "--derive"
			}
			codes[i] = run(context.Background(), f, args)
			errs[i] = errOut.String()
		})
	}
	wg.Wait()
	created := 0
	for i := range n {
		if codes[i] != exitOK {
			t.Errorf("writer %d: exit %d: %s", i, codes[i], errs[i])
		}
		created += strings.Count(errs[i], "created registry")
	}
	if created != 1 {
		t.Errorf("%d writers said they created the registry, want 1", created)
	}
	reg, err := registry.Open(path, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	devs, err := reg.List(context.Background())
	if err != nil || len(devs) != n {
		t.Fatalf("%d devices, %v; want %d", len(devs), err, n)
	}
	code, out, errOut := registryRun(t, "", master, "--registry", path, "registry", "check", "--json")
	if code != exitOK || !strings.Contains(out, `"problems": 0`) {
		t.Fatalf("check: exit %d %s %s", code, out, errOut)
	}
}

func TestRegistryCount(t *testing.T) {
	for _, tt := range []struct {
		n          int
		word, want string
	}{
		{0, "device", "0 devices"}, {1, "device", "1 device"}, {2, "retired key", "2 retired keys"},
		{1, "entry", "1 entry"}, {12, "entry", "12 entries"}, {3, "problem", "3 problems"},
	} {
		if got := registryCount(tt.n, tt.word); got != tt.want {
			t.Errorf("registryCount(%d, %q) = %q, want %q", tt.n, tt.word, got, tt.want)
		}
	}
}
