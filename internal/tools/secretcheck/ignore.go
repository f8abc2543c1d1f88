package secretcheck

import (
	"fmt"
	"go/token"
	"slices"
	"strings"
)

// ignore is one escape-hatch comment:
//
//	//secretcheck:ignore <rule> <reason>
//
// at the end of the line it excuses, or alone on the line above it.
type ignore struct {
	pos  token.Position
	line int // the line it applies to
	rule string
	used bool
}

// applyIgnores drops the findings that a well-formed escape hatch excuses
// and reports the malformed and the unused ones.
func (c *checker) applyIgnores() []Finding {
	var ignores []*ignore
	var bad []Finding
	badAt := func(p token.Position, msg string) {
		bad = append(bad, Finding{Path: c.src.rel, Line: p.Line, Col: p.Column, Rule: RuleBadIgnore, Msg: msg})
	}
	for _, cg := range c.src.file.Comments {
		for _, cm := range cg.List {
			rest, ok := strings.CutPrefix(cm.Text, IgnoreDirective)
			if !ok {
				continue
			}
			p := c.fset.Position(cm.Pos())
			if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
				badAt(p, "unknown directive "+strings.Fields(cm.Text)[0]+"; the escape hatch is "+IgnoreDirective+" <rule> <reason>")
				continue
			}
			fields := strings.Fields(rest)
			switch {
			case len(fields) == 0:
				badAt(p, IgnoreDirective+" needs a rule and a reason")
				continue
			case !slices.Contains(Rules, fields[0]) || fields[0] == RuleBadIgnore:
				badAt(p, "unknown rule "+fields[0]+" in "+IgnoreDirective)
				continue
			case len(fields) < 2:
				badAt(p, IgnoreDirective+" "+fields[0]+" needs a reason")
				continue
			}
			ig := &ignore{pos: p, line: p.Line, rule: fields[0]}
			if c.aloneOnLine(p) {
				ig.line++
			}
			ignores = append(ignores, ig)
		}
	}
	var out []Finding
	for _, f := range c.findings {
		excused := false
		for _, ig := range ignores {
			if ig.line == f.Line && ig.rule == f.Rule {
				ig.used, excused = true, true
			}
		}
		if !excused {
			out = append(out, f)
		}
	}
	for _, ig := range ignores {
		if !ig.used {
			badAt(ig.pos, fmt.Sprintf("%s %s excuses nothing: line %d has no %s finding; remove it", IgnoreDirective, ig.rule, ig.line, ig.rule))
		}
	}
	return append(out, bad...)
}

// aloneOnLine reports whether only blanks precede position p on its line.
func (c *checker) aloneOnLine(p token.Position) bool {
	start := p.Offset - (p.Column - 1)
	if start < 0 || p.Offset > len(c.src.src) {
		return false
	}
	return strings.TrimSpace(string(c.src.src[start:p.Offset])) == ""
}
