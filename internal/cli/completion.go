package cli

// Completion of values (issue 14 item 8), registered by flag name over the
// whole tree so that every command with the flag completes it: encodings,
// NVS types and partition sizes, the partitions of the --partition-table
// given on the same line, and the device ids of the registry for the
// commands that take one. Completion never prints to stderr, never creates
// a registry and never reads a secret.

import (
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/provision"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

// Value lists, with descriptions for the shells that show them.
var (
	writeEncodings = encodingValues(false)
	readEncodings  = encodingValues(true)
	nvsTypes       = []string{"u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "string", "blob\tonly from --value-file"}
	nvsSizes       = []string{"0x3000\tthe smallest read-write partition (3 pages)", "0x4000", "0x5000", "0x6000\tESP-IDF's default nvs partition", "0x10000\t64 KiB"}
	exportFormats  = []string{"json\tthe map load_psk_registry reads"}
)

// writeHelp and readHelp describe psk.Encodings, the one list of
// encodings, for the shells that show descriptions: what an output looks
// like, and what needs saying of an input.
var (
	writeHelp = map[psk.Encoding]string{
		psk.Hex: "lower-case hex and a newline (default)", psk.Base64: "standard base64 and a newline",
		psk.Raw: "the bytes as they are", psk.C: "a C header for firmware",
	}
	readHelp = map[psk.Encoding]string{psk.Auto: "detect it", psk.C: "a C header that generate --encoding c wrote"}
)

// encodingValues are psk.Encodings as completions; a key that is read
// (decodable) may also be detected: auto.
func encodingValues(decodable bool) []string {
	names, help := psk.Encodings, writeHelp
	if decodable {
		names, help = append([]psk.Encoding{psk.Auto}, psk.Encodings...), readHelp
	}
	out := make([]string, len(names))
	for i, e := range names {
		out[i] = string(e)
		if h := help[e]; h != "" {
			out[i] += "\t" + h
		}
	}
	return out
}

// fixedCompletion offers values for a flag: on the commands named in only,
// or on every command with the flag when only is empty. Every value must
// be one the commands accept (TestFixedCompletionsAreAccepted).
type fixedCompletion struct {
	flag   string
	only   []string
	values []string
}

// fixedCompletions is the table of value lists; the first entry that
// applies to a command's flag wins.
var fixedCompletions = []fixedCompletion{
	{flag: "encoding", only: []string{"fingerprint"}, values: readEncodings},
	{flag: "encoding", values: writeEncodings},
	{flag: "psk-encoding", values: readEncodings},
	{flag: "type", values: nvsTypes},
	{flag: "size", values: nvsSizes},
	{flag: "format", values: exportFormats},
}

// fixedCompletionFor returns the values offered for flag on the command at
// path (as subcommandPath writes it), if any.
func fixedCompletionFor(path, flag string) ([]string, bool) {
	for _, fc := range fixedCompletions {
		if fc.flag == flag && (len(fc.only) == 0 || slices.Contains(fc.only, path)) {
			return fc.values, true
		}
	}
	return nil, false
}

// deviceIDCommands take a device id as their first argument.
var deviceIDCommands = []string{"derive", "provision", "rotate", "registry show", "registry revoke"}

// registerCompletions adds the value completions to every command of the
// tree under root that has the flags, and device ids where a command takes
// one.
func registerCompletions(f *Factory, root *cobra.Command) {
	fixed := func(values []string) cobra.CompletionFunc {
		return cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
	}
	for _, c := range allCommandsOf(root) {
		reg := func(name string, fn cobra.CompletionFunc) {
			if c.Flags().Lookup(name) == nil {
				return
			}
			if _, ok := c.GetFlagCompletionFunc(name); ok {
				return
			}
			_ = c.RegisterFlagCompletionFunc(name, fn)
		}
		path := subcommandPath(c)
		for _, fc := range fixedCompletions {
			if values, ok := fixedCompletionFor(path, fc.flag); ok {
				reg(fc.flag, fixed(values))
			}
		}
		reg("partition", partitionNames)
		reg("device", f.completeDeviceIDs)
		if slices.Contains(deviceIDCommands, path) && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return f.completeDeviceIDs(cmd, args, toComplete)
			}
		}
	}
}

// allCommandsOf walks the tree.
func allCommandsOf(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, allCommandsOf(sub)...)
	}
	return out
}

// partitionNames completes --partition with the names of the partitions of
// the --partition-table given on the same command line.
func partitionNames(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	fl := cmd.Flags().Lookup("partition-table")
	if fl == nil || fl.Value.String() == "" {
		return []cobra.Completion{provision.DefaultPartition}, cobra.ShellCompDirectiveNoFileComp
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	t, err := readPartitionTable(ctx, fl.Value.String())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []cobra.Completion
	for _, p := range t.Partitions {
		names = append(names, cobra.CompletionWithDesc(cellText(p.Name), p.TypeName()+" "+p.SubtypeName()))
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// completionTimeout bounds the registry read of a completion: a shell
// waits for it.
const completionTimeout = 2 * time.Second

// completeDeviceIDs lists the device ids of the registry the command line
// names (--registry, else $USMP_PSK_REGISTRY, else ./usmp-registry.db),
// when it exists. Ids that look like keys are left out (they are refused
// anyway, and a completion menu is on the screen).
func (f *Factory) completeDeviceIDs(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	location := registry.DefaultPath
	if fl := cmd.Flag("registry"); fl != nil && fl.Changed {
		location = fl.Value.String()
	} else if v := f.Getenv(envName("registry")); v != "" {
		location = v
	}
	if !registry.IsPostgresURL(location) {
		if _, err := os.Stat(location); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
	}
	reg, err := registry.Open(location, registry.Options{
		LockTimeout: completionTimeout, Getenv: f.Getenv, Now: f.Now, Rand: f.Rand,
		Warn:        func(string) {},
		RegistryKey: func() (string, bool) { return f.registryKeyEnv, f.hasRegistryKeyEnv },
	})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer reg.Close()
	ctx, cancel := context.WithTimeout(f.runContext(), completionTimeout)
	defer cancel()
	devs, err := reg.List(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var ids []cobra.Completion
	for _, d := range devs {
		if !strings.HasPrefix(d.ID, toComplete) || psk.LooksLikeKey(d.ID) {
			continue
		}
		ids = append(ids, cobra.CompletionWithDesc(d.ID, string(d.Source)+", epoch "+itoa(d.Epoch)+", "+string(d.Status)+", kcv "+d.KCV))
	}
	return ids, cobra.ShellCompDirectiveNoFileComp
}

func itoa(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b [10]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// backtickFree removes backticks from what it writes: the flag
// descriptions of shell completion come from the flags' usage, where
// `NAME` marks the value's name for --help (issue 14 item 8).
type backtickFree struct{ w io.Writer }

func (b backtickFree) Write(p []byte) (int, error) {
	if _, err := b.w.Write([]byte(strings.ReplaceAll(string(p), "`", ""))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// isCompletionRequest reports whether args ask the shell completion for
// candidates (cobra's hidden __complete commands).
func isCompletionRequest(args []string) bool {
	return len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd)
}
