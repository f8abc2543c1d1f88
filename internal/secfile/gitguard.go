package secfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// gitPath finds git (Options.lookGit in tests).
func (o Options) gitPath() (string, error) {
	if o.lookGit != nil {
		return o.lookGit()
	}
	return exec.LookPath("git")
}

// findWorkTree walks up from dir looking for a .git entry (directory, or the
// file of a linked work tree or submodule) and returns the top directory.
func findWorkTree(dir string) (string, bool) {
	for {
		if _, err := os.Lstat(filepath.Join(dir, ".git")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// gitEnv is the explicit environment of every git child (R4): no secret
// variable is ever inherited.
func gitEnv() []string {
	env := []string{"LC_ALL=C", "GIT_TERMINAL_PROMPT=0"}
	for _, k := range []string{"PATH", "HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// resolveForGit returns the directory git runs in for the file abs — its
// directory or, when that is still to be created, the nearest existing
// parent (check-ignore and ls-files take paths that do not exist) — and
// abs with the symbolic links of that existing part resolved: otherwise a
// link from outside into a work tree would hide the work tree from
// findWorkTree while the file still lands in it. Links that cannot be
// resolved are a refusal, not a reason to judge the path as written: the
// guard must fail closed when it cannot tell where the file lands.
func resolveForGit(abs string) (cwd, resolved string, err error) {
	cwd, _, err = existingAncestor(filepath.Dir(abs))
	if err != nil {
		return "", "", fmt.Errorf("output directory: %w", err)
	}
	dir, err := filepath.EvalSymlinks(cwd)
	if err != nil {
		return "", "", &UnsafeError{Path: cwd, Msg: "refusing to write a secret file here: cannot resolve the symbolic links of this directory (" + err.Error() + "), so the git guard cannot tell which work tree the file would land in",
			Hint: "give the output's real path, without links that point to a removed or unreachable place"}
	}
	rest, err := filepath.Rel(cwd, abs)
	if err != nil {
		return "", "", err
	}
	return dir, filepath.Join(dir, rest), nil
}

// GitGuard refuses a secret file inside a git work tree unless git ignores
// the path and does not track it (R19). It runs plain `git check-ignore`
// (never --no-index, which calls tracked files ignored) and `git ls-files
// --error-unmatch`. A path ignored only by .git/info/exclude or a global
// excludes file is allowed with a warning: that rule does not travel to
// other clones. Without git, a .git found above the path is refused.
func GitGuard(path string, opts Options) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	cwd, abs, err := resolveForGit(abs)
	if err != nil {
		return err
	}
	top, ok := findWorkTree(filepath.Dir(abs))
	if !ok {
		return nil
	}
	git, err := opts.gitPath()
	if err != nil {
		return opts.refusal(path, top, "git is not installed, so its ignore rules cannot be checked", "write the file outside the work tree, or pass --allow-unignored")
	}
	g := gitRunner{git: git, cwd: cwd}
	rc, _, err := g.run(nil, "ls-files", "--error-unmatch", "--", abs)
	if err != nil {
		return fmt.Errorf("git ls-files: %w", err)
	}
	if rc == 0 {
		return opts.refusal(path, top, "git tracks it (a tracked file is committed even where .gitignore matches)", "git rm --cached the file, or write it elsewhere")
	}
	// The verdict comes from check-ignore without -v: with -v, git also
	// exits 0 when the last matching pattern is a negation ("!keep/*.json"),
	// that is when the path is NOT ignored.
	rc, _, err = g.run(nil, "check-ignore", "-q", "--", abs)
	if err != nil {
		return fmt.Errorf("git check-ignore: %w", err)
	}
	switch rc {
	case 0:
	case 1:
		rel, _ := filepath.Rel(top, abs)
		if opts.OneOfMany {
			return opts.refusal(path, top, "git does not ignore it", dirRuleHint(top, filepath.Dir(rel)))
		}
		return opts.refusal(path, top, "git does not ignore it", opts.ignoreHint(top, rel))
	default:
		return opts.refusal(path, top, "git check-ignore failed", "write the file outside the work tree, or pass --allow-unignored")
	}
	return g.warnLocalRule(path, abs, opts)
}

// ignoreHint suggests the .gitignore rule for the file rel (relative to
// the work tree's top): its own name, or IgnorePattern beside it.
func (o Options) ignoreHint(top, rel string) string {
	if o.IgnorePattern != "" {
		rel = filepath.Join(filepath.Dir(rel), o.IgnorePattern)
	}
	return "add it to .gitignore (e.g. echo '" + filepath.ToSlash(rel) + "' >> " + filepath.Join(top, ".gitignore") + "), write it elsewhere, or pass --allow-unignored"
}

// refusal refuses a secret file inside the work tree top because of msg
// or, under AllowUnignored, lets it through with a loud warning.
func (o Options) refusal(path, top, msg, hint string) error {
	if o.AllowUnignored {
		o.warn(fmt.Sprintf("writing secret file %s inside git work tree %s although %s (%s)", path, top, msg, o.allowedBy()))
		return nil
	}
	return &UnsafeError{Path: path, Msg: "refusing to write a secret file inside git work tree " + top + ": " + msg, Hint: hint}
}

// gitRunner runs git in one directory, with the guard's environment (R4).
type gitRunner struct{ git, cwd string }

// run runs git with args and stdin; code is git's exit code, and err says
// that git could not be run at all.
func (g gitRunner) run(stdin []byte, args ...string) (code int, stdout []byte, err error) {
	cmd := exec.Command(g.git, append([]string{"-C", g.cwd}, args...)...)
	cmd.Env = gitEnv()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.Bytes(), nil
	}
	return 0, out.Bytes(), err
}

// warnLocalRule warns when the rule that ignores abs is not in a
// .gitignore: .git/info/exclude or a global excludes file does not travel
// to other clones. check-ignore -v names the rule's source,
// "<source>:<line>:<pattern>\t<path>".
func (g gitRunner) warnLocalRule(path, abs string, opts Options) error {
	_, out, err := g.run(nil, "check-ignore", "-v", "--", abs)
	if err != nil {
		return fmt.Errorf("git check-ignore: %w", err)
	}
	source := string(out)
	if i := strings.IndexByte(source, ':'); i >= 0 {
		source = source[:i]
	}
	if filepath.Base(source) != ".gitignore" {
		opts.warn(fmt.Sprintf("%s is ignored only by %s, which does not travel to other clones; add it to a committed .gitignore", path, source))
	}
	return nil
}

// GitGuardAll is GitGuard for many files of one directory (a batch's
// images or keys files), with one `git ls-files` and one `git
// check-ignore --stdin` for all of them instead of two git processes per
// file: every file must be ignored and untracked, so a .gitignore rule
// naming single files cannot let the others through. The refusal names
// one file and how many are affected. It does not warn about excludes-only
// rules (GitGuard on one of the files does).
func GitGuardAll(dir string, names []string, opts Options) error {
	if len(names) == 0 {
		return nil
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	cwd, absDir, err := resolveForGit(filepath.Join(absDir, names[0]))
	if err != nil {
		return err
	}
	absDir = filepath.Dir(absDir)
	top, ok := findWorkTree(absDir)
	if !ok {
		return nil
	}
	b := batchGuard{dir: dir, absDir: absDir, top: top, names: names, opts: opts}
	git, err := opts.gitPath()
	if err != nil {
		return b.refuse(filepath.Join(dir, names[0]), "git is not installed, so its ignore rules cannot be checked", "write the files outside the work tree, or pass --allow-unignored", 1)
	}
	g := gitRunner{git: git, cwd: cwd}
	tracked, err := g.trackedUnder(absDir, top)
	if err != nil {
		return err
	}
	ignored, ok := g.ignoredOf(absDir, names)
	if !ok {
		return b.refuse(filepath.Join(dir, names[0]), "git check-ignore failed", "write the files outside the work tree, or pass --allow-unignored", 1)
	}
	return b.verdict(tracked, ignored)
}

// batchGuard is one GitGuardAll: the files and the work tree they are in.
type batchGuard struct {
	dir, absDir, top string
	names            []string
	opts             Options
}

// refuse is refusal for n of the files, path being the first.
func (b *batchGuard) refuse(path, msg, hint string, n int) error {
	if n > 1 {
		msg = fmt.Sprintf("%s (and %d more of the %d files)", msg, n-1, len(b.names))
	}
	return b.opts.refusal(path, b.top, msg, hint)
}

// trackedUnder lists the files git tracks under absDir, relative to the
// work tree's top.
func (g gitRunner) trackedUnder(absDir, top string) (map[string]bool, error) {
	rc, out, err := g.run(nil, "ls-files", "-z", "--full-name", "--", absDir)
	if err != nil {
		return nil, fmt.Errorf("git ls-files in %s: %w", top, err)
	}
	if rc != 0 {
		return nil, fmt.Errorf("git ls-files in %s failed (exit %d)", top, rc)
	}
	tracked := map[string]bool{}
	for _, p := range bytes.Split(out, []byte{0}) {
		if len(p) > 0 {
			tracked[filepath.FromSlash(string(p))] = true
		}
	}
	return tracked, nil
}

// ignoredOf asks git which of the files are ignored, in one run; ok is
// false when git failed. Without -v, only ignored paths are printed (a
// negated rule's match is not); exit 1 means none is.
func (g gitRunner) ignoredOf(absDir string, names []string) (ignored map[string]bool, ok bool) {
	var in bytes.Buffer
	for _, n := range names {
		in.WriteString(filepath.Join(absDir, n))
		in.WriteByte(0)
	}
	rc, out, err := g.run(in.Bytes(), "check-ignore", "--stdin", "-z")
	if err != nil || (rc != 0 && rc != 1) {
		return nil, false
	}
	ignored = map[string]bool{}
	for _, p := range bytes.Split(out, []byte{0}) {
		if len(p) > 0 {
			ignored[string(p)] = true
		}
	}
	return ignored, true
}

// verdict refuses the files git tracks, then those it does not ignore,
// naming the first of each and counting the rest.
func (b *batchGuard) verdict(tracked, ignored map[string]bool) error {
	var firstTracked, firstUnignored string
	nTracked, nUnignored := 0, 0
	for _, n := range b.names {
		abs := filepath.Join(b.absDir, n)
		if rel, err := filepath.Rel(b.top, abs); err == nil && tracked[rel] {
			if nTracked == 0 {
				firstTracked = filepath.Join(b.dir, n)
			}
			nTracked++
			continue
		}
		if !ignored[abs] {
			if nUnignored == 0 {
				firstUnignored = filepath.Join(b.dir, n)
			}
			nUnignored++
		}
	}
	if nTracked > 0 {
		if err := b.refuse(firstTracked, "git tracks it (a tracked file is committed even where .gitignore matches)", "git rm --cached the files, or write them elsewhere", nTracked); err != nil {
			return err
		}
	}
	if nUnignored > 0 {
		rel, _ := filepath.Rel(b.top, b.absDir)
		hint := dirRuleHint(b.top, rel)
		if b.opts.IgnorePattern != "" {
			hint = b.opts.ignoreHint(b.top, filepath.Join(rel, b.opts.IgnorePattern))
		}
		return b.refuse(firstUnignored, "git does not ignore it", hint, nUnignored)
	}
	return nil
}

// dirRuleHint suggests ignoring the directory rel (relative to the work
// tree top) as a whole, anchored at the top: "/factory/images/".
func dirRuleHint(top, rel string) string {
	rule := "/" + filepath.ToSlash(rel) + "/"
	if rel == "." {
		return "write the files outside the work tree, or pass --allow-unignored"
	}
	return "ignore the whole directory (e.g. echo '" + rule + "' >> " + filepath.Join(top, ".gitignore") + "), write elsewhere, or pass --allow-unignored"
}
