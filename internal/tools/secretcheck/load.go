package secretcheck

// Loading: `go list -export -deps` names the module's packages (for this
// GOOS/GOARCH) and the compiler's export data of everything they import. The
// module's own files are then parsed and type-checked from source against
// that export data, so the rules see real types (a *log.Logger, an
// *os.File, a *pflag.FlagSet) without golang.org/x/tools.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// fixtureImports are packages that the fixtures import and that the module's
// own packages might not; listing them makes their export data available.
var fixtureImports = []string{
	"bytes", "context", "crypto/hmac", "crypto/subtle", "encoding/base64", "encoding/hex",
	"flag", "fmt", "io/fs", "log", "log/slog", "os", "os/exec", "reflect", "slices",
	"strings", "syscall",
	"github.com/spf13/cobra", "github.com/spf13/pflag",
}

// listedPackage is the part of `go list -json` that the loader reads.
type listedPackage struct {
	ImportPath string
	Dir        string
	Export     string
	GoFiles    []string
	CgoFiles   []string
	Module     *struct {
		Path string
		Main bool
	}
	Error *struct{ Err string }
}

// Loader parses and type-checks files of one module.
type Loader struct {
	root    string
	modPath string
	fset    *token.FileSet
	exports map[string]string
	imp     types.Importer
	pkgs    map[string]*listedPackage // the module's packages by directory
}

// NewLoader runs `go list` in the module rooted at root (the directory
// holding go.mod) and prepares a type checker for its files.
func NewLoader(root string) (*Loader, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	args := append([]string{"list", "-e", "-export", "-deps",
		"-json=ImportPath,Dir,Export,GoFiles,CgoFiles,Module,Error", "./..."}, fixtureImports...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = goEnv(os.Environ())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w\n%s", err, stderr.Bytes())
	}
	l := &Loader{root: root, fset: token.NewFileSet(), exports: map[string]string{}, pkgs: map[string]*listedPackage{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(listedPackage)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		if p.Export != "" {
			l.exports[p.ImportPath] = p.Export
		}
		if p.Module != nil && p.Module.Main {
			if p.Error != nil {
				return nil, fmt.Errorf("go list: package %s: %s", p.ImportPath, p.Error.Err)
			}
			l.modPath = p.Module.Path
			l.pkgs[p.Dir] = p
		}
	}
	if l.modPath == "" {
		return nil, fmt.Errorf("go list found no package of the main module in %s", root)
	}
	l.imp = importer.ForCompiler(l.fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := l.exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %q", path)
		}
		return os.Open(file)
	})
	return l, nil
}

// goEnv is the environment of the go command: the toolchain's own variables
// and what it needs to find its caches, nothing else (R4).
func goEnv(environ []string) []string {
	keep := map[string]bool{
		"PATH": true, "HOME": true, "USERPROFILE": true, "LOCALAPPDATA": true, "APPDATA": true,
		"SYSTEMROOT": true, "TMPDIR": true, "TEMP": true, "TMP": true,
		"XDG_CACHE_HOME": true, "XDG_CONFIG_HOME": true, "CC": true, "CXX": true,
		"GOARCH": true, "GOAMD64": true, "GOARM": true, "GOARM64": true, "GOCACHE": true, "GOCACHEPROG": true,
		"GODEBUG": true, "GOENV": true, "GOEXPERIMENT": true, "GOFIPS140": true, "GOFLAGS": true,
		"GOINSECURE": true, "GOMODCACHE": true, "GONOPROXY": true, "GONOSUMDB": true, "GOOS": true,
		"GOPATH": true, "GOPRIVATE": true, "GOPROXY": true, "GOROOT": true, "GOSUMDB": true,
		"GOTELEMETRY": true, "GOTMPDIR": true, "GOTOOLCHAIN": true, "GOVCS": true, "GOWORK": true,
	}
	var env []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if keep[k] || strings.HasPrefix(k, "CGO_") {
			env = append(env, kv)
		}
	}
	return env
}

// A unit is a set of files type-checked together: a package as the build
// sees it, or one file on its own (a file for another GOOS, a fixture).
type unit struct {
	pkgPath string
	files   []*source
}

// source is one file to check.
type source struct {
	rel  string // slash-separated path relative to the module root
	src  []byte
	file *ast.File
}

// Result is what a check found.
type Result struct {
	// Findings lists the rules' findings, sorted by file and line.
	Findings []Finding
	// TypeErrors lists type errors in packages that the build compiles;
	// they mean the rules ran with less type information than they should.
	// Files checked on their own (other GOOS, fixtures) do not report here.
	TypeErrors []error
}

// CheckModule runs every rule over every non-test Go file of the module:
// testdata, vendor and directories starting with "." or "_" are skipped, and
// so are nested modules.
func (l *Loader) CheckModule() (*Result, error) {
	byDir, err := l.sourceFiles()
	if err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(byDir))
	for dir := range byDir {
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	res := &Result{}
	for _, dir := range dirs {
		if err := l.checkDir(res, dir, byDir[dir]); err != nil {
			return nil, err
		}
	}
	sortFindings(res.Findings)
	return res, nil
}

// sourceFiles lists the module's non-test Go files by directory, skipping
// testdata, vendor, directories starting with "." or "_", and nested
// modules.
func (l *Loader) sourceFiles() (map[string][]string, error) {
	byDir := map[string][]string{}
	err := filepath.WalkDir(l.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != l.root && skipDir(path, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			byDir[filepath.Dir(path)] = append(byDir[filepath.Dir(path)], filepath.Base(path))
		}
		return nil
	})
	return byDir, err
}

// skipDir reports whether CheckModule skips the directory at path.
func skipDir(path, name string) bool {
	if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
		return true
	}
	_, err := os.Stat(filepath.Join(path, "go.mod"))
	return err == nil
}

// checkDir checks the files of one directory: those the build includes as
// one package, type-checked together, and the others (other platforms'
// files, build-tagged tools) one by one, without their type errors.
func (l *Loader) checkDir(res *Result, dir string, names []string) error {
	relDir, err := filepath.Rel(l.root, dir)
	if err != nil {
		return err
	}
	pkgPath := l.modPath
	if relDir != "." {
		pkgPath += "/" + filepath.ToSlash(relDir)
	}
	var built []string
	if p := l.pkgs[dir]; p != nil {
		built = append(append(built, p.GoFiles...), p.CgoFiles...)
	}
	var pkg unit
	var alone []unit
	for _, name := range names {
		s, err := l.parse(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		s.rel = filepath.ToSlash(filepath.Join(relDir, name))
		if slices.Contains(built, name) {
			pkg.files = append(pkg.files, s)
		} else {
			alone = append(alone, unit{pkgPath: pkgPath, files: []*source{s}})
		}
	}
	if len(pkg.files) > 0 {
		pkg.pkgPath = pkgPath
		found, errs := l.check(pkg)
		res.Findings = append(res.Findings, found...)
		res.TypeErrors = append(res.TypeErrors, errs...)
	}
	for _, u := range alone {
		found, _ := l.check(u)
		res.Findings = append(res.Findings, found...)
	}
	return nil
}

// CheckFile runs every rule over the file at path, type-checked on its own,
// as if it were the module's file rel (a slash-separated path relative to
// the module root, which decides where the path-scoped rules apply). It
// returns the findings and the type errors, which for a lone file are
// expected (references to the rest of its package).
func (l *Loader) CheckFile(path, rel string) ([]Finding, []error, error) {
	s, err := l.parse(path)
	if err != nil {
		return nil, nil, err
	}
	s.rel = rel
	pkgPath := l.modPath
	if d := pathDir(rel); d != "" {
		pkgPath += "/" + d
	}
	found, errs := l.check(unit{pkgPath: pkgPath, files: []*source{s}})
	sortFindings(found)
	return found, errs, nil
}

func pathDir(rel string) string {
	if i := strings.LastIndex(rel, "/"); i >= 0 {
		return rel[:i]
	}
	return ""
}

func (l *Loader) parse(path string) (*source, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := parser.ParseFile(l.fset, path, src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	return &source{src: src, file: f}, nil
}

// check type-checks a unit (tolerating errors) and runs the rules over each
// of its files.
func (l *Loader) check(u unit) ([]Finding, []error) {
	var errs []error
	conf := types.Config{
		Importer:    l.imp,
		FakeImportC: true,
		Error:       func(err error) { errs = append(errs, err) },
	}
	info := &types.Info{
		Types:      map[ast.Expr]types.TypeAndValue{},
		Defs:       map[*ast.Ident]types.Object{},
		Uses:       map[*ast.Ident]types.Object{},
		Selections: map[*ast.SelectorExpr]*types.Selection{},
	}
	files := make([]*ast.File, len(u.files))
	for i, s := range u.files {
		files[i] = s.file
	}
	_, _ = conf.Check(u.pkgPath, l.fset, files, info) // errors are collected above
	var out []Finding
	for _, s := range u.files {
		c := newChecker(l.fset, s, info)
		out = append(out, c.run()...)
	}
	return out, errs
}

func sortFindings(found []Finding) {
	sort.SliceStable(found, func(i, j int) bool {
		a, b := found[i], found[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Rule < b.Rule
	})
}
