package main

// TestDocs runs the documentation as written (issue 14): every fenced sh
// and console block of README.md, docs/getting-started.md, docs/rotation.md
// and docs/factory.md, and the jobs of factory.md's GitHub Actions and
// GitLab CI examples, become testscripts that run each command in bash
// against the usmp-psk under test, in order, in one work directory per
// document. A doc edit that breaks a step fails `go test ./...`.
//
// What a reader sees is what runs. The test only:
//   - runs the hidden commands of a `<!-- doc-test: setup … -->` comment
//     before the block that follows it (files a step needs that the page
//     assumes you have, such as an id list);
//   - leaves out, and counts as not run with its reason, a block after
//     `<!-- doc-test: skip REASON -->` and a command of the next block that
//     starts with PREFIX after `not-run PREFIX (REASON)`;
//   - runs a block after `checkout` in a checkout of this repository
//     (go.mod, go.sum, cmd/ and internal/, linked, and .gitignore);
//   - moves /dev/shm and /etc/usmp under the work directory, and puts
//     stand-ins on PATH for what needs hardware or a service: esptool.py
//     (records its arguments), flash-tool (reads a key from stdin),
//     systemctl (records its arguments);
//   - checks a console block's output, with every KCV (8 hex digits) mapped
//     one to one onto the KCVs of the run and $HOME written /home/you;
//   - expects exit 0, or N where the command's comment says "exit N";
//   - for the CI examples: runs each job's run/script steps in a workspace
//     of its own (the factory repository: factory/devices.csv), with the
//     matrix, inputs, secrets (the canary master, an nvs_keys partition)
//     and CI variables filled in, and artifacts passed between jobs as
//     upload-artifact/download-artifact and GitLab's artifacts: paths do.
//     Steps that use an action other than the artifact ones are not run
//     (checkout and setup-go: the workspace and Go are there).
// Other directives: `note TEXT` (a remark for the reader of the source).

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/usmp/usmp-psk/internal/cli"
	"github.com/usmp/usmp-psk/internal/leakcheck"
)

// docsUnderTest are the pages whose commands run.
var docsUnderTest = []string{"README.md", "docs/getting-started.md", "docs/rotation.md", "docs/factory.md"}

// repoRoot is the repository, from cmd/usmp-psk.
const repoRoot = "../.."

// docBlock is one fenced block of a page and the directives before it.
type docBlock struct {
	doc, lang string
	line      int      // of the opening fence
	body      []string // the lines between the fences, indentation removed
	skip      string   // reason it is not run
	checkout  bool
	notRun    map[string]string // command prefix -> reason
	setup     []string
}

// docStep is one command of a block, as the test runs it.
type docStep struct {
	where   string // doc:line
	cmd     string // the command, continuation lines joined
	exit    int
	output  []string // expected output (console blocks); nil: not checked
	console bool
	notRun  string
}

// docReport counts what ran, for the summary and the floor below.
type docReport struct {
	mu     sync.Mutex
	run    int
	notRun []string
}

func (r *docReport) add(run int, notRun ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.run += run
	r.notRun = append(r.notRun, notRun...)
}

var (
	directiveStart = regexp.MustCompile(`^\s*<!-- doc-test: ?(.*)$`)
	fenceOpen      = regexp.MustCompile("^(\\s*)```([a-z]*)\\s*$")
	exitComment    = regexp.MustCompile(`#.*\bexit (\d+)\b`)
	kcvWord        = regexp.MustCompile(`\b[0-9a-f]{8}\b`)
)

// parseDoc reads the blocks of a page with their directives.
func parseDoc(t *testing.T, doc string) []docBlock {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, doc))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var blocks []docBlock
	pending := docBlock{notRun: map[string]string{}}
	for i := 0; i < len(lines); i++ {
		if m := directiveStart.FindStringSubmatch(lines[i]); m != nil {
			text := m[1]
			for !strings.Contains(text, "-->") {
				i++
				if i >= len(lines) {
					t.Fatalf("%s:%d: unterminated doc-test comment", doc, i)
				}
				text += "\n" + lines[i]
			}
			text = strings.TrimSpace(strings.TrimSpace(text[:strings.Index(text, "-->")]))
			applyDirective(t, fmt.Sprintf("%s:%d", doc, i+1), text, &pending)
			continue
		}
		m := fenceOpen.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, lang := m[1], m[2]
		blk := pending
		blk.doc, blk.line = doc, i+1
		if blk.lang == "" {
			blk.lang = lang
		}
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			blk.body = append(blk.body, strings.TrimPrefix(lines[i], indent))
		}
		blocks = append(blocks, blk)
		pending = docBlock{notRun: map[string]string{}}
	}
	return blocks
}

// applyDirective reads one doc-test comment into the next block.
func applyDirective(t *testing.T, where, text string, blk *docBlock) {
	t.Helper()
	if rest, ok := strings.CutPrefix(text, "setup"); ok {
		for _, l := range strings.Split(strings.TrimSpace(rest), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				blk.setup = append(blk.setup, l)
			}
		}
		return
	}
	if strings.HasPrefix(text, "note ") {
		return // a remark for the reader of the source, to its end
	}
	for _, clause := range splitClauses(text) {
		clause = strings.TrimSpace(clause)
		key, rest, _ := strings.Cut(clause, " ")
		switch key {
		case "skip":
			blk.skip = rest
		case "checkout":
			blk.checkout = true
		case "not-run":
			i := strings.LastIndex(rest, " (")
			if i < 0 || !strings.HasSuffix(rest, ")") {
				t.Fatalf("%s: not-run PREFIX (REASON), got %q", where, clause)
			}
			blk.notRun[strings.TrimSpace(rest[:i])] = rest[i+2 : len(rest)-1]
		case "note", "github-actions", "gitlab-ci":
			if key != "note" {
				blk.lang = key
			}
		default:
			t.Fatalf("%s: unknown doc-test directive %q", where, clause)
		}
	}
}

// splitClauses splits a directive at the semicolons outside parentheses
// (a reason may hold one).
func splitClauses(text string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range text {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ';':
			if depth == 0 {
				out = append(out, text[start:i])
				start = i + 1
			}
		}
	}
	return append(out, text[start:])
}

// shellSteps splits an sh or console block into commands.
func shellSteps(blk docBlock) []docStep {
	var steps []docStep
	console := blk.lang == "console" || slicesAny(blk.body, func(l string) bool { return strings.HasPrefix(l, "$ ") })
	for i := 0; i < len(blk.body); i++ {
		l := blk.body[i]
		if console {
			if !strings.HasPrefix(l, "$ ") {
				continue
			}
			l = strings.TrimPrefix(l, "$ ")
		}
		if strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		st := docStep{where: fmt.Sprintf("%s:%d", blk.doc, blk.line+1+i), console: console}
		cmd := l
		for strings.HasSuffix(strings.TrimRight(cmd, " "), "\\") && i+1 < len(blk.body) {
			i++
			cmd = strings.TrimSuffix(strings.TrimRight(cmd, " "), "\\") + " " + strings.TrimSpace(blk.body[i])
		}
		st.cmd = cmd
		if m := exitComment.FindStringSubmatch(cmd); m != nil {
			st.exit, _ = strconv.Atoi(m[1])
		}
		if console {
			st.output = []string{}
			for i+1 < len(blk.body) && !strings.HasPrefix(blk.body[i+1], "$ ") {
				i++
				st.output = append(st.output, blk.body[i])
			}
			for len(st.output) > 0 && st.output[len(st.output)-1] == "" {
				st.output = st.output[:len(st.output)-1]
			}
		}
		st.notRun = notRunReason(blk.notRun, cmd)
		steps = append(steps, st)
	}
	return steps
}

func slicesAny(s []string, f func(string) bool) bool {
	for _, v := range s {
		if f(v) {
			return true
		}
	}
	return false
}

// rewritePaths moves the system paths the docs write to under the work
// directory $DOCROOT.
func rewritePaths(s, shm string) string {
	s = strings.ReplaceAll(s, "/dev/shm", shm)
	return strings.ReplaceAll(s, "/etc/usmp", "$DOCROOT/etc/usmp")
}

// stepScript is the bash script of one step: it restores the shell state
// (exported variables, working directory) the previous step left, runs
// the command, and saves the state.
func stepScript(cmd string, console bool) string {
	var b strings.Builder
	b.WriteString("set -o pipefail\n")
	b.WriteString(`. "$DOCROOT/.state/env.sh"` + "\n")
	b.WriteString(`cd "$(cat "$DOCROOT/.state/pwd")"` + "\n")
	if console {
		b.WriteString("exec 2>&1\n")
	}
	b.WriteString(cmd + "\n")
	b.WriteString("rc=$?\n")
	b.WriteString(`export -p > "$DOCROOT/.state/env.sh"; pwd > "$DOCROOT/.state/pwd"` + "\nexit $rc\n")
	return b.String()
}

// docScript builds the testscript of one page: its steps as files of the
// archive, and the lines that run them.
type docScript struct {
	lines []string
	files map[string]string
	n     int
}

func (s *docScript) file(name, content string) {
	s.files[name] = content
}

// step adds one command; exit is its expected code.
func (s *docScript) step(where, cmd, script string, exit int, output []string) {
	s.n++
	name := fmt.Sprintf("steps/%03d.sh", s.n)
	s.file(name, script)
	s.lines = append(s.lines, "# "+where+": "+firstLine(cmd))
	switch exit {
	case 0:
		s.lines = append(s.lines, "exec bash "+name)
	case -1: // any failure
		s.lines = append(s.lines, "! exec bash "+name)
	default:
		s.lines = append(s.lines, fmt.Sprintf("exit %d bash %s", exit, name))
	}
	s.lines = append(s.lines, "leakscan stdout stderr")
	if output != nil {
		out := fmt.Sprintf("steps/%03d.out", s.n)
		s.file(out, strings.Join(output, "\n")+"\n")
		s.lines = append(s.lines, "docout "+out)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// TestDocs is the documentation test; see the file comment.
func TestDocs(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash")
	}
	dir := t.TempDir()
	rep := &docReport{}
	for _, doc := range docsUnderTest {
		s := &docScript{files: map[string]string{}}
		for _, blk := range parseDoc(t, doc) {
			switch blk.lang {
			case "sh", "console":
				addShellBlock(s, blk, rep)
			case "github-actions":
				addGitHubWorkflow(t, s, blk, rep)
			case "gitlab-ci":
				addGitLabPipeline(t, s, blk, rep)
			}
		}
		var b strings.Builder
		b.WriteString("# generated from " + doc + " by TestDocs (cmd/usmp-psk/docs_test.go)\n")
		b.WriteString("docsetup\n")
		for _, l := range s.lines {
			b.WriteString(l + "\n")
		}

		names := make([]string, 0, len(s.files))
		for n := range s.files {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			b.WriteString("-- " + n + " --\n" + s.files[n])
		}
		name := strings.NewReplacer("/", "_", ".md", "").Replace(doc) + ".txtar"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	runDocScripts(t, dir)
	// Commands are counted once: a CI step that runs for every shard of a
	// matrix counts as one; a multi-line run: or script: item counts its
	// lines.
	t.Logf("documentation test: %d documented commands run; %d not run:", rep.run, len(rep.notRun))
	for _, n := range rep.notRun {
		t.Logf("  not run: %s", n)
	}
	// A floor, so that a parser that stops finding blocks fails instead of
	// passing with nothing run.
	if rep.run < 40 {
		t.Errorf("only %d documented commands ran; the docs have more", rep.run)
	}
}

// addShellBlock adds the steps of an sh or console block.
func addShellBlock(s *docScript, blk docBlock, rep *docReport) {
	steps := shellSteps(blk)
	if blk.skip != "" {
		for _, st := range steps {
			rep.add(0, st.where+": "+st.cmd+" — "+blk.skip)
		}
		return
	}
	for i, l := range blk.setup {
		s.step(fmt.Sprintf("%s:%d (setup)", blk.doc, blk.line), l, stepScript(rewritePaths(l, "$DOCROOT/shm"), false), 0, nil)
		_ = i
	}
	for _, st := range steps {
		if st.notRun != "" {
			rep.add(0, st.where+": "+st.cmd+" — "+st.notRun)
			continue
		}
		cmd := rewritePaths(st.cmd, "$DOCROOT/shm")
		if blk.checkout {
			cmd = `cd "$DOCROOT/checkout" && ` + cmd
		}
		s.step(st.where, st.cmd, stepScript(cmd, st.console), st.exit, st.output)
		rep.add(1)
	}
}

// ciJob is one job of a GitHub Actions workflow, as it runs here. Jobs run
// in document order, which is the order their needs: put them in.
type ciJob struct {
	name   string
	env    map[string]string
	steps  []ciStep
	shards []int // matrix shards; nil: one run
}

// ciStep is a run step, or an artifact action.
type ciStep struct {
	line   int
	run    string
	upload *ciArtifact
	down   *ciArtifact
	env    map[string]string
	uses   string
}

type ciArtifact struct{ name, pattern, path string }

// yamlMap returns the value of key in a mapping node, or nil.
func yamlMap(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// yamlValue returns the scalar value of key in a mapping node, or "".
func yamlValue(n *yaml.Node, key string) string {
	if v := yamlMap(n, key); v != nil {
		return v.Value
	}
	return ""
}

// yamlList returns the items of a sequence node (nil for a missing one).
func yamlList(n *yaml.Node) []*yaml.Node {
	if n == nil {
		return nil
	}
	return n.Content
}

// yamlEnv reads an env/variables mapping.
func yamlEnv(n *yaml.Node) map[string]string {
	env := map[string]string{}
	if n == nil {
		return env
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		env[n.Content[i].Value] = n.Content[i+1].Value
	}
	return env
}

func yamlDoc(t *testing.T, blk docBlock) *yaml.Node {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(strings.Join(blk.body, "\n")), &root); err != nil {
		t.Fatalf("%s:%d: %v", blk.doc, blk.line, err)
	}
	return root.Content[0]
}

// notRunReason returns the reason a not-run directive gives for cmd, or ""
// when cmd runs.
func notRunReason(notRun map[string]string, cmd string) string {
	reason := ""
	for prefix, r := range notRun {
		if strings.HasPrefix(cmd, prefix) {
			reason = r
		}
	}
	return reason
}

// ghExpr matches a GitHub expression ${{ … }}.
var ghExpr = regexp.MustCompile(`\$\{\{\s*([^}]*?)\s*\}\}`)

// ghWorkflow is a GitHub Actions workflow being added to a page's script:
// what every run of every job shares.
type ghWorkflow struct {
	t      *testing.T
	s      *docScript
	rep    *docReport
	blk    docBlock
	env    map[string]string // the workflow's env
	inputs map[string]string // the workflow_dispatch inputs, at their defaults
}

// addGitHubWorkflow runs the jobs of a GitHub Actions workflow in order,
// each once per shard of its matrix.
func addGitHubWorkflow(t *testing.T, s *docScript, blk docBlock, rep *docReport) {
	t.Helper()
	root := yamlDoc(t, blk)
	wf := &ghWorkflow{t: t, s: s, rep: rep, blk: blk, env: yamlEnv(yamlMap(root, "env")), inputs: ghInputs(root)}
	jobs := yamlMap(root, "jobs")
	for i := 0; i+1 < len(jobs.Content); i += 2 {
		job := ghParseJob(blk, jobs.Content[i].Value, jobs.Content[i+1])
		runs := job.shards
		if runs == nil {
			runs = []int{0}
		}
		for _, shard := range runs {
			newGHRun(wf, &job, shard).addSteps()
		}
	}
}

// ghInputs reads the workflow_dispatch inputs at their defaults, the values
// of a run started without any.
func ghInputs(root *yaml.Node) map[string]string {
	inputs := map[string]string{}
	in := yamlMap(yamlMap(yamlMap(root, "on"), "workflow_dispatch"), "inputs")
	if in == nil {
		return inputs
	}
	for i := 0; i+1 < len(in.Content); i += 2 {
		inputs[in.Content[i].Value] = yamlMap(in.Content[i+1], "default").Value
	}
	return inputs
}

// ghParseJob reads one job: its env, its matrix shards and its steps.
func ghParseJob(blk docBlock, name string, jn *yaml.Node) ciJob {
	job := ciJob{name: name, env: yamlEnv(yamlMap(jn, "env"))}
	if sh := yamlMap(yamlMap(yamlMap(jn, "strategy"), "matrix"), "shard"); sh != nil {
		for _, v := range sh.Content {
			n, _ := strconv.Atoi(v.Value)
			job.shards = append(job.shards, n)
		}
	}
	for _, stn := range yamlMap(jn, "steps").Content {
		job.steps = append(job.steps, ghParseStep(blk, stn))
	}
	return job
}

// ghParseStep reads one step: a run, or an action with, for the artifact
// actions, what it uploads or downloads.
func ghParseStep(blk docBlock, stn *yaml.Node) ciStep {
	st := ciStep{line: blk.line + stn.Line, env: yamlEnv(yamlMap(stn, "env"))}
	if r := yamlMap(stn, "run"); r != nil {
		st.run = r.Value
	}
	u := yamlMap(stn, "uses")
	if u == nil {
		return st
	}
	st.uses = u.Value
	with := yamlMap(stn, "with")
	switch {
	case strings.HasPrefix(st.uses, "actions/upload-artifact"):
		st.upload = &ciArtifact{name: yamlValue(with, "name"), path: yamlValue(with, "path")}
	case strings.HasPrefix(st.uses, "actions/download-artifact"):
		st.down = &ciArtifact{pattern: yamlValue(with, "pattern"), path: yamlValue(with, "path")}
	}
	return st
}

// ghRun is one run of a job (one shard of its matrix, or its only run), in
// a workspace of its own; it expands the workflow's expressions as that
// run sees them.
type ghRun struct {
	wf    *ghWorkflow
	job   *ciJob
	shard int    // the matrix shard; 0: a job without a matrix
	ws    string // the workspace, a copy of the factory repository
	shm   string // the run's /dev/shm
}

func newGHRun(wf *ghWorkflow, job *ciJob, shard int) ghRun {
	ws := "$DOCROOT/gh-" + job.name
	if shard > 0 {
		ws += fmt.Sprintf("-%d", shard)
	}
	return ghRun{wf: wf, job: job, shard: shard, ws: ws, shm: ws + "-shm"}
}

// expr expands the ${{ … }} expressions in text.
func (r ghRun) expr(text string) string {
	r.wf.t.Helper()
	return ghExpr.ReplaceAllStringFunc(text, func(m string) string {
		v, ok := r.value(ghExpr.FindStringSubmatch(m)[1])
		if !ok {
			r.wf.t.Fatalf("%s:%d: unknown expression %s", r.wf.blk.doc, r.wf.blk.line, m)
		}
		return v
	})
}

// value is the value of expression e in this run; ok is false for an
// expression the test does not know. A secret is read from the
// environment the prologue sets.
func (r ghRun) value(e string) (v string, ok bool) {
	switch {
	case e == "matrix.shard":
		return strconv.Itoa(r.shard), true
	case e == "github.run_id":
		return "4242", true
	case strings.HasPrefix(e, "inputs."):
		return r.wf.inputs[strings.TrimPrefix(e, "inputs.")], true
	case strings.HasPrefix(e, "secrets."):
		return "$" + strings.TrimPrefix(e, "secrets."), true
	case strings.HasPrefix(e, "env."):
		k := strings.TrimPrefix(e, "env.")
		if v, ok := r.job.env[k]; ok {
			return v, true
		}
		return r.wf.env[k], true
	}
	return "", false
}

// exports is the bash that exports env, sorted, its values expanded and
// their system paths moved under the work directory.
func (r ghRun) exports(env map[string]string) string {
	var keys []string
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s=\"%s\"\n", k, rewritePaths(r.expr(env[k]), r.shm))
	}
	return b.String()
}

// prologue starts every step's script: it makes the workspace and exports
// the workflow's and the job's env and the secrets.
func (r ghRun) prologue() string {
	return fmt.Sprintf("mkdir -p %s %s && cd %s\n[ -e factory ] || cp -r \"$DOCROOT/repo/.\" .\n", r.ws, r.shm, r.ws) +
		r.exports(r.wf.env) + r.exports(r.job.env) + "export USMP_MASTER_SECRET=\"$CANARY_MASTER\" NVS_KEYS_B64=\"$DOC_NVS_KEYS_B64\"\n"
}

// first reports whether this is the job's first run, the one that counts
// its steps: a step run for every shard counts once.
func (r ghRun) first() bool { return r.shard <= 1 }

// where names a step of this run in the test's log.
func (r ghRun) where(st ciStep) string {
	where := fmt.Sprintf("%s:%d (job %s", r.wf.blk.doc, st.line, r.job.name)
	if r.shard > 0 {
		where += fmt.Sprintf(", shard %d", r.shard)
	}
	return where + ")"
}

// addSteps adds the job's steps for this run: the artifact actions as
// docartifact commands, the run steps as scripts; other actions are not run.
func (r ghRun) addSteps() {
	s, rep := r.wf.s, r.wf.rep
	prologue := r.prologue()
	for _, st := range r.job.steps {
		where := r.where(st)
		switch {
		case st.upload != nil:
			s.step(where, st.uses, fmt.Sprintf("%sdocartifact upload \"%s\" \"%s\"\n", prologue, r.expr(st.upload.name), strings.TrimSpace(rewritePaths(r.expr(st.upload.path), r.shm))), 0, nil)
			if r.first() {
				rep.add(1)
			}
		case st.down != nil:
			s.step(where, st.uses, fmt.Sprintf("%sdocartifact download \"%s\" \"%s\"\n", prologue, r.expr(st.down.pattern), rewritePaths(r.expr(st.down.path), r.shm)), 0, nil)
			if r.first() {
				rep.add(1)
			}
		case st.uses != "":
			if r.first() {
				rep.add(0, where+": uses "+st.uses+" — the workspace, Go and the usmp-psk under test are there")
			}
		default:
			r.addRunStep(where, prologue, st)
		}
	}
}

// addRunStep adds the script of one run: step (its env exported, bash -e),
// or counts it as not run; in the first shard, a step that decodes the NVS
// keys is also run failing, to check the keys are removed all the same.
func (r ghRun) addRunStep(where, prologue string, st ciStep) {
	s, rep := r.wf.s, r.wf.rep
	if reason := notRunReason(r.wf.blk.notRun, st.run); reason != "" {
		if r.first() {
			rep.add(0, where+": "+firstLine(st.run)+" — "+reason)
		}
		return
	}
	script := prologue + r.exports(st.env) + "set -eo pipefail\n" + rewritePaths(r.expr(st.run), r.shm) + "\n"
	s.step(where, st.run, script, 0, nil)
	if r.first() {
		rep.add(strings.Count(strings.TrimSpace(st.run), "\n") + 1)
	}
	if r.shard == 1 && strings.Contains(st.run, "NVS_KEYS_B64") {
		failKeysStep(s, where, script)
	}
}

// glPipeline is a GitLab CI pipeline being added to a page's script.
type glPipeline struct {
	s    *docScript
	rep  *docReport
	blk  docBlock
	root *yaml.Node
	vars map[string]string // the pipeline's variables
}

// glJob is one job of a pipeline, as it runs here.
type glJob struct {
	name      string
	line      int          // in the page
	items     []*yaml.Node // the lines of its script, after those of its template's before_script
	runs      []int        // CI_NODE_INDEX of each run: 1 to n for parallel: n, else 0
	artifacts []string     // its artifacts: paths, restored in later stages
}

// addGitLabPipeline runs the jobs of a GitLab CI pipeline, stage by stage,
// each once per parallel run, a run's script as one step.
func addGitLabPipeline(t *testing.T, s *docScript, blk docBlock, rep *docReport) {
	t.Helper()
	root := yamlDoc(t, blk)
	p := glPipeline{s: s, rep: rep, blk: blk, root: root, vars: yamlEnv(yamlMap(root, "variables"))}
	for _, stage := range yamlMap(root, "stages").Content {
		for _, job := range p.stageJobs(stage.Value) {
			for _, idx := range job.runs {
				p.addRun(job, idx)
			}
		}
	}
}

// stageJobs are the jobs of one stage, in document order; a hidden job
// (.name) is a template and does not run.
func (p glPipeline) stageJobs(stage string) []glJob {
	var jobs []glJob
	for i := 0; i+1 < len(p.root.Content); i += 2 {
		name, jn := p.root.Content[i].Value, p.root.Content[i+1]
		if jn.Kind != yaml.MappingNode || strings.HasPrefix(name, ".") || yamlMap(jn, "stage") == nil || yamlMap(jn, "stage").Value != stage {
			continue
		}
		var artifacts []string
		for _, a := range yamlList(yamlMap(yamlMap(jn, "artifacts"), "paths")) {
			artifacts = append(artifacts, a.Value)
		}
		jobs = append(jobs, glJob{name: name, line: p.blk.line + jn.Line, items: p.jobItems(jn), runs: glRuns(jn), artifacts: artifacts})
	}
	return jobs
}

// jobItems are the script lines of a job: the before_script of the
// template it extends, then its script.
func (p glPipeline) jobItems(jn *yaml.Node) []*yaml.Node {
	items := []*yaml.Node{}
	if ext := yamlMap(jn, "extends"); ext != nil {
		items = append(items, yamlList(yamlMap(yamlMap(p.root, ext.Value), "before_script"))...)
	}
	return append(items, yamlList(yamlMap(jn, "script"))...)
}

// glRuns are the CI_NODE_INDEX values of a job's runs: 1 to n for
// parallel: n, else one run with 0.
func glRuns(jn *yaml.Node) []int {
	p := yamlMap(jn, "parallel")
	if p == nil {
		return []int{0}
	}
	n, _ := strconv.Atoi(p.Value)
	var runs []int
	for k := 1; k <= n; k++ {
		runs = append(runs, k)
	}
	return runs
}

// addRun adds one run of a job as one step: the prologue, the script lines
// that run, and the copy of its artifacts for later stages. In the first
// parallel run, a script that decodes the NVS keys is also run failing, to
// check the keys are removed all the same.
func (p glPipeline) addRun(job glJob, idx int) {
	ws := "$DOCROOT/gl-" + job.name
	if idx > 0 {
		ws += fmt.Sprintf("-%d", idx)
	}
	shm := ws + "-shm"
	var b strings.Builder
	b.WriteString(p.prologue(ws, shm, idx, len(job.runs)))
	where := fmt.Sprintf("%s:%d (job %s", p.blk.doc, job.line, job.name)
	if idx > 0 {
		where += fmt.Sprintf(", node %d", idx)
	}
	where += ")"
	n := p.runScript(&b, job, idx, shm)
	for _, a := range job.artifacts {
		fmt.Fprintf(&b, "mkdir -p \"$DOCROOT/gl-artifacts\" && cp -r --parents %s \"$DOCROOT/gl-artifacts/\"\n", a)
	}
	p.s.step(where, "the job's script", b.String(), 0, nil)
	if idx <= 1 {
		p.rep.add(n)
	}
	if idx == 1 && strings.Contains(b.String(), "NVS_KEYS_B64\"") && strings.Contains(b.String(), "base64 -d") {
		failKeysStep(p.s, where, b.String())
	}
}

// prologue starts a run's script: it makes the workspace, restores the
// artifacts of earlier stages as GitLab does, and exports the pipeline's
// variables, the CI variables and the secrets, then sets bash -e.
func (p glPipeline) prologue(ws, shm string, idx, total int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "mkdir -p %s %s && cd %s\n[ -e factory ] || cp -r \"$DOCROOT/repo/.\" .\n", ws, shm, ws)
	b.WriteString("[ -d \"$DOCROOT/gl-artifacts\" ] && cp -r \"$DOCROOT/gl-artifacts/.\" .\n")
	keys := make([]string, 0, len(p.vars))
	for k := range p.vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s=%q\n", k, p.vars[k])
	}
	fmt.Fprintf(&b, "export CI_NODE_INDEX=%d CI_NODE_TOTAL=%d CI_PIPELINE_ID=4242\n", idx, total)
	b.WriteString("export USMP_MASTER_SECRET=\"$CANARY_MASTER\" NVS_KEYS_B64=\"$DOC_NVS_KEYS_B64\"\n")
	b.WriteString("set -eo pipefail\n")
	return b.String()
}

// runScript writes the script lines of one run that the test runs, and
// counts the others (in the first run) as not run; it returns how many it
// wrote.
func (p glPipeline) runScript(b *strings.Builder, job glJob, idx int, shm string) int {
	n := 0
	for _, it := range job.items {
		if reason := notRunReason(p.blk.notRun, it.Value); reason != "" {
			if idx <= 1 {
				p.rep.add(0, fmt.Sprintf("%s:%d (job %s): %s — %s", p.blk.doc, p.blk.line+it.Line, job.name, firstLine(it.Value), reason))
			}
			continue
		}
		b.WriteString(rewritePaths(it.Value, shm) + "\n")
		n++
	}
	return n
}

// failKeysStep runs a CI step that decodes the NVS keys once more with an
// id list that does not exist, so that the batch fails under bash -e, and
// checks that the keys were removed all the same (issue 14 item 4).
func failKeysStep(s *docScript, where, script string) {
	failing := strings.Replace(script, "set -eo pipefail\n", "export IDS=missing-ids.csv\nset -eo pipefail\n", 1)
	s.step(where+", the batch failing", "the same step with a missing id list", failing, -1, nil)
	s.lines = append(s.lines, "docnokeys")
}

// runDocScripts runs the generated scripts with the commands they need.
func runDocScripts(t *testing.T, dir string) {
	abs, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	goEnv := map[string]string{}
	if out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOROOT").Output(); err == nil {
		v := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(v) == 3 {
			goEnv["GOCACHE"], goEnv["GOMODCACHE"], goEnv["GOROOT"] = v[0], v[1], v[2]
		}
	}
	goBin, _ := exec.LookPath("go")
	testscript.Run(t, testscript.Params{
		Dir: dir,
		Setup: func(env *testscript.Env) error {
			env.Setenv("CANARY_MASTER", leakcheck.CanaryMaster())
			env.Setenv("CANARY_IDS", "device-id-1 24:6F:28:AA DEVICE_ID fac-0001 fac-0042")
			env.Setenv("DOCROOT", env.WorkDir)
			env.Setenv("HOME", env.WorkDir+"/home")
			env.Setenv("XDG_CONFIG_HOME", env.WorkDir+"/home/.config")
			env.Setenv("REPO", abs)
			env.Setenv("GOBIN", env.WorkDir+"/home/go/bin")
			env.Setenv("GOFLAGS", "-mod=mod")
			env.Setenv("GOPROXY", "off")
			env.Setenv("GOTOOLCHAIN", "local")
			for k, v := range goEnv {
				env.Setenv(k, v)
			}
			path := env.WorkDir + "/fakebin" + string(filepath.ListSeparator) + env.Getenv("PATH")
			if goBin != "" {
				path += string(filepath.ListSeparator) + filepath.Dir(goBin)
			}
			env.Setenv("PATH", path+string(filepath.ListSeparator)+env.WorkDir+"/home/go/bin")
			return nil
		},
		Condition: func(cond string) (bool, error) { return false, fmt.Errorf("unknown condition %q", cond) },
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exit":      cmdExit,
			"docsetup":  cmdDocSetup,
			"docout":    cmdDocOut,
			"leakscan":  cmdLeakscan,
			"docnokeys": cmdDocNoKeys,
		},
	})
}

// fakes are the stand-ins on PATH for hardware and services.
var fakes = map[string]string{
	// esptool.py v4: writes go to a file per offset, reads come back from
	// it (flash reads back what it wrote).
	"esptool.py": `#!/bin/sh
echo "$@" >> "$DOCROOT/esptool.log"
while [ $# -gt 0 ]; do
	case $1 in
	--chip|--port|--baud) shift 2 ;;
	version) printf 'esptool.py v4.8.1\n4.8.1\n'; exit 0 ;;
	write_flash) cp "$3" "$DOCROOT/flash-$2.bin"; exit 0 ;;
	read_flash) head -c "$(($3))" "$DOCROOT/flash-$2.bin" > "$4"; exit 0 ;;
	*) shift ;;
	esac
done
`,
	"flash-tool": "#!/bin/sh\ncat > /dev/null\n",
	"systemctl":  "#!/bin/sh\necho \"$@\" >> \"$DOCROOT/systemctl.log\"\n",
	"docartifact": `#!/bin/bash
# docartifact upload NAME PATHS | docartifact download PATTERN DEST:
# actions/upload-artifact and download-artifact, on the local disk.
set -euo pipefail
store="$DOCROOT/gh-artifacts"
case $1 in
upload)
	name=$2; mkdir -p "$store/$name"
	paths=()
	while IFS= read -r p; do [ -n "$p" ] && paths+=($p); done <<< "$3"
	if [ ${#paths[@]} -eq 1 ] && [ -d "${paths[0]}" ]; then
		cp -r "${paths[0]}/." "$store/$name/"
	else
		for p in "${paths[@]}"; do cp --parents "$p" "$store/$name/"; done
	fi ;;
download)
	mkdir -p "$3"
	for d in "$store"/$2; do cp -r "$d" "$3/"; done ;;
esac
`,
}

// cmdDocSetup makes the work directory: the state of the shell steps, the
// stand-ins, a checkout of the repository, the factory repository's id
// list and the NVS keys the CI examples take from their secret store.
func cmdDocSetup(ts *testscript.TestScript, neg bool, args []string) {
	w := ts.Getenv("DOCROOT")
	for _, d := range []string{".state", "fakebin", "home", "checkout", "repo/factory"} {
		ts.Check(os.MkdirAll(filepath.Join(w, d), 0o700))
	}
	ts.Check(os.WriteFile(filepath.Join(w, ".state/env.sh"), nil, 0o600))
	ts.Check(os.WriteFile(filepath.Join(w, ".state/pwd"), []byte(w+"\n"), 0o600))
	for name, body := range fakes {
		ts.Check(os.WriteFile(filepath.Join(w, "fakebin", name), []byte(body), 0o700))
	}
	repo := ts.Getenv("REPO")
	for _, n := range []string{"go.mod", "go.sum", "cmd", "internal"} {
		ts.Check(os.Symlink(filepath.Join(repo, n), filepath.Join(w, "checkout", n)))
	}
	if b, err := os.ReadFile(filepath.Join(repo, ".gitignore")); err == nil {
		ts.Check(os.WriteFile(filepath.Join(w, "checkout", ".gitignore"), b, 0o600))
	}
	var ids strings.Builder
	ids.WriteString("id\n")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&ids, "fac-%04d\n", i)
	}
	ts.Check(os.WriteFile(filepath.Join(w, "repo/factory/devices.csv"), []byte(ids.String()), 0o600))
	// The nvs_keys partition of the CI examples' NVS_KEYS_B64 secret.
	keys := filepath.Join(w, "ci-keys.bin")
	ts.Check(ts.Exec("usmp-psk", "nvs", "generate-key", "--keyfile", keys))
	b, err := os.ReadFile(keys)
	ts.Check(err)
	ts.Setenv("DOC_NVS_KEYS_B64", base64.StdEncoding.EncodeToString(b))
}

// cmdDocOut compares a console step's output with what the page shows: KCVs
// are mapped one to one between the page and the run (so a KCV shown twice
// must come out twice the same), and $HOME is written /home/you.
func cmdDocOut(ts *testscript.TestScript, neg bool, args []string) {
	want := strings.Split(strings.TrimRight(ts.ReadFile(args[0]), "\n"), "\n")
	got := strings.Split(strings.TrimRight(strings.ReplaceAll(ts.ReadFile("stdout"), ts.Getenv("HOME"), "/home/you"), "\n"), "\n")
	m := kcvMaps(ts)
	if len(got) != len(want) {
		ts.Fatalf("the page shows %d lines of output, the command printed %d:\n%s", len(want), len(got), strings.Join(got, "\n"))
	}
	for i := range want {
		w, g := kcvWord.FindAllString(want[i], -1), kcvWord.FindAllString(got[i], -1)
		if len(w) != len(g) || kcvWord.ReplaceAllString(want[i], "KCV") != kcvWord.ReplaceAllString(got[i], "KCV") {
			ts.Fatalf("output line %d differs from the page:\n  page: %s\n  run:  %s", i+1, want[i], got[i])
		}
		for j := range w {
			if prev, ok := m.pageToRun[w[j]]; ok && prev != g[j] {
				ts.Fatalf("output line %d: the page shows %s as before, the run printed %s, not %s", i+1, w[j], g[j], prev)
			}
			if prev, ok := m.runToPage[g[j]]; ok && prev != w[j] {
				ts.Fatalf("output line %d: the run printed %s again, where the page shows %s, not %s", i+1, g[j], w[j], prev)
			}
			m.pageToRun[w[j]], m.runToPage[g[j]] = g[j], w[j]
		}
	}
}

type kcvMap struct{ pageToRun, runToPage map[string]string }

var (
	kcvMapsMu sync.Mutex
	kcvMapsOf = map[string]*kcvMap{}
)

// kcvMaps is the KCV mapping of one script (one page).
func kcvMaps(ts *testscript.TestScript) *kcvMap {
	kcvMapsMu.Lock()
	defer kcvMapsMu.Unlock()
	k := ts.Getenv("DOCROOT")
	if kcvMapsOf[k] == nil {
		kcvMapsOf[k] = &kcvMap{map[string]string{}, map[string]string{}}
	}
	return kcvMapsOf[k]
}

// cmdDocNoKeys fails when an nvs_keys.bin is left in a CI job's RAM
// directory (/dev/shm, moved under the work directory): the CI examples
// must remove the decoded keys whichever step fails (issue 14 item 4).
func cmdDocNoKeys(ts *testscript.TestScript, neg bool, args []string) {
	w := ts.Getenv("DOCROOT")
	err := filepath.WalkDir(w, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(w, p)
		top, _, _ := strings.Cut(rel, string(filepath.Separator))
		if !d.IsDir() && d.Name() == "nvs_keys.bin" && strings.HasSuffix(top, "-shm") {
			ts.Fatalf("the decoded NVS keys were left in %s", rel)
		}
		return nil
	})
	ts.Check(err)
}

// harnessVariables are USMP_PSK_* variables of the test and CI machinery,
// not of usmp-psk, that the docs name.
var harnessVariables = map[string]bool{"USMP_PSK_TEST_POSTGRES": true, "USMP_PSK_PG_KEEP": true}

// TestDocsEnvironmentNames: every USMP_PSK_* variable a page names is a
// setting of usmp-psk (a flag, nvs.*, or USMP_PSK_CONFIG) or one of the
// harness's. A CI example's own variable under the prefix would configure
// usmp-psk by accident, as USMP_PSK_VERSION=v1.0.0 did: it set the NVS
// format version of every image (issue 14 item 1).
func TestDocsEnvironmentNames(t *testing.T) {
	settings := map[string]bool{"USMP_PSK_CONFIG": true, "USMP_PSK_NVS_NAMESPACE": true, "USMP_PSK_NVS_ID_KEY": true, "USMP_PSK_NVS_PSK_KEY": true}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(fl *pflag.Flag) {
			settings["USMP_PSK_"+strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))] = true
		}
		c.LocalFlags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cli.CommandTree())
	name := regexp.MustCompile(`USMP_PSK_[A-Z0-9_]+`)
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, filepath.Join(repoRoot, "README.md"))
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, v := range name.FindAllString(line, -1) {
				if !settings[v] && !harnessVariables[v] {
					t.Errorf("%s:%d: %s is under usmp-psk's prefix but is no setting: usmp-psk would read it as one if it ever became a flag's name; name it outside USMP_PSK_", p, i+1, v)
				}
			}
		}
	}
}
