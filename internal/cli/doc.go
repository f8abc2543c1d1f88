// Package cli is the usmp-psk command line: the cobra command tree (one file
// per command), the I/O streams, the terminal prompt, configuration and the
// mapping of errors to exit codes.
//
// Rules of this package: stdout carries results only; diagnostics go to
// stderr prefixed "usmp-psk: "; key bytes are written only to 0600 files or
// to a non-terminal stdout (R10); no flag takes a secret as its value (R1);
// the master secret never passes through viper (R23).
package cli
