// Package cite holds citations for citecheck's tests.
package cite

// Resolved: design §1, design §2.1 and §3, Design.md §2, house style
// §1–§2, house-style §2, R1, R1–R2, security R2 (R1-R2), pitfall 1. Not
// citations at all: unicode.Nd.R32, FOOR3, R300, a §9 of no document.
var resolved = 0

// Not resolved, one per line:
// design §4
// design §2.3
// design §1 and §5
// house style §3
// house style §1–§3
// R3
// R1–R4
// pitfall 2
// a citation of a design
// §6 split across two lines.
var bad = 0

// Issues resolved: issue 3, issue #3, Issue 3 item 2, issues 3 and 5,
// issue 3, items 1 and 2, issue 3 parts 1–2, x_issue3.txtar. Other
// projects' issues are not citations: golang/go#75804, (golang/go issue 9),
// Go's issue 9, GitHub issue 9, upstream issue 9.
var issues = 0

// Issues not resolved, one per line:
// issue 4
// issue #4
// issues 3 and 4
// issue 3 item 3
// issue 5 item 1
// issue 3 parts 2–4
// a citation of issue
// 3 item 9 split across two lines.
// issue 4 item 1 (the missing issue is the one finding)
// batch_issue04.txtar
var badIssues = 0
