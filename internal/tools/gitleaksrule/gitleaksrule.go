// Package gitleaksrule loads the rules of the repository's .gitleaks.toml
// and applies them to a file the way gitleaks v8 (detect/detect.go) does:
// rule and global allowlists (paths, regexes with their target, stopwords,
// OR/AND conditions, targetRules), path-only and path+content rules,
// keywords, the secret group and the entropy floor.
//
// It exists so that the rules of security R20 are tested on every
// `go test ./...`, with or without gitleaks installed; the test also runs
// gitleaks itself when it is on PATH, which keeps this model honest.
// gitleaks' default rules ([extend] useDefault) are not modelled: only the
// rules and allowlists written in our file are.
package gitleaksrule

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Finding is one rule that fires on a file, with the secret it extracted.
type Finding struct {
	RuleID string
	Secret string
}

// Config is a parsed .gitleaks.toml.
type Config struct {
	Title      string
	UseDefault bool
	Rules      []*Rule
	// global allowlists without targetRules
	allowlists []*allowlist
}

// Rule is one [[rules]] entry.
type Rule struct {
	ID          string
	Description string
	Path        *regexp.Regexp
	Regex       *regexp.Regexp
	SecretGroup int
	Entropy     float64
	Keywords    []string
	allowlists  []*allowlist
}

type allowlist struct {
	and         bool
	paths       []*regexp.Regexp
	regexTarget string
	regexes     []*regexp.Regexp
	stopwords   []string
}

// The TOML schema gitleaks v8.25+ reads (config/config.go ViperConfig).
// Unknown keys are an error here, so a typo cannot silently disable a rule.
type fileAllowlist struct {
	Description string   `toml:"description"`
	Condition   string   `toml:"condition"`
	Commits     []string `toml:"commits"`
	Paths       []string `toml:"paths"`
	RegexTarget string   `toml:"regexTarget"`
	Regexes     []string `toml:"regexes"`
	StopWords   []string `toml:"stopwords"`
	TargetRules []string `toml:"targetRules"`
}

type fileConfig struct {
	Title       string `toml:"title"`
	Description string `toml:"description"`
	MinVersion  string `toml:"minVersion"`
	Extend      struct {
		Path          string   `toml:"path"`
		URL           string   `toml:"url"`
		UseDefault    bool     `toml:"useDefault"`
		DisabledRules []string `toml:"disabledRules"`
	} `toml:"extend"`
	Rules []struct {
		ID          string          `toml:"id"`
		Description string          `toml:"description"`
		Path        string          `toml:"path"`
		Regex       string          `toml:"regex"`
		SecretGroup int             `toml:"secretGroup"`
		Entropy     float64         `toml:"entropy"`
		Keywords    []string        `toml:"keywords"`
		Tags        []string        `toml:"tags"`
		Allowlists  []fileAllowlist `toml:"allowlists"`
	} `toml:"rules"`
	Allowlists []fileAllowlist `toml:"allowlists"`
}

// Load reads and compiles a gitleaks configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Parse compiles a gitleaks configuration.
func Parse(data []byte) (*Config, error) {
	var fc fileConfig
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return nil, fmt.Errorf("parse gitleaks config: %w", err)
	}
	c := &Config{Title: fc.Title, UseDefault: fc.Extend.UseDefault}
	byID := map[string]*Rule{}
	for i, fr := range fc.Rules {
		if fr.ID == "" {
			return nil, fmt.Errorf("rule %d: no id", i+1)
		}
		if byID[fr.ID] != nil {
			return nil, fmt.Errorf("rule %s: duplicate id", fr.ID)
		}
		r := &Rule{ID: fr.ID, Description: fr.Description, SecretGroup: fr.SecretGroup, Entropy: fr.Entropy}
		var err error
		if fr.Path != "" {
			if r.Path, err = regexp.Compile(fr.Path); err != nil {
				return nil, fmt.Errorf("rule %s: path: %w", fr.ID, err)
			}
		}
		if fr.Regex != "" {
			if r.Regex, err = regexp.Compile(fr.Regex); err != nil {
				return nil, fmt.Errorf("rule %s: regex: %w", fr.ID, err)
			}
			if r.SecretGroup > r.Regex.NumSubexp() {
				return nil, fmt.Errorf("rule %s: secretGroup %d but the regex has %d groups", fr.ID, r.SecretGroup, r.Regex.NumSubexp())
			}
		}
		if r.Path == nil && r.Regex == nil {
			return nil, fmt.Errorf("rule %s: neither regex nor path", fr.ID)
		}
		for _, k := range fr.Keywords {
			r.Keywords = append(r.Keywords, strings.ToLower(k))
		}
		for j, fa := range fr.Allowlists {
			if len(fa.TargetRules) > 0 {
				return nil, fmt.Errorf("rule %s: allowlist %d: targetRules belongs in a global [[allowlists]]", fr.ID, j+1)
			}
			a, err := compileAllowlist(fa)
			if err != nil {
				return nil, fmt.Errorf("rule %s: allowlist %d: %w", fr.ID, j+1, err)
			}
			r.allowlists = append(r.allowlists, a)
		}
		byID[r.ID] = r
		c.Rules = append(c.Rules, r)
	}
	for j, fa := range fc.Allowlists {
		a, err := compileAllowlist(fa)
		if err != nil {
			return nil, fmt.Errorf("allowlist %d: %w", j+1, err)
		}
		if len(fa.TargetRules) == 0 {
			c.allowlists = append(c.allowlists, a)
			continue
		}
		// gitleaks moves a targeted global allowlist into each rule.
		for _, id := range fa.TargetRules {
			r := byID[id]
			if r == nil {
				return nil, fmt.Errorf("allowlist %d: targetRules names unknown rule %q", j+1, id)
			}
			r.allowlists = append(r.allowlists, a)
		}
	}
	return c, nil
}

func compileAllowlist(fa fileAllowlist) (*allowlist, error) {
	a := &allowlist{regexTarget: fa.RegexTarget}
	switch strings.ToUpper(fa.Condition) {
	case "", "OR":
	case "AND", "&&":
		a.and = true
	default:
		return nil, fmt.Errorf("condition %q: want OR or AND", fa.Condition)
	}
	switch fa.RegexTarget {
	case "", "secret", "match", "line":
	default:
		return nil, fmt.Errorf("regexTarget %q: want secret, match or line", fa.RegexTarget)
	}
	if len(fa.Commits) > 0 {
		return nil, fmt.Errorf("commits allowlists are not modelled")
	}
	for _, p := range fa.Paths {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", p, err)
		}
		a.paths = append(a.paths, re)
	}
	for _, p := range fa.Regexes {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("regex %q: %w", p, err)
		}
		a.regexes = append(a.regexes, re)
	}
	for _, w := range fa.StopWords {
		a.stopwords = append(a.stopwords, strings.ToLower(w))
	}
	if len(a.paths)+len(a.regexes)+len(a.stopwords) == 0 {
		return nil, fmt.Errorf("empty allowlist")
	}
	return a, nil
}

// Rule returns the rule with the given id, or nil.
func (c *Config) Rule(id string) *Rule {
	for _, r := range c.Rules {
		if r.ID == id {
			return r
		}
	}
	return nil
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	return slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(s) })
}

func (a *allowlist) pathAllowed(path string) bool { return anyMatch(a.paths, path) }

func (a *allowlist) stopword(secret string) bool {
	s := strings.ToLower(secret)
	return slices.ContainsFunc(a.stopwords, func(w string) bool { return strings.Contains(s, w) })
}

// skipsFile is gitleaks' checkCommitOrPathAllowed, for files.
func (a *allowlist) skipsFile(path string) bool {
	if a.and {
		if len(a.regexes) > 0 || len(a.stopwords) > 0 {
			return false // decided per finding
		}
		return len(a.paths) > 0 && a.pathAllowed(path)
	}
	return a.pathAllowed(path)
}

// allowsFinding is gitleaks' checkFindingAllowed.
func (a *allowlist) allowsFinding(path string, f Finding, match, line string) bool {
	target := f.Secret
	switch a.regexTarget {
	case "match":
		target = match
	case "line":
		target = line
	}
	regexAllowed := anyMatch(a.regexes, target)
	stop := a.stopword(f.Secret)
	if !a.and {
		return regexAllowed || stop
	}
	var checks []bool
	if len(a.paths) > 0 {
		checks = append(checks, a.pathAllowed(path))
	}
	if len(a.regexes) > 0 {
		checks = append(checks, regexAllowed)
	}
	if len(a.stopwords) > 0 {
		checks = append(checks, stop)
	}
	return len(checks) > 0 && !slices.Contains(checks, false)
}

// Scan returns the findings of our rules on one file, path relative to the
// scanned root with forward slashes (as `gitleaks dir` reports it).
func (c *Config) Scan(path string, content []byte) []Finding {
	for _, a := range c.allowlists {
		if a.skipsFile(path) {
			return nil
		}
	}
	raw := string(content)
	lower := strings.ToLower(raw)
	var out []Finding
	for _, r := range c.Rules {
		if len(r.Keywords) > 0 && !slices.ContainsFunc(r.Keywords, func(k string) bool { return strings.Contains(lower, k) }) {
			continue
		}
		out = append(out, c.scanRule(r, path, raw)...)
	}
	return out
}

func (c *Config) scanRule(r *Rule, path, raw string) []Finding {
	for _, a := range r.allowlists {
		if a.skipsFile(path) {
			return nil
		}
	}
	if r.Path != nil && !r.Path.MatchString(path) {
		return nil
	}
	if r.Regex == nil {
		return []Finding{{RuleID: r.ID, Secret: "file detected: " + path}}
	}
	var out []Finding
	for _, m := range r.Regex.FindAllStringIndex(raw, -1) {
		match := strings.Trim(raw[m[0]:m[1]], "\n")
		end := m[0] + len(match)
		if strings.HasPrefix(raw[m[0]:], "\n") {
			// Trim also removed leading newlines: gitleaks keeps the start
			// index, so the line is taken from there.
			end = m[1]
		}
		lineStart := strings.LastIndexByte(raw[:m[0]], '\n') + 1
		lineEnd := strings.IndexByte(raw[end:], '\n')
		if lineEnd < 0 {
			lineEnd = len(raw)
		} else {
			lineEnd += end
		}
		line := raw[lineStart:lineEnd]
		if strings.Contains(line, "gitleaks:allow") {
			continue
		}
		f := Finding{RuleID: r.ID, Secret: match}
		if groups := r.Regex.FindStringSubmatch(match); len(groups) >= 2 {
			if r.SecretGroup > 0 {
				f.Secret = groups[r.SecretGroup]
			} else {
				for _, g := range groups[1:] {
					if g != "" {
						f.Secret = g
						break
					}
				}
			}
		}
		if r.Entropy != 0 && ShannonEntropy(f.Secret) <= r.Entropy {
			continue
		}
		allowed := false
		for _, a := range c.allowlists {
			allowed = allowed || a.allowsFinding(path, f, match, line)
		}
		for _, a := range r.allowlists {
			allowed = allowed || a.allowsFinding(path, f, match, line)
		}
		if !allowed {
			out = append(out, f)
		}
	}
	return out
}

// ShannonEntropy is gitleaks' entropy of a secret, in bits per character.
func ShannonEntropy(s string) float64 {
	if s == "" {
		return 0
	}
	counts := map[rune]int{}
	for _, r := range s {
		counts[r]++
	}
	var e float64
	inv := 1 / float64(len(s))
	for _, n := range counts {
		p := float64(n) * inv
		e -= p * math.Log2(p)
	}
	return e
}
