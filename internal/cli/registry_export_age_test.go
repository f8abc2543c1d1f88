package cli

// registry export --recipient / --recipients-file (issue 15 part 2): the
// export encrypted with age decrypts, with any recipient's identity, to
// exactly the plaintext export; it is no secret file; bad recipients are
// refused (exit 2) before anything is recorded, and never repeated.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/spf13/cobra"
)

// ageIdentity makes a fresh X25519 identity.
func ageIdentity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// ageOpen decrypts an export with id (armored or binary).
func ageOpen(t *testing.T, ct []byte, id age.Identity) ([]byte, error) {
	t.Helper()
	var src io.Reader = bytes.NewReader(ct)
	if bytes.HasPrefix(ct, []byte(armor.Header)) {
		src = armor.NewReader(src)
	}
	r, err := age.Decrypt(src, id)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestRegistryExportAgeFlagParsing(t *testing.T) {
	t.Chdir(t.TempDir())
	var got *registryExportOptions
	build := func(f *Factory, r *rootOptions) *cobra.Command {
		return newRegistryExportCmd(f, r, func(o *registryExportOptions) error { got = o; return nil })
	}
	run := func(args ...string) int {
		got = nil
		return withRunF(t, []string{"registry", "export"}, build, append([]string{"registry", "export"}, args...)...)
	}
	if code := run("--recipient", "age1a", "--recipient", "age1b", "--recipients-file", "gw.txt", "--armor"); code != 0 ||
		len(got.recipients) != 2 || got.recipients[1] != "age1b" || got.recipientsFile != "gw.txt" || !got.armor {
		t.Fatalf("exit %d, options %+v", code, got)
	}
	// A comma is part of a value, not a separator (StringArray).
	if code := run("--recipient", "age1a,age1b"); code != 0 || len(got.recipients) != 1 {
		t.Fatalf("exit %d, options %+v", code, got)
	}
	if code := run("--armor"); code != exitUsage || got != nil {
		t.Fatalf("--armor alone: exit %d, want 2 before running", code)
	}
}

func TestRegistryExportAge(t *testing.T) {
	master := canaryMaster(t)
	dir := registryFixture(t, master)
	gw1, gw2, other := ageIdentity(t), ageIdentity(t), ageIdentity(t)
	if err := os.WriteFile(filepath.Join(dir, "gateways.txt"), []byte("# gateway 2\n"+gw2.Recipient().String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, plain, errOut := registryRun(t, dir, master, "registry", "export")
	if code != exitOK || !strings.Contains(plain, `"legacy-1": "`) {
		t.Fatalf("plaintext export: exit %d, %s", code, errOut)
	}
	scan := newScanner(master, "device-id-1", "24:6F:28:AA", "dev-a", "legacy-1")
	legacy, err := hex.DecodeString(strings.TrimSpace(registryLegacyKey))
	if err != nil {
		t.Fatal(err)
	}
	scan.Add("legacy key", legacy)

	// To a file: 0644, no git guard, decrypts with either recipient's
	// identity to exactly the plaintext export, and with no other.
	code, out, errOut := registryRun(t, dir, master, "registry", "export", "-o", "export.json.age", "--recipient", gw1.Recipient().String(), "--recipients-file", "gateways.txt", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var fi os.FileInfo
	var rep registryExportReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Encryption != "age" || rep.Recipients != 2 || rep.Armor || rep.Devices != 3 {
		t.Fatalf("report %s (%v)", out, err)
	}
	fi, err = os.Stat(filepath.Join(dir, "export.json.age"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, %v; want 0644", fi.Mode(), err)
	}
	ct, err := os.ReadFile(filepath.Join(dir, "export.json.age"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []*age.X25519Identity{gw1, gw2} {
		got, err := ageOpen(t, ct, id)
		if err != nil || string(got) != plain {
			t.Fatalf("decrypts to %d bytes (%v), not the plaintext export", len(got), err)
		}
	}
	if _, err := ageOpen(t, ct, other); err == nil {
		t.Fatal("another identity decrypted the export")
	}
	for _, f := range scan.Scan("export.json.age", ct) {
		t.Errorf("the encrypted export leaks: %s", f)
	}
	for _, f := range scan.Scan("stderr", []byte(errOut+out)) {
		t.Errorf("leak: %s", f)
	}
	// Not replaced without --force.
	if code, _, errOut := registryRun(t, dir, master, "registry", "export", "-o", "export.json.age", "--recipient", gw1.Recipient().String()); code != exitUsage || !strings.Contains(errOut, "already exists") {
		t.Fatalf("overwrite: exit %d, %s", code, errOut)
	}
	// The report names the encryption, not a mode.
	code, _, errOut = registryRun(t, dir, master, "registry", "export", "-o", "export.json.age", "--force", "--recipient", gw1.Recipient().String())
	if code != exitOK || !strings.Contains(errOut, "exported the keys of 3 active devices to export.json.age (json, age-encrypted to 1 recipient; 1 revoked device left out)") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// TestRegistryExportAgeTerminal: an armored encrypted export may go to a
// terminal; binary age output is refused there (exit 2, nothing recorded),
// as the plaintext is.
func TestRegistryExportAgeTerminal(t *testing.T) {
	master := canaryMaster(t)
	dir := registryFixture(t, master)
	id := ageIdentity(t)
	rcpt := id.Recipient().String()
	for _, tt := range []struct {
		args []string
		want int
		msg  string
	}{
		{[]string{"--recipient", rcpt}, exitUsage, "refusing to write binary age output to a terminal"},
		{[]string{}, exitUsage, "refusing to write key bytes to a terminal"},
		{[]string{"--recipient", rcpt, "--armor", "-o", "-"}, exitOK, "to standard output (json, age-encrypted to 1 recipient, armored; 1 revoked device left out)"},
	} {
		f, _, out, errOut := testFactory(t, master)
		f.IO.SetStdoutTTY(true)
		code := runCLI(t, f, dir, append([]string{"registry", "export"}, tt.args...)...)
		if code != tt.want || !strings.Contains(errOut.String(), tt.msg) {
			t.Fatalf("%v: exit %d, stderr %q", tt.args, code, errOut)
		}
		if code != exitOK {
			if out.Len() != 0 {
				t.Fatalf("%v: wrote %d bytes", tt.args, out.Len())
			}
			continue
		}
		if !strings.HasPrefix(out.String(), armor.Header) {
			t.Fatalf("not armored: %.40q", out.String())
		}
		got, err := ageOpen(t, out.Bytes(), id)
		if err != nil || !bytes.Contains(got, []byte(`"legacy-1": "`+strings.TrimSpace(registryLegacyKey)+`"`)) {
			t.Fatalf("armored export does not decrypt to the export (%v)", err)
		}
	}
	if n := bytes.Count(registryAuditLog(t, dir), []byte(`"event":"export"`)); n != 1 {
		t.Fatalf("%d exports recorded, want the one that was delivered", n)
	}
}

// TestRegistryExportAgeBadRecipients: exit 2 naming the flag or file and
// line, before the master secret or the audit log; the value is never
// repeated; nothing is written.
func TestRegistryExportAgeBadRecipients(t *testing.T) {
	master := canaryMaster(t)
	dir := registryFixture(t, master)
	id := ageIdentity(t)
	good := id.Recipient().String()
	files := map[string]string{
		"identity.txt": "# created: 2026-11-27\n# public key: " + good + "\n" + id.String() + "\n",
		"empty.txt":    "# nothing here\n",
		"bad.txt":      good + "\n" + good[:30] + "\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sshKey := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + strings.Repeat("x", 43)
	tests := []struct {
		args  []string
		msg   string
		value string
	}{
		{[]string{"--recipient", id.String()}, "--recipient: this is an age identity (a secret key), not a recipient", id.String()},
		{[]string{"--recipient", good, "--recipient", good[:40]}, "--recipient #2: not a valid age X25519 recipient", good[:40]},
		{[]string{"--recipient", sshKey}, "SSH public keys are not supported", sshKey[12:40]},
		{[]string{"--recipients-file", "identity.txt"}, "identity.txt:3: this is an age identity (a secret key)", id.String()},
		{[]string{"--recipients-file", "empty.txt"}, "empty.txt: no recipients in the file", ""},
		{[]string{"--recipients-file", "bad.txt"}, "bad.txt:2: not a valid age X25519 recipient", good[:30]},
		{[]string{"--recipients-file", "missing.txt"}, "--recipients-file: open missing.txt", ""},
	}
	for _, tt := range tests {
		// No master secret: the recipients are checked before it is needed.
		code, out, errOut := registryRun(t, dir, "", append([]string{"registry", "export", "-o", "x.age"}, tt.args...)...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, tt.msg) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args[:1], code, out, errOut, tt.msg)
		}
		for i := 0; i+12 <= len(tt.value); i++ {
			if strings.Contains(errOut, tt.value[i:i+12]) {
				t.Errorf("%v: the error repeats the value: %q", tt.args[:1], errOut)
				break
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.age")); err == nil {
		t.Error("x.age written by a refused export")
	}
	if bytes.Contains(registryAuditLog(t, dir), []byte(`"event":"export"`)) {
		t.Error("a refused export was recorded in the audit log")
	}
}
