package cli

// The registry command group (design §5, issue 5): the device registry the
// gateway loads, its audit log, the export of the gateway's keys and the
// import of existing fleets.
//
// Rules of these commands (R9, R10, R22): reports name device ids, sources,
// epochs, KCVs and paths, never key bytes. Results (tables, JSON, findings)
// go to standard output and diagnostics to standard error with the
// "usmp-psk: " prefix. The one exception is 'registry export', whose output
// is the key map itself: it goes to a 0600 file or a pipe, never a
// terminal.
//
// Exit codes: 'registry check' findings and a broken audit chain exit 3, as
// verification commands do. Elsewhere a damaged registry or audit log is a
// failure (exit 1, with the message that says where), a missing registry,
// an unknown or existing device and bad input files are the user's to fix
// (exit 2), a writer that waited past --lock-timeout is exit 1.

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/registry"
)

const registryLong = `Keep the device registry: one record per device with its id, key source
(derived, random, imported), epoch, status (active, revoked), key check value
(KCV), times and the KCVs of its retired keys. The gateway reads the registry
itself (make_get_psk) or loads an export (registry export); see docs/gateway.md.

The registry is --registry ($USMP_PSK_REGISTRY, config "registry"): a SQLite
database (default ./usmp-registry.db), or a postgres:// URL for many stations.
Records of derived devices hold no key bytes: the key is recomputed from the
master secret and the epoch. Random and imported keys are stored: sealed with
$USMP_REGISTRY_KEY when it is set (always on PostgreSQL), else in the SQLite
file, which is a secret file (0600 with its -wal and -shm, refused where git
would not ignore them). 'sqlite3 usmp-registry.db' shows what is inside.

Every change is one transaction with its entries in the hash-chained audit log;
writers wait up to --lock-timeout for each other, readers never wait.
'registry audit' and 'registry check' verify the chain and compare the state
it implies with every record. Commands that record devices create a missing
registry and say so. A JSON registry of an earlier usmp-psk is moved into a
database with 'registry migrate'.

Exit codes: 0 ok; 1 failure (I/O, a damaged registry, a writer that waited
--lock-timeout); 2 usage or bad input (a missing registry, an unknown device, a
bad import file); 3 'registry check' or 'registry audit' findings.
See docs/registry.md.`

// newRegistryCmd groups the registry commands.
func newRegistryCmd(f *Factory, root *rootOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry <command>",
		Short: "Keep the device registry and its audit log; export the gateway's keys",
		Long:  registryLong,
		Example: `  # record devices; the first command creates the registry
  $ usmp-psk registry add device-id-1 --derive
  $ usmp-psk registry add 24:6F:28:AA --random
  $ usmp-psk registry list

  # the gateway's keys, straight into its loader
  $ usmp-psk registry export -o /etc/usmp/psk-registry.json`,
	}
	cmd.AddCommand(
		newRegistryInitCmd(f, root, nil),
		newRegistryAddCmd(f, root, nil),
		newRegistryListCmd(f, root, nil),
		newRegistryShowCmd(f, root, nil),
		newRegistryRevokeCmd(f, root, nil),
		newRegistryExportCmd(f, root, nil),
		newRegistryImportCmd(f, root, nil),
		newRegistryCheckCmd(f, root, nil),
		newRegistryAuditCmd(f, root, nil),
		newRegistryMigrateCmd(f, root, nil),
		newRegistryRekeyCmd(f, root, nil),
		newRegistryGrantCmd(f, root, nil),
	)
	return cmd
}

// registryTime formats a registry time: RFC 3339, UTC; "-" when unset.
func registryTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// registryText shows a free text of the registry (a reason) as it is when
// it is printable, quoted otherwise, so that no stored text can move a
// terminal's cursor; "-" when empty.
func registryText(s string) string {
	if s == "" {
		return "-"
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return strconv.Quote(s)
		}
	}
	return s
}

// registryCount is "1 device", "2 devices", "3 entries".
func registryCount(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if l := len(word); l >= 2 && word[l-1] == 'y' && !strings.ContainsRune("aeiou", rune(word[l-2])) {
		return strconv.Itoa(n) + " " + strings.TrimSuffix(word, "y") + "ies"
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// describeDevice is "derived, epoch 0, kcv 1a2b3c4d".
func describeDevice(d registry.Device) string {
	var b strings.Builder
	b.WriteString(string(d.Source))
	b.WriteString(", epoch ")
	b.WriteString(strconv.FormatUint(uint64(d.Epoch), 10))
	b.WriteString(", kcv ")
	b.WriteString(d.KCV)
	return b.String()
}

// registryUsage is a usage error (exit 2) that ends with the help hint.
func registryUsage(cmd *cobra.Command, msg string) error {
	return usageError(cmd, errors.New(msg))
}

// countTrue counts the options given.
func countTrue(v ...bool) int {
	n := 0
	for _, b := range v {
		if b {
			n++
		}
	}
	return n
}
