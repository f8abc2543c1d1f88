package registry

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/usmp/usmp-psk/internal/psk"
)

// DefaultPath is the registry when none is configured (design §5): a
// SQLite database in the working directory.
const DefaultPath = "./usmp-registry.db"

// DefaultLockTimeout is how long a writer waits for another by default.
const DefaultLockTimeout = 60 * time.Second

// Options configures a Registry. Every field is optional.
type Options struct {
	// LockTimeout is how long a writer waits for another (--lock-timeout);
	// zero means DefaultLockTimeout.
	LockTimeout time.Duration
	// AllowUnignored lets a SQLite registry be written inside a git work
	// tree that does not ignore it (--allow-unignored).
	AllowUnignored bool
	// Now is the clock (default time.Now). Times are stored in UTC, whole
	// seconds.
	Now func() time.Time
	// Rand is the source of random keys (default crypto/rand.Reader).
	Rand io.Reader
	// Getenv reads the CI job variables for the audit actor (default
	// os.Getenv). It is never asked for a secret.
	Getenv func(string) string
	// User returns the OS user name for the audit actor (default: the
	// current account, else $USER).
	User func() string
	// Warn receives warnings (short imported keys, a database file others
	// could read); nil drops them.
	Warn func(msg string)
	// OnCreate is called after a commit that created the registry (commands
	// that record devices create a missing registry and say so on stderr).
	OnCreate func(location string)
	// RegistryKey returns the value of $USMP_REGISTRY_KEY, the key that
	// seals stored keys (default os.LookupEnv). The CLI reads the variable
	// once at start-up and removes it from the environment, as it does the
	// master secret.
	RegistryKey func() (string, bool)
}

// Registry is the device registry the commands use. It is safe for
// concurrent use; writers in other processes wait for each other in the
// database. Close it when done.
type Registry struct {
	st       *store
	nowFn    func() time.Time
	rand     io.Reader
	getenv   func(string) string
	user     func() string
	warnFn   func(string)
	onCreate func(string)

	actorOnce sync.Once
	actorStr  string
}

// registryFlag names the registry's location in errors, as the flag
// that gives it.
const registryFlag = "--registry"

// Open returns the registry at location: a postgres:// (or postgresql://,
// in any case) URL is a PostgreSQL registry (the URL may not hold a
// password), any other scheme:// URL is refused, anything else is the path
// of a SQLite database. A path ending in .json is a legacy registry, which
// only Migrate reads. Open does no I/O.
func Open(location string, opts Options) (*Registry, error) {
	switch {
	case location == "":
		return nil, &psk.InputError{Source: registryFlag, Msg: "empty registry path"}
	case looksLikeKeywordDSN(location):
		return nil, &psk.InputError{Source: registryFlag, Msg: "a keyword connection string (host=… user=…) is not a registry location: give a postgres://[user@]host[:port]/database URL, and the password in $PGPASSWORD or ~/.pgpass\n" + urlHint}
	case urlScheme(location) != "" && !IsPostgresURL(location):
		// "pg://u:pw@h/db" or "mysql://…" would otherwise be a directory
		// tree of that name, the password in it (issue 13 item 11).
		return nil, unknownSchemeError(location)
	case IsLegacyPath(location):
		return nil, &RegistryError{Location: location, Err: ErrLegacyRegistry, Hint: legacyHint(location)}
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	key, err := registryKey(opts)
	if err != nil {
		return nil, err
	}
	defer key.Destroy()
	st := &store{lockTimeout: opts.LockTimeout, warn: opts.Warn}
	if key != nil {
		if st.sealer, err = newSealer(key); err != nil {
			return nil, err
		}
	}
	if IsPostgresURL(location) {
		if err := checkPGURL(location); err != nil {
			return nil, err
		}
		st.eng, st.dia = &pgEngine{url: normalizePGURL(location)}, postgresDialect
	} else {
		st.eng = newSQLiteEngine(location, opts.LockTimeout, opts.AllowUnignored, opts.Warn)
		st.dia, st.plainKeys = sqliteDialect, true
	}
	return newRegistry(st, opts), nil
}

// registryKey reads $USMP_REGISTRY_KEY through opts.RegistryKey (nil when
// it is not set).
func registryKey(opts Options) (*psk.Secret, error) {
	lookup := opts.RegistryKey
	if lookup == nil {
		lookup = func() (string, bool) { return os.LookupEnv(RegistryKeyEnv) }
	}
	v, ok := lookup()
	if !ok {
		return nil, nil
	}
	return ParseRegistryKey("$"+RegistryKeyEnv, v)
}

func newRegistry(st *store, opts Options) *Registry {
	r := &Registry{st: st, nowFn: opts.Now, rand: opts.Rand, getenv: opts.Getenv, user: opts.User, warnFn: opts.Warn, onCreate: opts.OnCreate}
	if r.nowFn == nil {
		r.nowFn = time.Now
	}
	if r.rand == nil {
		r.rand = rand.Reader
	}
	if r.getenv == nil {
		r.getenv = os.Getenv
	}
	return r
}

// Close releases the registry's database connections.
func (r *Registry) Close() error { return r.st.eng.close() }

// Location names the registry (its path, or its URL).
func (r *Registry) Location() string { return r.st.location() }

func (r *Registry) now() time.Time { return r.nowFn().UTC().Truncate(time.Second) }

func (r *Registry) warn(msg string) {
	if r.warnFn != nil {
		r.warnFn(msg)
	}
}

// Actor returns the audit actor of this process (see actor.go).
func (r *Registry) Actor() string {
	r.actorOnce.Do(func() {
		name := ""
		if r.user != nil {
			name = r.user()
		} else {
			name = osUserName(r.getenv)
		}
		r.actorStr = actorName(name, r.getenv)
	})
	return r.actorStr
}

// event is the audit event of an operation on rec (nil: none).
func (r *Registry) event(t time.Time, ev Event, rec *Record) AuditEvent {
	e := AuditEvent{Time: t, Event: ev, Actor: r.Actor()}
	if rec != nil {
		e.Device, e.KCV, e.Epoch, e.Source = rec.ID, rec.KCV, rec.Epoch, rec.Source
	}
	return e
}

// update runs fn in a write transaction; a registry the transaction
// creates gets its init entry first, and OnCreate after the commit.
func (r *Registry) update(ctx context.Context, o writeOpts, fn func(t *tx, now time.Time) error) error {
	created := false
	err := r.st.write(ctx, o, func(t *tx) error {
		// The time is taken in the transaction, so audit times follow seq.
		now := r.now()
		created = t.created
		if created {
			t.log(r.event(now, EventInit, nil))
		}
		return fn(t, now)
	})
	if err == nil && created && r.onCreate != nil {
		r.onCreate(r.Location())
	}
	return err
}

// Init creates an empty registry (registry init), or upgrades one of an
// older schema (upgraded is the version it had; 0 when it was created).
// It refuses a current registry (ErrRegistryExists).
func (r *Registry) Init(ctx context.Context) (upgraded int, err error) {
	err = r.st.write(ctx, writeOpts{create: true, exclusive: true}, func(t *tx) error {
		upgraded = t.upgraded
		if t.created {
			t.log(r.event(r.now(), EventInit, nil))
		}
		return nil
	})
	return upgraded, err
}

// Exists reports whether the registry exists (a nil error) or why it
// cannot be read (ErrNoRegistry when it does not exist).
func (r *Registry) Exists(ctx context.Context) error {
	return r.st.read(ctx, func(*tx) error { return nil })
}
