package registry

// The registry on PostgreSQL, for many stations and gateways sharing one
// registry (docs/scale-out.md): the same SQL store as SQLite, through pgx's
// database/sql driver. A registry lives in the first schema of the
// connection's search_path (default "public"; ?options=-csearch_path%3DNAME
// in the URL gives each registry a schema of its own).
//
// Secrets: the URL never holds a password (refused with a hint); pgx takes
// it from $PGPASSWORD or the password file (~/.pgpass, $PGPASSFILE), as
// libpq does. Messages name the registry by its URL and scrub the password
// from anything the driver says. Stored keys are always sealed with the
// registry key (seal.go): no table holds key bytes in clear.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/usmp/usmp-psk/internal/psk"
)

// IsPostgresURL reports whether a registry location names a PostgreSQL
// registry: a postgres:// or postgresql:// URL, the scheme in any case
// (RFC 3986), as "POSTGRES://…" is no file name anyone means.
func IsPostgresURL(location string) bool {
	switch strings.ToLower(urlScheme(location)) {
	case "postgres", "postgresql":
		return true
	}
	return false
}

// urlScheme is the scheme of a location written as a URL with an
// authority ("scheme://…"), or "" when it is not one. A scheme is a letter
// and then letters, digits, '+', '-' and '.' (RFC 3986); one letter is a
// Windows drive ("C://dir"), not a scheme.
func urlScheme(location string) string {
	scheme, _, ok := strings.Cut(location, "://")
	if !ok || len(scheme) < 2 {
		return ""
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return ""
		}
	}
	return scheme
}

// normalizePGURL writes the scheme of a PostgreSQL URL in lower case, the
// only case pgx reads as a URL.
func normalizePGURL(location string) string {
	scheme := urlScheme(location)
	return strings.ToLower(scheme) + location[len(scheme):]
}

// unknownSchemeError refuses a URL that names no registry this tool
// keeps. It names the scheme only: the rest may hold a user, a password
// or a host that are nobody's business in a log.
func unknownSchemeError(location string) error {
	what := "a URL"
	if scheme := urlScheme(location); len(scheme) <= 16 {
		what = "a " + strings.ToLower(scheme) + ":// URL"
	}
	return &psk.InputError{Source: registryFlag, Msg: what + " is not a registry location (the URL is not repeated): give the path of a SQLite database or a postgres:// URL"}
}

// urlHint is the hint of a URL that holds a password.
const urlHint = "hint: remove the password from the URL and put it in $PGPASSWORD or in ~/.pgpass (or the file $PGPASSFILE names, mode 0600), e.g. 'host:port:database:user:password'"

// looksLikeKeywordDSN reports a libpq keyword/value connection string
// ("host=db user=usmp password=…"): it is refused without being quoted,
// since it may hold a password.
func looksLikeKeywordDSN(location string) bool {
	k, _, ok := strings.Cut(strings.TrimSpace(location), "=")
	if !ok {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(k)) {
	case "host", "hostaddr", "port", "dbname", "user", "password", "sslmode", "service", "passfile", "options", "application_name", "connect_timeout":
		return true
	}
	return false
}

// checkPGURL validates a registry URL without I/O. Its errors never quote
// the URL (it may hold a password).
func checkPGURL(raw string) error {
	src := registryFlag
	u, err := url.Parse(raw)
	if err != nil || !IsPostgresURL(raw) || u.Opaque != "" {
		return &psk.InputError{Source: src, Msg: "not a valid PostgreSQL URL (postgres://[user@]host[:port]/database[?option=value&…])"}
	}
	if _, has := u.User.Password(); has {
		return &psk.InputError{Source: src, Msg: "the registry URL holds a password: it would sit in argv, in $USMP_PSK_REGISTRY or in the config file, and in messages\n" + urlHint}
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return &psk.InputError{Source: src, Msg: "the query of the PostgreSQL URL is not valid"}
	}
	for k := range q {
		switch strings.ToLower(k) {
		case "password", "sslpassword":
			return &psk.InputError{Source: src, Msg: "the registry URL holds a " + strings.ToLower(k) + " parameter: it would sit in argv, in $USMP_PSK_REGISTRY or in the config file, and in messages\n" + urlHint}
		}
	}
	return nil
}

// pgEngine is a registry in a PostgreSQL database.
type pgEngine struct {
	url string

	once sync.Once
	db   *sql.DB
	cfg  *pgx.ConnConfig
	err  error
}

func (e *pgEngine) location() string { return e.url }

func (e *pgEngine) missing() error {
	return &RegistryError{Location: e.url, Err: ErrNoRegistry,
		Hint: "create it with 'usmp-psk registry init' (the database must exist; the tables are created), or point --registry (or $USMP_PSK_REGISTRY) at an existing one"}
}

// prepareWrite: a database has no location rules of files.
func (e *pgEngine) prepareWrite(bool, bool) error { return nil }

// open parses the URL once: its settings, then the PG* environment
// variables and the password file, as libpq does.
func (e *pgEngine) open() error {
	e.once.Do(func() {
		cfg, err := pgx.ParseConfig(e.url)
		if err != nil {
			// pgconn redacts a password; the URL has none anyway.
			e.err = &PGError{Location: e.url, What: "cannot use the URL", Msg: err.Error(),
				Hint: "see the connection URI options of PostgreSQL (libpq); only the password may not be in the URL"}
			return
		}
		if _, ok := cfg.RuntimeParams["application_name"]; !ok {
			cfg.RuntimeParams["application_name"] = "usmp-psk"
		}
		if cfg.ConnectTimeout == 0 {
			cfg.ConnectTimeout = 20 * time.Second
		}
		e.cfg, e.db = cfg, stdlib.OpenDB(*cfg)
	})
	return e.err
}

func (e *pgEngine) conn(ctx context.Context, _, _ bool) (*sql.Conn, error) {
	if err := e.open(); err != nil {
		return nil, err
	}
	c, err := e.db.Conn(ctx)
	if err != nil {
		return nil, e.connectErr(ctx, err)
	}
	return c, nil
}

func (e *pgEngine) close() error {
	if e.db == nil {
		return nil
	}
	return e.db.Close()
}

// PGError reports a failed PostgreSQL operation: the registry, what was
// being done and what the server or driver said (the password scrubbed).
// Exit code 1.
type PGError struct {
	Location string
	What     string
	Msg      string
	Hint     string
	err      error
}

func (e *PGError) Error() string {
	s := e.Location + ": " + e.What
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Hint != "" {
		s += "\nhint: " + e.Hint
	}
	return s
}

// Unwrap returns the driver's error (context errors stay visible to
// errors.Is).
func (e *PGError) Unwrap() error { return e.err }

// scrub removes the password from a driver message.
func scrub(msg, password string) string {
	if len(password) >= 4 {
		msg = strings.ReplaceAll(msg, password, "xxxxx")
	}
	return msg
}

func (e *pgEngine) password() string {
	if e.cfg == nil {
		return ""
	}
	return e.cfg.Password
}

// dbErr explains the error of a statement. A connection lost in the middle
// of a command says so: nothing of the transaction was recorded (unless
// the commit itself was under way), and running the command again
// finishes the work.
func (e *pgEngine) dbErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return &PGError{Location: e.url, What: what, Msg: scrub(pe.Message, e.password()) + " (SQLSTATE " + pe.Code + ")", err: err}
	}
	for _, ce := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ce) {
			return &PGError{Location: e.url, What: what, Msg: ce.Error(), err: ce}
		}
	}
	if lostConnection(err) {
		hint := "nothing of this command was recorded; run it again once the database is reachable (it finishes the work)"
		if what == "commit" {
			hint = "the connection broke while the change was being committed: it may or may not be recorded; check with 'usmp-psk registry show' or 'list' before running the command again"
		}
		return &PGError{Location: e.url, What: what, Msg: "the connection to the database was lost (" + scrub(connectDetail(err), e.password()) + ")", Hint: hint, err: err}
	}
	return &PGError{Location: e.url, What: what, Msg: scrub(err.Error(), e.password()), err: err}
}

// lostConnection reports an error of a connection that broke: the server
// went away, the network failed, the driver's connection is closed.
func lostConnection(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, sql.ErrConnDone) || pgconn.Timeout(err) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	s := err.Error()
	return strings.Contains(s, "conn closed") || strings.Contains(s, "unexpected EOF") || strings.Contains(s, "broken pipe") ||
		strings.Contains(s, "connection reset") || errors.Is(err, driver.ErrBadConn)
}

// timedOut: lock_timeout (SQLSTATE 55P03) ended the wait.
func (e *pgEngine) timedOut(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03"
}

// connectErr explains a failed connection, without the password.
func (e *pgEngine) connectErr(ctx context.Context, err error) error {
	cfg := e.cfg
	pw := cfg.Password
	if ctx.Err() != nil {
		return &PGError{Location: e.url, What: "connect", Msg: ctx.Err().Error(), err: ctx.Err()}
	}
	where := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	if strings.HasPrefix(cfg.Host, "/") {
		where = cfg.Host + " (port " + strconv.Itoa(int(cfg.Port)) + ")"
	}
	pwSource := "no password was found in $PGPASSWORD or the password file"
	if pw != "" {
		pwSource = "the password came from $PGPASSWORD or the password file"
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		pgErr := &PGError{Location: e.url, What: "connect to " + where, Msg: scrub(pe.Message, pw) + " (SQLSTATE " + pe.Code + ")"}
		switch pe.Code {
		case "28P01", "28000":
			pgErr.Msg = fmt.Sprintf("authentication of user %q failed (SQLSTATE %s)", cfg.User, pe.Code)
			pgErr.Hint = pwSource + " (~/.pgpass, or $PGPASSFILE); never put it in the URL"
		case "3D000":
			pgErr.Msg = fmt.Sprintf("database %q does not exist", cfg.Database)
			pgErr.Hint = "create it (createdb -O " + cfg.User + " " + cfg.Database + "), or fix the URL; 'usmp-psk registry init' creates the tables, not the database"
		}
		return pgErr
	}
	detail := scrub(connectDetail(err), pw)
	pgErr := &PGError{Location: e.url, What: "connect to " + where, Msg: detail,
		Hint: "is PostgreSQL running there and reachable? (host and port come from the URL, else $PGHOST and $PGPORT)"}
	switch {
	case strings.Contains(detail, "password") || strings.Contains(detail, "SASL") || strings.Contains(detail, "auth"):
		pgErr.Hint = pwSource + " (~/.pgpass, or $PGPASSFILE); never put it in the URL"
	case strings.Contains(detail, "tls") || strings.Contains(detail, "TLS") || strings.Contains(detail, "SSL"):
		pgErr.Hint = "check sslmode and the certificates in the URL (e.g. ?sslmode=verify-full&sslrootcert=FILE)"
	}
	return pgErr
}

// connectDetail is the gist of a connection failure: the network error
// ("connect: connection refused", "lookup db: no such host") when there is
// one, else the driver's message without its prefix, each line once (the
// driver tries TLS and then plain text, failing twice alike).
func connectDetail(err error) string {
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Err != nil {
		return ne.Op + ": " + ne.Err.Error()
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.Error()
	}
	detail := err.Error()
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Unwrap() != nil {
		detail = ce.Unwrap().Error()
	}
	var lines []string
	for _, l := range strings.Split(detail, "\n") {
		if l = strings.TrimSpace(l); l != "" && !slices.Contains(lines, l) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// gatewayGranter is an engine whose registry has roles (PostgreSQL).
type gatewayGranter interface {
	grantGateway(t *tx, role string) ([]string, error)
}

// GrantGateway gives a database role exactly the read access a gateway
// needs (registry grant-gateway ROLE): the registry's schema, and the
// columns of usmp_devices and usmp_meta that scripts/usmp_gateway.py
// reads — no history, no audit log, no writes. It returns the statements
// it ran. Only a PostgreSQL registry has roles.
func (r *Registry) GrantGateway(ctx context.Context, role string) ([]string, error) {
	g, ok := r.st.eng.(gatewayGranter)
	if !ok {
		return nil, &psk.InputError{Source: "registry grant-gateway", Msg: "only a PostgreSQL registry has roles; a gateway reads a SQLite registry as the user that owns its file"}
	}
	if role == "" || len(role) > 63 || strings.ContainsRune(role, 0) {
		return nil, &psk.InputError{Source: "ROLE", Msg: "not a PostgreSQL role name (1-63 bytes)"}
	}
	var done []string
	err := r.st.write(ctx, writeOpts{}, func(t *tx) error {
		var err error
		done, err = g.grantGateway(t, role)
		return err
	})
	return done, err
}

func (e *pgEngine) grantGateway(t *tx, role string) ([]string, error) {
	var schema string
	if err := t.q.QueryRowContext(t.ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return nil, e.dbErr("read the schema", err)
	}
	who, in := pgx.Identifier{role}.Sanitize(), pgx.Identifier{schema}.Sanitize()
	stmts := []string{
		"GRANT USAGE ON SCHEMA " + in + " TO " + who,
		"GRANT SELECT (id, source, epoch, status, kcv, psk_sealed) ON " + in + ".usmp_devices TO " + who,
		"GRANT SELECT (id, schema_version) ON " + in + ".usmp_meta TO " + who,
	}
	for _, s := range stmts {
		if _, err := t.q.ExecContext(t.ctx, s); err != nil {
			err = e.dbErr("grant the gateway's access", err)
			if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "42704" {
				err = &psk.InputError{Source: "ROLE", Msg: "the role does not exist; create it first (CREATE ROLE name LOGIN) and give it a password in the gateway's ~/.pgpass"}
			}
			return nil, err
		}
	}
	return stmts, nil
}

// NotifyChannel is the channel writers notify on commit, for gateways that
// LISTEN: "usmp_registry_" and the registry's schema. The payload is the
// changed device ids separated by spaces, or "*" for many.
const NotifyChannel = "usmp_registry_"
