package registry

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Sentinel errors, for errors.Is. The concrete errors below wrap them.
var (
	// ErrNoRegistry: the registry does not exist (and the operation does
	// not create one).
	ErrNoRegistry = errors.New("registry does not exist")
	// ErrRegistryExists: Init found an existing registry.
	ErrRegistryExists = errors.New("registry already exists")
	// ErrUnknownDevice: the device is not in the registry.
	ErrUnknownDevice = errors.New("device is not in the registry")
	// ErrDeviceExists: the device is already in the registry.
	ErrDeviceExists = errors.New("device is already in the registry")
	// ErrRevoked: the device is revoked.
	ErrRevoked = errors.New("device is revoked")
	// ErrForgotten: the audit log records a device the registry has no
	// record of (deleted outside usmp-psk, or an old backup restored).
	ErrForgotten = errors.New("the registry has no record of a device its audit log records")
	// ErrNeedMaster: the operation derives keys and no master was given.
	ErrNeedMaster = errors.New("the master secret is needed")
	// ErrMasterMismatch: the master secret does not reproduce a recorded
	// KCV (a wrong master secret, most likely).
	ErrMasterMismatch = errors.New("the master secret does not match the registry")
	// ErrEpochLimit: a derived device at epoch 2^32-1 cannot rotate.
	ErrEpochLimit = errors.New("the epoch cannot grow any further")
	// ErrLocked: the writer lock was not obtained in time.
	ErrLocked = errors.New("registry is locked by another process")
	// ErrCorrupt: the registry is damaged or not a registry.
	ErrCorrupt = errors.New("registry is damaged")
	// ErrAudit: the audit log is damaged, truncated or tampered with.
	ErrAudit = errors.New("audit log verification failed")
)

// RegistryError reports a problem with the registry as a whole: missing,
// already existing. It is the user's to fix (exit code 2).
type RegistryError struct {
	Location string
	Err      error
	Hint     string
}

func (e *RegistryError) Error() string {
	s := e.Location + ": " + e.Err.Error()
	if e.Hint != "" {
		s += "\nhint: " + e.Hint
	}
	return s
}

// Unwrap returns the sentinel (ErrNoRegistry, ErrRegistryExists).
func (e *RegistryError) Unwrap() error { return e.Err }

// BadInput marks the error as the user's input to fix (exit code 2).
func (e *RegistryError) BadInput() bool { return true }

// DeviceError reports an operation that cannot apply to a device: unknown,
// already present, revoked, a conflicting import, no master secret. It is
// the user's to fix (exit code 2). ID is a valid device id (never key text).
type DeviceError struct {
	ID  string
	Err error  // a sentinel: ErrUnknownDevice, ErrDeviceExists, ErrRevoked, ErrNeedMaster
	Msg string // optional detail that replaces Err's text
}

func (e *DeviceError) Error() string {
	msg := e.Msg
	if msg == "" {
		msg = e.Err.Error()
	}
	if e.ID == "" {
		return msg
	}
	return "device " + strconv.Quote(e.ID) + ": " + msg
}

// Unwrap returns the sentinel.
func (e *DeviceError) Unwrap() error { return e.Err }

// BadInput marks the error as the user's input to fix (exit code 2), but
// for a device the registry forgot (ErrForgotten), which is the registry's
// damage.
func (e *DeviceError) BadInput() bool { return !errors.Is(e.Err, ErrForgotten) }

// Mismatch marks a device the audit log records and the registry forgot as
// a failed verification (exit code 3): the registry contradicts its log.
func (e *DeviceError) Mismatch() bool { return errors.Is(e.Err, ErrForgotten) }

// MismatchError reports that the master secret does not reproduce the KCV a
// device has in the registry: a failure (exit code 1) where a command needs
// the master, a failed verification where it verifies. The KCVs are safe to
// show (design §3).
type MismatchError struct {
	ID         string
	Epoch      uint32
	Registered string // KCV in the registry
	Derived    string // KCV of the key the master secret gives
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("device %q: the master secret does not match the registry (epoch %d: registry KCV %s, derived KCV %s); is it the right master secret?",
		e.ID, e.Epoch, e.Registered, e.Derived)
}

// Unwrap returns ErrMasterMismatch.
func (e *MismatchError) Unwrap() error { return ErrMasterMismatch }

// VerifyFailed marks a failed verification (exit code 3).
func (e *MismatchError) VerifyFailed() bool { return true }

// LockedError reports that another writer held the registry for longer
// than the lock timeout. Nothing was changed. Exit code 1.
type LockedError struct {
	Location string
	Waited   time.Duration
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("registry is locked by another process (%s; waited %s)\nhint: retry later, or wait longer with --lock-timeout", e.Location, e.Waited)
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// CorruptError reports a damaged record or registry: where (registry,
// device, field) and what, never any content of the field. Device is set
// only to a valid device id.
type CorruptError struct {
	Path   string
	Device string // valid device id of the record, "" when unknown
	Field  string // column or field name, "" for the record or registry as a whole
	Msg    string
}

func (e *CorruptError) Error() string {
	s := e.Path + ": "
	if e.Device == "" && e.Field == "" {
		return s + e.Msg
	}
	if e.Device != "" {
		s += "device " + strconv.Quote(e.Device) + ": "
	}
	if e.Field != "" {
		s += e.Field + ": "
	}
	return s + e.Msg + "\nhint: 'usmp-psk registry check' lists every problem"
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// VerifyFailed marks a failed verification (exit code 3 for 'registry
// check'; other commands may report it as a failure, exit code 1).
func (e *CorruptError) VerifyFailed() bool { return true }

// AuditError reports where the audit chain breaks: Line is the 1-based line
// of the audit log at fault (0 for the file as a whole).
type AuditError struct {
	Path string
	Line int
	Msg  string
	// Contradictions (VerifyAudit) are the records the log, as it stands
	// despite the break, contradicts: a broken chain must not hide them.
	Contradictions []Finding
	// Checkpoint says the chain itself may be sound: the log does not hold
	// the checkpoint given (registry audit --expect).
	Checkpoint bool
}

func (e *AuditError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("audit log %s: line %d: %s", e.Path, e.Line, e.Msg)
	}
	return "audit log " + e.Path + ": " + e.Msg
}

// Unwrap returns ErrAudit.
func (e *AuditError) Unwrap() error { return ErrAudit }

// VerifyFailed marks a failed verification (exit code 3).
func (e *AuditError) VerifyFailed() bool { return true }

// ImportError reports a bad entry of an import file: file and line, the
// device id when it is valid, what is wrong, never the key (R9).
type ImportError struct {
	File   string
	Line   int
	Device string
	Msg    string
}

func (e *ImportError) Error() string {
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	s += ": "
	if e.Device != "" {
		s += "device " + strconv.Quote(e.Device) + ": "
	}
	return s + e.Msg
}

// BadInput marks the error as the user's input to fix (exit code 2).
func (e *ImportError) BadInput() bool { return true }

// SchemaError reports a registry whose schema this build cannot use as it
// is: older ('registry init' upgrades it) or newer (a newer usmp-psk wrote
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
