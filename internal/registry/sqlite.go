package registry

// The embedded registry: a SQLite 3 database file through the pure-Go
// driver modernc.org/sqlite (CGO_ENABLED=0 builds keep working), in WAL
// mode with a full sync on every commit. usmp-psk creates the file itself,
// 0600 and exclusively; SQLite gives its -wal and -shm files the database
// file's mode. The file holds stored keys in clear unless $USMP_REGISTRY_KEY
// seals them, so it is a secret file: the location rules of secfile (no
// directory that others can write, the git guard for the file and its
// -wal and -shm) apply before it is created and before a write stores keys.

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/usmp/usmp-psk/internal/secfile"
)

// sqliteHeader starts every SQLite 3 database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// sqliteEngine is a registry in a SQLite file.
type sqliteEngine struct {
	path        string // as given, for messages
	file        string // the path with symbolic links resolved once
	lockTimeout time.Duration
	secOpts     secfile.Options
	warn        func(string)

	once sync.Once
	db   *sql.DB
	err  error
}

func newSQLiteEngine(path string, lockTimeout time.Duration, allowUnignored bool, warn func(string)) *sqliteEngine {
	return &sqliteEngine{path: path, file: path, lockTimeout: lockTimeout, warn: warn,
		secOpts: secfile.Options{AllowUnignored: allowUnignored, Warn: warn}}
}

func (e *sqliteEngine) location() string { return e.path }

// Paths returns the database file and its -wal and -shm files: what a
// backup copies (with the registry quiet) and what the git guard checks.
func (e *sqliteEngine) Paths() []string {
	return []string{e.file, e.file + "-wal", e.file + "-shm"}
}

func (e *sqliteEngine) missing() error {
	return &RegistryError{Location: e.path, Err: ErrNoRegistry,
		Hint: "create it with 'usmp-psk registry init' (or let 'registry add', 'provision' or 'batch' create it), or point --registry (or $USMP_PSK_REGISTRY) at an existing one"}
}

// resolve follows a symbolic link at the registry path once, so that the
// database, its -wal and -shm files and every check name the same file.
func (e *sqliteEngine) resolve() error {
	fi, err := os.Lstat(e.path)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return nil
	}
	target, err := filepath.EvalSymlinks(e.path)
	if err != nil {
		return &RegistryError{Location: e.path, Err: ErrNoRegistry, Hint: "it is a symbolic link whose target is missing; point --registry at the database itself"}
	}
	e.file = target
	return nil
}

// prepareWrite applies the location rules before a write that creates the
// database or may store keys in it.
func (e *sqliteEngine) prepareWrite(create, storesKeys bool) error {
	if err := e.resolve(); err != nil {
		return err
	}
	_, statErr := os.Stat(e.file)
	missing := errors.Is(statErr, fs.ErrNotExist)
	if missing && !create {
		return e.missing()
	}
	e.removeStaleStages(filepath.Dir(e.file), filepath.Base(e.file))
	if !missing && !storesKeys {
		return nil
	}
	// One rule covers the database, its -wal and -shm and its staged
	// copies: the guard's hint suggests it, not the database's name alone.
	opts := e.secOpts
	opts.IgnorePattern = filepath.Base(e.file) + "*"
	if err := secfile.CheckMkdir(e.file, opts); err != nil {
		return err
	}
	names := []string{filepath.Base(e.file), filepath.Base(e.file) + "-wal", filepath.Base(e.file) + "-shm"}
	opts.Warn = nil // CheckMkdir warned about the file already
	return secfile.GitGuardAll(filepath.Dir(e.file), names, opts)
}

// conn opens a connection to the existing database (a new one is created
// by stage).
func (e *sqliteEngine) conn(ctx context.Context, write, _ bool) (*sql.Conn, error) {
	if err := e.resolve(); err != nil {
		return nil, err
	}
	if err := e.checkFile(write); err != nil {
		return nil, err
	}
	e.once.Do(func() { e.db, e.err = sql.Open("sqlite", e.dsnOf(e.file)) })
	if e.err != nil {
		return nil, e.dbErr("open", e.err)
	}
	c, err := e.db.Conn(ctx)
	if err != nil {
		return nil, e.dbErr("open", err)
	}
	return c, nil
}

// dsnOf is the driver's name of the database at path: the file (which
// must exist: mode=rw), the writer's BEGIN IMMEDIATE, the lock timeout,
// WAL with a full sync, and the history's reference to its device
// enforced.
func (e *sqliteEngine) dsnOf(path string) string {
	u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath()}
	q := url.Values{}
	q.Set("mode", "rw")
	q.Set("_txlock", "immediate")
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(max(e.lockTimeout.Milliseconds(), 1), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	// A batch chunk touches thousands of pages: a larger cache and reads
	// through mmap keep its cost flat as the registry grows.
	q.Add("_pragma", "cache_size(-65536)")
	q.Add("_pragma", "mmap_size(268435456)")
	u.RawQuery = q.Encode()
	return u.String()
}

// checkFile makes sure the file is a SQLite database (an empty file is an
// empty registry); a writer makes its mode 0600 again.
func (e *sqliteEngine) checkFile(write bool) error {
	f, err := os.OpenFile(e.file, os.O_RDONLY|nonBlock, 0) // a FIFO: no wait for a writer, refused below
	if errors.Is(err, fs.ErrNotExist) {
		return e.missing()
	}
	if err != nil {
		return fmt.Errorf("registry %s: %w", e.path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		// A device (/dev/null), a FIFO or a directory is no database, and
		// must not be made 0600 by fixMode.
		return &CorruptError{Path: e.path, Msg: "not a usmp-psk registry (not a regular file)"}
	}
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, head)
	switch {
	case n == 0:
	case err == nil && bytes.Equal(head, sqliteHeader):
	case head[0] == '{':
		return &CorruptError{Path: e.path, Msg: "not a usmp-psk registry (a JSON file; a registry of an earlier usmp-psk is moved into a database with 'usmp-psk registry migrate')"}
	default:
		return &CorruptError{Path: e.path, Msg: "not a usmp-psk registry (not a SQLite database)"}
	}
	if err := e.checkCompanions(); err != nil {
		return err
	}
	if !write {
		return nil
	}
	return e.fixMode(f)
}

// checkCompanions refuses a -wal or -shm that is not a regular file: SQLite
// would read and write through a planted symbolic link, and fixMode would
// chmod its target (issue 13 item 7).
func (e *sqliteEngine) checkCompanions() error {
	for _, p := range e.Paths()[1:] {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("registry %s: %w", e.path, err)
		}
		if !fi.Mode().IsRegular() {
			return &CorruptError{Path: e.path, Msg: fmt.Sprintf("%s is not a regular file (%v): refusing to use the registry through it; remove it if nothing else put it there", p, fi.Mode().Type())}
		}
	}
	return nil
}

// fixMode makes a database that group or others can read 0600 again, with
// its -wal and -shm, saying so: it may hold keys.
func (e *sqliteEngine) fixMode(f *os.File) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return err
	}
	e.warnf("registry %s was mode %04o; made it 0600 (it may hold keys)", e.path, fi.Mode().Perm())
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("registry %s: %w", e.path, err)
	}
	for _, p := range e.Paths()[1:] {
		if err := chmodNoFollow(p); err != nil {
			return fmt.Errorf("registry %s: %w", e.path, err)
		}
	}
	return nil
}

func (e *sqliteEngine) warnf(format string, args ...any) {
	if e.warn != nil {
		e.warn(fmt.Sprintf(format, args...))
	}
}

// dbErr explains a driver error. SQLite's messages name no data.
func (e *sqliteEngine) dbErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_NOTADB {
		return &CorruptError{Path: e.path, Msg: "not a usmp-psk registry (not a SQLite database)"}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("registry %s: %s: %w", e.path, what, err)
}

// timedOut: SQLITE_BUSY once the busy timeout has passed.
func (e *sqliteEngine) timedOut(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

func (e *sqliteEngine) close() error {
	if e.db == nil {
		return nil
	}
	return e.db.Close()
}

// ErrLegacyRegistry means the registry is a JSON file of an earlier usmp-psk.
var ErrLegacyRegistry = errors.New("a legacy JSON registry")

// legacyHint says how to move a JSON registry into a database.
func legacyHint(path string) string {
	to := strings.TrimSuffix(path, ".json") + ".db"
	return "registries are SQLite databases now: move it with 'usmp-psk registry migrate --registry " + path + " --to " + to + "', then use " + to
}

// IsLegacyPath reports whether a registry location names a JSON file.
func IsLegacyPath(location string) bool {
	return strings.HasSuffix(strings.ToLower(location), ".json")
}

// staged is the first write of a new registry: a database in a file of its
// own beside the registry's path, published with a hard link (which fails
// when the path exists) once the write committed.
type staged struct {
	e    *sqliteEngine
	path string
	db   *sql.DB
	conn *sql.Conn
}

// stagePrefix follows the database's name in the names of staged
// registries (base + stagePrefix + random), so that the ignore rule the
// database needs ("usmp-registry.db*") covers them too.
const stagePrefix = ".new-"

// stage returns a new, empty database beside the registry (nil when the
// registry exists). Files of stagings that were killed are removed once
// they are an hour old.
func (e *sqliteEngine) stage(ctx context.Context) (*staged, error) {
	if err := e.resolve(); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(e.file); !errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	dir, base := filepath.Dir(e.file), filepath.Base(e.file)
	if err := secfile.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("registry directory: %w", err)
	}
	e.removeStaleStages(dir, base)
	f, err := os.CreateTemp(dir, base+stagePrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("create registry %s: %w", e.path, err)
	}
	path := f.Name()
	err = f.Chmod(0o600)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	st := &staged{e: e, path: path}
	if err != nil {
		st.discard()
		return nil, fmt.Errorf("create registry %s: %w", e.path, err)
	}
	st.db, err = sql.Open("sqlite", e.dsnOf(path))
	if err == nil {
		st.conn, err = st.db.Conn(ctx)
	}
	if err != nil {
		st.discard()
		return nil, e.dbErr("create", err)
	}
	return st, nil
}

// removeStaleStages removes the files of stagings older than an hour: a
// writer killed while creating the registry.
func (e *sqliteEngine) removeStaleStages(dir, base string) {
	old, _ := filepath.Glob(filepath.Join(dir, globEscape(base)+stagePrefix+"*"))
	for _, p := range old {
		if fi, err := os.Lstat(p); err == nil && time.Since(fi.ModTime()) > time.Hour {
			_ = os.Remove(p)
		}
	}
}

func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`).Replace(s)
}

// publish puts the committed registry in place. lost reports that another
// writer created the registry first (this one is discarded).
func (st *staged) publish() (lost bool, err error) {
	// Closing the last connection (writeOn closed the write's) checkpoints
	// the WAL into the file and removes the -wal and -shm files.
	if err := st.db.Close(); err != nil {
		st.discard()
		return false, st.e.dbErr("create", err)
	}
	if err := syncFile(st.path); err != nil {
		st.discard()
		return false, fmt.Errorf("create registry %s: %w", st.e.path, err)
	}
	err = os.Link(st.path, st.e.file)
	if errors.Is(err, fs.ErrExist) {
		st.discard()
		return true, nil
	}
	if err != nil {
		st.discard()
		return false, fmt.Errorf("create registry %s: %w", st.e.path, err)
	}
	_ = os.Remove(st.path)
	return false, secfile.SyncDir(filepath.Dir(st.e.file))
}

// discard removes the staged files.
func (st *staged) discard() {
	if st.conn != nil {
		_ = st.conn.Close()
	}
	if st.db != nil {
		_ = st.db.Close()
	}
	for _, p := range []string{st.path, st.path + "-wal", st.path + "-shm", st.path + "-journal"} {
		_ = os.Remove(p)
	}
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
