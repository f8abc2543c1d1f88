// Package secfile writes secret files: registry, key files, NVS images.
//
// Every secret file is exactly 0600 whatever the umask and whether or not it
// existed (R5); it is created exclusively unless the caller asks to replace
// it (R6); it is written through a temporary file in the target's directory,
// fsynced, renamed (or linked, for exclusive creation) and followed by an
// fsync of the directory (R16), so no partial file is ever left (R8); it is
// refused in a directory that group or others may write without the sticky
// bit (R7), and inside a git work tree that does not ignore it (R19).
//
// The same writer serves files that hold nothing secret but must not be
// left half-written either: the batch manifest (Options.NotSecret: no git
// guard) and an age-encrypted export (Options.Public: 0644, no git guard,
// no directory rule).
package secfile
