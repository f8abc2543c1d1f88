package cli

// A master secret typed at the prompt is asked twice when nothing can check
// it (issue 14 item 13), as restic asks twice for a new repository's
// password: a typo would otherwise derive, record and write wrong keys
// without a word. Where the registry holds derived devices it checks the
// master against their KCVs (provision, rotate, batch and registry add
// refuse a master that does not reproduce them; derive warns), so one entry
// is enough there.

import (
	"crypto/subtle"
	"errors"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
)

// errMasterRepeat is the refusal of two different entries at the prompt.
var errMasterRepeat = &FlagError{noUsageLine: true, Err: errors.New("the master secret was entered twice, differently; nothing was written\nhint: run the command again and type the same master secret twice (it is asked twice because no registry record can check it)")}

// masterPrompt returns the prompt of the master secret on p: once, or twice
// when nothing will check what was typed.
func (f *Factory) masterPrompt(p prompter) func() ([]byte, error) {
	return func() ([]byte, error) {
		b, err := p.Password("Master secret (" + psk.MasterEnv + "): ")
		if err != nil || (f.masterCheckable != nil && f.masterCheckable()) {
			return b, err
		}
		again, err := p.Password("Repeat the master secret: ")
		if err != nil {
			psk.Wipe(b)
			return nil, err
		}
		defer psk.Wipe(again)
		if subtle.ConstantTimeCompare(b, again) != 1 {
			psk.Wipe(b)
			return nil, errMasterRepeat
		}
		return b, nil
	}
}

// registryChecksMaster reports whether the registry of this run will check
// a master secret for cmd: for derive, a derived record of the device or
// else, as for the commands that record devices, any active derived
// device; verify checks it against the image itself. It is asked only when
// the prompt is about to be used, and errs on the side of asking twice.
func registryChecksMaster(f *Factory, root *rootOptions, cmd *cobra.Command, args []string) bool {
	path := subcommandPath(cmd)
	if path == "verify" {
		return true
	}
	if !slices.Contains([]string{"derive", "provision", "rotate", "batch", "registry add", "registry import", "registry export"}, path) {
		return false
	}
	if root.registry == registry.DefaultPath {
		if _, err := os.Stat(registry.DefaultPath); err != nil {
			return false
		}
	}
	reg, err := registry.Open(root.registry, f.registryOptions(root))
	if err != nil {
		return false
	}
	defer reg.Close()
	ctx := f.runContext()
	if path == "derive" {
		if len(args) != 1 {
			return false
		}
		// derive checks the master against the device's record, or
		// against the registry's derived devices when it has none.
		if dev, err := reg.Show(ctx, args[0]); err == nil && dev.Source == registry.SourceDerived {
			return true
		}
	}
	st, err := reg.Stats(ctx)
	return err == nil && st.ActiveDerived > 0
}
