package registry

import (
	"context"
	"strconv"
)

// Reader is a consistent, read-only view of a registry. Records it returns
// belong to the store and are valid only during the View or Update call
// that gave the Reader: do not modify them (use Clone) and do not keep
// their keys, which the store wipes afterwards.
type Reader interface {
	// Get returns the record of id.
	Get(id string) (*Record, bool)
	// Len returns the number of records.
	Len() int
	// Range calls fn for each record in id order until fn returns false.
	Range(fn func(*Record) bool)
}

// Tx is a read-modify-write transaction: everything it changes and logs is
// committed together when the function given to Update returns nil, and
// nothing is when it returns an error.
type Tx interface {
	Reader
	// Put inserts or replaces the record with rec.ID and takes ownership of
	// rec (and its key). The record must be valid: a derived record holds
	// no key, an active stored record holds its key, the KCV matches.
	Put(rec *Record) error
	// Log queues an audit event, written with the commit.
	Log(ev AuditEvent)
	// Created reports that the registry did not exist and the commit
	// creates it.
	Created() bool
}

// UpdateOptions controls what Update does with a missing or existing
// registry.
type UpdateOptions struct {
	// Create makes a missing registry (Tx.Created reports it); without it a
	// missing registry is an error wrapping ErrNoRegistry.
	Create bool
	// Exclusive fails with ErrRegistryExists when the registry exists
	// (registry init).
	Exclusive bool
	// StoresKeys says that the transaction, if it commits, leaves key bytes
	// in the registry (it adds a random or imported key). A store with
	// location rules for secret files (the file store's git guard, R19)
	// then refuses a location before it creates anything; without it, the
	// store learns that from the transaction's result.
	StoresKeys bool
	// StoresKeysIfCreated is StoresKeys for a registry that the transaction
	// creates (registry import: every device of a new registry is new, so
	// its keys are stored). An existing registry learns it from the
	// transaction's result, under the lock.
	StoresKeysIfCreated bool
	// Deliver, when set, hands over what the transaction produced (the
	// keys of an export) once the transaction's audit entries are durable
	// and before the registry is committed, so a delivery always has its
	// audit entry. Deliver returns an error only when nothing was delivered
	// (ExportTo reports a partial delivery after the commit, as a
	// DeliveredError); then the entries are removed again (as for a failed
	// commit) and Update returns its error. If the commit fails
	// after a delivery, the entries stay (reported as uncommitted). A store
	// that cannot make its entries durable before its commit (PGStore)
	// calls Deliver last inside the transaction instead.
	Deliver func() error
}

// Finding is one problem 'registry check' reports. It names the device,
// the line of the file and the field, never key content.
type Finding struct {
	Device  string `json:"device,omitempty"`
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field,omitempty"`
	Problem string `json:"problem"`
}

func (f Finding) String() string {
	s := ""
	if f.Line > 0 {
		s += "line " + strconv.Itoa(f.Line) + ": "
	}
	if f.Device != "" {
		s += "device " + strconv.Quote(f.Device) + ": "
	}
	if f.Field != "" {
		s += f.Field + ": "
	}
	return s + f.Problem
}

// Store is where a registry lives. FileStore is the embedded default; a
// PostgreSQL store implements the same interface. Implementations serialise
// Update calls across processes, make each commit atomic and durable, and
// append the queued audit events in the same commit.
type Store interface {
	// Location names the registry in messages (a path; a URL without
	// credentials).
	Location() string
	// View calls fn with a consistent snapshot. A missing registry is an
	// error wrapping ErrNoRegistry.
	View(ctx context.Context, fn func(Reader) error) error
	// Update runs fn in a transaction under the writer lock.
	Update(ctx context.Context, opts UpdateOptions, fn func(Tx) error) error
	// Check reads the registry without stopping at the first problem: it
	// calls fn with the sound records and returns the findings about the
	// storage itself (damaged records, permissions, the audit log).
	Check(ctx context.Context, fn func(Reader) error) ([]Finding, error)
	// VerifyAudit verifies the audit chain against the registry's record
	// of its last entry.
	VerifyAudit(ctx context.Context) (*AuditReport, error)
}
