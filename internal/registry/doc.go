// Package registry keeps the devices of a USMP fleet: one record per device
// (id, key source, epoch, status, KCV, times, the retired KCVs), the
// hash-chained audit log, the export the gateway loads, the import of
// existing fleets, consistency checks and migrations (docs/registry.md).
//
// A registry is a SQL database: SQLite (the embedded default, one 0600
// file) or PostgreSQL (many stations). Both have the same schema and one
// implementation of every operation; the files are laid out by part:
//
//	registry.go, ops.go, rotate.go, read.go   the model's operations (Registry)
//	check.go, replay.go, audit.go             the audit log: chain, checks, replay
//	export.go, import.go                      the gateway's export, imports
//	store.go, records.go                      the SQL store: transactions, rows
//	dialect.go                                SQL that differs between the engines
//	sqlite.go, postgres.go                    opening each engine, its errors
//	seal.go                                   keys at rest under $USMP_REGISTRY_KEY
//	legacy.go, migrate.go                     the JSON registry of earlier versions; moves
//
// Each write is one transaction holding its records and its audit entries.
//
// How the commands use it (errors with BadInput() bool map to exit code 2,
// with Mismatch() bool to exit code 3, others to 1; VerifyFailed() bool
// marks what is a failed verification, exit code 3, where the command's job
// is to verify — registry check, audit, migrate):
//
//	reg, err := registry.Open(path, registry.Options{...}); defer reg.Close()
//	registry init               reg.Init(ctx)
//	registry add ID --derive    reg.Add(ctx, id, registry.Derived(master, epoch))
//	registry list / show ID     reg.List(ctx), reg.Show(ctx, id)
//	registry revoke ID          reg.Revoke(ctx, id, reason)
//	registry export             reg.Export(ctx, master) → ex.WriteJSON(w); ex.Destroy()
//	registry import FILE        registry.ParseImport(name, data); reg.Import(ctx, set)
//	registry check              reg.Check(ctx, master or nil) → findings (exit 3 if any)
//	registry audit              reg.VerifyAudit(ctx, expect) → *AuditError, findings
//	registry migrate            registry.Migrate(ctx, from, opts, to)
//	provision, batch            reg.AddMany(ctx, reqs, AddOptions{Event, KeepExisting})
//	rotate ID                   reg.Rotate(ctx, id, RotateOptions{Reason, Master, ...})
//	verify, derive              reg.Key(ctx, id, master)
//
// Rules of this package: key bytes live only in *psk.Secret values and are
// wiped after use; records of derived devices hold none; errors and
// findings name the registry, device id and field, never key content, and
// never wrap decoder errors made from key input; keys and KCVs are
// compared in constant time; nothing here prints: warnings go to the
// caller's Warn callback.
package registry
