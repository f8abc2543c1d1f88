package secretcheck

import (
	"go/ast"
	"go/types"
)

// exec-env: every command a function creates gets its Env assigned in that
// function (R4). Creation is exec.Command, exec.CommandContext or an
// exec.Cmd literal; the command must be held in a variable (or field) whose
// .Env is assigned somewhere in the same top-level function, closures
// included. An Env of nil or of os.Environ() is the whole environment, so it
// is reported too.

// targetKey identifies what a command was assigned to: a variable by its
// object (or name, unresolved), anything else by its source text.
type targetKey struct {
	obj  types.Object
	text string
}

func (c *checker) key(e ast.Expr) targetKey {
	e = ast.Unparen(e)
	if id, ok := e.(*ast.Ident); ok {
		if o := c.objOf(id); o != nil {
			return targetKey{obj: o}
		}
		return targetKey{text: id.Name}
	}
	return targetKey{text: types.ExprString(e)}
}

type creation struct {
	node   ast.Node
	target ast.Expr // nil: not assigned to anything
	hasEnv bool     // an exec.Cmd literal with an Env field
}

// isCmdLit reports whether lit is an exec.Cmd composite literal.
func (c *checker) isCmdLit(lit *ast.CompositeLit) bool {
	if tv, ok := c.info.Types[lit]; ok && tv.Type != nil {
		if isNamed(tv.Type, "os/exec", "Cmd") {
			return true
		}
	}
	if sel, ok := lit.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Cmd" {
		if id, ok := sel.X.(*ast.Ident); ok && c.pkgOf(id) == "os/exec" {
			return true
		}
	}
	return false
}

// execEnv checks the commands created in the nodes of create against the
// Env assignments in assign: a function body for both ("this function"), or
// the package-level declarations and the whole file ("this file").
func (c *checker) execEnv(create []ast.Node, assign ast.Node, where string) {
	created := c.commandsCreated(create)
	if len(created) == 0 {
		return
	}
	envSet := c.envAssigned(assign)
	for _, cr := range created {
		switch {
		case cr.hasEnv:
		case cr.target == nil:
			c.report(cr.node, RuleExecEnv, "a command is created without being held in a variable, so its Env is never set and it inherits the whole environment; assign it and set .Env to an allowlist (R4)")
		case !envSet[c.key(cr.target)]:
			c.report(cr.node, RuleExecEnv, "%s never gets .Env assigned in %s, so the child inherits the whole environment; set it to an allowlist (R4)", types.ExprString(cr.target), where)
		}
	}
}

// commandsCreated finds the commands created in the scopes: calls of
// exec.Command and exec.CommandContext, and exec.Cmd literals (whose Env
// field, when given, is checked here), each with what it is assigned to.
func (c *checker) commandsCreated(scopes []ast.Node) []creation {
	var created []creation
	for _, scope := range scopes {
		var stack []ast.Node
		ast.Inspect(scope, func(n ast.Node) bool {
			if n == nil {
				stack = stack[:len(stack)-1]
				return true
			}
			switch n := n.(type) {
			case *ast.CallExpr:
				if c.isPkgFunc(n, "os/exec", "Command", "CommandContext") {
					created = append(created, creation{node: n, target: assignedTo(n, stack)})
				}
			case *ast.CompositeLit:
				if c.isCmdLit(n) {
					created = append(created, c.cmdLiteral(n, stack))
				}
			}
			stack = append(stack, n)
			return true
		})
	}
	return created
}

// cmdLiteral is the creation of an exec.Cmd literal; an Env field it sets
// is checked.
func (c *checker) cmdLiteral(lit *ast.CompositeLit, stack []ast.Node) creation {
	cr := creation{node: lit, target: assignedTo(lit, stack)}
	for _, elt := range lit.Elts {
		if kv, ok := elt.(*ast.KeyValueExpr); ok {
			if id, ok := kv.Key.(*ast.Ident); ok && id.Name == "Env" {
				cr.hasEnv = true
				c.checkEnvValue(kv.Value)
			}
		}
	}
	return cr
}

// envAssigned finds the commands whose .Env is assigned in assign, and
// checks the values assigned.
func (c *checker) envAssigned(assign ast.Node) map[targetKey]bool {
	envSet := map[targetKey]bool{}
	ast.Inspect(assign, func(n ast.Node) bool {
		as, ok := n.(*ast.AssignStmt)
		if !ok {
			return true
		}
		for i, lhs := range as.Lhs {
			sel, ok := lhs.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Env" {
				continue
			}
			if t := c.info.TypeOf(sel.X); t != nil && t != types.Typ[types.Invalid] && !isNamed(t, "os/exec", "Cmd") {
				continue // an Env field of something else
			}
			envSet[c.key(sel.X)] = true
			if len(as.Lhs) == len(as.Rhs) {
				c.checkEnvValue(as.Rhs[i])
			}
		}
		return true
	})
	return envSet
}

// checkEnvValue reports an Env that is the whole environment.
func (c *checker) checkEnvValue(v ast.Expr) {
	v = ast.Unparen(v)
	if isNil(v) {
		c.report(v, RuleExecEnv, "Env = nil makes the child inherit the whole environment; use an allowlist (R4)")
		return
	}
	call, ok := v.(*ast.CallExpr)
	if !ok {
		return
	}
	if c.builtin(call) == "append" && len(call.Args) > 0 {
		if inner, ok := ast.Unparen(call.Args[0]).(*ast.CallExpr); ok {
			call = inner
		}
	}
	if c.isPkgFunc(call, "os", "Environ") || c.isPkgFunc(call, "syscall", "Environ") {
		c.report(v, RuleExecEnv, "Env built from os.Environ() passes the whole environment to the child; use an allowlist (R4)")
	}
}

// assignedTo returns what the expression n (on top of stack) is assigned
// to: the matching left-hand side of an assignment or var spec, looking
// through parentheses and &. It returns nil for anything else, including
// the blank identifier.
func assignedTo(n ast.Node, stack []ast.Node) ast.Expr {
	child := n
	for i := len(stack) - 1; i >= 0; i-- {
		switch p := stack[i].(type) {
		case *ast.ParenExpr:
			child = p
			continue
		case *ast.UnaryExpr:
			child = p
			continue
		case *ast.AssignStmt:
			if len(p.Lhs) != len(p.Rhs) {
				return nil
			}
			for j, r := range p.Rhs {
				if r == child {
					return notBlank(p.Lhs[j])
				}
			}
		case *ast.ValueSpec:
			if len(p.Names) != len(p.Values) {
				return nil
			}
			for j, r := range p.Values {
				if r == child {
					return notBlank(p.Names[j])
				}
			}
		}
		return nil
	}
	return nil
}

func notBlank(e ast.Expr) ast.Expr {
	if id, ok := e.(*ast.Ident); ok && id.Name == "_" {
		return nil
	}
	return e
}
