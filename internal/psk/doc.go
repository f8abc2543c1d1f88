// Package psk holds USMP key material: the Secret type that refuses to be
// formatted, generation from crypto/rand, derivation exactly as the gateway's
// Python computes it (design §2.1, §3), key check values (KCV), the key
// encodings for files and pipes, device-id validation, and reading the master
// secret from its sources (design §4).
//
// Rules of this package (security.md R9, R13, R26):
//   - key bytes live only inside a *Secret and leave it only through Expose;
//   - errors name the source (flag, file, variable, offset), never content;
//   - secret bytes are never converted to string.
package psk
