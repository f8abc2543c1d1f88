// Package secretcheck is the project's static secret-hygiene gate (security
// R29, enforcing R1, R4, R5, R13, R15 and R23). It parses and type-checks
// the module with the standard library alone (go/parser, go/ast, go/types,
// and the compiler's export data located with `go list -export`) and
// reports the following, each finding as "file:line: rule: message".
//
// A value is key material when it is a call of a method named Expose (the
// one accessor of psk.Secret), a local variable assigned one in the same
// function (x := s.Expose(), tracked through further x2 := x[:4]), or a
// slice, element, append/bytes.Clone/slices.Clone copy, []byte or string
// conversion, or hex/base64 EncodeToString of key material. An expression
// contains key material when any part of it is key material, except inside
// len, cap, the functions of crypto/subtle and hmac.Equal, whose results
// reveal nothing of the bytes.
//
//   - secret-print: an argument that contains key material passed to a
//     function of fmt, log or log/slog (slog.Any included), to a method of
//     *log.Logger or *slog.Logger, to a method of the CLI's IOStreams
//     (f.IO.Infof, Warnf, Warn), or to the builtins print, println and
//     panic (R10, R13). Print the KCV, the length or the path instead.
//   - secret-string: a conversion of key material to string or to a named
//     string type (R13, R26: a string can be neither wiped nor kept out of
//     fmt).
//   - secret-compare: == or != with an operand that contains key material
//     (a comparison with nil is not one), and bytes.Equal, bytes.EqualFold,
//     bytes.Compare, reflect.DeepEqual, slices.Equal, slices.Compare,
//     strings.Compare or strings.EqualFold with such an argument (R15). Use
//     subtle.ConstantTimeCompare, hmac.Equal or (*psk.Secret).Equal.
//   - flag-env-default: a flag definition with an argument that reads the
//     environment (R1, R23: --help and every usage error print defaults).
//     A definition is a method matching
//     ^(Bool|Bytes|Count|Duration|Float|Func|IP|Int|String|Text|Time|Uint|Var)\w*$
//     of pflag's or flag's *FlagSet (or, where the type is unknown, called
//     on an expression ending in Flags() or PersistentFlags()), or the
//     flag/pflag package functions of those names; so is an assignment to a
//     flag's DefValue. Reading the environment is a call of os.Getenv,
//     os.LookupEnv, os.Environ, os.ExpandEnv, syscall.Getenv, of any
//     function or method named Getenv or LookupEnv (the Factory's
//     f.Getenv), or a local variable assigned from one.
//   - exec-env: a command created with exec.Command, exec.CommandContext
//     or an exec.Cmd literal whose variable (or field) does not get .Env
//     assigned in the same top-level function, closures included, or that
//     is not held in a variable at all (run or returned directly); and an
//     Env of nil, os.Environ() or append(os.Environ(), …), which is the
//     whole environment (R4). Package-level commands may get their Env
//     anywhere in the file.
//   - secfile-perm: in the secret writers (internal/secfile/ and the batch
//     writer internal/provision/), os.WriteFile, os.OpenFile and
//     (*os.File).Chmod with a mode other than a literal 0o600, os.Mkdir and
//     os.MkdirAll with one other than a literal 0o700, os.Chmod with one
//     other than 0o600 or 0o700, and any os.Create (0666) (R5). A mode is
//     literal when it is an integer literal, possibly converted
//     (fs.FileMode(0o600)); a named constant is not. os.OpenFile without
//     O_CREATE in a flag expression of os.O_* constants is not checked: the
//     mode is unused.
//
// # Escape hatch
//
// A finding that is right on purpose is excused by a comment at the end of
// its line, or alone on the line above it:
//
//	//secretcheck:ignore <rule> <reason>
//
// The reason is required. A directive without a reason, naming an unknown
// rule, or excusing nothing is itself a finding (bad-ignore), which cannot
// be excused.
//
// # Tests
//
// TestTreeIsClean runs every rule over every non-test Go file of the
// module, for every GOOS: the files the build compiles are type-checked as
// their package; the others (other GOOS, //go:build ignore) on their own,
// where identifiers of the rest of the package stay unresolved and the
// rules fall back to the shape of the code (f.IO.Infof, cmd.Flags().X).
// testdata, vendor and directories starting with "." or "_" are skipped.
//
// TestFixturesAreCaught checks the files under testdata/tree, each as the
// module file at the same path below it (testdata/tree/internal/secfile/x.go
// is checked as internal/secfile/x.go, so the path-scoped rules apply). A
// fixture line with a `// want "rule" …` comment (or /* want … */ where a
// line comment is taken) must get exactly those findings, every other line
// none; every rule must be wanted somewhere. Fixtures start with
// //go:build ignore and live under testdata, so no build, vet or tidy sees
// them; gofmt does, so they are formatted.
//
// # Limits
//
// The rules follow values only through the assignments above, inside one
// function. Not tracked: range variables over key material (the key-file
// encoders in internal/registry loop over Expose() on purpose), values
// computed from key material by other functions (a MAC, a KCV), fields and
// package-level variables, and key material passed to a helper that prints
// it. Expose is recognised by name, on any type. A command returned by a
// helper for its caller to configure is reported: set Env in the helper.
package secretcheck
