package citecheck

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// moduleRoot is the module's root, seen from this package's directory.
const moduleRoot = "../../.."

// fixtureDir is a small repository whose citations are wrong on purpose.
const fixtureDir = "testdata/tree"

// TestRepoCitationsResolve is the gate: every "design §N", "house style
// §N", requirement id, pitfall and issue (with its item or part) cited
// anywhere in the repository is defined in docs/. Fix a finding by citing
// the right place, or by adding what the comment relies on to the
// document (an issue's section to docs/history.md).
func TestRepoCitationsResolve(t *testing.T) {
	t.Parallel()
	idx, err := LoadIndex(moduleRoot)
	if err != nil {
		t.Fatal(err)
	}
	// The fixtures, and this file's list of what they must give, cite
	// wrongly on purpose.
	skip := []string{"internal/tools/citecheck/" + fixtureDir, "internal/tools/citecheck/citecheck_test.go"}
	findings, err := Check(moduleRoot, idx, Options{Skip: skip})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("%s", f)
	}
}

// TestIndexOfTheDocs pins the shape of the documents that citations rely
// on: design §1–§9 with §2's four contracts, the 25 house-style points,
// R1–R30, the 19 pitfalls, nvs-format.md §1–§10, and docs/history.md's
// issues 2–9 and 12–16 with the items the code cites. A heading reworded
// so that the index no longer finds it would otherwise make every citation
// of it a finding — or, worse, an index that finds nothing would be caught
// only here.
func TestIndexOfTheDocs(t *testing.T) {
	t.Parallel()
	idx, err := LoadIndex(moduleRoot)
	if err != nil {
		t.Fatal(err)
	}
	want := func(name string, defs map[string]bool, keys ...string) {
		t.Helper()
		for _, k := range keys {
			if !defs[k] {
				t.Errorf("%s: %s is not defined", name, k)
			}
		}
	}
	want("design", idx.Design, "1", "2", "2.1", "2.2", "2.3", "2.4", "3", "4", "5", "6", "7", "8", "9")
	for n := 1; n <= 30; n++ {
		want("requirements", idx.Requirements, strconv.Itoa(n))
	}
	for n := 1; n <= 25; n++ {
		want("house style", idx.HouseStyle, strconv.Itoa(n))
	}
	for n := 1; n <= 19; n++ {
		want("pitfalls", idx.Pitfalls, strconv.Itoa(n))
	}
	for n := 1; n <= 10; n++ {
		want("nvs-format", idx.NVSFormat, strconv.Itoa(n))
	}
	want("issues", idx.Issues, "2", "3", "4", "5", "6", "7", "8", "9", "12", "13", "14", "15", "16",
		"4.3", "5.2", "5.3", "5.4", "5.5", "5.6", "6.1", "6.5", "7.4", "15.2", "15.3")
	for n := 1; n <= 12; n++ {
		want("issues", idx.Issues, "13."+strconv.Itoa(n))
	}
	for n := 1; n <= 14; n++ {
		want("issues", idx.Issues, "14."+strconv.Itoa(n))
	}
}

// TestPlantedCitationsAreCaught proves the gate on a small repository
// with wrong citations planted in Go, shell, Markdown and a testscript's
// name: exactly these findings, and none for the citations that resolve or
// for text that only looks like one (unicode.Nd.R32, R300, a bare §9,
// another project's issue such as golang/go#75804 or "GitHub issue 9").
func TestPlantedCitationsAreCaught(t *testing.T) {
	t.Parallel()
	idx, err := LoadIndex(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	findings, err := Check(fixtureDir, idx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range findings {
		got = append(got, f.File+":"+strconv.Itoa(f.Line)+": "+f.Cite)
	}
	want := []string{
		"cite.go:10: design §4",
		"cite.go:11: design §2.3",
		"cite.go:12: design §5",
		"cite.go:13: house style §3",
		"cite.go:14: house style §3",
		"cite.go:15: R3",
		"cite.go:16: R3",
		"cite.go:16: R4",
		"cite.go:17: pitfall 2",
		"cite.go:18: design §6", // "design" ends line 18, "§6" starts line 19
		"cite.go:29: issue 4",
		"cite.go:30: issue 4",
		"cite.go:31: issue 4",
		"cite.go:32: issue 3 item 3",
		"cite.go:33: issue 5 item 1",
		"cite.go:34: issue 3 part 3",
		"cite.go:34: issue 3 part 4",
		"cite.go:35: issue 3 item 9", // "issue" ends line 35, "3 item 9" starts line 36
		"cite.go:37: issue 4",
		"cite.go:38: issue 4", // batch_issue04.txtar
		"cite.sh:2: R31",
		"cite.sh:3: nvs-format.md §2",
		"cite.sh:4: issue 6",
		"cite.sh:4: issue 7",
		"cite.sh:5: ../shared/docs/design.md",
		"cite.sh:5: shared/testdata/nvs/manifest.json",
		"docs/guide.md:1: house style §12",
		"docs/guide.md:1: pitfall 2",
		"docs/guide.md:2: issue 6",
		"scripts/flow_issue99.txtar:1: issue 99 (file name)",
		"scripts/flow_issue99.txtar:1: issue 99",
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMissingDocument: without the documents nothing can resolve, which
// is an error rather than a flood of findings.
func TestMissingDocument(t *testing.T) {
	t.Parallel()
	if _, err := LoadIndex(t.TempDir()); err == nil {
		t.Fatal("LoadIndex of a directory without docs/ succeeded")
	}
}
