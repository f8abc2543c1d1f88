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
	// ErrNeedMaster: the operation derives keys and no master was given.
	ErrNeedMaster = errors.New("the master secret is needed")
	// ErrMasterMismatch: the master secret does not reproduce a recorded
	// KCV (a wrong master secret, most likely).
	ErrMasterMismatch = errors.New("the master secret does not match the registry")
	// ErrEpochLimit: a derived device at epoch 2^32-1 cannot rotate.
	ErrEpochLimit = errors.New("the epoch cannot grow any further")
	// ErrLocked: the writer lock was not obtained in time.
	ErrLocked = errors.New("registry is locked by another process")
	// ErrCorrupt: the registry file is damaged or not a registry.
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

// BadInput marks the error as the user's input to fix (exit code 2).
func (e *DeviceError) BadInput() bool { return true }

// MismatchError reports that the master secret does not reproduce the KCV a
// device has in the registry. Verification failed: exit code 3. The KCVs are
// safe to show (design §3).
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

// LockedError reports that another process held the writer lock for longer
// than the lock timeout. Nothing was changed. Exit code 1.
type LockedError struct {
	LockPath string
	Waited   time.Duration
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("registry is locked by another process (%s; waited %s)\nhint: retry later, or wait longer with --lock-timeout", e.LockPath, e.Waited)
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// CorruptError reports one problem found in a registry file: where (file,
// line, device, field) and what, never any content of the field (R9). Device
// is set only to a valid device id.
type CorruptError struct {
	Path   string
	Line   int    // 1-based; 0 when unknown
	Device string // valid device id of the record, "" when unknown
	Field  string // JSON field name, "" for the record or file as a whole
	Msg    string
	More   int // further problems in the same file (Load reports the first)

	off int // byte offset, turned into Line
}

func (e *CorruptError) Error() string {
	s := e.Path
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	s += ": "
	if e.Device != "" {
		s += "device " + strconv.Quote(e.Device) + ": "
	}
	if e.Field != "" {
		s += e.Field + ": "
	}
	s += e.Msg
	if e.More > 0 {
		s += fmt.Sprintf(" (and %d more problems; run 'usmp-psk registry check')", e.More)
	}
	return s
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

// AuditRollbackError reports a registry write that failed (Err) after its
// audit entries were appended, when removing them again failed too
// (RollbackErr): the log keeps entries for a change that did not happen,
// and 'registry audit' reports them as uncommitted. It is a failure (exit
// code 1) whatever Err is.
type AuditRollbackError struct {
	Path        string // the audit log
	Entries     int    // the entries appended for the failed write
	Err         error
	RollbackErr error
}

func (e *AuditRollbackError) Error() string {
	n := "1 entry"
	if e.Entries != 1 {
		n = strconv.Itoa(e.Entries) + " entries"
	}
	return e.Err.Error() + "; removing its audit entries from " + e.Path + " failed too: " + e.RollbackErr.Error() +
		"\nhint: the audit log keeps " + n + " for a change that did not happen; 'usmp-psk registry audit' reports them as uncommitted, and the next write continues after them"
}

// Unwrap returns both errors.
func (e *AuditRollbackError) Unwrap() []error { return []error{e.Err, e.RollbackErr} }

// BadInput reports false: whatever made the write fail, the audit log now
// needs an operator's look (exit code 1, not 2).
func (e *AuditRollbackError) BadInput() bool { return false }

// CommittedError reports a registry write that failed after the new
// registry was in place (the rename happened; a later step, such as the
// directory's sync, failed): the change IS recorded, and the audit entries
// stay, but it may not be durable across a power loss. Do not repeat the
// change (a rotation would rotate twice). It is a failure: exit code 1.
type CommittedError struct {
	Location string
	Err      error
	// Hint replaces the default hint ("do not repeat the command") for a
	// command that a re-run completes (batch).
	Hint string
}

func (e *CommittedError) Error() string {
	hint := e.Hint
	if hint == "" {
		hint = "do not repeat the command; check the registry with 'usmp-psk registry show' or 'list'"
	}
	return "the change was recorded in " + e.Location + ", but " + e.Err.Error() + "\nhint: " + hint
}

// Unwrap returns the cause.
func (e *CommittedError) Unwrap() error { return e.Err }

// BadInput reports false: the registry changed (exit code 1).
func (e *CommittedError) BadInput() bool { return false }

// DeliveredError reports a delivery (an export's keys, ExportTo) that
// failed after the keys, or some of them, reached their destination: bytes
// went out to standard output before a write failed (Partial), or the
// file is in place and only its directory's sync failed. The delivery
// happened, so its audit entry stays (the export is recorded). It is a
// failure: exit code 1.
type DeliveredError struct {
	To      string // "standard output" or the file
	Partial bool   // only part of the export got out
	Err     error
}

func (e *DeliveredError) Error() string {
	if e.Partial {
		return e.Err.Error() + "\nhint: the export was partly delivered (part of it, perhaps some keys, reached " + e.To + ") and is recorded in the audit log; treat every key of it as exported, and export again"
	}
	return e.Err.Error() + "\nhint: the export was delivered to " + e.To + " and is recorded in the audit log, but the file may not survive a power loss; export again (--force) to be sure"
}

// Unwrap returns the cause.
func (e *DeliveredError) Unwrap() error { return e.Err }

// BadInput reports false: keys went out (exit code 1).
func (e *DeliveredError) BadInput() bool { return false }
