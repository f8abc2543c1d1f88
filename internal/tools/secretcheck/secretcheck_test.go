package secretcheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// moduleRoot is the module's root, seen from this package's directory.
const moduleRoot = "../../.."

var (
	loaderOnce sync.Once
	loader     *Loader
	loaderErr  error
)

func testLoader(t *testing.T) *Loader {
	t.Helper()
	if _, err := os.Stat(filepath.Join(moduleRoot, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", moduleRoot, err)
	}
	loaderOnce.Do(func() { loader, loaderErr = NewLoader(moduleRoot) })
	if loaderErr != nil {
		t.Fatal(loaderErr)
	}
	return loader
}

// TestTreeIsClean runs every rule over every non-test Go file of the module
// (R29). A finding is fixed where it stands, or, where it is right on
// purpose, excused with //secretcheck:ignore <rule> <reason>.
func TestTreeIsClean(t *testing.T) {
	res, err := testLoader(t).CheckModule()
	if err != nil {
		t.Fatal(err)
	}
	// Type errors would make the rules fall back to the shape of the code;
	// the build compiles these files, so there should be none.
	for _, e := range res.TypeErrors {
		t.Errorf("type error (the rules need the types): %v", e)
	}
	for _, f := range res.Findings {
		t.Errorf("%s", f)
	}
}

// fixtureDir holds the fixtures as a module tree: testdata/tree/X/y.go is
// checked as the module's file X/y.go, so the path-scoped rules apply.
const fixtureDir = "testdata/tree"

// TestFixturesAreCaught proves each rule on its fixtures: a line with
// `// want "rule" …` (or /* want … */) must get exactly those findings, and
// every other line none.
func TestFixturesAreCaught(t *testing.T) {
	l := testLoader(t)
	var paths []string
	err := filepath.WalkDir(fixtureDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".go") {
			paths = append(paths, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no fixtures in %s", fixtureDir)
	}
	caught := map[string]int{}
	for _, path := range paths {
		rel, err := filepath.Rel(fixtureDir, path)
		if err != nil {
			t.Fatal(err)
		}
		rel = filepath.ToSlash(rel)
		t.Run(rel, func(t *testing.T) {
			for _, rules := range checkFixture(t, l, path, rel) {
				for _, r := range rules {
					caught[r]++
				}
			}
		})
	}
	for _, r := range Rules {
		if caught[r] == 0 {
			t.Errorf("rule %s has no failing fixture in %s", r, fixtureDir)
		}
	}
}

// checkFixture checks one fixture: its build tag, no missing import, and
// on every line exactly the findings its want comment names, which it
// returns by line.
func checkFixture(t *testing.T, l *Loader, path, rel string) map[int][]string {
	if !hasIgnoreTag(t, path) {
		t.Errorf("%s: a fixture starts with //go:build ignore, so that no tool builds it", rel)
	}
	found, typeErrs, err := l.CheckFile(path, rel)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range typeErrs {
		// Undeclared names are fine (a lone file of a package); a missing
		// import would hide the typed paths of the rules.
		if strings.Contains(e.Error(), "could not import") {
			t.Errorf("%v", e)
		}
	}
	want := wants(t, path)
	got := map[int][]string{}
	for _, f := range found {
		got[f.Line] = append(got[f.Line], f.Rule)
	}
	lines := map[int]bool{}
	for n := range want {
		lines[n] = true
	}
	for n := range got {
		lines[n] = true
	}
	for n := range lines {
		w, g := slices.Sorted(slices.Values(want[n])), slices.Sorted(slices.Values(got[n]))
		if !slices.Equal(w, g) {
			var msgs []string
			for _, f := range found {
				if f.Line == n {
					msgs = append(msgs, f.String())
				}
			}
			t.Errorf("%s:%d: want %q, got %q\n\t%s", rel, n, w, g, strings.Join(msgs, "\n\t"))
		}
	}
	return want
}

func hasIgnoreTag(t *testing.T, path string) bool {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.HasPrefix(string(src), "//go:build ignore\n")
}

// wants reads the `want "rule" …` comments of a fixture, by line.
func wants(t *testing.T, path string) map[int][]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]string{}
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			for _, r := range parseWant(t, c) {
				if !slices.Contains(Rules, r) {
					t.Errorf("%s: want names unknown rule %q", fset.Position(c.Pos()), r)
				}
				line := fset.Position(c.Pos()).Line
				out[line] = append(out[line], r)
			}
		}
	}
	return out
}

func parseWant(t *testing.T, c *ast.Comment) []string {
	t.Helper()
	_, rest, ok := strings.Cut(c.Text, `want "`)
	if !ok {
		return nil
	}
	rest = `"` + rest
	var rules []string
	for strings.HasPrefix(rest, `"`) {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			t.Fatalf("bad want comment %q: %v", c.Text, err)
		}
		r, _ := strconv.Unquote(q)
		rules = append(rules, r)
		rest = strings.TrimLeft(rest[len(q):], " ")
	}
	return rules
}

// TestFindingString pins the report format of TestTreeIsClean.
func TestFindingString(t *testing.T) {
	f := Finding{Path: "internal/cli/flash.go", Line: 120, Col: 7, Rule: RuleExecEnv, Msg: "m"}
	if got, want := f.String(), "internal/cli/flash.go:120: exec-env: m"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
