package registry

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
)

// Options configures a Registry. Every field is optional.
type Options struct {
	// LockTimeout is how long a writer waits for the lock (--lock-timeout);
	// zero means DefaultLockTimeout. File store only.
	LockTimeout time.Duration
	// AllowUnignored lets a registry holding keys be written inside a git
	// work tree that does not ignore it (--allow-unignored). File store only.
	AllowUnignored bool
	// Now is the clock (default time.Now). Times are stored in UTC, whole
	// seconds.
	Now func() time.Time
	// Rand is the source of random keys (default crypto/rand.Reader; R26).
	Rand io.Reader
	// Getenv reads the CI job variables for the audit actor (default
	// os.Getenv). It is never asked for a secret.
	Getenv func(string) string
	// User returns the OS user name for the audit actor (default: the
	// current account, else $USER).
	User func() string
	// Warn receives warnings (short imported keys, open file modes, an
	// interrupted audit append); nil drops them.
	Warn func(msg string)
	// OnCreate is called after a commit that created the registry (commands
	// that record devices create a missing registry and say so on stderr).
	OnCreate func(location string)
	// RegistryKey returns the value of $USMP_REGISTRY_KEY, the key that
	// seals stored keys in a PostgreSQL registry (default os.LookupEnv).
	// The CLI reads the variable once at start-up and removes it from the
	// environment, as it does the master secret (R4).
	RegistryKey func() (string, bool)
}

// Registry is the device registry the commands use, on top of a Store. It
// is safe for concurrent use; writers in other processes are serialised by
// the store.
type Registry struct {
	store    Store
	nowFn    func() time.Time
	rand     io.Reader
	getenv   func(string) string
	user     func() string
	warnFn   func(string)
	onCreate func(string)

	actorOnce sync.Once
	actorStr  string
}

// Open returns the registry at location: a postgres:// (or postgresql://)
// URL is a PostgreSQL registry (PGStore; the URL may not hold a password,
// the registry key comes from $USMP_REGISTRY_KEY), anything else a file
// path (the embedded JSON file store). Open does no I/O.
func Open(location string, opts Options) (*Registry, error) {
	switch {
	case location == "":
		return nil, &psk.InputError{Source: "--registry", Msg: "empty registry path"}
	case strings.HasPrefix(location, "postgres://"), strings.HasPrefix(location, "postgresql://"):
		return openPostgres(location, opts)
	}
	st := NewFileStore(location, FileOptions{LockTimeout: opts.LockTimeout, AllowUnignored: opts.AllowUnignored, Warn: opts.Warn})
	return New(st, opts), nil
}

// New returns a Registry over store.
func New(store Store, opts Options) *Registry {
	r := &Registry{store: store, nowFn: opts.Now, rand: opts.Rand, getenv: opts.Getenv, user: opts.User, warnFn: opts.Warn, onCreate: opts.OnCreate}
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

// Store returns the registry's store.
func (r *Registry) Store() Store { return r.store }

// Location names the registry (its path).
func (r *Registry) Location() string { return r.store.Location() }

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

func (r *Registry) event(t time.Time, ev Event, rec *Record) AuditEvent {
	e := AuditEvent{Time: t, Event: ev, Actor: r.Actor()}
	if rec != nil {
		e.Device, e.KCV, e.Epoch = rec.ID, rec.KCV, rec.Epoch
	}
	return e
}

// update runs fn in a transaction; a registry the transaction creates gets
// its init entry first, and OnCreate after the commit.
func (r *Registry) update(ctx context.Context, opts UpdateOptions, fn func(tx Tx, now time.Time) error) error {
	created := false
	err := r.store.Update(ctx, opts, func(tx Tx) error {
		// The time is taken under the lock, so audit times follow seq.
		now := r.now()
		created = tx.Created()
		if created {
			tx.Log(r.event(now, EventInit, nil))
		}
		return fn(tx, now)
	})
	if err == nil && created && r.onCreate != nil {
		r.onCreate(r.store.Location())
	}
	return err
}

// Init creates an empty registry (registry init). It refuses to touch an
// existing one (ErrRegistryExists).
func (r *Registry) Init(ctx context.Context) error {
	return r.store.Update(ctx, UpdateOptions{Create: true, Exclusive: true}, func(tx Tx) error {
		tx.Log(r.event(r.now(), EventInit, nil))
		return nil
	})
}

// KeySpec says how a new device gets its key. Build it with Derived, Random
// or Imported.
type KeySpec struct {
	Source Source
	Master *psk.Secret // SourceDerived: used only to compute the KCV (and the returned key)
	Epoch  uint32      // SourceDerived
	Key    *psk.Secret // SourceImported: the key (copied; the caller keeps ownership)
	Bytes  int         // SourceRandom: key length, default psk.DefaultBytes
}

// Derived is a key derived from master at epoch (registry add --derive
// [--epoch N]). The record holds no key bytes.
func Derived(master *psk.Secret, epoch uint32) KeySpec {
	return KeySpec{Source: SourceDerived, Master: master, Epoch: epoch}
}

// Random is a new random key of psk.DefaultBytes bytes (registry add --random).
func Random() KeySpec { return KeySpec{Source: SourceRandom} }

// Imported is an existing key (registry add --psk-file FILE). Placeholders
// of the USMP documentation are refused; keys shorter than 32 bytes are
// accepted with a warning (design §3).
func Imported(key *psk.Secret) KeySpec { return KeySpec{Source: SourceImported, Key: key} }

// AddRequest is one device to record.
type AddRequest struct {
	ID  string
	Key KeySpec
}

// AddOptions controls AddMany.
type AddOptions struct {
	// Event is the audit event of each device (default EventAdd; provision
	// uses EventAdd, batch EventBatch).
	Event Event
	// KeepExisting accepts a device that is already active with the same
	// source (and epoch, for derived; and key, for imported): it is
	// returned with Existing set and its key, unchanged — so a batch can be
	// re-run. A device that exists otherwise is an error.
	KeepExisting bool
}

// AddResult is a recorded device and its key.
type AddResult struct {
	Device Device
	// Key is the device's key, a copy the caller owns and destroys.
	Key *psk.Secret
	// Existing reports a device that was already recorded (KeepExisting).
	Existing bool
}

// Add records a new device (registry add). An existing device is an error
// wrapping ErrDeviceExists. The registry is created when missing.
func (r *Registry) Add(ctx context.Context, id string, spec KeySpec) (*AddResult, error) {
	res, err := r.AddMany(ctx, []AddRequest{{ID: id, Key: spec}}, AddOptions{})
	if err != nil {
		// A *CommittedError comes with the results: the device is recorded,
		// and the error says so.
		for _, a := range res {
			a.Key.Destroy()
		}
		return nil, err
	}
	return &res[0], nil
}

// AddMany records several devices in one transaction (provision, batch):
// all are recorded, or none. The registry is created when missing.
// A *CommittedError (the registry write failed after the rename: the
// devices are recorded) comes with the results, whose keys the caller
// destroys.
func (r *Registry) AddMany(ctx context.Context, reqs []AddRequest, opts AddOptions) ([]AddResult, error) {
	ev := opts.Event
	if ev == "" {
		ev = EventAdd
	}
	seen := make(map[string]struct{}, len(reqs))
	for _, q := range reqs {
		if err := psk.ValidateDeviceID(q.ID); err != nil {
			return nil, err
		}
		if _, dup := seen[q.ID]; dup {
			return nil, &DeviceError{ID: q.ID, Err: ErrDeviceExists, Msg: "given twice"}
		}
		seen[q.ID] = struct{}{}
		if err := r.checkSpec(q.ID, q.Key); err != nil {
			return nil, err
		}
	}
	results := make([]AddResult, 0, len(reqs))
	fail := func(err error) error {
		for _, res := range results {
			res.Key.Destroy()
		}
		results = results[:0]
		return err
	}
	stores := false
	for _, q := range reqs {
		stores = stores || q.Key.Source.Stored()
	}
	err := r.update(ctx, UpdateOptions{Create: true, StoresKeys: stores}, func(tx Tx, now time.Time) error {
		checked := map[*psk.Secret]bool{}
		for _, q := range reqs {
			if q.Key.Source == SourceDerived && !checked[q.Key.Master] {
				if err := verifyMaster(tx, q.Key.Master); err != nil {
					return fail(err)
				}
				checked[q.Key.Master] = true
			}
			if old, ok := tx.Get(q.ID); ok {
				res, err := r.existing(old, q, opts.KeepExisting)
				if err != nil {
					return fail(err)
				}
				results = append(results, *res)
				continue
			}
			key, err := r.newKey(q.ID, q.Key)
			if err != nil {
				return fail(err)
			}
			rec := &Record{Device: Device{ID: q.ID, Source: q.Key.Source, Status: StatusActive, KCV: psk.KCV(key), Created: now, Updated: now}}
			if q.Key.Source == SourceDerived {
				rec.Epoch = q.Key.Epoch
			} else {
				rec.Key = psk.CopySecret(key.Expose())
			}
			results = append(results, AddResult{Device: rec.Info(), Key: key})
			if err := tx.Put(rec); err != nil {
				return fail(err)
			}
			tx.Log(r.event(now, ev, rec))
		}
		return nil
	})
	var ce *CommittedError
	if errors.As(err, &ce) {
		// Recorded: the results stand, with the error that says so.
		return results, err
	}
	if err != nil {
		return nil, fail(err)
	}
	return results, nil
}

// checkSpec validates a key spec before any I/O.
func (r *Registry) checkSpec(id string, s KeySpec) error {
	switch s.Source {
	case SourceDerived:
		if s.Master.Len() == 0 {
			return &DeviceError{ID: id, Err: ErrNeedMaster, Msg: "a derived key needs the master secret"}
		}
	case SourceRandom:
		if s.Bytes != 0 && s.Bytes < psk.MinGeneratedBytes {
			return &psk.InputError{Source: "--bytes", Msg: "a generated key needs at least 32 bytes"}
		}
	case SourceImported:
		return r.checkImportedKey(id, s.Key)
	default:
		return fmt.Errorf("registry: unknown key source %q", s.Source)
	}
	return nil
}

// checkImportedKey refuses empty and placeholder keys and warns about short
// ones (design §3).
func (r *Registry) checkImportedKey(id string, key *psk.Secret) error {
	switch {
	case key.Len() == 0:
		return &psk.InputError{Source: "device " + id, Msg: "the key is empty"}
	case key.Len() > maxKeyBytes:
		return &psk.InputError{Source: "device " + id, Msg: "the key is longer than 4096 bytes"}
	case psk.IsPlaceholder(key.Expose()):
		return &psk.InputError{Source: "device " + id, Msg: psk.PlaceholderRule}
	case key.Len() < psk.MinGeneratedBytes:
		r.warn(fmt.Sprintf("device %q: the imported key has only %d bytes; generated keys have at least 32", id, key.Len()))
	}
	return nil
}

// maxKeyBytes bounds stored keys.
const maxKeyBytes = 4096

// newKey makes the key of a new device: derived, random or a copy of the
// imported one.
func (r *Registry) newKey(id string, s KeySpec) (*psk.Secret, error) {
	switch s.Source {
	case SourceDerived:
		return psk.Derive(s.Master, id, s.Epoch), nil
	case SourceRandom:
		n := s.Bytes
		if n == 0 {
			n = psk.DefaultBytes
		}
		k, err := psk.Generate(r.rand, n)
		if err != nil {
			return nil, fmt.Errorf("generate a key for device %q: %w", id, err)
		}
		return k, nil
	default:
		return psk.CopySecret(s.Key.Expose()), nil
	}
}

// existing handles AddMany of a device that is already recorded.
func (r *Registry) existing(old *Record, q AddRequest, keep bool) (*AddResult, error) {
	describe := fmt.Sprintf("already in the registry (%s, epoch %d, %s, KCV %s)", old.Source, old.Epoch, old.Status, old.KCV)
	if !keep {
		return nil, &DeviceError{ID: q.ID, Err: ErrDeviceExists, Msg: describe + "; use 'usmp-psk rotate' to give it a new key"}
	}
	if old.Status == StatusRevoked {
		return nil, &DeviceError{ID: q.ID, Err: ErrRevoked, Msg: "revoked; a revoked device id is not used again"}
	}
	same := old.Source == q.Key.Source
	switch {
	case !same:
	case old.Source == SourceDerived:
		same = old.Epoch == q.Key.Epoch
	case old.Source == SourceImported:
		same = old.Key.Equal(q.Key.Key)
	}
	if !same {
		return nil, &DeviceError{ID: q.ID, Err: ErrDeviceExists, Msg: describe + " with another key"}
	}
	var key *psk.Secret
	if old.Source == SourceDerived {
		key = psk.Derive(q.Key.Master, old.ID, old.Epoch)
		if kcv := psk.KCV(key); !equalKCV(kcv, old.KCV) {
			key.Destroy()
			return nil, &MismatchError{ID: old.ID, Epoch: old.Epoch, Registered: old.KCV, Derived: kcv}
		}
	} else {
		key = psk.CopySecret(old.Key.Expose())
	}
	return &AddResult{Device: old.Info(), Key: key, Existing: true}, nil
}

// verifyMaster checks master against the first active derived device of the
// registry, so that a wrong master secret is caught before it records
// anything (R14: KCVs compare keys without revealing them).
func verifyMaster(rd Reader, master *psk.Secret) error {
	var err error
	rd.Range(func(rec *Record) bool {
		if rec.Source != SourceDerived || rec.Status != StatusActive {
			return true
		}
		err = verifyDerived(rec, master)
		return false
	})
	return err
}

// verifyDerived checks that master gives the KCV rec records.
func verifyDerived(rec *Record, master *psk.Secret) error {
	key := psk.Derive(master, rec.ID, rec.Epoch)
	defer key.Destroy()
	if kcv := psk.KCV(key); !equalKCV(kcv, rec.KCV) {
		return &MismatchError{ID: rec.ID, Epoch: rec.Epoch, Registered: rec.KCV, Derived: kcv}
	}
	return nil
}

func checkReason(reason string) error {
	if len(reason) > maxReason {
		return &psk.InputError{Source: "--reason", Msg: "longer than 1024 bytes"}
	}
	return nil
}

// Revoke marks a device revoked (registry revoke). Its stored key, if any,
// is dropped from the registry: nothing may use it again. Export and the
// gateway leave it out.
func (r *Registry) Revoke(ctx context.Context, id, reason string) (Device, error) {
	if err := psk.ValidateDeviceID(id); err != nil {
		return Device{}, err
	}
	if err := checkReason(reason); err != nil {
		return Device{}, err
	}
	var out Device
	err := r.update(ctx, UpdateOptions{}, func(tx Tx, now time.Time) error {
		old, ok := tx.Get(id)
		if !ok {
			return &DeviceError{ID: id, Err: ErrUnknownDevice}
		}
		if old.Status == StatusRevoked {
			return &DeviceError{ID: id, Err: ErrRevoked, Msg: "already revoked"}
		}
		rec := old.Clone()
		rec.Key.Destroy()
		rec.Key = nil
		rec.Status, rec.Revoked, rec.RevokeReason, rec.Updated = StatusRevoked, now, reason, now
		out = rec.Info()
		if err := tx.Put(rec); err != nil {
			return err
		}
		tx.Log(r.event(now, EventRevoke, rec))
		return nil
	})
	return out, err
}

// RotateOptions controls Rotate.
type RotateOptions struct {
	// Reason is recorded with the retired KCV.
	Reason string
	// Master is the master secret; needed for derived devices.
	Master *psk.Secret
	// NewKey replaces the key with an imported one (copied).
	NewKey *psk.Secret
	// Random replaces the key with a new random one, whatever the source.
	Random bool
	// Register takes an unknown device as what the gateway assumes it is —
	// derived at epoch 0 — and rotates it to epoch 1, recording it.
	Register bool
}

// RotateResult is a rotated device, its previous KCV and epoch and its new
// key (a copy the caller owns and destroys).
type RotateResult struct {
	Device   Device
	OldKCV   string
	OldEpoch uint32
	Key      *psk.Secret
}

// Rotate gives a device a new key (rotate): a derived device moves to the
// next epoch, a random one gets a new random key, an imported one a new
// random key unless NewKey is given. The old KCV goes to the history with
// the reason and time.
func (r *Registry) Rotate(ctx context.Context, id string, opts RotateOptions) (*RotateResult, error) {
	if err := psk.ValidateDeviceID(id); err != nil {
		return nil, err
	}
	if err := checkReason(opts.Reason); err != nil {
		return nil, err
	}
	if opts.NewKey != nil {
		if err := r.checkImportedKey(id, opts.NewKey); err != nil {
			return nil, err
		}
	}
	var res *RotateResult
	// A new random or imported key is stored; rotating a derived device
	// may leave the registry without keys.
	uo := UpdateOptions{Create: opts.Register, StoresKeys: opts.Random || opts.NewKey != nil}
	err := r.update(ctx, uo, func(tx Tx, now time.Time) error {
		old, ok := tx.Get(id)
		var rec *Record
		switch {
		case ok && old.Status == StatusRevoked:
			return &DeviceError{ID: id, Err: ErrRevoked, Msg: "revoked; a revoked device is not rotated"}
		case ok:
			rec = old.Clone()
		case opts.Register:
			if opts.Master.Len() == 0 {
				return &DeviceError{ID: id, Err: ErrNeedMaster, Msg: "rotating an unregistered (derived) device needs the master secret"}
			}
			if err := verifyMaster(tx, opts.Master); err != nil {
				return err
			}
			k := psk.Derive(opts.Master, id, 0)
			rec = &Record{Device: Device{ID: id, Source: SourceDerived, Status: StatusActive, KCV: psk.KCV(k), Created: now}}
			k.Destroy()
		default:
			return &DeviceError{ID: id, Err: ErrUnknownDevice}
		}
		if rec.Epoch == 1<<32-1 {
			rec.Destroy()
			return &DeviceError{ID: id, Err: ErrEpochLimit}
		}
		newSource := rec.Source
		switch {
		case opts.NewKey != nil:
			newSource = SourceImported
		case opts.Random || rec.Source == SourceImported:
			newSource = SourceRandom
		}
		var key *psk.Secret
		switch newSource {
		case SourceDerived:
			if opts.Master.Len() == 0 {
				rec.Destroy()
				return &DeviceError{ID: id, Err: ErrNeedMaster, Msg: "rotating a derived device needs the master secret"}
			}
			if err := verifyDerived(rec, opts.Master); err != nil {
				rec.Destroy()
				return err
			}
			key = psk.Derive(opts.Master, id, rec.Epoch+1)
		case SourceRandom:
			k, err := psk.Generate(r.rand, max(psk.DefaultBytes, rec.Key.Len()))
			if err != nil {
				rec.Destroy()
				return fmt.Errorf("generate a key for device %q: %w", id, err)
			}
			key = k
		default:
			if rec.Key != nil && rec.Key.Equal(opts.NewKey) {
				rec.Destroy()
				return &psk.InputError{Source: "device " + id, Msg: "the new key is the current key"}
			}
			key = psk.CopySecret(opts.NewKey.Expose())
		}
		res = &RotateResult{OldKCV: rec.KCV, OldEpoch: rec.Epoch, Key: key}
		rec.History = append(rec.History, Retired{KCV: rec.KCV, Epoch: rec.Epoch, Source: rec.Source, Reason: opts.Reason, Retired: now})
		rec.Key.Destroy()
		rec.Key = nil
		if newSource.Stored() {
			rec.Key = psk.CopySecret(key.Expose())
		}
		rec.Source, rec.Epoch, rec.KCV, rec.Updated = newSource, rec.Epoch+1, psk.KCV(key), now
		res.Device = rec.Info()
		if err := tx.Put(rec); err != nil {
			return err
		}
		tx.Log(r.event(now, EventRotate, rec))
		return nil
	})
	var ce *CommittedError
	if errors.As(err, &ce) && res != nil {
		// Recorded: the result stands, with the error that says so.
		return res, err
	}
	if err != nil {
		if res != nil {
			res.Key.Destroy()
		}
		return nil, err
	}
	return res, nil
}

// Key returns the current key of a device (a copy the caller destroys):
// derived from master at the device's epoch (checked against its KCV) or
// the stored key. An unknown device wraps ErrUnknownDevice (the gateway
// would use its epoch-0 derived key), a revoked one ErrRevoked.
func (r *Registry) Key(ctx context.Context, id string, master *psk.Secret) (*psk.Secret, Device, error) {
	if err := psk.ValidateDeviceID(id); err != nil {
		return nil, Device{}, err
	}
	var key *psk.Secret
	var dev Device
	err := r.store.View(ctx, func(rd Reader) error {
		rec, ok := rd.Get(id)
		if !ok {
			return &DeviceError{ID: id, Err: ErrUnknownDevice}
		}
		dev = rec.Info()
		if rec.Status == StatusRevoked {
			return &DeviceError{ID: id, Err: ErrRevoked}
		}
		k, err := recordKey(rec, master)
		key = k
		return err
	})
	return key, dev, err
}

// recordKey returns a copy of the key of an active record.
func recordKey(rec *Record, master *psk.Secret) (*psk.Secret, error) {
	if rec.Source != SourceDerived {
		return psk.CopySecret(rec.Key.Expose()), nil
	}
	if master.Len() == 0 {
		return nil, &DeviceError{ID: rec.ID, Err: ErrNeedMaster, Msg: "a derived device: the master secret is needed"}
	}
	key := psk.Derive(master, rec.ID, rec.Epoch)
	if kcv := psk.KCV(key); !equalKCV(kcv, rec.KCV) {
		key.Destroy()
		return nil, &MismatchError{ID: rec.ID, Epoch: rec.Epoch, Registered: rec.KCV, Derived: kcv}
	}
	return key, nil
}

// List returns every device in id order (registry list).
func (r *Registry) List(ctx context.Context) ([]Device, error) {
	var out []Device
	err := r.store.View(ctx, func(rd Reader) error {
		out = make([]Device, 0, rd.Len())
		rd.Range(func(rec *Record) bool {
			out = append(out, rec.Info())
			return true
		})
		return nil
	})
	return out, err
}

// Show returns one device, history included (registry show).
func (r *Registry) Show(ctx context.Context, id string) (Device, error) {
	if err := psk.ValidateDeviceID(id); err != nil {
		return Device{}, err
	}
	var dev Device
	err := r.store.View(ctx, func(rd Reader) error {
		rec, ok := rd.Get(id)
		if !ok {
			return &DeviceError{ID: id, Err: ErrUnknownDevice}
		}
		dev = rec.Info()
		return nil
	})
	return dev, err
}

// Stats counts the devices of a registry.
type Stats struct {
	Devices       int // all records
	Active        int
	Revoked       int
	ActiveDerived int // active derived devices: exporting them needs the master
	ActiveStored  int // active random or imported devices
}

// NeedsMaster reports whether exporting needs the master secret.
func (s Stats) NeedsMaster() bool { return s.ActiveDerived > 0 }

// Stats counts the devices (so the CLI asks for the master secret only when
// an export or check needs it).
func (r *Registry) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := r.store.View(ctx, func(rd Reader) error {
		rd.Range(func(rec *Record) bool {
			st.Devices++
			if rec.Status == StatusRevoked {
				st.Revoked++
				return true
			}
			st.Active++
			if rec.Source == SourceDerived {
				st.ActiveDerived++
			} else {
				st.ActiveStored++
			}
			return true
		})
		return nil
	})
	return st, err
}

// CheckReport is the result of Check.
type CheckReport struct {
	Devices  int       // sound records read
	Checked  int       // derived records checked against the master secret
	Findings []Finding // empty: the registry is sound
}

// Check looks for problems (registry check): damaged or invalid records,
// duplicate ids, KCVs that do not match stored keys, placeholder keys, an
// open file mode on a registry with keys, a broken audit chain, and with a
// master secret KCVs (current and retired) that do not match derivation.
func (r *Registry) Check(ctx context.Context, master *psk.Secret) (*CheckReport, error) {
	rep := &CheckReport{}
	var own []Finding
	findings, err := r.store.Check(ctx, func(rd Reader) error {
		rd.Range(func(rec *Record) bool {
			rep.Devices++
			if rec.Key != nil && psk.IsPlaceholder(rec.Key.Expose()) {
				own = append(own, Finding{Device: rec.ID, Field: "psk", Problem: "the stored key is an example key of the USMP documentation"})
			}
			if master.Len() == 0 {
				return true
			}
			if rec.Source == SourceDerived {
				rep.Checked++
				var me *MismatchError
				if err := verifyDerived(rec, master); errors.As(err, &me) {
					own = append(own, Finding{Device: rec.ID, Field: "kcv", Problem: fmt.Sprintf("does not match the key the master secret derives at epoch %d (registry %s, derived %s)", me.Epoch, me.Registered, me.Derived)})
				}
			}
			for _, h := range rec.History {
				if h.Source != SourceDerived {
					continue
				}
				k := psk.Derive(master, rec.ID, h.Epoch)
				if kcv := psk.KCV(k); !equalKCV(kcv, h.KCV) {
					own = append(own, Finding{Device: rec.ID, Field: "history", Problem: fmt.Sprintf("retired kcv of epoch %d does not match the key the master secret derives (registry %s, derived %s)", h.Epoch, h.KCV, kcv)})
				}
				k.Destroy()
			}
			return true
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep.Findings = append(findings, own...)
	return rep, nil
}

// VerifyAudit verifies the audit log against the registry (registry audit):
// an *AuditError says at which line the chain breaks.
func (r *Registry) VerifyAudit(ctx context.Context) (*AuditReport, error) {
	return r.store.VerifyAudit(ctx)
}
