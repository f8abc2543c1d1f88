package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/usmp/usmp-psk/internal/cli"
)

// visible reports whether c is listed by its parent's help (as an
// available command or an additional help topic), and its ancestors too.
func visible(c *cobra.Command) bool {
	for p := c; p.HasParent(); p = p.Parent() {
		if !p.IsAvailableCommand() && !p.IsAdditionalHelpTopicCommand() {
			return false
		}
	}
	return true
}

func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}

// TestDocumentedCoversEveryCommand: every command a user can see gets a
// page, hidden ones do not, and file names are unique and carry the names.
func TestDocumentedCoversEveryCommand(t *testing.T) {
	t.Parallel()
	root := cli.CommandTree()
	docs := Documented(root)
	var got []string
	for _, c := range docs {
		got = append(got, c.CommandPath())
	}
	for _, c := range allCommands(root) {
		want := visible(c)
		has := slices.Contains(got, c.CommandPath())
		if want != has {
			t.Errorf("%q: documented=%v, want %v (hidden=%v)", c.CommandPath(), has, want, c.Hidden)
		}
	}
	for _, must := range []string{"usmp-psk", "usmp-psk derive", "usmp-psk generate", "usmp-psk completion bash", "usmp-psk version"} {
		if !slices.Contains(got, must) {
			t.Errorf("%q has no page", must)
		}
	}
	if slices.Contains(got, "usmp-psk selfcheck") {
		t.Errorf("hidden command selfcheck has a page")
	}
	md, man := map[string]string{}, map[string]string{}
	for _, c := range docs {
		for _, n := range []struct {
			seen map[string]string
			name string
		}{{md, MarkdownName(c)}, {man, ManName(c)}} {
			if prev, dup := n.seen[n.name]; dup {
				t.Errorf("%q and %q both get the file %s", prev, c.CommandPath(), n.name)
			}
			n.seen[n.name] = c.CommandPath()
			for _, word := range strings.Fields(c.CommandPath()) {
				if !strings.Contains(n.name, word) {
					t.Errorf("file name %s lacks the command name %q", n.name, word)
				}
			}
		}
	}
}

func generate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"-md", filepath.Join(dir, "md"), "-man", filepath.Join(dir, "man"), "-gzip", "-date", "2026-01-02"}
	if err := run(args, io.Discard); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestGenerateDeterministic: two runs give the same bytes, stale pages are
// removed, and every page names its command.
func TestGenerateDeterministic(t *testing.T) {
	t.Parallel()
	a, b := generate(t), generate(t)
	stale := filepath.Join(b, "md", "usmp-psk_removed.md")
	if err := os.WriteFile(stale, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-md", filepath.Join(b, "md")}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale page survived regeneration: %v", err)
	}
	for _, sub := range []string{"md", "man"} {
		ents, err := os.ReadDir(filepath.Join(a, sub))
		if err != nil {
			t.Fatal(err)
		}
		entsB, err := os.ReadDir(filepath.Join(b, sub))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != len(entsB) {
			t.Fatalf("%s: %d files, then %d", sub, len(ents), len(entsB))
		}
		for _, e := range ents {
			x, err := os.ReadFile(filepath.Join(a, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			y, err := os.ReadFile(filepath.Join(b, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(x, y) {
				t.Errorf("%s/%s differs between two runs", sub, e.Name())
			}
		}
	}
	for _, c := range Documented(cli.CommandTree()) {
		page, err := os.ReadFile(filepath.Join(a, "md", MarkdownName(c)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(page, []byte("# "+c.CommandPath()+"\n")) {
			t.Errorf("%s does not title its command", MarkdownName(c))
		}
		if _, err := os.Stat(filepath.Join(a, "man", ManName(c)+".gz")); err != nil {
			t.Errorf("no man page for %q: %v", c.CommandPath(), err)
		}
	}
	index, err := os.ReadFile(filepath.Join(a, "md", IndexName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(index, []byte("(usmp-psk_derive.md)")) {
		t.Errorf("index does not link the derive page:\n%s", index)
	}
}

func TestManPlaceholdersSurvive(t *testing.T) {
	t.Parallel()
	root := cli.CommandTree()
	page, err := renderMan(root, mustDate(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("<command>")) {
		t.Errorf("the usage line lost <command>:\n%s", page)
	}
	if root.Use != "usmp-psk <command> [flags]" || root.Long == "" || strings.HasPrefix(root.Long, "```") {
		t.Errorf("renderMan did not restore the command: Use=%q", root.Use)
	}
}

func mustDate(t *testing.T) time.Time {
	t.Helper()
	d, err := manDate("2026-01-02", "")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestManDate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, flag, epoch, want string
		wantErr                 bool
	}{
		{name: "flag", flag: "2026-03-04", epoch: "0", want: "2026-03-04"},
		{name: "epoch", epoch: "1767225600", want: "2026-01-01"},
		{name: "default is fixed", want: "1970-01-01"},
		{name: "bad flag", flag: "March", wantErr: true},
		{name: "bad epoch", epoch: "yesterday", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := manDate(tt.flag, tt.epoch)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && d.Format("2006-01-02") != tt.want {
				t.Errorf("date = %s, want %s", d.Format("2006-01-02"), tt.want)
			}
		})
	}
}

// TestFlagsPage: every visible flag of every documented command is in the
// flags table with its environment variable.
func TestFlagsPage(t *testing.T) {
	t.Parallel()
	cmds := Documented(cli.CommandTree())
	var b bytes.Buffer
	renderFlags(&b, cmds)
	page := b.String()
	for _, c := range cmds {
		c.NonInheritedFlags().VisitAll(func(f *pflag.Flag) {
			if f.Hidden || f.Name == "help" {
				return
			}
			if !strings.Contains(page, "| `--"+f.Name+"` |") || !strings.Contains(page, "`"+EnvVar(f.Name)+"`") {
				t.Errorf("flag --%s of %q is not in %s", f.Name, c.CommandPath(), FlagsName)
			}
		})
	}
	for _, tt := range []struct{ flag, env string }{
		{"master-file", "USMP_PSK_MASTER_FILE"},
		{"nvs.namespace", "USMP_PSK_NVS_NAMESPACE"},
		{"encoding", "USMP_PSK_ENCODING"},
	} {
		if got := EnvVar(tt.flag); got != tt.env {
			t.Errorf("EnvVar(%q) = %q, want %q", tt.flag, got, tt.env)
		}
	}
	if !strings.Contains(page, "| `--config` | string | `USMP_PSK_CONFIG` | — |") {
		t.Errorf("--config should have no config key:\n%s", page)
	}
}

// TestCommittedReferenceIsCurrent: docs/cli is what the commands say, so
// that `go test ./...` (not only CI's scripts/ci-extra.sh) catches a help
// text changed without its reference. Fix: scripts/gen-docs.sh.
func TestCommittedReferenceIsCurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := writeMarkdown(Documented(cli.CommandTree()), dir); err != nil {
		t.Fatal(err)
	}
	const committed = "../../../docs/cli"
	names := func(d string) []string {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".md") {
				out = append(out, e.Name())
			}
		}
		return out
	}
	want, got := names(dir), names(committed)
	if !slices.Equal(want, got) {
		t.Fatalf("docs/cli has pages %q, the commands make %q: run scripts/gen-docs.sh", got, want)
	}
	for _, n := range want {
		a, errA := os.ReadFile(filepath.Join(dir, n))
		b, errB := os.ReadFile(filepath.Join(committed, n))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("docs/cli/%s is stale (%v %v): run scripts/gen-docs.sh", n, errA, errB)
		}
	}
}
