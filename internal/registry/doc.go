// Package registry keeps the devices of a USMP fleet: one record per device
// (id, key source, epoch, status, KCV, times, history of retired KCVs), the
// storage behind it, the export the gateway loads, the import of existing
// fleets, consistency checks and the hash-chained audit log (design §5).
//
// The Store interface is storage-agnostic; FileStore, the embedded default,
// keeps the registry in one JSON file written atomically and durably through
// secfile (R16) and serialises writers with a lock on "<path>.lock" (R17).
// Registry is the façade the commands use: it holds the clock, the random
// source and the audit actor, and implements add, revoke, rotate, key lookup,
// export, import and check on top of any Store.
//
// Rules of this package (security.md R9, R13, R15, R26):
//   - key bytes live only in *psk.Secret values; records of derived devices
//     hold none, and a registry of only derived devices holds no secret;
//   - errors and check findings name the file, line, field and device id,
//     never key content, and never wrap decoder errors made from key input;
//   - keys and KCVs are compared in constant time;
//   - nothing here prints: warnings go to the caller's Warn callback.
package registry
