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
// How the commands use it (errors with BadInput() bool map to exit code 2,
// with VerifyFailed() bool to exit code 3, others to 1):
//
//	reg, err := registry.Open(path, registry.Options{LockTimeout: d, Warn: warn,
//		OnCreate: func(p string) { /* "created registry p" on stderr */ }})
//	registry init               reg.Init(ctx)
//	registry add ID --derive    reg.Add(ctx, id, registry.Derived(master, epoch))
//	registry add ID --random    reg.Add(ctx, id, registry.Random())
//	registry add ID --psk-file  reg.Add(ctx, id, registry.Imported(key))
//	registry list [--json]      reg.List(ctx) → []Device; Device.Summary() for JSON rows
//	registry show ID [--json]   reg.Show(ctx, id) → Device (history included)
//	registry revoke ID          reg.Revoke(ctx, id, reason)
//	registry export [-o FILE]   reg.Stats(ctx).NeedsMaster(); reg.Export(ctx, master);
//	                            secfile.Write(file, opts, ex.WriteJSON); ex.Destroy()
//	registry import FILE        registry.ParseImport(name, data); reg.Import(ctx, set)
//	registry check              reg.Check(ctx, master or nil) → findings (exit 3 if any)
//	registry audit              reg.VerifyAudit(ctx) → *AuditError says where (exit 3)
//	provision, batch            reg.AddMany(ctx, reqs, AddOptions{Event, KeepExisting})
//	rotate ID                   reg.Rotate(ctx, id, RotateOptions{Reason, Master, ...})
//	verify, derive              reg.Key(ctx, id, master)
//
// Rules of this package (security.md R9, R13, R15, R26):
//   - key bytes live only in *psk.Secret values; records of derived devices
//     hold none, and a registry of only derived devices holds no secret;
//   - errors and check findings name the file, line, field and device id,
//     never key content, and never wrap decoder errors made from key input;
//   - keys and KCVs are compared in constant time;
//   - nothing here prints: warnings go to the caller's Warn callback.
package registry
