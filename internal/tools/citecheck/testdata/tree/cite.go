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
