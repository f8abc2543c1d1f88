package registry

// What differs between SQLite and PostgreSQL, in SQL terms: placeholders,
// how a writer takes the registry, types, the catalog, and the schema and
// its migrations. Everything else (every operation) is one implementation
// in store.go. The schema is the same on both engines:
//
//	usmp_meta     one row: schema version, audit head, id of the registry key
//	usmp_devices  one row per device; stored keys in psk (plain, SQLite
//	              only) or psk_sealed (AES-256-GCM, see seal.go)
//	usmp_history  the retired keys of each device, n = 1, 2, … in order
//	usmp_audit    the audit log, one row per entry; line is the entry
//
// docs/registry.md shows how to look inside with sqlite3 or psql.

import (
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// schemaVersion is the schema this build writes. Version 1 was the first
// PostgreSQL schema (history as jsonb in usmp_devices); 'registry init'
// upgrades it.
const schemaVersion = 2

// dialect is one engine's SQL.
type dialect struct {
	name string
	// dollar: placeholders are $1, $2, … (PostgreSQL) instead of ?.
	dollar bool
	// unnest: many rows are inserted as one array per column (PostgreSQL);
	// else as a multi-row VALUES.
	unnest bool
	// readTx and writeTx open the transactions of readers and writers.
	// SQLite's writers begin IMMEDIATE (the connection's _txlock), which
	// takes the write lock at once; PostgreSQL's lock the meta row.
	readTx, writeTx *sql.TxOptions
	// lockMeta reads the meta row in a writer's transaction, locking it
	// against other writers where the engine needs that.
	lockMeta string
	// lockTimeout sets the writer's lock wait in the transaction ("" when
	// the connection carries it: SQLite's busy_timeout).
	lockTimeout string
	// tableExists counts the registry's meta table in the catalog.
	tableExists string
	// schemaLock serialises the creators and upgraders of a schema ("" when
	// the writer's transaction already does: SQLite).
	schemaLock string
	// idSet is a subquery of the ids in one parameter, idSetArg that
	// parameter: a JSON array (SQLite), a text array (PostgreSQL).
	idSet    string
	idSetArg func(ids []string) any
	// schema creates the current schema in a new registry.
	schema []string
	// upgrades[v] brings a registry from version v to v+1.
	upgrades map[int][]string
	// timeArg turns a time into the value of a time column.
	timeArg func(time.Time) any
	// notify tells listening gateways which devices a write changed, with
	// the commit ("" where nothing listens: SQLite's readers look up each
	// device anew).
	notify string
}

// bind rewrites the ? placeholders of q for the engine. The registry's SQL
// has no ? inside literals.
func (d *dialect) bind(q string) string {
	if !d.dollar || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// jsonIDs is a JSON array of device ids (which need no escaping).
func jsonIDs(ids []string) any {
	b, _ := json.Marshal(ids)
	return string(b)
}

// rfc3339 is how SQLite stores times: text that sorts and reads well.
const rfc3339 = "2006-01-02T15:04:05Z07:00"

var sqliteDialect = &dialect{
	name:        "sqlite",
	readTx:      &sql.TxOptions{ReadOnly: true},
	writeTx:     &sql.TxOptions{},
	lockMeta:    metaQuery,
	tableExists: `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'usmp_meta'`,
	idSet:       `SELECT value FROM json_each(?)`,
	idSetArg:    jsonIDs,
	schema:      sqliteSchema,
	timeArg:     func(t time.Time) any { return t.UTC().Format(rfc3339) },
}

var postgresDialect = &dialect{
	name:        "postgres",
	dollar:      true,
	unnest:      true,
	readTx:      &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
	writeTx:     &sql.TxOptions{Isolation: sql.LevelReadCommitted},
	lockMeta:    metaQuery + ` FOR UPDATE`,
	lockTimeout: `SELECT set_config('lock_timeout', ?, true)`,
	// pg_class with the statement's snapshot: to_regclass would use the
	// catalog cache, which misses a table a concurrent creator committed
	// while this transaction waited for the schema lock.
	tableExists: `SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relname = 'usmp_meta' AND n.nspname = current_schema()`,
	// One advisory lock per schema of the search path, so registries in
	// different schemas do not wait for each other.
	schemaLock: `SELECT pg_advisory_xact_lock(hashtext('usmp-psk registry schema ' || coalesce(current_schema(), '')))`,
	idSet:      `SELECT unnest(?::text[])`,
	idSetArg:   func(ids []string) any { return ids },
	schema:     postgresSchema,
	upgrades:   map[int][]string{1: postgresUpgrade1},
	timeArg:    func(t time.Time) any { return t.UTC() },
	// One channel per schema: NotifyChannel and the schema.
	notify: `SELECT pg_notify('` + NotifyChannel + `' || current_schema(), ?)`,
}

var sqliteSchema = []string{
	`CREATE TABLE usmp_meta (
	id             INTEGER PRIMARY KEY CHECK (id = 1),
	schema_version INTEGER NOT NULL,
	created        TEXT NOT NULL,
	audit_seq      INTEGER NOT NULL DEFAULT 0 CHECK (audit_seq >= 0),
	audit_hash     TEXT NOT NULL DEFAULT '',
	key_id         TEXT CHECK (length(key_id) = 8)
)`,
	`CREATE TABLE usmp_devices (
	id            TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
	source        TEXT NOT NULL CHECK (source IN ('derived', 'random', 'imported')),
	epoch         INTEGER NOT NULL CHECK (epoch BETWEEN 0 AND 4294967295),
	status        TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
	kcv           TEXT NOT NULL CHECK (length(kcv) = 8),
	psk           BLOB,
	psk_sealed    BLOB,
	created       TEXT NOT NULL,
	updated       TEXT NOT NULL,
	revoked       TEXT,
	revoke_reason TEXT NOT NULL DEFAULT '',
	CHECK (source <> 'derived' OR (psk IS NULL AND psk_sealed IS NULL)),
	CHECK (psk IS NULL OR psk_sealed IS NULL)
) WITHOUT ROWID`,
	`CREATE TABLE usmp_history (
	device  TEXT NOT NULL REFERENCES usmp_devices (id),
	n       INTEGER NOT NULL CHECK (n >= 1),
	kcv     TEXT NOT NULL,
	epoch   INTEGER NOT NULL,
	source  TEXT NOT NULL,
	reason  TEXT NOT NULL DEFAULT '',
	retired TEXT NOT NULL,
	PRIMARY KEY (device, n)
) WITHOUT ROWID`,
	`CREATE TABLE usmp_audit (
	seq    INTEGER PRIMARY KEY CHECK (seq >= 1),
	time   TEXT NOT NULL,
	event  TEXT NOT NULL,
	device TEXT,
	hash   TEXT NOT NULL,
	line   TEXT NOT NULL
)`,
	`CREATE INDEX usmp_audit_device ON usmp_audit (device) WHERE device IS NOT NULL`,
}

// postgresTables is the schema of version 1 that version 2 keeps.
var postgresTables = []string{
	`CREATE TABLE usmp_meta (
	id             smallint PRIMARY KEY CHECK (id = 1),
	schema_version integer NOT NULL,
	created        timestamptz NOT NULL DEFAULT now(),
	audit_seq      bigint NOT NULL DEFAULT 0 CHECK (audit_seq >= 0),
	audit_hash     text NOT NULL DEFAULT '',
	key_id         text CHECK (key_id ~ '^[0-9a-f]{8}$')
)`,
	`COMMENT ON TABLE usmp_meta IS 'usmp-psk registry: schema version, last audit entry, id of the key that seals stored keys'`,
	`CREATE TABLE usmp_devices (
	id            text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
	source        text NOT NULL CHECK (source IN ('derived', 'random', 'imported')),
	epoch         bigint NOT NULL CHECK (epoch BETWEEN 0 AND 4294967295),
	status        text NOT NULL CHECK (status IN ('active', 'revoked')),
	kcv           text NOT NULL CHECK (kcv ~ '^[0-9a-f]{8}$'),
	psk_sealed    bytea,
	created       timestamptz NOT NULL,
	updated       timestamptz NOT NULL,
	revoked       timestamptz,
	revoke_reason text NOT NULL DEFAULT '',
	CHECK (source <> 'derived' OR psk_sealed IS NULL)
)`,
	`CREATE TABLE usmp_audit (
	seq    bigint PRIMARY KEY CHECK (seq >= 1),
	time   timestamptz NOT NULL,
	event  text NOT NULL,
	device text COLLATE "C",
	hash   text NOT NULL UNIQUE,
	line   text NOT NULL
)`,
	`CREATE INDEX usmp_audit_device ON usmp_audit (device) WHERE device IS NOT NULL`,
	`COMMENT ON TABLE usmp_audit IS 'usmp-psk registry audit log: line is the canonical entry (see docs/registry.md), hash-chained'`,
}

// postgresV2 is what version 2 adds: the history table, a psk column that
// stays empty (PostgreSQL stores keys only sealed), and cheaper checks.
var postgresV2 = []string{
	`CREATE TABLE usmp_history (
	device  text COLLATE "C" NOT NULL REFERENCES usmp_devices (id),
	n       integer NOT NULL CHECK (n >= 1),
	kcv     text NOT NULL,
	epoch   bigint NOT NULL,
	source  text NOT NULL,
	reason  text NOT NULL DEFAULT '',
	retired timestamptz NOT NULL,
	PRIMARY KEY (device, n)
)`,
	`ALTER TABLE usmp_devices ADD COLUMN psk bytea CHECK (psk IS NULL)`,
	// The checks SQLite makes: version 1's regular expressions cost a
	// batch 7 µs per device on the server, and the ids and KCVs they
	// guarded are validated before every write and by 'registry check'.
	`ALTER TABLE usmp_devices
	DROP CONSTRAINT usmp_devices_id_check, ADD CONSTRAINT usmp_devices_id_check CHECK (length(id) BETWEEN 1 AND 64),
	DROP CONSTRAINT usmp_devices_kcv_check, ADD CONSTRAINT usmp_devices_kcv_check CHECK (length(kcv) = 8)`,
}

var postgresSchema = append(append(append([]string(nil), postgresTables...), postgresV2...),
	`ALTER TABLE usmp_devices DROP COLUMN IF EXISTS history`)

// postgresUpgrade1 moves version 1's jsonb history into usmp_history.
var postgresUpgrade1 = append(append([]string(nil), postgresV2...),
	`INSERT INTO usmp_history (device, n, kcv, epoch, source, reason, retired)
	SELECT d.id, h.n, h.e->>'kcv', (h.e->>'epoch')::bigint, h.e->>'source', coalesce(h.e->>'reason', ''), (h.e->>'retired')::timestamptz
	FROM usmp_devices d, jsonb_array_elements(d.history) WITH ORDINALITY AS h(e, n)`,
	`ALTER TABLE usmp_devices DROP COLUMN history`)
