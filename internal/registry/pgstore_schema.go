package registry

// The PostgreSQL schema of a registry and its versioned migrations
// (issue 8). A registry lives in the first schema of the connection's
// search_path (default "public"; give each registry its own schema with
// ?options=-csearch_path%3DNAME in the URL, which libpq tools read too, to
// keep several in one database):
//
//	usmp_meta     one row: schema version, audit head, key id
//	usmp_devices  one row per device; stored keys only sealed (pgstore_crypt.go)
//	usmp_audit    the audit log, one row per entry, hash-chained
//
// Each migration runs in a transaction of its own under an advisory lock,
// with the version checked again under the lock, so concurrent upgraders
// apply it once. A missing registry is created with every migration inside
// the transaction of its first write: if that write fails, nothing is left
// behind.

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// pgMigration brings the schema from version N-1 to N (N its index + 1).
type pgMigration struct {
	what string
	sql  string
}

// pgMigrations are the schema's versions in order; the schema version
// this build writes is len(pgMigrations). Never edit one that was
// released: add the next.
var pgMigrations = []pgMigration{
	{what: "the registry tables", sql: `
CREATE TABLE usmp_meta (
	id             smallint PRIMARY KEY CHECK (id = 1),
	schema_version integer NOT NULL,
	created        timestamptz NOT NULL DEFAULT now(),
	audit_seq      bigint NOT NULL DEFAULT 0 CHECK (audit_seq >= 0),
	audit_hash     text NOT NULL DEFAULT '',
	key_id         text CHECK (key_id ~ '^[0-9a-f]{8}$')
);
COMMENT ON TABLE usmp_meta IS 'usmp-psk registry: schema version, last audit entry, id of the key that seals stored keys';
CREATE TABLE usmp_devices (
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
	history       jsonb NOT NULL DEFAULT '[]',
	CHECK (source <> 'derived' OR psk_sealed IS NULL)
);
COMMENT ON TABLE usmp_devices IS 'usmp-psk registry: one row per device; psk_sealed is AES-256-GCM under USMP_REGISTRY_KEY, derived devices hold no key';
CREATE TABLE usmp_audit (
	seq    bigint PRIMARY KEY CHECK (seq >= 1),
	time   timestamptz NOT NULL,
	event  text NOT NULL,
	device text COLLATE "C",
	hash   text NOT NULL UNIQUE,
	line   text NOT NULL
);
CREATE INDEX usmp_audit_device ON usmp_audit (device) WHERE device IS NOT NULL;
COMMENT ON TABLE usmp_audit IS 'usmp-psk registry audit log: line is the canonical entry (see docs/scale-out.md), hash-chained';
INSERT INTO usmp_meta (id, schema_version) VALUES (1, 1);
`},
}

// pgLockKeySQL takes the advisory lock of schema changes, one per schema
// of the search_path, so registries in different schemas do not wait for
// each other.
const pgLockKeySQL = `SELECT pg_advisory_xact_lock(hashtext('usmp-psk registry schema ' || coalesce(current_schema(), '')))`

// SchemaError reports a registry whose schema this build cannot use as it
// is: older (registry init upgrades it) or newer (a newer usmp-psk wrote
// it). Exit code 2.
type SchemaError struct {
	Location string
	Have     int // the registry's schema version
	Want     int // this build's
}

// ErrSchemaVersion means the registry's schema version is not this build's.
var ErrSchemaVersion = errors.New("registry schema version mismatch")

func (e *SchemaError) Error() string {
	if e.Have < e.Want {
		return fmt.Sprintf("%s: the registry schema is version %d, this usmp-psk uses version %d\nhint: run 'usmp-psk registry init' to upgrade it (every device and the audit log are kept)", e.Location, e.Have, e.Want)
	}
	return fmt.Sprintf("%s: the registry schema is version %d, newer than this usmp-psk knows (%d)\nhint: use the usmp-psk that upgraded it, or a newer one", e.Location, e.Have, e.Want)
}

// Unwrap returns ErrSchemaVersion.
func (e *SchemaError) Unwrap() error { return ErrSchemaVersion }

// BadInput marks the error as the user's to fix (exit code 2).
func (e *SchemaError) BadInput() bool { return true }

// pgExists reports whether the registry's tables exist in the first schema
// of the search path. It reads pg_class with the statement's snapshot
// (to_regclass would use the catalog cache, which does not see a table
// that a concurrent creator committed while this transaction waited for
// the schema lock).
func pgExists(ctx context.Context, q pgx.Tx) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relname = 'usmp_meta' AND n.nspname = current_schema())`).Scan(&ok)
	return ok, err
}

// pgCreate applies every migration in tx, which holds the schema lock.
func (s *PGStore) pgCreate(ctx context.Context, tx pgx.Tx) error {
	var schema *string
	if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return s.dbErr("create the registry", err)
	}
	if schema == nil {
		return &RegistryError{Location: s.Location(), Err: ErrNoRegistry,
			Hint: "no schema of the search_path exists: create it (CREATE SCHEMA name) or fix options=-csearch_path%3DNAME in the URL"}
	}
	for i := range s.migrations {
		if err := s.migrate(ctx, tx, i); err != nil {
			return err
		}
	}
	return nil
}

// migrate applies migration i (to version i+1) in tx.
func (s *PGStore) migrate(ctx context.Context, tx pgx.Tx, i int) error {
	if _, err := tx.Exec(ctx, s.migrations[i].sql); err != nil {
		return s.dbErr("schema migration to version "+strconv.Itoa(i+1)+" ("+s.migrations[i].what+")", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE usmp_meta SET schema_version = $1 WHERE id = 1`, i+1); err != nil {
		return s.dbErr("schema migration to version "+strconv.Itoa(i+1), err)
	}
	return nil
}

// schemaVersion reads the registry's schema version (ErrCorrupt when the
// meta row is missing).
func (s *PGStore) schemaVersion(ctx context.Context, q pgx.Tx) (int, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT schema_version FROM usmp_meta WHERE id = 1`).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, &CorruptError{Path: s.Location(), Field: "usmp_meta", Msg: "the registry's meta row is missing"}
	}
	if err != nil {
		return 0, s.dbErr("read the schema version", err)
	}
	return v, nil
}

// upgrade brings an existing registry to this build's schema, one
// migration per transaction, and returns the versions before and after.
func (s *PGStore) upgrade(ctx context.Context, conn *pgx.Conn) (from, to int, err error) {
	from = -1
	for {
		v, done, err := s.upgradeStep(ctx, conn)
		if from < 0 {
			from = v
		}
		if err != nil || done {
			return from, v, err
		}
	}
}

// upgradeStep applies the next migration, if any, in a transaction of its
// own. It returns the version it found and whether it was the current one.
func (s *PGStore) upgradeStep(ctx context.Context, conn *pgx.Conn) (found int, done bool, err error) {
	tx, err := s.begin(ctx, conn, pgx.TxOptions{})
	if err != nil {
		return 0, false, err
	}
	defer func() {
		if err != nil || done {
			_ = tx.Rollback(ctx)
		}
	}()
	if _, err := tx.Exec(ctx, pgLockKeySQL); err != nil {
		return 0, false, s.dbErr("lock the schema", err)
	}
	v, err := s.schemaVersion(ctx, tx)
	switch {
	case err != nil:
		return 0, false, err
	case v > len(s.migrations):
		return v, false, &SchemaError{Location: s.Location(), Have: v, Want: len(s.migrations)}
	case v == len(s.migrations):
		return v, true, nil
	}
	if err := s.migrate(ctx, tx, v); err != nil {
		return v, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return v, false, s.dbErr("commit the schema migration to version "+strconv.Itoa(v+1), err)
	}
	return v, false, nil
}
