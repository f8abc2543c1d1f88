package secretcheck

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"regexp"
	"strconv"
	"strings"
)

// The rules, by name. See the package documentation for what each forbids.
const (
	RuleSecretPrint    = "secret-print"
	RuleSecretString   = "secret-string"
	RuleSecretCompare  = "secret-compare"
	RuleFlagEnvDefault = "flag-env-default"
	RuleExecEnv        = "exec-env"
	RuleSecfilePerm    = "secfile-perm"
	// RuleBadIgnore reports an escape-hatch comment without a known rule or
	// a reason, or one that suppresses nothing. It cannot be ignored.
	RuleBadIgnore = "bad-ignore"
)

// Rules lists every rule name, RuleBadIgnore last.
var Rules = []string{
	RuleSecretPrint, RuleSecretString, RuleSecretCompare, RuleFlagEnvDefault,
	RuleExecEnv, RuleSecfilePerm, RuleBadIgnore,
}

// Finding is one rule violation.
type Finding struct {
	Path string // slash-separated, relative to the module root
	Line int
	Col  int
	Rule string
	Msg  string
}

// String formats f as "path:line: rule: message".
func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", f.Path, f.Line, f.Rule, f.Msg)
}

// IgnoreDirective is the escape hatch's comment prefix.
const IgnoreDirective = "//secretcheck:ignore"

// Paths that the path-scoped rules refer to.
const (
	cliPath = "/internal/cli" // after the module path
)

// secretWriterDirs are the secret-writer packages of secfile-perm.
var secretWriterDirs = []string{"internal/secfile/", "internal/provision/"}

// flagDefRE matches the flag-defining methods of pflag's and flag's FlagSet
// (String, StringVarP, BoolVar, Uint32Var, DurationVar, BytesHex, Var, …).
var flagDefRE = regexp.MustCompile(`^(Bool|Bytes|Count|Duration|Float|Func|IP|Int|String|Text|Time|Uint|Var)\w*$`)

// checker runs the rules over one file.
type checker struct {
	fset     *token.FileSet
	src      *source
	info     *types.Info
	imports  map[string]string // local name → import path, for identifiers go/types did not resolve
	findings []Finding
	seen     map[string]bool

	secret, env *tracked // variables of the function being walked
}

// tracked is a set of local variables: by object where go/types resolved
// the identifier, by name where it did not.
type tracked struct {
	objs  map[types.Object]bool
	names map[string]bool
}

func newTracked() *tracked {
	return &tracked{objs: map[types.Object]bool{}, names: map[string]bool{}}
}

func newChecker(fset *token.FileSet, s *source, info *types.Info) *checker {
	c := &checker{fset: fset, src: s, info: info, imports: map[string]string{}, seen: map[string]bool{},
		secret: newTracked(), env: newTracked()}
	for _, imp := range s.file.Imports {
		path, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			continue
		}
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		c.imports[name] = path
	}
	return c
}

// run applies every rule, then the escape-hatch comments.
func (c *checker) run() []Finding {
	for _, decl := range c.src.file.Decls {
		c.secret, c.env = newTracked(), newTracked()
		if fd, ok := decl.(*ast.FuncDecl); ok && fd.Body != nil {
			c.track(fd.Body)
		}
		c.walk(decl)
	}
	// exec-env: a function's commands against its own body; package-level
	// commands against the whole file (an init function may set Env).
	var pkgLevel []ast.Node
	for _, decl := range c.src.file.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if d.Body != nil {
				c.execEnv([]ast.Node{d.Body}, d.Body, "this function")
			}
		case *ast.GenDecl:
			pkgLevel = append(pkgLevel, d)
		}
	}
	c.execEnv(pkgLevel, c.src.file, "this file")
	return c.applyIgnores()
}

func (c *checker) report(n ast.Node, rule, format string, args ...any) {
	p := c.fset.Position(n.Pos())
	key := fmt.Sprintf("%d:%s", p.Line, rule)
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	c.findings = append(c.findings, Finding{Path: c.src.rel, Line: p.Line, Col: p.Column, Rule: rule, Msg: fmt.Sprintf(format, args...)})
}

// --- resolution helpers ------------------------------------------------------

func (c *checker) objOf(id *ast.Ident) types.Object {
	if o := c.info.Defs[id]; o != nil {
		return o
	}
	return c.info.Uses[id]
}

// pkgOf returns the import path of the package that id names, or "".
func (c *checker) pkgOf(id *ast.Ident) string {
	if o, ok := c.info.Uses[id]; ok {
		if pn, ok := o.(*types.PkgName); ok {
			return pn.Imported().Path()
		}
		return ""
	}
	if c.info.Defs[id] != nil {
		return ""
	}
	return c.imports[id.Name]
}

// pkgFunc returns the package path and name of a call of a package-level
// function (fmt.Println → "fmt", "Println").
func (c *checker) pkgFunc(call *ast.CallExpr) (string, string) {
	sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	if !ok {
		return "", ""
	}
	id, ok := sel.X.(*ast.Ident)
	if !ok {
		return "", ""
	}
	if p := c.pkgOf(id); p != "" {
		return p, sel.Sel.Name
	}
	return "", ""
}

func (c *checker) isPkgFunc(call *ast.CallExpr, path string, names ...string) bool {
	p, n := c.pkgFunc(call)
	if p != path {
		return false
	}
	for _, name := range names {
		if n == name {
			return true
		}
	}
	return false
}

// method returns the selector of a method call and whether go/types
// resolved it.
func (c *checker) method(call *ast.CallExpr) (*ast.SelectorExpr, *types.Func) {
	sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	if !ok {
		return nil, nil
	}
	if id, ok := sel.X.(*ast.Ident); ok && c.pkgOf(id) != "" {
		return nil, nil // a package-level function
	}
	fn, _ := c.info.Uses[sel.Sel].(*types.Func)
	return sel, fn
}

// recvIs reports whether fn is a method of the named type pkgPath.name (or
// a pointer to it).
func recvIs(fn *types.Func, pkgPath, name string) bool {
	if fn == nil {
		return false
	}
	sig, ok := fn.Type().(*types.Signature)
	if !ok || sig.Recv() == nil {
		return false
	}
	return isNamed(sig.Recv().Type(), pkgPath, name)
}

func isNamed(t types.Type, pkgPath, name string) bool {
	if t == nil {
		return false
	}
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	n, ok := types.Unalias(t).(*types.Named)
	if !ok {
		return false
	}
	o := n.Obj()
	return o.Pkg() != nil && o.Pkg().Path() == pkgPath && o.Name() == name
}

// builtin returns the name of the builtin function a call calls, or "".
func (c *checker) builtin(call *ast.CallExpr) string {
	id, ok := ast.Unparen(call.Fun).(*ast.Ident)
	if !ok {
		return ""
	}
	if o, ok := c.info.Uses[id]; ok {
		if _, ok := o.(*types.Builtin); ok {
			return id.Name
		}
		return ""
	}
	switch id.Name {
	case "append", "cap", "len", "panic", "print", "println":
		return id.Name
	}
	return ""
}

// conversion reports whether call converts to string ("string") or to a
// byte slice ("[]byte"), or neither ("").
func (c *checker) conversion(call *ast.CallExpr) string {
	if len(call.Args) != 1 {
		return ""
	}
	if tv, ok := c.info.Types[call.Fun]; ok && tv.IsType() {
		switch u := tv.Type.Underlying().(type) {
		case *types.Basic:
			if u.Info()&types.IsString != 0 {
				return "string"
			}
		case *types.Slice:
			if b, ok := u.Elem().Underlying().(*types.Basic); ok && (b.Kind() == types.Byte || b.Kind() == types.Uint8) {
				return "[]byte"
			}
		}
		return ""
	}
	switch f := ast.Unparen(call.Fun).(type) {
	case *ast.Ident:
		if f.Name == "string" && c.objOf(f) == nil {
			return "string"
		}
	case *ast.ArrayType:
		if f.Len == nil {
			if id, ok := f.Elt.(*ast.Ident); ok && (id.Name == "byte" || id.Name == "uint8") {
				return "[]byte"
			}
		}
	}
	return ""
}

func isNil(e ast.Expr) bool {
	id, ok := ast.Unparen(e).(*ast.Ident)
	return ok && id.Name == "nil"
}

// --- tracking of secret and environment values ---------------------------------

func (t *tracked) has(c *checker, id *ast.Ident) bool {
	if o := c.objOf(id); o != nil {
		return t.objs[o]
	}
	return t.names[id.Name]
}

func (t *tracked) add(c *checker, id *ast.Ident) bool {
	if id.Name == "_" {
		return false
	}
	if o := c.objOf(id); o != nil {
		if t.objs[o] {
			return false
		}
		t.objs[o] = true
		return true
	}
	if t.names[id.Name] {
		return false
	}
	t.names[id.Name] = true
	return true
}

// track finds the function's variables assigned a secret (x := s.Expose(),
// y := x[:4], …) or a value from the environment (v := os.Getenv(…)), until
// nothing changes.
func (c *checker) track(body ast.Node) {
	for changed := true; changed; {
		changed = false
		ast.Inspect(body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				if n.Tok == token.ASSIGN || n.Tok == token.DEFINE {
					changed = c.trackAssign(n.Lhs, n.Rhs) || changed
				}
			case *ast.ValueSpec:
				names := make([]ast.Expr, len(n.Names))
				for i, id := range n.Names {
					names[i] = id
				}
				changed = c.trackAssign(names, n.Values) || changed
			}
			return true
		})
	}
}

// trackAssign marks the variables on the left that get a secret or a
// value from the environment, and reports whether it marked a new one.
func (c *checker) trackAssign(lhs, rhs []ast.Expr) (changed bool) {
	if len(lhs) == len(rhs) {
		for i := range lhs {
			id, ok := lhs[i].(*ast.Ident)
			if !ok {
				continue
			}
			if c.secretValued(rhs[i]) && c.secret.add(c, id) {
				changed = true
			}
			if c.containsEnv(rhs[i]) != nil && c.env.add(c, id) {
				changed = true
			}
		}
		return changed
	}
	// v, ok := os.LookupEnv(…): the value is the first result.
	if len(rhs) == 1 && len(lhs) > 0 {
		if id, ok := lhs[0].(*ast.Ident); ok && c.containsEnv(rhs[0]) != nil && c.env.add(c, id) {
			return true
		}
	}
	return false
}

// isExpose reports whether e is a call of a method named Expose without
// arguments.
func isExpose(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 0 {
		return false
	}
	sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Expose"
}

// secretValued reports whether e is key material: an Expose() call, a
// tracked variable, or a slice, element, copy, conversion or text encoding
// of one.
func (c *checker) secretValued(e ast.Expr) bool {
	switch e := ast.Unparen(e).(type) {
	case *ast.CallExpr:
		if isExpose(e) {
			return true
		}
		if c.conversion(e) != "" {
			return c.secretValued(e.Args[0])
		}
		wraps := c.builtin(e) == "append" ||
			c.isPkgFunc(e, "bytes", "Clone") || c.isPkgFunc(e, "slices", "Clone") ||
			c.isPkgFunc(e, "encoding/hex", "EncodeToString", "AppendEncode", "Dump")
		if sel, ok := ast.Unparen(e.Fun).(*ast.SelectorExpr); ok && (sel.Sel.Name == "EncodeToString" || sel.Sel.Name == "AppendEncode") {
			wraps = true // base64.StdEncoding.EncodeToString and friends
		}
		if wraps {
			for _, a := range e.Args {
				if c.secretValued(a) {
					return true
				}
			}
		}
	case *ast.Ident:
		return c.secret.has(c, e)
	case *ast.SliceExpr:
		return c.secretValued(e.X)
	case *ast.IndexExpr:
		return c.secretValued(e.X)
	}
	return false
}

// containsSecret returns the first secret-valued part of e, or nil. The
// length of a secret (len, cap) is not secret, nor is the result of a
// constant-time comparison (crypto/subtle, hmac.Equal); a function
// literal's body is checked where it stands.
func (c *checker) containsSecret(e ast.Expr) ast.Expr {
	var found ast.Expr
	ast.Inspect(e, func(n ast.Node) bool {
		if found != nil {
			return false
		}
		switch n := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.CallExpr:
			if c.sanitizes(n) {
				return false
			}
		}
		if x, ok := n.(ast.Expr); ok && c.secretValued(x) {
			found = x
			return false
		}
		return true
	})
	return found
}

// sanitizes reports whether call's result reveals nothing of its
// arguments' key material: len, cap and the constant-time comparisons.
func (c *checker) sanitizes(call *ast.CallExpr) bool {
	if b := c.builtin(call); b == "len" || b == "cap" {
		return true
	}
	p, n := c.pkgFunc(call)
	return p == "crypto/subtle" || (p == "crypto/hmac" && n == "Equal")
}

// isEnvCall reports whether call reads the environment: os.Getenv,
// os.LookupEnv, os.Environ, os.ExpandEnv, syscall.Getenv, or any function
// or method named Getenv or LookupEnv (the Factory's injected f.Getenv).
func (c *checker) isEnvCall(call *ast.CallExpr) bool {
	if c.isPkgFunc(call, "os", "Getenv", "LookupEnv", "Environ", "ExpandEnv") || c.isPkgFunc(call, "syscall", "Getenv", "Environ") {
		return true
	}
	var name string
	switch f := ast.Unparen(call.Fun).(type) {
	case *ast.Ident:
		name = f.Name
	case *ast.SelectorExpr:
		name = f.Sel.Name
	}
	name = strings.ToLower(name)
	return name == "getenv" || name == "lookupenv"
}

// containsEnv returns the first part of e that reads the environment (a
// call or a tracked variable), or nil.
func (c *checker) containsEnv(e ast.Expr) ast.Expr {
	var found ast.Expr
	ast.Inspect(e, func(n ast.Node) bool {
		if found != nil {
			return false
		}
		switch n := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.CallExpr:
			if c.isEnvCall(n) {
				found = n
				return false
			}
		case *ast.Ident:
			if c.env.has(c, n) {
				found = n
			}
		}
		return true
	})
	return found
}

// --- the rules ----------------------------------------------------------------------

// walk applies the expression rules to every node of decl.
func (c *checker) walk(decl ast.Decl) {
	ast.Inspect(decl, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			c.checkCall(n)
		case *ast.BinaryExpr:
			if (n.Op == token.EQL || n.Op == token.NEQ) && !isNil(n.X) && !isNil(n.Y) {
				if c.containsSecret(n.X) != nil || c.containsSecret(n.Y) != nil {
					c.report(n, RuleSecretCompare, "%s on key material is not constant-time; use subtle.ConstantTimeCompare, hmac.Equal or (*psk.Secret).Equal (R15)", n.Op)
				}
			}
		case *ast.AssignStmt:
			for i, lhs := range n.Lhs {
				if sel, ok := lhs.(*ast.SelectorExpr); ok && sel.Sel.Name == "DefValue" && len(n.Lhs) == len(n.Rhs) {
					if x := c.containsEnv(n.Rhs[i]); x != nil {
						c.report(x, RuleFlagEnvDefault, "a flag's default is set from the environment; --help and usage errors print it (R1, R23)")
					}
				}
			}
		}
		return true
	})
}

func (c *checker) checkCall(call *ast.CallExpr) {
	// secret-print
	if name := c.printer(call); name != "" {
		for _, a := range call.Args {
			if c.containsSecret(a) != nil {
				c.report(a, RuleSecretPrint, "%s is given a value from Expose(); print the KCV, the length or the path instead (R10, R13)", name)
			}
		}
	}
	// secret-string
	if c.conversion(call) == "string" && c.containsSecret(call.Args[0]) != nil {
		c.report(call, RuleSecretString, "key material converted to a string, which can be neither wiped nor kept out of fmt (R13, R26)")
	}
	// secret-compare
	if c.isPkgFunc(call, "bytes", "Equal", "EqualFold", "Compare") || c.isPkgFunc(call, "reflect", "DeepEqual") ||
		c.isPkgFunc(call, "slices", "Equal", "Compare") || c.isPkgFunc(call, "strings", "Compare", "EqualFold") {
		for _, a := range call.Args {
			if c.containsSecret(a) != nil {
				p, n := c.pkgFunc(call)
				c.report(call, RuleSecretCompare, "%s.%s on key material is not constant-time; use subtle.ConstantTimeCompare, hmac.Equal or (*psk.Secret).Equal (R15)", p, n)
				break
			}
		}
	}
	// flag-env-default
	if c.definesFlag(call) {
		for _, a := range call.Args {
			if x := c.containsEnv(a); x != nil {
				c.report(x, RuleFlagEnvDefault, "a flag definition takes a value from the environment; --help and usage errors print defaults (R1, R23): document the variable in the usage text and read it after parsing")
				break
			}
		}
	}
	// secfile-perm
	c.checkPerm(call)
}

// printer returns a name for call if it prints or formats: a function of
// fmt, log or log/slog, a method of *log.Logger or *slog.Logger, a method of
// the CLI's IOStreams (f.IO.Infof), or the builtins print, println and panic.
func (c *checker) printer(call *ast.CallExpr) string {
	if p, n := c.pkgFunc(call); p == "fmt" || p == "log" || p == "log/slog" {
		return p + "." + n
	}
	switch b := c.builtin(call); b {
	case "print", "println", "panic":
		return b
	}
	sel, fn := c.method(call)
	if sel == nil {
		return ""
	}
	switch {
	case recvIs(fn, "log", "Logger"), recvIs(fn, "log/slog", "Logger"):
		return "(" + fn.Type().(*types.Signature).Recv().Type().String() + ")." + fn.Name()
	case fn != nil && fn.Pkg() != nil && strings.HasSuffix(fn.Pkg().Path(), cliPath) && recvIs(fn, fn.Pkg().Path(), "IOStreams"):
		return "IOStreams." + fn.Name()
	case fn == nil:
		// Unresolved (a file checked on its own): f.IO.Infof by its shape.
		if x, ok := sel.X.(*ast.SelectorExpr); ok && x.Sel.Name == "IO" {
			switch sel.Sel.Name {
			case "Infof", "Warnf", "Warn":
				return "IO." + sel.Sel.Name
			}
		}
	}
	return ""
}

// definesFlag reports whether call defines a flag: a method matching
// flagDefRE on a pflag or flag FlagSet (or, unresolved, on an expression
// ending in Flags() or PersistentFlags()), or the flag/pflag package
// functions of the same names.
func (c *checker) definesFlag(call *ast.CallExpr) bool {
	if p, n := c.pkgFunc(call); p != "" {
		return (p == "flag" || p == "github.com/spf13/pflag") && flagDefRE.MatchString(n)
	}
	sel, fn := c.method(call)
	if sel == nil || !flagDefRE.MatchString(sel.Sel.Name) {
		return false
	}
	if fn != nil {
		return recvIs(fn, "github.com/spf13/pflag", "FlagSet") || recvIs(fn, "flag", "FlagSet")
	}
	if isNamed(c.info.TypeOf(sel.X), "github.com/spf13/pflag", "FlagSet") || isNamed(c.info.TypeOf(sel.X), "flag", "FlagSet") {
		return true
	}
	if x, ok := ast.Unparen(sel.X).(*ast.CallExpr); ok && len(x.Args) == 0 {
		if s, ok := ast.Unparen(x.Fun).(*ast.SelectorExpr); ok && strings.HasSuffix(s.Sel.Name, "Flags") {
			return true
		}
	}
	return false
}

// --- secfile-perm ---------------------------------------------------------------------

type permKind int

const (
	permFile permKind = iota
	permDir
	permEither
)

func (c *checker) inSecretWriter() bool {
	for _, d := range secretWriterDirs {
		if strings.HasPrefix(c.src.rel, d) {
			return true
		}
	}
	return false
}

// checkPerm checks the modes that the secret writers give files and
// directories they create (R5).
func (c *checker) checkPerm(call *ast.CallExpr) {
	if !c.inSecretWriter() {
		return
	}
	arg := func(i int) ast.Expr {
		if i < len(call.Args) {
			return call.Args[i]
		}
		return nil
	}
	switch p, n := c.pkgFunc(call); {
	case p == "os" && n == "WriteFile":
		c.perm(call, "os.WriteFile", arg(2), permFile)
	case p == "os" && n == "OpenFile":
		if create, known := openCreates(c, arg(1)); known && !create {
			return // without O_CREATE the mode is not used
		}
		c.perm(call, "os.OpenFile", arg(2), permFile)
	case p == "os" && n == "Chmod":
		c.perm(call, "os.Chmod", arg(1), permEither)
	case p == "os" && (n == "Mkdir" || n == "MkdirAll"):
		c.perm(call, "os."+n, arg(1), permDir)
	case p == "os" && n == "Create":
		c.report(call, RuleSecfilePerm, "os.Create makes a file 0666 before the umask; secret files are created 0600 (R5)")
	case p == "":
		c.checkFileChmod(call)
	}
}

// checkFileChmod checks the mode of an (*os.File).Chmod call (a method
// whose receiver cannot be typed counts as one).
func (c *checker) checkFileChmod(call *ast.CallExpr) {
	sel, fn := c.method(call)
	if sel == nil || sel.Sel.Name != "Chmod" || len(call.Args) != 1 {
		return
	}
	if fn == nil || recvIs(fn, "os", "File") {
		c.perm(call, "(*os.File).Chmod", call.Args[0], permFile)
	}
}

// openCreates reports whether an os.OpenFile flag expression includes
// O_CREATE, and whether that is known (the expression is os.O_* constants
// joined by |).
func openCreates(c *checker, e ast.Expr) (create, known bool) {
	switch e := ast.Unparen(e).(type) {
	case *ast.BinaryExpr:
		if e.Op != token.OR {
			return false, false
		}
		c1, k1 := openCreates(c, e.X)
		c2, k2 := openCreates(c, e.Y)
		return c1 || c2, k1 && k2
	case *ast.SelectorExpr:
		if id, ok := e.X.(*ast.Ident); ok && c.pkgOf(id) == "os" && strings.HasPrefix(e.Sel.Name, "O_") {
			return e.Sel.Name == "O_CREATE", true
		}
	}
	return false, false
}

func (c *checker) perm(call *ast.CallExpr, name string, e ast.Expr, kind permKind) {
	want := map[permKind]string{permFile: "0o600", permDir: "0o700", permEither: "0o600 (files) or 0o700 (directories)"}[kind]
	if e == nil {
		return
	}
	v, ok := c.permLiteral(e)
	if !ok {
		c.report(e, RuleSecfilePerm, "%s with a mode that is not a literal; write %s so that it can be checked (R5)", name, want)
		return
	}
	good := (kind != permDir && v == 0o600) || (kind != permFile && v == 0o700)
	if !good {
		c.report(e, RuleSecfilePerm, "%s with mode %#o; the secret writer uses exactly %s (R5)", name, v, want)
	}
}

// permLiteral returns the value of an integer literal, possibly wrapped in
// parentheses and a conversion (fs.FileMode(0o600)).
func (c *checker) permLiteral(e ast.Expr) (uint64, bool) {
	switch e := ast.Unparen(e).(type) {
	case *ast.BasicLit:
		if e.Kind != token.INT {
			return 0, false
		}
		v, err := strconv.ParseUint(e.Value, 0, 32)
		return v, err == nil
	case *ast.CallExpr:
		if len(e.Args) != 1 {
			return 0, false
		}
		if tv, ok := c.info.Types[e.Fun]; ok && tv.IsType() {
			return c.permLiteral(e.Args[0])
		}
		if sel, ok := ast.Unparen(e.Fun).(*ast.SelectorExpr); ok && sel.Sel.Name == "FileMode" {
			return c.permLiteral(e.Args[0])
		}
	}
	return 0, false
}
