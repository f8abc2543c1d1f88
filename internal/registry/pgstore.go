package registry

// PGStore: the registry on PostgreSQL, for many stations and gateways
// sharing one registry (issue 8, design §5 "Scale-out"). The same Store
// semantics as FileStore:
//
//   - Update is one transaction that first locks the registry's meta row
//     (SELECT … FOR UPDATE), so writers on any machine are serialised like
//     the file store's lock file, wait up to the lock timeout (lock_timeout)
//     and then fail with *LockedError; the records, the audit entries
//     (chained from the head in the meta row) and the new head commit
//     together or not at all.
//   - View, Check and VerifyAudit read one REPEATABLE READ snapshot, without
//     locks.
//   - A missing registry is created by the first Update that may create
//     one, in that Update's transaction (schema creation included); init
//     (Exclusive) refuses an existing registry, or upgrades an older schema.
//   - Records are read lazily (Get one row, Range in pages), so an add to a
//     registry of 100,000 devices does not read them all.
//
// Secrets (R4, R9): the URL never holds a password (refused with a hint);
// pgx takes it from $PGPASSWORD or the password file (~/.pgpass,
// $PGPASSFILE). Errors name the registry by its URL, which holds no
// password, and scrub the password from anything the driver says. Stored
// keys are sealed with the registry key (pgstore_crypt.go): no table holds
// key bytes in clear. Each operation opens one connection and closes it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/usmp/usmp-psk/internal/psk"
)

// PGOptions configures a PGStore.
type PGOptions struct {
	// LockTimeout is how long Update waits for another writer
	// (--lock-timeout); zero means DefaultLockTimeout.
	LockTimeout time.Duration
	// Key is the registry key ($USMP_REGISTRY_KEY) that seals stored keys;
	// nil when none was given (a registry of only derived devices needs
	// none). NewPGStore derives what it needs: the caller keeps Key and
	// destroys it.
	Key *psk.Secret
	// Warn receives warnings (a schema upgrade); nil drops them.
	Warn func(msg string)
}

// PGStore keeps a registry in PostgreSQL (see the file comment).
type PGStore struct {
	url        string
	opts       PGOptions
	sealer     *sealer
	migrations []pgMigration
}

// pgBatchSize bounds the statements sent in one round trip.
const pgBatchSize = 500

// IsPostgresURL reports whether a registry location names a PostgreSQL
// registry.
func IsPostgresURL(location string) bool {
	return strings.HasPrefix(location, "postgres://") || strings.HasPrefix(location, "postgresql://")
}

// urlHint is the hint of a URL that holds a password.
const urlHint = "hint: remove the password from the URL and put it in $PGPASSWORD or in ~/.pgpass (or the file $PGPASSFILE names, mode 0600), e.g. 'host:port:database:user:password'"

// checkPGURL validates a registry URL without I/O. Its errors never quote
// the URL (it may hold a password).
func checkPGURL(raw string) error {
	src := "--registry"
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

// NewPGStore returns the store of the registry at a postgres:// URL. It
// refuses a URL that holds a password. It does no I/O.
func NewPGStore(rawURL string, opts PGOptions) (*PGStore, error) {
	if err := checkPGURL(rawURL); err != nil {
		return nil, err
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	s := &PGStore{url: rawURL, opts: opts, migrations: pgMigrations}
	if opts.Key != nil {
		sl, err := newSealer(opts.Key, nil)
		if err != nil {
			return nil, err
		}
		s.sealer = sl
	}
	return s, nil
}

// openPostgres is Open's branch for postgres:// URLs. The registry key
// comes from $USMP_REGISTRY_KEY through opts.RegistryKey (outside viper,
// whose prefix is USMP_PSK_).
func openPostgres(location string, opts Options) (*Registry, error) {
	if err := checkPGURL(location); err != nil {
		return nil, err
	}
	lookup := opts.RegistryKey
	if lookup == nil {
		lookup = func() (string, bool) { return os.LookupEnv(RegistryKeyEnv) }
	}
	var key *psk.Secret
	if v, ok := lookup(); ok {
		k, err := ParseRegistryKey("$"+RegistryKeyEnv, v)
		if err != nil {
			return nil, err
		}
		key = k
		defer key.Destroy()
	}
	st, err := NewPGStore(location, PGOptions{LockTimeout: opts.LockTimeout, Key: key, Warn: opts.Warn})
	if err != nil {
		return nil, err
	}
	return New(st, opts), nil
}

// Location returns the URL (which holds no password).
func (s *PGStore) Location() string { return s.url }

// AuditLocation names the audit log in messages.
func (s *PGStore) AuditLocation() string { return s.url + " (table usmp_audit)" }

// KeyID returns the id of the store's registry key ("" without one).
func (s *PGStore) KeyID() string {
	if s.sealer == nil {
		return ""
	}
	return s.sealer.id
}

func (s *PGStore) warn(msg string) {
	if s.opts.Warn != nil {
		s.opts.Warn(msg)
	}
}

func (s *PGStore) missing() error {
	return &RegistryError{Location: s.url, Err: ErrNoRegistry,
		Hint: "create it with 'usmp-psk registry init' (the database must exist; the tables are created), or point --registry (or $USMP_PSK_REGISTRY) at an existing one"}
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

// dbErr wraps the error of a statement.
func (s *PGStore) dbErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return &PGError{Location: s.url, What: what, Msg: pe.Message + " (SQLSTATE " + pe.Code + ")", err: err}
	}
	for _, ce := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, ce) {
			return &PGError{Location: s.url, What: what, Msg: ce.Error(), err: ce}
		}
	}
	return &PGError{Location: s.url, What: what, Msg: err.Error(), err: err}
}

// pgCode returns the SQLSTATE of err ("" when it has none).
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// connect opens a connection: the URL's settings, then the PG*
// environment variables and the password file, as libpq does.
func (s *PGStore) connect(ctx context.Context) (*pgx.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(s.url)
	if err != nil {
		// The message quotes the URL (no password: refused) with
		// pgconn's own redaction on top.
		return nil, &PGError{Location: s.url, What: "cannot use the URL", Msg: err.Error(),
			Hint: "see the connection URI options of PostgreSQL (libpq); only the password may not be in the URL"}
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "usmp-psk"
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 20 * time.Second
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, s.connectErr(ctx, err, cfg)
	}
	return conn, nil
}

// connectErr explains a failed connection, without the password.
func (s *PGStore) connectErr(ctx context.Context, err error, cfg *pgx.ConnConfig) error {
	pw := cfg.Password
	if ctx.Err() != nil {
		return &PGError{Location: s.url, What: "connect", Msg: ctx.Err().Error(), err: ctx.Err()}
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
		e := &PGError{Location: s.url, What: "connect to " + where, Msg: scrub(pe.Message, pw) + " (SQLSTATE " + pe.Code + ")"}
		switch pe.Code {
		case "28P01", "28000":
			e.Msg = fmt.Sprintf("authentication of user %q failed (SQLSTATE %s)", cfg.User, pe.Code)
			e.Hint = pwSource + " (~/.pgpass, or $PGPASSFILE); never put it in the URL"
		case "3D000":
			e.Msg = fmt.Sprintf("database %q does not exist", cfg.Database)
			e.Hint = "create it (createdb -O " + cfg.User + " " + cfg.Database + "), or fix the URL; 'usmp-psk registry init' creates the tables, not the database"
		}
		return e
	}
	detail := connectDetail(err)
	detail = scrub(detail, pw)
	e := &PGError{Location: s.url, What: "connect to " + where, Msg: detail,
		Hint: "is PostgreSQL running there and reachable? (host and port come from the URL, else $PGHOST and $PGPORT)"}
	switch {
	case strings.Contains(detail, "password") || strings.Contains(detail, "SASL") || strings.Contains(detail, "auth"):
		e.Hint = pwSource + " (~/.pgpass, or $PGPASSFILE); never put it in the URL"
	case strings.Contains(detail, "tls") || strings.Contains(detail, "TLS") || strings.Contains(detail, "SSL"):
		e.Hint = "check sslmode and the certificates in the URL (e.g. ?sslmode=verify-full&sslrootcert=FILE)"
	}
	return e
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

// begin starts a transaction whose lock waits end after the lock timeout.
func (s *PGStore) begin(ctx context.Context, conn *pgx.Conn, opts pgx.TxOptions) (pgx.Tx, error) {
	tx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		return nil, s.dbErr("begin a transaction", err)
	}
	ms := max(s.opts.LockTimeout.Milliseconds(), 1)
	if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, strconv.FormatInt(ms, 10)); err != nil {
		_ = tx.Rollback(ctx)
		return nil, s.dbErr("set the lock timeout", err)
	}
	return tx, nil
}

// lockErr turns a lock wait that timed out into *LockedError.
func (s *PGStore) lockErr(ctx context.Context, err error, start time.Time) error {
	if pgCode(err) == "55P03" && ctx.Err() == nil {
		return &LockedError{LockPath: s.url + " (usmp_meta row)", Waited: time.Since(start).Round(time.Millisecond)}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// pgMeta is the registry's meta row.
type pgMeta struct {
	head  AuditHead
	keyID string
}

// readMeta reads the meta row after checking the schema version; lock
// takes the writer lock on it.
func (s *PGStore) readMeta(ctx context.Context, tx pgx.Tx, lock bool) (*pgMeta, error) {
	q := `SELECT schema_version FROM usmp_meta WHERE id = 1`
	if lock {
		q += ` FOR UPDATE`
	}
	var v int
	if err := tx.QueryRow(ctx, q).Scan(&v); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, &CorruptError{Path: s.url, Field: "usmp_meta", Msg: "the registry's meta row is missing"}
		}
		return nil, err
	}
	if v != len(s.migrations) {
		return nil, &SchemaError{Location: s.url, Have: v, Want: len(s.migrations)}
	}
	m := &pgMeta{}
	var seq int64
	if err := tx.QueryRow(ctx, `SELECT audit_seq, audit_hash, coalesce(key_id, '') FROM usmp_meta WHERE id = 1`).Scan(&seq, &m.head.Hash, &m.keyID); err != nil {
		return nil, s.dbErr("read the registry's meta row", err)
	}
	m.head.Seq = uint64(seq)
	return m, nil
}

// checkKey refuses to go on when the registry has sealed keys and the
// store has no registry key, or another one.
func (s *PGStore) checkKey(m *pgMeta) error {
	if m.keyID == "" {
		return nil
	}
	if s.sealer == nil {
		return &KeyError{Location: s.url, Msg: "the registry holds encrypted keys (registry key " + m.keyID + ") and $" + RegistryKeyEnv + " is not set",
			Hint: "set $" + RegistryKeyEnv + " to the registry key (64 hex digits; see docs/scale-out.md)"}
	}
	if s.sealer.id != m.keyID {
		return &KeyError{Location: s.url, Msg: "$" + RegistryKeyEnv + " (key " + s.sealer.id + ") is not the key of this registry (key " + m.keyID + ")",
			Hint: "set $" + RegistryKeyEnv + " to this registry's key; after a rekey every station needs the new one"}
	}
	return nil
}

// viewTx opens a read-only snapshot of an existing registry and reads its
// meta row (checking the key when needKey). The caller ends it with
// closeView.
func (s *PGStore) viewTx(ctx context.Context, needKey bool) (*pgx.Conn, pgx.Tx, *pgMeta, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	tx, err := s.begin(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		_ = conn.Close(context.Background())
		return nil, nil, nil, err
	}
	m, err := s.viewMeta(ctx, tx, needKey)
	if err != nil {
		closeView(ctx, conn, tx)
		return nil, nil, nil, err
	}
	return conn, tx, m, nil
}

func (s *PGStore) viewMeta(ctx context.Context, tx pgx.Tx, needKey bool) (*pgMeta, error) {
	ok, err := pgExists(ctx, tx)
	if err != nil {
		return nil, s.dbErr("look for the registry", err)
	}
	if !ok {
		return nil, s.missing()
	}
	m, err := s.readMeta(ctx, tx, false)
	if err != nil {
		return nil, s.wrapMetaErr(err)
	}
	if needKey {
		if err := s.checkKey(m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// wrapMetaErr wraps a driver error of readMeta; registry errors pass.
func (s *PGStore) wrapMetaErr(err error) error {
	var se *SchemaError
	var ce *CorruptError
	if errors.As(err, &se) || errors.As(err, &ce) {
		return err
	}
	var pe *PGError
	if errors.As(err, &pe) {
		return err
	}
	return s.dbErr("read the registry's meta row", err)
}

func closeView(ctx context.Context, conn *pgx.Conn, tx pgx.Tx) {
	_ = tx.Rollback(ctx)
	_ = conn.Close(context.Background())
}

// View implements Store.
func (s *PGStore) View(ctx context.Context, fn func(Reader) error) error {
	conn, tx, _, err := s.viewTx(ctx, true)
	if err != nil {
		return err
	}
	defer closeView(ctx, conn, tx)
	r := newPGReader(ctx, s, tx)
	defer r.destroy()
	err = fn(r)
	if r.err != nil {
		return r.err
	}
	return err
}

// Update implements Store.
func (s *PGStore) Update(ctx context.Context, opts UpdateOptions, fn func(Tx) error) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	start := time.Now()
	tx, err := s.begin(ctx, conn, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback(ctx)
		}
	}()
	exists, err := pgExists(ctx, tx)
	if err != nil {
		return s.dbErr("look for the registry", err)
	}
	created := false
	if !exists {
		if !opts.Create {
			return s.missing()
		}
		// Creators wait for each other; the second finds the tables.
		if _, err := tx.Exec(ctx, pgLockKeySQL); err != nil {
			return s.lockErr(ctx, s.dbErr("lock the schema", err), start)
		}
		if exists, err = pgExists(ctx, tx); err != nil {
			return s.dbErr("look for the registry", err)
		}
		if !exists {
			if err := s.pgCreate(ctx, tx); err != nil {
				return err
			}
			created = true
		}
	}
	if exists && opts.Exclusive {
		v, err := s.schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if v >= len(s.migrations) {
			if v > len(s.migrations) {
				return &SchemaError{Location: s.url, Have: v, Want: len(s.migrations)}
			}
			return &RegistryError{Location: s.url, Err: ErrRegistryExists, Hint: "it is kept as it is; use it, or choose another --registry (another database, or another schema: ?options=-csearch_path%3DSCHEMA)"}
		}
		// registry init upgrades an older schema (issue 8).
		_ = tx.Rollback(ctx)
		committed = true
		from, to, err := s.upgrade(ctx, conn)
		if err != nil {
			return s.lockErr(ctx, err, start)
		}
		if from == to {
			// Another process upgraded it meanwhile.
			return &RegistryError{Location: s.url, Err: ErrRegistryExists, Hint: "its schema is current (another usmp-psk upgraded it just now)"}
		}
		s.warn(fmt.Sprintf("registry %s: upgraded the schema from version %d to %d", s.url, from, to))
		return nil
	}
	m, err := s.readMeta(ctx, tx, true)
	if err != nil {
		return s.lockErr(ctx, s.wrapMetaErr(err), start)
	}
	if err := s.checkKey(m); err != nil {
		return err
	}
	if !created {
		if err := s.checkAuditTail(ctx, tx, m.head); err != nil {
			return err
		}
	}
	t := &pgTx{pgReader: *newPGReader(ctx, s, tx), created: created, puts: map[string]*Record{}}
	defer t.destroy()
	if created {
		t.count = 0
	}
	if err := fn(t); err != nil || t.err != nil {
		if t.err != nil {
			return t.err
		}
		return err
	}
	if !t.dirty && len(t.events) == 0 && !created {
		if opts.Deliver != nil {
			return opts.Deliver()
		}
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The rows (audit entries included) are written before a delivery, so
	// that all that is left after it is the commit. Deliver runs inside
	// the transaction: the audit rows become durable only with the commit,
	// and a commit that fails after a delivery loses the delivery's audit
	// row (docs/registry.md §5). Once delivered, an interrupt no longer
	// cancels the commit.
	if err := t.flush(m); err != nil {
		return err
	}
	if opts.Deliver != nil {
		if err := opts.Deliver(); err != nil {
			return err
		}
		ctx = context.WithoutCancel(ctx)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.dbErr("commit", err)
	}
	committed = true
	return nil
}

// checkAuditTail refuses to write when the log's last entry is not the one
// the meta row records (rows deleted or added outside usmp-psk).
func (s *PGStore) checkAuditTail(ctx context.Context, tx pgx.Tx, head AuditHead) error {
	var seq int64
	var hash string
	err := tx.QueryRow(ctx, `SELECT seq, hash FROM usmp_audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		seq, hash, err = 0, "", nil
	}
	if err != nil {
		return s.dbErr("read the audit log", err)
	}
	if uint64(seq) != head.Seq || hash != head.Hash {
		return &AuditError{Path: s.AuditLocation(), Line: int(seq), Msg: "the last entry is " + strconv.FormatInt(seq, 10) + " but the registry records entry " + strconv.FormatUint(head.Seq, 10) + " (or another hash): the log was changed outside usmp-psk; run 'usmp-psk registry audit'"}
	}
	return nil
}

// Check implements Store: every row is decoded, damaged ones become
// findings, the audit chain is verified.
func (s *PGStore) Check(ctx context.Context, fn func(Reader) error) ([]Finding, error) {
	conn, tx, m, err := s.viewTx(ctx, true)
	if err != nil {
		return nil, err
	}
	defer closeView(ctx, conn, tx)
	reg := &regData{head: m.head}
	defer reg.destroy()
	var findings []Finding
	rows, err := tx.Query(ctx, `SELECT `+pgDeviceCols+` FROM usmp_devices ORDER BY id`)
	if err != nil {
		return nil, s.dbErr("read the devices", err)
	}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			rows.Close()
			return nil, s.dbErr("read the devices", err)
		}
		rec, err := s.decodeRow(d)
		var ce *CorruptError
		switch {
		case errors.As(err, &ce):
			findings = append(findings, Finding{Device: ce.Device, Field: ce.Field, Problem: ce.Msg})
		case err != nil:
			rows.Close()
			return nil, err
		default:
			reg.recs = append(reg.recs, rec)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.dbErr("read the devices", err)
	}
	if _, err := s.verifyAuditTx(ctx, tx, m.head, nil); err != nil {
		var ae *AuditError
		if !errors.As(err, &ae) {
			return nil, err
		}
		findings = append(findings, Finding{Field: "audit", Problem: ae.Error()})
	}
	if err := fn(&fileReader{reg: reg}); err != nil {
		return nil, err
	}
	return findings, nil
}

// VerifyAudit implements Store. The log and its head commit together, so
// there are never uncommitted entries: rows after the head were added
// outside usmp-psk. It needs no registry key.
func (s *PGStore) VerifyAudit(ctx context.Context) (*AuditReport, error) {
	conn, tx, m, err := s.viewTx(ctx, false)
	if err != nil {
		return nil, err
	}
	defer closeView(ctx, conn, tx)
	return s.verifyAuditTx(ctx, tx, m.head, nil)
}

// auditEntries returns the verified audit log.
func (s *PGStore) auditEntries(ctx context.Context) ([]AuditEntry, error) {
	conn, tx, m, err := s.viewTx(ctx, false)
	if err != nil {
		return nil, err
	}
	defer closeView(ctx, conn, tx)
	var out []AuditEntry
	_, err = s.verifyAuditTx(ctx, tx, m.head, func(e *AuditEntry) { out = append(out, *e) })
	return out, err
}

func (s *PGStore) verifyAuditTx(ctx context.Context, tx pgx.Tx, head AuditHead, each func(*AuditEntry)) (*AuditReport, error) {
	path := s.AuditLocation()
	rows, err := tx.Query(ctx, `SELECT seq, time, event, coalesce(device, ''), hash, line FROM usmp_audit ORDER BY seq`)
	if err != nil {
		return nil, s.dbErr("read the audit log", err)
	}
	defer rows.Close()
	rep := &AuditReport{Path: path}
	prev := zeroHash
	var n uint64
	for rows.Next() {
		n++
		var seq int64
		var at time.Time
		var event, device, hash, line string
		if err := rows.Scan(&seq, &at, &event, &device, &hash, &line); err != nil {
			return nil, s.dbErr("read the audit log", err)
		}
		e, msg := parseAuditLine([]byte(line))
		if msg != "" {
			return nil, &AuditError{Path: path, Line: int(n), Msg: msg}
		}
		if e.Seq != n {
			return nil, &AuditError{Path: path, Line: int(n), Msg: "seq is " + itoa(int(e.Seq)) + ", expected " + itoa(int(n)) + ": an entry was deleted, inserted or moved"}
		}
		if uint64(seq) != e.Seq || hash != e.Hash || event != string(e.Event) || device != e.Device || !at.Equal(e.Time.Truncate(time.Microsecond)) {
			return nil, &AuditError{Path: path, Line: int(n), Msg: "the row's columns do not match its entry: the row was edited"}
		}
		if e.Prev != prev {
			if n == 1 {
				return nil, &AuditError{Path: path, Line: 1, Msg: "prev of the first entry is not 64 zeros: the start of the log was cut off"}
			}
			return nil, &AuditError{Path: path, Line: int(n), Msg: "prev does not match the hash of entry " + itoa(int(n-1)) + ": an entry was edited, deleted, inserted or moved"}
		}
		prev = e.Hash
		rep.Entries = n
		rep.Head = AuditHead{Seq: n, Hash: e.Hash}
		if each != nil {
			each(e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.dbErr("read the audit log", err)
	}
	switch {
	case head.Seq > n:
		return nil, &AuditError{Path: path, Line: int(n), Msg: "the log ends at entry " + itoa(int(n)) + " but the registry records entry " + itoa(int(head.Seq)) + ": entries were deleted"}
	case head.Seq < n:
		return nil, &AuditError{Path: path, Line: int(head.Seq + 1), Msg: "entries after the last one the registry records (" + itoa(int(head.Seq)) + "): rows were added outside usmp-psk"}
	case n > 0 && head.Hash != prev:
		return nil, &AuditError{Path: path, Line: int(n), Msg: "this entry is not the one the registry records: the log was rewritten"}
	}
	return rep, nil
}

// Rekey seals every stored key again under newKey, in one transaction
// under the writer lock, and records newKey's id: from then on the
// registry needs newKey. The store must have the current key (when the
// registry has one). It returns how many keys were sealed again; the store
// uses newKey afterwards. The caller keeps newKey and destroys it.
func (s *PGStore) Rekey(ctx context.Context, newKey *psk.Secret) (int, error) {
	ns, err := newSealer(newKey, nil)
	if err != nil {
		return 0, err
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	start := time.Now()
	tx, err := s.begin(ctx, conn, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	ok, err := pgExists(ctx, tx)
	if err != nil {
		return 0, s.dbErr("look for the registry", err)
	}
	if !ok {
		return 0, s.missing()
	}
	m, err := s.readMeta(ctx, tx, true)
	if err != nil {
		return 0, s.lockErr(ctx, s.wrapMetaErr(err), start)
	}
	if err := s.checkKey(m); err != nil {
		return 0, err
	}
	rows, err := tx.Query(ctx, `SELECT id, psk_sealed FROM usmp_devices WHERE psk_sealed IS NOT NULL ORDER BY id`)
	if err != nil {
		return 0, s.dbErr("read the sealed keys", err)
	}
	type resealed struct {
		id   string
		blob []byte
	}
	var out []resealed
	for rows.Next() {
		var id string
		var blob []byte
		if err := rows.Scan(&id, &blob); err != nil {
			rows.Close()
			return 0, s.dbErr("read the sealed keys", err)
		}
		if s.sealer == nil {
			rows.Close()
			return 0, &KeyError{Location: s.url, Msg: "device " + strconv.Quote(id) + " holds a sealed key and $" + RegistryKeyEnv + " is not set"}
		}
		key, msg := s.sealer.open(id, blob)
		if msg != "" {
			rows.Close()
			return 0, &CorruptError{Path: s.url, Device: id, Field: "psk_sealed", Msg: msg}
		}
		nb, err := ns.seal(id, key)
		key.Destroy()
		if err != nil {
			rows.Close()
			return 0, err
		}
		out = append(out, resealed{id, nb})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, s.dbErr("read the sealed keys", err)
	}
	b := &pgx.Batch{}
	for _, r := range out {
		b.Queue(`UPDATE usmp_devices SET psk_sealed = $2 WHERE id = $1`, r.id, r.blob)
	}
	b.Queue(`UPDATE usmp_meta SET key_id = $1 WHERE id = 1`, ns.id)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, s.dbErr("seal the keys again", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, s.dbErr("commit", err)
	}
	s.sealer = ns
	return len(out), nil
}

// pgDeviceCols are the columns scanDevice reads, in order.
const pgDeviceCols = `id, source, epoch, status, kcv, psk_sealed, created, updated, revoked, revoke_reason, history::text`

const pgUpsertDevice = `INSERT INTO usmp_devices (id, source, epoch, status, kcv, psk_sealed, created, updated, revoked, revoke_reason, history)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)
ON CONFLICT (id) DO UPDATE SET source = EXCLUDED.source, epoch = EXCLUDED.epoch, status = EXCLUDED.status,
	kcv = EXCLUDED.kcv, psk_sealed = EXCLUDED.psk_sealed, created = EXCLUDED.created, updated = EXCLUDED.updated,
	revoked = EXCLUDED.revoked, revoke_reason = EXCLUDED.revoke_reason, history = EXCLUDED.history`

// pgDeviceRow is a row of usmp_devices as stored.
type pgDeviceRow struct {
	id, source   string
	epoch        int64
	status, kcv  string
	sealed       []byte
	created, upd time.Time
	revoked      *time.Time
	reason, hist string
}

func scanDevice(rows pgx.Rows) (*pgDeviceRow, error) {
	d := &pgDeviceRow{}
	err := rows.Scan(&d.id, &d.source, &d.epoch, &d.status, &d.kcv, &d.sealed, &d.created, &d.upd, &d.revoked, &d.reason, &d.hist)
	return d, err
}

// decodeRow turns a row into a record. Problems of the row are
// *CorruptError (device, field, what; never content); a sealed key without
// a registry key is *KeyError.
func (s *PGStore) decodeRow(d *pgDeviceRow) (*Record, error) {
	dev := ""
	if psk.ValidateDeviceID(d.id) == nil {
		dev = d.id
	}
	bad := func(field, msg string) error {
		return &CorruptError{Path: s.url, Device: dev, Field: field, Msg: msg}
	}
	if dev == "" {
		return nil, bad("id", "not a valid device id")
	}
	if d.epoch < 0 || d.epoch > 1<<32-1 {
		return nil, bad("epoch", "out of range")
	}
	rec := &Record{Device: Device{ID: d.id, Source: Source(d.source), Epoch: uint32(d.epoch), Status: Status(d.status), KCV: d.kcv,
		Created: d.created.UTC(), Updated: d.upd.UTC(), RevokeReason: d.reason}}
	if d.revoked != nil {
		rec.Revoked = d.revoked.UTC()
	}
	if d.hist != "" && d.hist != "[]" {
		if err := json.Unmarshal([]byte(d.hist), &rec.History); err != nil {
			return nil, bad("history", "not a list of retired keys")
		}
		for i := range rec.History {
			rec.History[i].Retired = rec.History[i].Retired.UTC()
		}
	}
	if d.sealed != nil {
		if s.sealer == nil {
			return nil, &KeyError{Location: s.url, Msg: "device " + strconv.Quote(d.id) + " holds an encrypted key and $" + RegistryKeyEnv + " is not set",
				Hint: "set $" + RegistryKeyEnv + " to the registry key (64 hex digits; see docs/scale-out.md)"}
		}
		key, msg := s.sealer.open(d.id, d.sealed)
		if msg != "" {
			return nil, bad("psk_sealed", msg)
		}
		rec.Key = key
	}
	if field, msg := rec.validate(); msg != "" {
		rec.Destroy()
		return nil, bad(field, msg)
	}
	return rec, nil
}

// pgReader implements Reader over a transaction: Get reads one row, Range
// reads pages in id order (byte order: the id column has collation "C"),
// Len counts. Records read are kept (and wiped) until the end of the call,
// so Get and Range return the same *Record for an id. Reader methods
// cannot return errors: the first one is kept in err, reads stop, and the
// View or Update returns it (and commits nothing).
type pgReader struct {
	ctx   context.Context
	s     *PGStore
	q     pgx.Tx
	cache map[string]*Record // nil value: known to be absent
	owned []*Record
	count int // rows in the table; -1 unknown
	err   error
}

func newPGReader(ctx context.Context, s *PGStore, q pgx.Tx) *pgReader {
	return &pgReader{ctx: ctx, s: s, q: q, cache: map[string]*Record{}, count: -1}
}

func (r *pgReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *pgReader) destroy() {
	for _, rec := range r.owned {
		rec.Destroy()
	}
	r.owned = nil
}

// keep records a decoded row (or returns the one already read).
func (r *pgReader) keep(rec *Record) *Record {
	if old := r.cache[rec.ID]; old != nil {
		rec.Destroy()
		return old
	}
	r.cache[rec.ID] = rec
	r.owned = append(r.owned, rec)
	return rec
}

// fetch reads one row; (nil, nil) when there is none.
func (r *pgReader) fetch(id string) (*Record, error) {
	rows, err := r.q.Query(r.ctx, `SELECT `+pgDeviceCols+` FROM usmp_devices WHERE id = $1`, id)
	if err != nil {
		return nil, r.s.dbErr("read device "+strconv.Quote(id), err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, r.s.dbErr("read device "+strconv.Quote(id), rows.Err())
	}
	d, err := scanDevice(rows)
	if err != nil {
		return nil, r.s.dbErr("read device "+strconv.Quote(id), err)
	}
	return r.s.decodeRow(d)
}

func (r *pgReader) lookup(id string) (*Record, bool) {
	if rec, ok := r.cache[id]; ok {
		return rec, rec != nil
	}
	if r.err != nil || psk.ValidateDeviceID(id) != nil {
		return nil, false
	}
	rec, err := r.fetch(id)
	if err != nil {
		r.fail(err)
		return nil, false
	}
	if rec == nil {
		r.cache[id] = nil
		return nil, false
	}
	return r.keep(rec), true
}

func (r *pgReader) Get(id string) (*Record, bool) { return r.lookup(id) }

func (r *pgReader) Len() int {
	if r.count < 0 && r.err == nil {
		var n int64
		if err := r.q.QueryRow(r.ctx, `SELECT count(*) FROM usmp_devices`).Scan(&n); err != nil {
			r.fail(r.s.dbErr("count the devices", err))
			return 0
		}
		r.count = int(n)
	}
	return max(r.count, 0)
}

// page reads up to n rows with ids after after.
func (r *pgReader) page(after string, n int) ([]*Record, error) {
	rows, err := r.q.Query(r.ctx, `SELECT `+pgDeviceCols+` FROM usmp_devices WHERE id > $1 ORDER BY id LIMIT $2`, after, n)
	if err != nil {
		return nil, r.s.dbErr("read the devices", err)
	}
	defer rows.Close()
	var out []*Record
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, r.s.dbErr("read the devices", err)
		}
		if old := r.cache[d.id]; old != nil {
			out = append(out, old)
			continue
		}
		rec, err := r.s.decodeRow(d)
		if err != nil {
			return nil, err
		}
		out = append(out, r.keep(rec))
	}
	return out, r.s.dbErr("read the devices", rows.Err())
}

// rangeRows calls fn for each row in id order, with over (sorted ids) put
// in place of or between the rows.
func (r *pgReader) rangeRows(over []string, get func(string) *Record, fn func(*Record) bool) {
	if r.err != nil {
		return
	}
	after, n, oi := "", 64, 0
	for {
		recs, err := r.page(after, n)
		if err != nil {
			r.fail(err)
			return
		}
		for _, rec := range recs {
			for oi < len(over) && over[oi] < rec.ID {
				if !fn(get(over[oi])) {
					return
				}
				oi++
			}
			if oi < len(over) && over[oi] == rec.ID {
				oi++
				rec = get(rec.ID)
			}
			if !fn(rec) {
				return
			}
		}
		if len(recs) < n {
			break
		}
		after, n = recs[len(recs)-1].ID, min(n*4, 4096)
	}
	for ; oi < len(over); oi++ {
		if !fn(get(over[oi])) {
			return
		}
	}
}

func (r *pgReader) Range(fn func(*Record) bool) { r.rangeRows(nil, nil, fn) }

// pgTx implements Tx: puts stay in memory until the commit.
type pgTx struct {
	pgReader
	created bool
	dirty   bool
	puts    map[string]*Record
	putIDs  []string // sorted
	newIDs  int      // puts of ids not in the table
	events  []AuditEvent
}

func (t *pgTx) Get(id string) (*Record, bool) {
	if rec, ok := t.puts[id]; ok {
		return rec, true
	}
	return t.lookup(id)
}

func (t *pgTx) Len() int { return t.pgReader.Len() + t.newIDs }

func (t *pgTx) Range(fn func(*Record) bool) {
	over := slices.Clone(t.putIDs)
	t.rangeRows(over, func(id string) *Record { return t.puts[id] }, fn)
}

func (t *pgTx) Put(rec *Record) error {
	if field, msg := rec.validate(); msg != "" {
		id := ""
		if psk.ValidateDeviceID(rec.ID) == nil {
			id = rec.ID
		}
		return fmt.Errorf("registry: refusing to store device %q: %s: %s", id, field, msg)
	}
	if t.err != nil {
		return t.err
	}
	if old, ok := t.puts[rec.ID]; ok {
		if old != rec {
			old.Destroy()
		}
	} else {
		if _, inTable := t.lookup(rec.ID); t.err != nil {
			return t.err
		} else if !inTable {
			t.newIDs++
		}
		i, _ := slices.BinarySearch(t.putIDs, rec.ID)
		t.putIDs = slices.Insert(t.putIDs, i, rec.ID)
	}
	t.puts[rec.ID] = rec
	t.dirty = true
	return nil
}

func (t *pgTx) Log(ev AuditEvent) { t.events = append(t.events, ev) }

func (t *pgTx) Created() bool { return t.created }

func (t *pgTx) destroy() {
	for _, rec := range t.puts {
		rec.Destroy()
	}
	t.pgReader.destroy()
}

// flush writes the puts, appends the events to the audit log after the
// head and records the new head (and the key id once a key is sealed).
func (t *pgTx) flush(m *pgMeta) error {
	s := t.s
	b := &pgx.Batch{}
	send := func(what string) error {
		if b.Len() == 0 {
			return nil
		}
		err := t.q.SendBatch(t.ctx, b).Close()
		b = &pgx.Batch{}
		return s.dbErr(what, err)
	}
	sealed := false
	for _, id := range t.putIDs {
		rec := t.puts[id]
		var blob []byte
		if rec.Key != nil {
			if s.sealer == nil {
				return &KeyError{Location: s.url, Msg: "device " + strconv.Quote(id) + " has a stored (" + string(rec.Source) + ") key: storing it needs $" + RegistryKeyEnv,
					Hint: "set $" + RegistryKeyEnv + " to the registry key (64 hex digits, e.g. from 'usmp-psk generate -o registry.key'; see docs/scale-out.md); derived devices need none"}
			}
			var err error
			if blob, err = s.sealer.seal(id, rec.Key); err != nil {
				return err
			}
			sealed = true
		}
		hist := []byte("[]")
		if len(rec.History) > 0 {
			var err error
			if hist, err = json.Marshal(rec.History); err != nil {
				return fmt.Errorf("registry: device %q: history: %w", id, err)
			}
		}
		var revoked *time.Time
		if !rec.Revoked.IsZero() {
			rv := rec.Revoked.UTC()
			revoked = &rv
		}
		b.Queue(pgUpsertDevice, id, string(rec.Source), int64(rec.Epoch), string(rec.Status), rec.KCV, blob,
			rec.Created.UTC(), rec.Updated.UTC(), revoked, rec.RevokeReason, string(hist))
		if b.Len() >= pgBatchSize {
			if err := send("write the devices"); err != nil {
				return err
			}
		}
	}
	if err := send("write the devices"); err != nil {
		return err
	}
	head := m.head
	for i := range t.events {
		ev := &t.events[i]
		prev := head.prevHash()
		head.Seq++
		var line []byte
		line, head.Hash = appendAuditLine(nil, head.Seq, ev, prev)
		line = line[:len(line)-1]
		var device *string
		if ev.Device != "" {
			device = &ev.Device
		}
		b.Queue(`INSERT INTO usmp_audit (seq, time, event, device, hash, line) VALUES ($1, $2, $3, $4, $5, $6)`,
			int64(head.Seq), ev.Time.UTC(), string(ev.Event), device, head.Hash, string(line))
		if b.Len() >= pgBatchSize {
			if err := send("append to the audit log"); err != nil {
				return err
			}
		}
	}
	var keyID *string
	if sealed {
		keyID = &s.sealer.id
	}
	b.Queue(`UPDATE usmp_meta SET audit_seq = $1, audit_hash = $2, key_id = coalesce(key_id, $3) WHERE id = 1`, int64(head.Seq), head.Hash, keyID)
	return send("append to the audit log")
}
