// Package citecheck checks that the references comments and documents make
// resolve inside the repository: "design §N" (and §N.M, an item of a
// numbered list in section N) against docs/design.md, "house style §N"
// against docs/house-style.md, "nvs-format.md §N" against
// docs/nvs-format.md, requirement ids "RN" and "pitfall N" against
// docs/security.md, and issues — "issue N", "issue #N", "issues N and M",
// "issue N item K", "issue N parts K-L", a file name ending "_issueN" —
// against the "## Issue N:" sections of docs/history.md and the numbered
// items listed in them. A reader has nothing but the repository, so a
// citation of a section or id that does not exist there is a finding, and
// so is a path into the "shared" folder the project was started beside.
//
// Text is read line by line with comment markers (//, #, *) and leading
// space removed and the lines joined, so a citation broken across two
// comment lines ("design\n// §2.1") is still seen. Ranges ("R1–R4",
// "§24–§25", "pitfalls 6–8") cite every number in them. An identifier that
// only looks like an id (unicode.Nd.R32, a Go selector) is not a citation.
//
// An issue of another project is not this repository's to define: it is
// written as owner/repo#N (golang/go#75804, no "issue" in it), or named
// by the word just before "issue" — owner/repo (golang/go issue 75804), a
// possessive (Go's issue 75804), or GitHub, GitLab, upstream, Go, golang —
// and is not a citation. "item K" and "part K" count only right
// after the issue number ("issue 13 item 7", "issue 15, part 2"); after
// several numbers they belong to the last.
package citecheck

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Finding is a citation that does not resolve.
type Finding struct {
	File string // slash-separated, relative to the root
	Line int
	Cite string // as cited, e.g. "design §2.1", "R7", "pitfall 13"
	Doc  string // the document that should define it
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %q is not defined in %s", f.File, f.Line, f.Cite, f.Doc)
}

// Index holds what the documents define, as the keys a citation names:
// "3" and "2.1" for design, "17" for R17, "13" and "13.7" for issue 13
// and its item 7, and so on.
type Index struct {
	Design, HouseStyle, NVSFormat, Requirements, Pitfalls, Issues map[string]bool
}

// The documents, relative to the repository's root.
const (
	DesignDoc     = "docs/design.md"
	HouseStyleDoc = "docs/house-style.md"
	SecurityDoc   = "docs/security.md"
	NVSFormatDoc  = "docs/nvs-format.md"
	HistoryDoc    = "docs/history.md"
)

var (
	designHeading  = regexp.MustCompile(`^## (\d+)\. `)
	listItem       = regexp.MustCompile(`^(\d+)\. `)
	styleHeading   = regexp.MustCompile(`^### (\d+)\. `)
	requirementDef = regexp.MustCompile(`^\*\*R(\d+) `)
	issueHeading   = regexp.MustCompile(`^## Issue (\d+): `)
	anyHeading     = regexp.MustCompile(`^#{1,2} `)
)

// LoadIndex reads the documents under root. A missing document is an
// error: every citation of it would be unresolvable.
func LoadIndex(root string) (*Index, error) {
	idx := &Index{}
	var err error
	if idx.Design, err = sections(filepath.Join(root, DesignDoc), designHeading, true); err != nil {
		return nil, err
	}
	if idx.HouseStyle, err = sections(filepath.Join(root, HouseStyleDoc), styleHeading, false); err != nil {
		return nil, err
	}
	if idx.NVSFormat, err = sections(filepath.Join(root, NVSFormatDoc), designHeading, false); err != nil {
		return nil, err
	}
	if idx.Issues, err = sections(filepath.Join(root, HistoryDoc), issueHeading, true); err != nil {
		return nil, err
	}
	sec, err := readLines(filepath.Join(root, SecurityDoc))
	if err != nil {
		return nil, err
	}
	idx.Requirements, idx.Pitfalls = map[string]bool{}, map[string]bool{}
	inPitfalls := false
	for _, l := range sec {
		if anyHeading.MatchString(l) {
			inPitfalls = l == "## Go pitfalls"
		}
		if m := requirementDef.FindStringSubmatch(l); m != nil {
			idx.Requirements[m[1]] = true
		} else if m := listItem.FindStringSubmatch(l); m != nil && inPitfalls {
			idx.Pitfalls[m[1]] = true
		}
	}
	return idx, nil
}

// sections returns the numbers of the headings of the document at path
// that heading matches, and with items also "N.M" for the top-level
// numbered list items M of section N.
func sections(path string, heading *regexp.Regexp, items bool) (map[string]bool, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	defs := map[string]bool{}
	section := ""
	for _, l := range lines {
		if m := heading.FindStringSubmatch(l); m != nil {
			section = m[1]
			defs[section] = true
		} else if m := listItem.FindStringSubmatch(l); m != nil && items && section != "" {
			defs[section+"."+m[1]] = true
		}
	}
	return defs, nil
}

func readLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n"), nil
}

// Options says which files Check reads.
type Options struct {
	// Skip lists slash-separated paths, relative to the root, of files or
	// directories not to read (fixtures that cite wrongly on purpose).
	Skip []string
}

// scanned says whether a file's citations are checked: source, scripts,
// test scripts, documents and configuration.
func scanned(name string) bool {
	switch filepath.Ext(name) {
	case ".go", ".py", ".sh", ".txtar", ".md", ".yml", ".yaml", ".toml", ".c", ".h":
		return true
	}
	return name == "Makefile" || name == "run"
}

// Check reads every scanned file under root (not .git) and returns the
// citations idx does not define, sorted by file and line.
func Check(root string, idx *Index, opts Options) ([]Finding, error) {
	var out []Finding
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if slices.Contains(opts.Skip, rel) || (d.IsDir() && d.Name() == ".git") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !scanned(d.Name()) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out = append(out, CheckText(rel, data, idx)...)
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		return out[i].Line < out[j].Line
	})
	return out, err
}

// joined is a file's text with comment markers removed and lines joined by
// a space; starts[i] is where line i+1 begins in text.
type joined struct {
	text   string
	starts []int
}

var commentMarker = regexp.MustCompile(`^\s*(?://+|#+|\*+|--)?\s*`)

func join(data []byte) joined {
	var j joined
	var b strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		j.starts = append(j.starts, b.Len())
		b.WriteString(commentMarker.ReplaceAllString(sc.Text(), ""))
		b.WriteByte(' ')
	}
	j.text = b.String()
	return j
}

// line returns the line number of offset off.
func (j joined) line(off int) int {
	n, _ := slices.BinarySearch(j.starts, off+1)
	return n
}

// expand lists the numbers of the range from–to; a range that runs
// backwards or is implausibly long gives just its two ends.
func expand(from, to int) []int {
	if to < from || to-from > 100 {
		return []int{from, to}
	}
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

var (
	// design §2.1, §3 / house style §24–§25 / design.md §7 and §8
	sectionCite = regexp.MustCompile(`(?i)\b(design|house[ -]style|nvs-format)(?:\.md)?\s+(§\s?\d+(?:\.\d+)?(?:\s*(?:,|and|or|&|–|—|-|/|to)\s*§\s?\d+(?:\.\d+)?)*)`)
	sectionRef  = regexp.MustCompile(`(,|and|or|&|–|—|-|/|to)?\s*§\s?(\d+)(?:\.(\d+))?`)
	// R7, R1–R4, R1-R30; not x.R32 or FOOR2.
	reqCite     = regexp.MustCompile(`(?:^|[^.\w])R(\d{1,2})(?:\s?[–—-]\s?R(\d{1,2}))?\b`)
	pitfallCite = regexp.MustCompile(`(?i)\bpitfalls?\s+(\d+)(?:\s?[–—-]\s?(\d+))?\b`)
	// issue 13, issue #7, issues 13 and 15, issue 13 item 7, issue 15, parts 2–3
	issueCite = regexp.MustCompile(`(?i)\b(issues?)\s+(#?\d+(?:\s*(?:,|and|or|&|–|—|-)\s*#?\d+)*)(?:,?\s+(items?|parts?)\s+(\d+(?:\s*(?:,|and|or|&|–|—|-)\s*\d+)*))?\b`)
	numberRef = regexp.MustCompile(`(,|and|or|&|–|—|-)?\s*#?(\d+)`)
	// batch_disk_full_issue13.txtar, as a file's name or in text
	issueSuffix = regexp.MustCompile(`(?i)_issue(\d+)\b`)
	// golang/go, espressif/esp-idf: the word before "issue" names a project
	ownerRepo = regexp.MustCompile(`^[\w.-]+/[\w.-]+$`)
	// a path into the "shared" folder beside the repository (its docs or
	// testdata), where the project was started: a clone does not have it
	outsideCite = regexp.MustCompile(`(?:\.\./)+shared/(?:[\w./-]*[\w-])?|\bshared/(?:testdata|docs)\b(?:[\w./-]*[\w-])?`)
)

// OutsideDoc is what a path outside the repository should be replaced by.
const OutsideDoc = "the repository (a path outside it: cite the repository's own copy)"

// otherProjects are the words that, just before "issue", make it another
// project's.
var otherProjects = map[string]bool{"github": true, "gitlab": true, "upstream": true, "go": true, "golang": true}

// CheckText returns the unresolved citations of one file's content.
func CheckText(name string, data []byte, idx *Index) []Finding {
	j := join(data)
	var out []Finding
	miss := func(off int, cite, doc string) {
		out = append(out, Finding{File: name, Line: j.line(off), Cite: cite, Doc: doc})
	}
	for _, m := range sectionCite.FindAllStringSubmatchIndex(j.text, -1) {
		defs, doc, label := idx.Design, DesignDoc, "design"
		switch kind := strings.ToLower(j.text[m[2]:m[3]]); {
		case kind == "nvs-format":
			defs, doc, label = idx.NVSFormat, NVSFormatDoc, "nvs-format.md"
		case kind != "design":
			defs, doc, label = idx.HouseStyle, HouseStyleDoc, "house style"
		}
		for _, key := range sectionKeys(j.text[m[4]:m[5]]) {
			if !defs[key] {
				miss(m[0], label+" §"+key, doc)
			}
		}
	}
	numbered := []struct {
		re     *regexp.Regexp
		defs   map[string]bool
		prefix string
		doc    string
	}{
		{reqCite, idx.Requirements, "R", SecurityDoc},
		{pitfallCite, idx.Pitfalls, "pitfall ", SecurityDoc + " (Go pitfalls)"},
	}
	for _, c := range numbered {
		for _, m := range c.re.FindAllStringSubmatchIndex(j.text, -1) {
			for _, n := range citedNumbers(j.text, m) {
				if !c.defs[strconv.Itoa(n)] {
					miss(m[2], c.prefix+strconv.Itoa(n), c.doc)
				}
			}
		}
	}
	for _, m := range outsideCite.FindAllStringIndex(j.text, -1) {
		miss(m[0], j.text[m[0]:m[1]], OutsideDoc)
	}
	return append(out, checkIssues(name, j, idx.Issues)...)
}

// checkIssues returns the issue citations of one file that docs/history.md
// does not define: in its text, and a name ending "_issueN".
func checkIssues(name string, j joined, issues map[string]bool) []Finding {
	var out []Finding
	miss := func(line int, cite string) {
		out = append(out, Finding{File: name, Line: line, Cite: cite, Doc: HistoryDoc})
	}
	if m := issueSuffix.FindStringSubmatch(path.Base(name)); m != nil && !issues[number(m[1])] {
		miss(1, "issue "+number(m[1])+" (file name)")
	}
	for _, m := range issueSuffix.FindAllStringSubmatchIndex(j.text, -1) {
		if n := number(j.text[m[2]:m[3]]); !issues[n] {
			miss(j.line(m[0]), "issue "+n)
		}
	}
	for _, m := range issueCite.FindAllStringSubmatchIndex(j.text, -1) {
		if otherProject(j.text[:m[2]]) {
			continue
		}
		nums := runNumbers(j.text[m[4]:m[5]])
		for _, n := range nums {
			if !issues[n] {
				miss(j.line(m[2]), "issue "+n)
			}
		}
		last := nums[len(nums)-1]
		if m[6] < 0 || !issues[last] {
			continue // no items, or the issue is already a finding
		}
		kind := strings.TrimSuffix(strings.ToLower(j.text[m[6]:m[7]]), "s")
		for _, k := range runNumbers(j.text[m[8]:m[9]]) {
			if !issues[last+"."+k] {
				miss(j.line(m[2]), "issue "+last+" "+kind+" "+k)
			}
		}
	}
	return out
}

// otherProject reports whether the text just before "issue" makes it
// another project's: a word right before it (not an opening bracket) that
// is owner/repo, a possessive, or one of otherProjects.
func otherProject(before string) bool {
	trimmed := strings.TrimRight(before, " \t")
	if len(trimmed) == len(before) {
		return false // "(issue 5", or "issue" starts the text
	}
	word := strings.TrimLeft(trimmed[strings.LastIndexAny(trimmed, " \t")+1:], "([{\"'`“‘")
	return ownerRepo.MatchString(word) || strings.HasSuffix(word, "'s") || strings.HasSuffix(word, "’s") ||
		otherProjects[strings.ToLower(word)]
}

// number is a decimal number without its leading zeros.
func number(s string) string {
	n, _ := strconv.Atoi(s)
	return strconv.Itoa(n)
}

// runNumbers lists the numbers a run like "#13 and 15", "3, 5 and 6" or
// "2–3" names, ranges expanded (one that runs backwards or is
// implausibly long names just its two ends).
func runNumbers(run string) []string {
	var out []string
	prev := -1
	for _, r := range numberRef.FindAllStringSubmatch(run, -1) {
		n, _ := strconv.Atoi(r[2])
		from := n
		if prev >= 0 && n > prev && n-prev <= 100 && strings.ContainsAny(r[1], "–—-") {
			from = prev + 1
		}
		for _, k := range expand(from, n) {
			out = append(out, strconv.Itoa(k))
		}
		prev = n
	}
	return out
}

// citedNumbers is the number of submatch 1 of m, or every number from it
// through submatch 2 when the citation is a range.
func citedNumbers(text string, m []int) []int {
	a, _ := strconv.Atoi(text[m[2]:m[3]])
	if m[4] < 0 {
		return []int{a}
	}
	b, _ := strconv.Atoi(text[m[4]:m[5]])
	return expand(a, b)
}

// sectionKeys lists the sections a run like "§2.1, §3" or "§24–§25" names.
func sectionKeys(run string) []string {
	var keys []string
	prev := -1
	for _, r := range sectionRef.FindAllStringSubmatch(run, -1) {
		n, _ := strconv.Atoi(r[2])
		switch {
		case r[3] != "":
			keys = append(keys, r[2]+"."+r[3])
		case prev >= 0 && (strings.ContainsAny(r[1], "–—-") || r[1] == "to"):
			for _, k := range expand(prev+1, n) {
				keys = append(keys, strconv.Itoa(k))
			}
		default:
			keys = append(keys, r[2])
		}
		prev = n
	}
	return keys
}
