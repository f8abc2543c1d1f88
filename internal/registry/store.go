package registry

// The SQL store: one implementation of the registry's storage for SQLite
// and PostgreSQL, through database/sql. The engine (sqlite.go, postgres.go)
// opens connections and explains driver errors; the dialect (dialect.go)
// holds the SQL that differs. Every write is one transaction that holds
// the records it changes and their audit entries, so a crash at any point
// leaves both before or both after. Writers wait for each other up to the
// lock timeout (SQLite: BEGIN IMMEDIATE with busy_timeout; PostgreSQL: the
// meta row FOR UPDATE with lock_timeout); readers read a snapshot and never
// wait.

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"
)

// engine is what differs between SQLite and PostgreSQL beyond SQL text:
// where the database is and how to reach it.
type engine interface {
	// location names the registry in messages (a path; a URL without a
	// password).
	location() string
	// conn opens a connection for a reader or a writer. With create, a
	// missing SQLite file is created (0600); without, a missing registry
	// wraps ErrNoRegistry.
	conn(ctx context.Context, write, create bool) (*sql.Conn, error)
	// prepareWrite applies the location rules before a write that may
	// create the registry or store keys in it; it creates nothing.
	prepareWrite(create, storesKeys bool) error
	// dbErr explains a driver error: where, what was being done.
	dbErr(what string, err error) error
	// timedOut reports a lock wait that reached the lock timeout.
	timedOut(err error) bool
	// missing is the error of a registry that does not exist.
	missing() error
	close() error
}

// store is a registry database.
type store struct {
	eng         engine
	dia         *dialect
	sealer      *sealer // nil without $USMP_REGISTRY_KEY
	plainKeys   bool    // the engine may keep keys unsealed (SQLite, in its 0600 file)
	lockTimeout time.Duration
	warn        func(string)
}

// meta is the registry's meta row.
type meta struct {
	version int
	head    AuditHead
	keyID   string
}

// tx is one transaction of a store.
type tx struct {
	ctx      context.Context
	s        *store
	q        *sql.Tx
	meta     meta
	created  bool // the transaction creates the registry
	upgraded int  // the schema version an init upgraded from (0: none)
	events   []AuditEvent
	sealed   bool                 // a key was sealed: the registry records the key's id
	stmts    map[string]*sql.Stmt // the multi-row INSERTs, prepared once per transaction
	changed  []string             // devices written, for the listeners' notification
}

// writeOpts says what a write may do with a missing or existing registry.
type writeOpts struct {
	create     bool // create a missing registry
	exclusive  bool // registry init: refuse a current registry, upgrade an older one
	storesKeys bool // the write may leave key bytes in the registry
}

func (s *store) location() string { return s.eng.location() }

// read runs fn in a read-only snapshot of an existing registry.
func (s *store) read(ctx context.Context, fn func(*tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	conn, err := s.eng.conn(ctx, false, false)
	if err != nil {
		return err
	}
	defer conn.Close()
	q, err := conn.BeginTx(ctx, s.dia.readTx)
	if err != nil {
		return s.eng.dbErr("begin a read transaction", err)
	}
	defer func() { _ = q.Rollback() }()
	t := &tx{ctx: ctx, s: s, q: q}
	exists, err := t.exists()
	switch {
	case err != nil:
		return err
	case !exists:
		return s.eng.missing()
	}
	if t.meta, err = t.readMeta(metaQuery); err != nil {
		return err
	}
	if err := s.checkVersion(t.meta.version); err != nil {
		return err
	}
	return fn(t)
}

// write runs fn in one write transaction and commits what it did, with
// its audit entries; nothing when fn fails. A SQLite registry that does
// not exist yet is made by its first write in a file of its own, linked
// into place once committed (stager), so that a failed first write leaves
// no file and concurrent creators find one whole registry.
func (s *store) write(ctx context.Context, o writeOpts, fn func(*tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.eng.prepareWrite(o.create, o.storesKeys); err != nil {
		return err
	}
	if st, ok := s.eng.(stager); ok && o.create {
		stg, err := st.stage(ctx)
		if err != nil {
			return err
		}
		if stg != nil {
			err := s.writeOn(ctx, stg.conn, o, fn)
			if err != nil {
				stg.discard()
				return err
			}
			if lost, err := stg.publish(); !lost {
				return err
			}
			// Another writer created the registry meanwhile: write there.
		}
	}
	conn, err := s.eng.conn(ctx, true, o.create)
	if err != nil {
		return err
	}
	return s.writeOn(ctx, conn, o, fn)
}

// stager is an engine whose registry is a file that a first write creates
// beside it and publishes whole (SQLite).
type stager interface {
	// stage returns the connection to a new registry beside the real one,
	// or nil when the registry exists.
	stage(ctx context.Context) (*staged, error)
}

// writeOn runs fn in one write transaction on conn, which it closes.
func (s *store) writeOn(ctx context.Context, conn *sql.Conn, o writeOpts, fn func(*tx) error) error {
	defer conn.Close()
	start := time.Now()
	q, err := conn.BeginTx(ctx, s.dia.writeTx)
	if err != nil {
		return s.lockErr(ctx, "begin a write transaction", err, start)
	}
	committed := false
	defer func() {
		if !committed {
			_ = q.Rollback()
		}
	}()
	t := &tx{ctx: ctx, s: s, q: q}
	if err := t.beginWrite(o, start); err != nil {
		return err
	}
	if err := fn(t); err != nil {
		return err
	}
	if err := t.flush(); err != nil {
		return err
	}
	if err := t.notify(); err != nil {
		return err
	}
	if err := q.Commit(); err != nil {
		return s.commitErr(ctx, err)
	}
	committed = true
	return nil
}

// commitErr explains a failed commit. Nothing was recorded, unless the
// connection was lost while the commit was on its way: then the outcome is
// unknown, and the message says so.
func (s *store) commitErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return s.eng.dbErr("commit", err)
}

// lockErr turns a lock wait that timed out into *LockedError.
func (s *store) lockErr(ctx context.Context, what string, err error, start time.Time) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if s.eng.timedOut(err) {
		return &LockedError{Location: s.location(), Waited: time.Since(start).Round(time.Millisecond)}
	}
	return s.eng.dbErr(what, err)
}

// beginWrite sets up a writer's transaction: the lock, the schema (created
// or upgraded when allowed), the meta row, the audit log's tail.
func (t *tx) beginWrite(o writeOpts, start time.Time) error {
	d := t.s.dia
	if d.lockTimeout != "" {
		ms := strconv.FormatInt(max(t.s.lockTimeout.Milliseconds(), 1), 10)
		if err := t.exec("set the lock timeout", d.lockTimeout, ms); err != nil {
			return err
		}
	}
	exists, err := t.exists()
	if err != nil {
		return err
	}
	if !exists {
		if !o.create {
			return t.s.eng.missing()
		}
		if err := t.createSchema(start); err != nil {
			return err
		}
	}
	m, err := t.readMeta(d.lockMeta)
	if err != nil {
		return t.s.lockErr(t.ctx, "read the registry's meta row", err, start)
	}
	t.meta = m
	if o.exclusive && !t.created {
		return t.initExisting()
	}
	if err := t.s.checkVersion(m.version); err != nil {
		return err
	}
	if t.created {
		return nil
	}
	return t.checkAuditTail()
}

// createSchema creates the registry's tables, unless a concurrent creator
// did while this one waited for the schema lock.
func (t *tx) createSchema(start time.Time) error {
	d := t.s.dia
	if d.schemaLock != "" {
		if _, err := t.q.ExecContext(t.ctx, d.schemaLock); err != nil {
			return t.s.lockErr(t.ctx, "lock the schema", err, start)
		}
		exists, err := t.exists()
		if err != nil || exists {
			return err
		}
	}
	for _, stmt := range d.schema {
		if _, err := t.q.ExecContext(t.ctx, stmt); err != nil {
			return t.s.eng.dbErr("create the registry's tables", err)
		}
	}
	t.created = true
	return t.exec("create the registry's meta row",
		`INSERT INTO usmp_meta (id, schema_version, created) VALUES (1, ?, ?)`, schemaVersion, d.timeArg(time.Now()))
}

// initExisting is registry init on a registry that exists: an older schema
// is upgraded, a current one is an error.
func (t *tx) initExisting() error {
	v := t.meta.version
	if v >= schemaVersion {
		if err := t.s.checkVersion(v); err != nil {
			return err
		}
		return &RegistryError{Location: t.s.location(), Err: ErrRegistryExists,
			Hint: "it is kept as it is; use it, or choose another --registry"}
	}
	for ; v < schemaVersion; v++ {
		up, ok := t.s.dia.upgrades[v]
		if !ok {
			return &SchemaError{Location: t.s.location(), Have: t.meta.version, Want: schemaVersion}
		}
		for _, stmt := range up {
			if _, err := t.q.ExecContext(t.ctx, stmt); err != nil {
				return t.s.eng.dbErr("upgrade the schema from version "+strconv.Itoa(v), err)
			}
		}
	}
	t.upgraded = t.meta.version
	return t.exec("record the schema version", `UPDATE usmp_meta SET schema_version = ? WHERE id = 1`, schemaVersion)
}

func (s *store) checkVersion(v int) error {
	if v != schemaVersion {
		return &SchemaError{Location: s.location(), Have: v, Want: schemaVersion}
	}
	return nil
}

// exists reports whether the registry's tables exist.
func (t *tx) exists() (bool, error) {
	var n int
	if err := t.q.QueryRowContext(t.ctx, t.s.dia.tableExists).Scan(&n); err != nil {
		return false, t.s.eng.dbErr("look for the registry", err)
	}
	return n > 0, nil
}

// metaQuery reads the meta row; dialect.lockMeta is the writer's form.
const metaQuery = `SELECT schema_version, audit_seq, audit_hash, coalesce(key_id, '') FROM usmp_meta WHERE id = 1`

// readMeta reads the meta row with query (metaQuery or dialect.lockMeta).
func (t *tx) readMeta(query string) (meta, error) {
	var m meta
	var seq int64
	err := t.q.QueryRowContext(t.ctx, query).Scan(&m.version, &seq, &m.head.Hash, &m.keyID)
	if errors.Is(err, sql.ErrNoRows) {
		return m, &CorruptError{Path: t.s.location(), Field: "usmp_meta", Msg: "the registry's meta row is missing"}
	}
	if err != nil {
		return m, err
	}
	m.head.Seq = uint64(seq)
	return m, nil
}

// checkAuditTail refuses to write when the log's last entry is not the one
// the meta row records (entries deleted or added outside usmp-psk).
func (t *tx) checkAuditTail() error {
	var seq int64
	var hash string
	err := t.q.QueryRowContext(t.ctx, `SELECT seq, hash FROM usmp_audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		seq, hash, err = 0, "", nil
	}
	if err != nil {
		return t.s.eng.dbErr("read the audit log", err)
	}
	head := t.meta.head
	if uint64(seq) != head.Seq || hash != head.Hash {
		return &AuditError{Path: t.s.location(), Line: int(seq), Msg: "the last entry is " + strconv.FormatInt(seq, 10) +
			" but the registry records entry " + strconv.FormatUint(head.Seq, 10) + " (or another hash): the log was changed outside usmp-psk; run 'usmp-psk registry audit'"}
	}
	return nil
}

// exec runs a statement; what says what it does, for the error.
func (t *tx) exec(what, query string, args ...any) error {
	if _, err := t.q.ExecContext(t.ctx, t.s.dia.bind(query), args...); err != nil {
		return t.s.eng.dbErr(what, err)
	}
	return nil
}

// query runs a query.
func (t *tx) query(what, query string, args ...any) (*sql.Rows, error) {
	rows, err := t.q.QueryContext(t.ctx, t.s.dia.bind(query), args...)
	if err != nil {
		return nil, t.s.eng.dbErr(what, err)
	}
	return rows, nil
}

// execPrepared runs a statement that the transaction may run again (a
// multi-row INSERT of a full group), preparing it once: compiling an
// INSERT of 500 rows costs more than running it.
func (t *tx) execPrepared(what, query string, args []any) error {
	q := t.s.dia.bind(query)
	st, ok := t.stmts[q]
	if !ok {
		var err error
		if st, err = t.q.PrepareContext(t.ctx, q); err != nil {
			return t.s.eng.dbErr(what, err)
		}
		if t.stmts == nil {
			t.stmts = map[string]*sql.Stmt{}
		}
		t.stmts[q] = st
	}
	if _, err := st.ExecContext(t.ctx, args...); err != nil {
		return t.s.eng.dbErr(what, err)
	}
	return nil
}

// notifyLimit bounds the device ids a notification names; more, and it
// says "*": drop everything.
const notifyLimit = 64

// notify tells listening gateways (PostgreSQL's LISTEN) which devices the
// transaction changed; the server delivers it with the commit, or never.
func (t *tx) notify() error {
	if t.s.dia.notify == "" || len(t.changed) == 0 {
		return nil
	}
	payload := strings.Join(t.changed, " ")
	if len(t.changed) > notifyLimit {
		payload = "*"
	}
	return t.exec("notify the gateways", t.s.dia.notify, payload)
}

// log queues an audit event, written with the transaction's records.
func (t *tx) log(ev AuditEvent) { t.events = append(t.events, ev) }

// flush appends the queued events to the audit log, chained after the
// head, and records the new head (and the registry key's id once a key
// was sealed) in the meta row.
func (t *tx) flush() error {
	if len(t.events) == 0 && !t.sealed {
		return nil
	}
	head := t.meta.head
	rows := make([][]any, 0, len(t.events))
	for i := range t.events {
		ev := &t.events[i]
		prev := head.prevHash()
		head.Seq++
		line, hash := auditLine(head.Seq, ev, prev)
		head.Hash = hash
		var device any
		if ev.Device != "" {
			device = ev.Device
		}
		rows = append(rows, []any{int64(head.Seq), t.s.dia.timeArg(ev.Time), string(ev.Event), device, hash, string(line)})
	}
	if err := t.insert("append to the audit log", auditTable, rows); err != nil {
		return err
	}
	var keyID any
	if t.sealed {
		keyID = t.s.sealer.id
	}
	if err := t.exec("record the audit head", `UPDATE usmp_meta SET audit_seq = ?, audit_hash = ?, key_id = coalesce(key_id, ?) WHERE id = 1`,
		int64(head.Seq), head.Hash, keyID); err != nil {
		return err
	}
	t.meta.head, t.events = head, nil
	return nil
}

// table names the columns of an INSERT, with their PostgreSQL types (the
// arrays PostgreSQL's unnest takes them in).
type table struct {
	name    string
	cols    []string
	pgTypes []string
}

var (
	devicesTable = table{"usmp_devices",
		[]string{"id", "source", "epoch", "status", "kcv", "created", "updated", "revoked", "revoke_reason", "psk", "psk_sealed"},
		[]string{"text", "text", "bigint", "text", "text", "timestamptz", "timestamptz", "timestamptz", "text", "bytea", "bytea"}}
	historyTable = table{"usmp_history",
		[]string{"device", "n", "kcv", "epoch", "source", "reason", "retired"},
		[]string{"text", "integer", "text", "bigint", "text", "text", "timestamptz"}}
	auditTable = table{"usmp_audit",
		[]string{"seq", "time", "event", "device", "hash", "line"},
		[]string{"bigint", "timestamptz", "text", "text", "text", "text"}}
)

// rowsPerInsert bounds the rows of one multi-row INSERT (SQLite): 500 rows
// of up to 11 columns stay far below its 32766 parameters, and a batch
// chunk still takes a handful of statements, each prepared once.
const rowsPerInsert = 500

// insert inserts rows into tb with a constant number of statements: on
// PostgreSQL one, the columns as arrays through unnest (a statement with
// thousands of parameters costs the server more to plan than to run); on
// SQLite one per 500 rows.
func (t *tx) insert(what string, tb table, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	if t.s.dia.unnest {
		q, args := unnestInsert(tb, rows)
		return t.exec(what, q, args...)
	}
	cols := len(tb.cols)
	group := "(?" + strings.Repeat(", ?", cols-1) + ")"
	head := "INSERT INTO " + tb.name + " (" + strings.Join(tb.cols, ", ") + ") VALUES "
	for len(rows) > 0 {
		n := min(rowsPerInsert, len(rows))
		q := make([]byte, 0, len(head)+n*(len(group)+2))
		q = append(q, head...)
		args := make([]any, 0, n*cols)
		for i := range n {
			if i > 0 {
				q = append(q, ", "...)
			}
			q = append(q, group...)
			args = append(args, rows[i]...)
		}
		if err := t.execPrepared(what, string(q), args); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// unnestInsert is PostgreSQL's INSERT of rows as one array per column.
func unnestInsert(tb table, rows [][]any) (string, []any) {
	args := make([]any, len(tb.cols))
	casts := make([]string, len(tb.cols))
	for c := range tb.cols {
		col := make([]any, len(rows))
		for r := range rows {
			col[r] = rows[r][c]
		}
		args[c] = col
		casts[c] = "?::" + tb.pgTypes[c] + "[]"
	}
	return "INSERT INTO " + tb.name + " (" + strings.Join(tb.cols, ", ") + ") SELECT * FROM unnest(" + strings.Join(casts, ", ") + ")", args
}
