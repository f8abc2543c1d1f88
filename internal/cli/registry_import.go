package cli

// registry import reads key material: a file that others can write is
// refused and one they can read is warned about (R7), a terminal is refused
// as input (it would echo the keys), and the data is wiped once parsed
// (R26). Errors name the file and line, never a key (R9).

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

// importListed is how many added devices the text report names one by one.
const importListed = 20

type registryImportOptions struct {
	IO           *IOStreams
	OpenRegistry func() (*registry.Registry, error)
	// ReadFile reads the import file (- for standard input): its bytes
	// and the name of their source for messages.
	ReadFile func(file string) ([]byte, string, error)

	file string
	json bool
}

func newRegistryImportCmd(f *Factory, root *rootOptions, runF func(*registryImportOptions) error) *cobra.Command {
	opts := &registryImportOptions{IO: f.IO, OpenRegistry: f.registryOpener(root),
		ReadFile: func(file string) ([]byte, string, error) { return readImportFile(f, file) }}
	cmd := &cobra.Command{
		Use:   "import FILE [--json]",
		Short: "Record the keys of an existing fleet from a JSON map or CSV",
		Long: `Record devices with existing keys, as imported devices whose keys the
registry stores. FILE (- for standard input) is either

  a JSON map {"device_id": "hex psk", ...} — what 'registry export' writes, or
  CSV with the header id,psk (or device_id,psk) and one "id,hex psk" per line.

Every line is checked before anything is recorded: valid device ids, hex keys,
no id twice, and no example or placeholder key of the USMP documentation. Keys
shorter than 32 bytes are accepted with a warning. A device already recorded
with the same key is left as it is; one recorded with another key, or revoked,
is an error and nothing is imported. The registry is created when missing.

The file holds keys: one that group or others can write is refused, one they
can read gets a warning. Errors name the line, never a key.`,
		Example: `  $ usmp-psk registry import fleet.csv
  $ usmp-psk --registry new.db registry import old-export.json`,
		Args: exactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.file = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runRegistryImport(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, `print {"registry","file","added":[{"id",...,"kcv"}],"unchanged"} as JSON`)
	return cmd
}

// registryImportReport is what import says: never a key.
type registryImportReport struct {
	Registry  string             `json:"registry"`
	File      string             `json:"file"`
	Added     []registry.Summary `json:"added"`
	Unchanged int                `json:"unchanged"`
}

func runRegistryImport(ctx context.Context, opts *registryImportOptions) error {
	data, source, err := opts.ReadFile(opts.file)
	if err != nil {
		return err
	}
	set, err := registry.ParseImport(source, data)
	psk.Wipe(data)
	if err != nil {
		return err
	}
	defer set.Destroy()
	reg, err := opts.OpenRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	res, err := reg.Import(ctx, set)
	if err != nil {
		return err
	}
	rep := registryImportReport{Registry: reg.Location(), File: source, Added: make([]registry.Summary, 0, len(res.Added)), Unchanged: res.Unchanged}
	for i := range res.Added {
		rep.Added = append(rep.Added, res.Added[i].Summary())
	}
	if opts.json {
		return printJSON(opts.IO, rep)
	}
	for i, d := range res.Added {
		if i == importListed {
			opts.IO.Infof("… and %d more ('usmp-psk registry list' shows them all)", len(res.Added)-importListed)
			break
		}
		opts.IO.Infof("imported device %s (kcv %s)", d.ID, d.KCV)
	}
	same := ""
	if res.Unchanged > 0 {
		same = fmt.Sprintf("; %s already recorded with the same key", registryCount(res.Unchanged, "device"))
	}
	opts.IO.Infof("imported %s from %s into %s%s", registryCount(len(res.Added), "device"), source, reg.Location(), same)
	return nil
}
