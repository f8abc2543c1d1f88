package partition

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinels for errors.Is. Every *Error matches ErrInvalid, and most match
// one of the others too.
var (
	// ErrInvalid matches every problem with a table's content: the CLI
	// reports it as bad input (exit code 2).
	ErrInvalid = errors.New("invalid partition table")
	// ErrSyntax: a CSV line or field that cannot be read.
	ErrSyntax = errors.New("partition table syntax error")
	// ErrMalformed: a binary table that is cut short, has no end marker,
	// entries after the MD5 record, or a name that is not UTF-8.
	ErrMalformed = errors.New("malformed binary partition table")
	// ErrBadMagic: a binary entry that starts neither with AA 50 (a
	// partition), EB EB (the MD5 record) nor is the 0xFF end marker.
	ErrBadMagic = errors.New("invalid magic bytes")
	// ErrBadMD5: the MD5 record does not match the entries before it.
	ErrBadMD5 = errors.New("md5 checksum mismatch")
	// ErrOverlap: two partitions share flash.
	ErrOverlap = errors.New("partitions overlap")
	// ErrBelowTable: a partition starts before the end of the partition
	// table's sector.
	ErrBelowTable = errors.New("partition below the partition table")
	// ErrAlignment: an offset or size that is not aligned as ESP-IDF
	// requires.
	ErrAlignment = errors.New("misaligned partition")
	// ErrDuplicateName: two partitions with the same name.
	ErrDuplicateName = errors.New("duplicate partition name")
)

// Error is a problem with a partition table. File, Line and Field locate it
// in a CSV file when it has a location there.
type Error struct {
	File  string // CSV file name as given to Parse; may be empty
	Line  int    // 1-based CSV line; 0 when there is none
	Field string // CSV field: name, type, subtype, offset, size or flags
	Kind  error  // one of the sentinels above, or nil
	Msg   string // what is wrong
}

// Error formats the error as "file:line: field: message".
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap lets errors.Is match ErrInvalid and the error's Kind.
func (e *Error) Unwrap() []error {
	if e.Kind == nil {
		return []error{ErrInvalid}
	}
	return []error{e.Kind, ErrInvalid}
}

// BadInput marks the error as input for the user to fix (exit code 2).
func (e *Error) BadInput() bool { return true }

func newError(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}
