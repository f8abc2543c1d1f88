package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/gofrs/flock"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/secfile"
)

// DefaultLockTimeout is how long a writer waits for the lock by default.
const DefaultLockTimeout = 60 * time.Second

// lockRetry is how often a waiting writer tries the lock again.
const lockRetry = 10 * time.Millisecond

// maxRegistryBytes bounds what is read as a registry file.
const maxRegistryBytes = 1 << 30

// FileOptions configures a FileStore.
type FileOptions struct {
	// LockTimeout is how long Update waits for the lock (--lock-timeout);
	// zero means DefaultLockTimeout.
	LockTimeout time.Duration
	// AllowUnignored writes a registry holding keys inside a git work tree
	// that does not ignore it (--allow-unignored), with a loud warning.
	AllowUnignored bool
	// Warn receives warnings; nil drops them.
	Warn func(msg string)
}

// FileStore keeps a registry in one JSON file (see codec.go for the layout),
// its audit log next to it (AuditPath) and serialises writers with an
// exclusive lock on "<path>.lock" (R17: a separate file, since the data
// file's inode changes with every rename).
//
// Every write goes through secfile: a 0600 temporary file in the same
// directory, fsync, rename, fsync of the directory (R5, R16), so a crash at
// any step leaves the old or the new registry; stale temporary files are
// removed under the lock. A registry that holds keys (random or imported
// devices) is a secret file and gets the git guard (R19); a registry of
// only derived devices holds no secret (design §5) and may live in git.
type FileStore struct {
	path string
	opts FileOptions
}

// NewFileStore returns the store of the registry file at path. It does no
// I/O.
func NewFileStore(path string, opts FileOptions) *FileStore {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	return &FileStore{path: path, opts: opts}
}

// Location returns the registry path.
func (s *FileStore) Location() string { return s.path }

// Path returns the registry path.
func (s *FileStore) Path() string { return s.path }

// LockPath returns the path of the lock file.
func (s *FileStore) LockPath() string { return s.path + ".lock" }

// AuditPath returns the path of the audit log.
func (s *FileStore) AuditPath() string { return AuditPath(s.path) }

func (s *FileStore) warn(msg string) {
	if s.opts.Warn != nil {
		s.opts.Warn(msg)
	}
}

func (s *FileStore) missing() error {
	return &RegistryError{Location: s.path, Err: ErrNoRegistry,
		Hint: "create it with 'usmp-psk registry init', or point --registry (or $USMP_PSK_REGISTRY) at an existing one"}
}

// readFile reads the registry file; (nil, nil, nil) when it does not exist.
// The data holds key hex: the caller wipes it.
func (s *FileStore) readFile() ([]byte, fs.FileInfo, error) {
	f, err := os.Open(s.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("open registry: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("registry %s: %w", s.path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, &CorruptError{Path: s.path, Msg: "not a regular file"}
	}
	if fi.Size() > maxRegistryBytes {
		return nil, nil, &CorruptError{Path: s.path, Msg: "larger than 1 GiB"}
	}
	data := make([]byte, fi.Size())
	n, err := io.ReadFull(f, data)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		psk.Wipe(data)
		return nil, nil, fmt.Errorf("read registry %s: %w", s.path, err)
	}
	return data[:n], fi, nil
}

// load reads and decodes the registry; (nil, nil) when it does not exist.
func (s *FileStore) load() (*regData, error) {
	data, fi, err := s.readFile()
	if err != nil || data == nil && fi == nil {
		return nil, err
	}
	reg, problems := decodeRegistry(s.path, data)
	psk.Wipe(data)
	if len(problems) > 0 {
		reg.destroy()
		p := problems[0]
		p.More += len(problems) - 1
		return nil, p
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 && reg.hasKeys() {
		s.warn(fmt.Sprintf("registry %s holds key bytes but has mode %04o: group or others can read it (the next change rewrites it as 0600; chmod 600 it now)", s.path, fi.Mode().Perm()))
	}
	return reg, nil
}

// View implements Store. It reads without the lock: writers replace the
// file atomically, so a reader sees the old or the new registry.
func (s *FileStore) View(ctx context.Context, fn func(Reader) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	reg, err := s.load()
	if err != nil {
		return err
	}
	if reg == nil {
		return s.missing()
	}
	defer reg.destroy()
	return fn(&fileReader{reg: reg})
}

// lock takes the writer lock, waiting up to the lock timeout, and returns
// its release function.
//
// The lock file is created when missing and never removed, not even by a
// writer that created it and then failed: flock(1) users (docs/registry.md
// §4) and waiting writers hold the lock on the file's inode, and a removed
// file would let the next writer lock a new one alongside them. It holds no
// data.
func (s *FileStore) lock(ctx context.Context) (unlock func(), err error) {
	lp := s.LockPath()
	f, err := os.OpenFile(lp, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("registry lock: %w", err)
	}
	// R5: the lock file is 0600 too, also when someone made it otherwise.
	if fi, err := f.Stat(); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		_ = f.Chmod(0o600)
	}
	_ = f.Close()

	fl := flock.New(lp)
	lctx, cancel := context.WithTimeout(ctx, s.opts.LockTimeout)
	defer cancel()
	start := time.Now()
	ok, err := fl.TryLockContext(lctx, lockRetry)
	if !ok {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			return nil, &LockedError{LockPath: lp, Waited: time.Since(start).Round(time.Millisecond)}
		}
		return nil, fmt.Errorf("registry lock %s: %w", lp, err)
	}
	return func() { _ = fl.Unlock() }, nil
}

// secOpts are the secfile options of the next write: the git guard and its
// warnings only when the registry holds keys.
func (s *FileStore) secOpts(hasKeys, replace bool, warn bool) secfile.Options {
	o := secfile.Options{Replace: replace, AllowUnignored: s.opts.AllowUnignored}
	if warn {
		o.Warn = s.opts.Warn
	}
	if !hasKeys {
		// Not a secret file (design §5): no git guard, and no warning.
		o.AllowUnignored, o.Warn = true, nil
	}
	return o
}

// preCheck applies the location rules (R7, R19) before the writer creates
// anything — directories, lock file, audit log, registry. A directory that
// group or others can write (or, when the registry's directory is still to
// be created, the existing one it goes under: secfile.CheckMkdir) is
// refused whatever the registry holds. The git guard
// concerns only a registry that holds keys: when the write is known to
// store keys, its refusal is returned at once; otherwise it comes back as
// guard, which Update returns if the transaction leaves keys in the
// registry. secfile.WriteFile applies the rules once more, with their
// warnings, when it writes.
func (s *FileStore) preCheck(keys bool) (guard, err error) {
	strict := secfile.CheckMkdir(s.path, s.secOpts(true, false, false))
	var ue *secfile.UnsafeError
	if strict == nil || keys || !errors.As(strict, &ue) {
		return nil, strict
	}
	if err := secfile.CheckMkdir(s.path, s.secOpts(false, false, false)); err != nil {
		return nil, err
	}
	return strict, nil
}

// Update implements Store.
//
// Nothing is lost when it fails (design §7): a writer that is refused or
// fails before the registry is replaced removes the audit log it created
// and the audit entries it appended. Directories and the lock file stay
// once created (another writer may be using them; see lock): the location
// checks that can refuse come before them (preCheck). Only a writer killed
// between the audit append and the rename leaves entries for a change that
// did not land (uncommitted, see VerifyAudit). Entries of a delivery
// (opts.Deliver: an export's keys) are the exception: they are durable
// before the delivery, and once it happened a failed registry write keeps
// them (as uncommitted) rather than hide it.
func (s *FileStore) Update(ctx context.Context, opts UpdateOptions, fn func(Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !opts.Create {
		if _, serr := os.Stat(s.path); errors.Is(serr, fs.ErrNotExist) {
			return s.missing()
		}
	}
	keys := opts.StoresKeys
	if opts.StoresKeysIfCreated && !keys {
		_, serr := os.Lstat(s.path)
		keys = errors.Is(serr, fs.ErrNotExist)
	}
	// Every check that can refuse comes before the first directory or file
	// is created: nothing is removed afterwards (a directory or lock file
	// that another writer may be using already).
	guard, err := s.preCheck(keys)
	if err != nil {
		return err
	}
	if opts.Create {
		if err := secfile.MkdirAll(filepath.Dir(s.path)); err != nil {
			return fmt.Errorf("registry directory: %w", err)
		}
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()

	// R16: temporary files of an interrupted write go before anything else.
	if err := secfile.RemoveStaleTemps(s.path); err != nil {
		return fmt.Errorf("remove stale temporary files of %s: %w", s.path, err)
	}
	reg, err := s.load()
	if err != nil {
		return err
	}
	created := reg == nil
	switch {
	case !created && opts.Exclusive:
		reg.destroy()
		return &RegistryError{Location: s.path, Err: ErrRegistryExists, Hint: "it is kept as it is; use it, or choose another --registry path"}
	case created && !opts.Create:
		return s.missing()
	case created:
		reg = &regData{}
	}
	defer reg.destroy()

	alog, err := openAuditLog(s.AuditPath(), reg.head, s.opts.Warn)
	if err != nil {
		return err
	}
	// The write path closes the log itself, before the registry is written
	// (below); this closes it on the other paths. A Close error is returned
	// unless an earlier error is.
	defer func() {
		if cerr := alog.close(); cerr != nil && err == nil {
			err = fmt.Errorf("close audit log %s: %w", alog.path, cerr)
		}
	}()

	tx := &fileTx{fileReader: fileReader{reg: reg}, created: created}
	if err := fn(tx); err != nil {
		return err
	}
	if !tx.dirty && len(tx.events) == 0 && !created && opts.Deliver == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	hasKeys := reg.hasKeys()
	// Refuse a forbidden location before the log records anything.
	if hasKeys && guard != nil {
		return guard
	}
	// The registry as it is, to tell after a failed write whether the
	// rename happened.
	before, beforeErr := fileID(s.path)
	// undo removes the entries appended for a write that failed before the
	// registry was replaced.
	delivered := false
	undo := func(err error) error {
		if delivered {
			// The entries record a delivery that happened (an export's
			// keys): they stay, reported as uncommitted.
			return err
		}
		if rerr := alog.rollback(); rerr != nil {
			return &AuditRollbackError{Path: alog.path, Entries: len(tx.events), Err: err, RollbackErr: rerr}
		}
		return err
	}
	// The log first, then the registry: a crash in between leaves entries
	// for a change that did not land (reported by VerifyAudit as
	// uncommitted), never a change without its entries.
	head, err := alog.append(tx.events)
	if err != nil {
		return undo(fmt.Errorf("append to audit log %s: %w", alog.path, err))
	}
	// A Close error fails the update before the registry is written.
	if err := alog.close(); err != nil {
		return undo(fmt.Errorf("close audit log %s: %w", alog.path, err))
	}
	if alog.created {
		if err := secfile.SyncDir(filepath.Dir(alog.path)); err != nil {
			return undo(err)
		}
	}
	// The entries are durable: now what they record may happen.
	if opts.Deliver != nil {
		if err := opts.Deliver(); err != nil {
			return undo(err)
		}
		delivered = true
	}
	reg.head = head
	buf := encodeRegistry(make([]byte, 0, 256+len(reg.recs)*200), reg)
	defer psk.Wipe(buf)
	if err := secfile.WriteFile(s.path, buf, s.secOpts(hasKeys, !created, true)); err != nil {
		if !unchanged(s.path, before, beforeErr) {
			// Renamed (or it cannot be told), but a later step — the
			// directory sync — failed: the registry and the log agree, the
			// write may not be durable. Nothing is undone.
			return &CommittedError{Location: s.path, Err: err}
		}
		return undo(err)
	}
	return nil
}

// unchanged reports that the registry at path is still the file before
// described (or still missing): a failed write did not get to the rename.
// When that cannot be told, it reports false, and the audit entries stay.
func unchanged(path string, before fs.FileInfo, beforeErr error) bool {
	now, err := fileID(path)
	switch {
	case beforeErr == nil && err == nil:
		return os.SameFile(before, now)
	case errors.Is(beforeErr, fs.ErrNotExist):
		return errors.Is(err, fs.ErrNotExist)
	}
	return false
}

// fileID describes the file at path now, for os.SameFile, from an open
// handle. On Windows a FileInfo from os.Stat or os.Lstat does not hold the
// file's identity: SameFile loads it lazily, from the path, when it is
// called — so a "before" taken that way would name whatever file is at the
// path after the rename, and every comparison would say "unchanged". File.Stat
// fills it in from the handle at once (GetFileInformationByHandle); on Unix
// both ways give device and inode at once.
func fileID(path string) (fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// Check implements Store.
func (s *FileStore) Check(ctx context.Context, fn func(Reader) error) ([]Finding, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, fi, err := s.readFile()
	var ce *CorruptError
	if errors.As(err, &ce) {
		return []Finding{{Problem: ce.Msg}}, nil
	}
	if err != nil {
		return nil, err
	}
	if data == nil && fi == nil {
		return nil, s.missing()
	}
	reg, problems := decodeRegistry(s.path, data)
	psk.Wipe(data)
	var findings []Finding
	for _, p := range problems {
		findings = append(findings, Finding{Device: p.Device, Line: p.Line, Field: p.Field, Problem: p.Msg})
		if p.More > 0 {
			findings = append(findings, Finding{Problem: strconv.Itoa(p.More) + " more problems not listed"})
		}
	}
	if reg == nil {
		return findings, nil
	}
	defer reg.destroy()
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 && reg.hasKeys() {
		findings = append(findings, Finding{Problem: fmt.Sprintf("the file holds key bytes but has mode %04o: group or others can read it (chmod 600 it)", fi.Mode().Perm())})
	}
	if _, err := s.verifyAudit(reg.head); err != nil {
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

// VerifyAudit implements Store: the chain must be intact and reach the
// entry the registry recorded with the same hash. It reads without the
// lock: a writer appends to the log before it replaces the registry, so a
// concurrent write shows at most as uncommitted entries.
func (s *FileStore) VerifyAudit(ctx context.Context) (*AuditReport, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	reg, err := s.load()
	if err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, s.missing()
	}
	reg.destroy()
	return s.verifyAudit(reg.head)
}

func (s *FileStore) verifyAudit(head AuditHead) (*AuditReport, error) {
	path := s.AuditPath()
	if head.Seq == 0 {
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			return &AuditReport{Path: path}, nil
		}
	}
	rep, at, err := verifyAudit(path, head.Seq, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case head.Seq > rep.Entries:
		return nil, &AuditError{Path: path, Line: int(rep.Entries), Msg: "the log ends at entry " + itoa(int(rep.Entries)) + " but the registry records entry " + itoa(int(head.Seq)) + ": the log was truncated"}
	case head.Seq > 0 && at != head.Hash:
		return nil, &AuditError{Path: path, Line: int(head.Seq), Msg: "this entry is not the one the registry records: the log was rewritten"}
	}
	rep.Uncommitted = rep.Entries - head.Seq
	return rep, nil
}

// fileReader implements Reader over a decoded registry.
type fileReader struct{ reg *regData }

func (r *fileReader) Get(id string) (*Record, bool) {
	i, ok := r.reg.find(id)
	if !ok {
		return nil, false
	}
	return r.reg.recs[i], true
}

func (r *fileReader) Len() int { return len(r.reg.recs) }

func (r *fileReader) Range(fn func(*Record) bool) {
	for _, rec := range r.reg.recs {
		if !fn(rec) {
			return
		}
	}
}

// fileTx implements Tx.
type fileTx struct {
	fileReader
	created bool
	dirty   bool
	events  []AuditEvent
}

func (t *fileTx) Put(rec *Record) error {
	if field, msg := rec.validate(); msg != "" {
		id := ""
		if psk.ValidateDeviceID(rec.ID) == nil {
			id = rec.ID
		}
		return fmt.Errorf("registry: refusing to store device %q: %s: %s", id, field, msg)
	}
	i, found := t.reg.find(rec.ID)
	if found {
		if old := t.reg.recs[i]; old != rec {
			old.Destroy()
		}
		t.reg.recs[i] = rec
	} else {
		t.reg.recs = append(t.reg.recs, nil)
		copy(t.reg.recs[i+1:], t.reg.recs[i:])
		t.reg.recs[i] = rec
	}
	t.dirty = true
	return nil
}

func (t *fileTx) Log(ev AuditEvent) { t.events = append(t.events, ev) }

func (t *fileTx) Created() bool { return t.created }
