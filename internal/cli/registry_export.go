package cli

// registry export writes key bytes: only to a 0600 file (-o) or to a
// non-terminal standard output (R5, R10), with a warning when standard
// output is a file others can read (R7). Reports name the path, the number
// of devices and the format, never a key.
//
// Encrypted with age to the gateways' recipients (issue 15 part 2), an
// export is no secret: it is written 0644, may go where git would commit
// it, and, armored, to a terminal. Only its plaintext is never written.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/agecrypt"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/registry"
	"github.com/usmp/usmp-psk/internal/secfile"
)

type registryExportOptions struct {
	IO           *IOStreams
	OpenRegistry func() (*registry.Registry, error)
	Master       func() (*psk.Secret, error)
	// FileOptions are the options of -o FILE's write: a secret file, or a
	// public one when the export is encrypted.
	FileOptions func(replace, public bool) secfile.Options

	output         string
	format         string
	force          bool
	json           bool
	recipients     []string
	recipientsFile string
	armor          bool
}

func newRegistryExportCmd(f *Factory, root *rootOptions, runF func(*registryExportOptions) error) *cobra.Command {
	opts := &registryExportOptions{IO: f.IO, OpenRegistry: f.registryOpener(root), Master: f.masterLoader(root),
		FileOptions: func(replace, public bool) secfile.Options {
			return secfile.Options{Replace: replace, AllowUnignored: root.allowUnignored, Public: public, Warn: f.IO.Warn, StepHook: f.fileStepHook()}
		}}
	cmd := &cobra.Command{
		Use:   "export [-o FILE] [--recipient AGE_RECIPIENT]... [--recipients-file FILE] [--armor] [--format json] [--force] [--json]",
		Short: "Write the gateway's keys: {\"device_id\": \"hex psk\"} for every active device",
		Long: `Write the keys of every active device as the JSON map the gateway's
load_psk_registry reads: {"device_id": "hex psk", ...}, one device per line,
in id order. Derived keys are computed from the master secret at each device's
epoch and checked against the registry's KCV; stored keys are written as they
are. Revoked devices are left out. The master secret is asked for only when
the registry has active derived devices.

The export holds key bytes. It goes to -o FILE, written 0600 and atomically
(an existing file is replaced only with --force), or to standard output when
that is a pipe or a file; a terminal is refused. The audit log records every
export. See docs/gateway.md.

With --recipient (repeatable) or --recipients-file the export is encrypted
with age to those X25519 recipients (public keys, age1..., as age-keygen -y
prints them; any one of their identities decrypts it), in age's binary
format or, with --armor, its ASCII armor. An encrypted export is not secret:
-o FILE is written 0644 (still atomically, and replaced only with --force),
inside a git work tree or an open directory too, and it may go to a terminal
when armored (binary output to a terminal is refused as unreadable, not as
secret). The gateway decrypts it with age into memory:
load_psk_registry("export.json.age", identity="gw.key").`,
		Example: `  # a file for the gateway (0600)
  $ usmp-psk registry export -o /etc/usmp/psk-registry.json

  # after a rotation or revocation: replace it, then reload the gateway
  $ usmp-psk registry export -o /etc/usmp/psk-registry.json --force

  # straight into a loader, through a pipe
  $ usmp-psk registry export | python3 -c 'import sys, usmp_gateway as g; print(len(g.load_psk_registry(sys.stdin.buffer)))'

  # encrypted to the gateway's age recipient: not secret, ship it any way
  $ usmp-psk registry export --recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p -o psk-registry.json.age

  # to every gateway listed in a recipients file, as text
  $ usmp-psk registry export --recipients-file gateways.txt --armor > psk-registry.json.age`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.format != "json" {
				return registryUsage(cmd, "invalid value for --format (want json)")
			}
			if opts.json && (opts.output == "" || opts.output == "-") {
				return registryUsage(cmd, "--json needs -o FILE: standard output carries the export")
			}
			if opts.armor && !opts.encrypted() {
				return registryUsage(cmd, "--armor needs --recipient or --recipients-file: it is the text form of an encrypted export")
			}
			if runF != nil {
				return runF(opts)
			}
			return runRegistryExport(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.output, "output", "o", "", "write the export to `FILE` (0600, or 0644 encrypted; - or absent: standard output, a terminal only when encrypted and armored)")
	fl.StringVar(&opts.format, "format", "json", "output `FORMAT`: json (the map load_psk_registry reads)")
	fl.BoolVar(&opts.force, "force", false, "replace an existing FILE")
	fl.BoolVar(&opts.json, "json", false, `with -o, print {"path","devices","revoked","format","registry"} (and "encryption","recipients","armor") as JSON`)
	fl.StringArrayVar(&opts.recipients, "recipient", nil, "encrypt with age to this `AGE_RECIPIENT` (age1..., a public key; repeatable)")
	fl.StringVar(&opts.recipientsFile, "recipients-file", "", "encrypt with age to the recipients in `FILE` (one age1... a line, # comments)")
	fl.BoolVar(&opts.armor, "armor", false, "with a recipient: write age's ASCII armor (text) instead of binary")
	return cmd
}

// encrypted reports whether the export is to be encrypted with age.
func (o *registryExportOptions) encrypted() bool {
	return len(o.recipients) > 0 || o.recipientsFile != ""
}

// ageRecipients parses --recipient and --recipients-file (nil when neither
// is given). A bad one is bad input (exit 2) named by its flag and
// position or its file and line, never repeated (it may be a secret key).
func (o *registryExportOptions) ageRecipients(ctx context.Context) ([]*age.X25519Recipient, error) {
	var out []*age.X25519Recipient
	for i, s := range o.recipients {
		source := "--recipient"
		if len(o.recipients) > 1 {
			source = fmt.Sprintf("--recipient #%d", i+1)
		}
		r, err := agecrypt.ParseRecipient(source, s)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if o.recipientsFile != "" {
		// A pipe or FIFO that never delivers does not hold up an
		// interrupt (issue 13 item 6).
		stream := isStream(o.recipientsFile)
		rs, err := interruptibly(ctx, nil, func() ([]*age.X25519Recipient, error) { return readRecipientsFile(o.recipientsFile) }, nil,
			func(_ []*age.X25519Recipient, err error) bool { return stream && err != nil })
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// readRecipientsFile reads and parses --recipients-file.
func readRecipientsFile(path string) ([]*age.X25519Recipient, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, &FlagError{Err: fmt.Errorf("--recipients-file: %w", err)}
	}
	defer fh.Close()
	return agecrypt.ParseRecipientsFile(path, fh)
}

// errBinaryTerminal refuses age's binary format on a terminal: it is not
// secret, but it would garble the terminal, as age itself says.
var errBinaryTerminal = &FlagError{Err: errors.New("refusing to write binary age output to a terminal\nhint: add --armor for text (the export is encrypted, so showing it is safe), or use -o FILE or a pipe")}

// registryExportReport is what export says: never a key.
type registryExportReport struct {
	Path       string `json:"path"`
	Devices    int    `json:"devices"`
	Revoked    int    `json:"revoked"`
	Format     string `json:"format"`
	Registry   string `json:"registry"`
	Encryption string `json:"encryption,omitempty"`
	Recipients int    `json:"recipients,omitempty"`
	Armor      bool   `json:"armor,omitempty"`
}

// exportTarget is where an export goes and how.
type exportTarget struct {
	toStdout   bool
	path       string
	wopts      secfile.Options
	recipients []*age.X25519Recipient // nil: plaintext
	armor      bool
}

func runRegistryExport(ctx context.Context, opts *registryExportOptions) error {
	// Check the destination before the master secret is asked for and the
	// audit log records an export (R6, R8, R10).
	tgt, err := exportDestination(ctx, opts)
	if err != nil {
		return err
	}
	reg, err := opts.OpenRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	st, err := reg.Stats(ctx)
	if err != nil {
		return err
	}
	var master *psk.Secret
	if st.NeedsMaster() {
		if master, err = opts.Master(); err != nil {
			return err
		}
		defer master.Destroy()
	}
	if tgt.toStdout && tgt.recipients == nil {
		if mode, ok := opts.IO.stdoutMode(); ok && mode&0o044 != 0 {
			opts.IO.Warnf("standard output is a file that group or others can read (mode %04o); an export holds keys: use -o FILE (written 0600)", mode)
		}
	}
	// The export's audit entry is committed with the reading of the keys,
	// before they go out: a delivered export always has its entry, and one
	// whose delivery fails is over-reported, never hidden.
	ex, err := reg.Export(ctx, master)
	if err != nil {
		return err
	}
	defer ex.Destroy()
	if err := deliverExport(opts.IO, ex, tgt); err != nil {
		return fmt.Errorf("%w\nhint: the export is recorded in the audit log of %s; treat its keys as exported, and export again", err, reg.Location())
	}
	rep := registryExportReport{Path: opts.output, Devices: ex.Len(), Revoked: st.Revoked, Format: opts.format, Registry: reg.Location()}
	if tgt.recipients != nil {
		rep.Encryption, rep.Recipients, rep.Armor = "age", len(tgt.recipients), tgt.armor
	}
	if ex.Len() == 0 {
		opts.IO.Warnf("%s has no active devices: the export is empty ({})", reg.Location())
	}
	if tgt.toStdout {
		rep.Path = "-"
		opts.IO.Infof("exported the keys of %s to standard output (%s%s)", registryCount(rep.Devices, "active device"), rep.note(false), leftOut(rep.Revoked))
		return nil
	}
	if opts.json {
		return printJSON(opts.IO, rep)
	}
	opts.IO.Infof("exported the keys of %s to %s (%s%s)", registryCount(rep.Devices, "active device"), rep.Path, rep.note(true), leftOut(rep.Revoked))
	return nil
}

// exportDestination resolves the recipients and checks where the export
// goes: a terminal only for armored ciphertext; a file by the secret-file
// rules, or as a public file when encrypted.
func exportDestination(ctx context.Context, opts *registryExportOptions) (*exportTarget, error) {
	recipients, err := opts.ageRecipients(ctx)
	if err != nil {
		return nil, err
	}
	tgt := &exportTarget{
		toStdout:   opts.output == "" || opts.output == "-",
		path:       opts.output,
		wopts:      opts.FileOptions(opts.force, recipients != nil),
		recipients: recipients,
		armor:      opts.armor,
	}
	if tgt.toStdout {
		switch {
		case !opts.IO.IsStdoutTTY():
		case recipients == nil:
			return nil, errTerminal
		case !opts.armor:
			return nil, errBinaryTerminal
		}
		return tgt, nil
	}
	if err := secfile.Check(opts.output, tgt.wopts); err != nil {
		return nil, err
	}
	if !opts.force && exists(opts.output) {
		return nil, &secfile.ExistsError{Path: opts.output}
	}
	return tgt, nil
}

// note is "json, 0600" or "json, age-encrypted to 2 recipients, armored"
// (without the mode for standard output).
func (r registryExportReport) note(file bool) string {
	if r.Encryption == "" {
		if file {
			return r.Format + ", 0600"
		}
		return r.Format
	}
	s := r.Format + ", age-encrypted to " + registryCount(r.Recipients, "recipient")
	if r.Armor {
		s += ", armored"
	}
	return s
}

// deliverExport writes the export to standard output or to a file, through
// age when it has recipients: the plaintext only ever goes to the
// encrypting writer.
func deliverExport(ios *IOStreams, ex *registry.Export, tgt *exportTarget) error {
	write := ex.WriteJSON
	if tgt.recipients != nil {
		write = func(w io.Writer) error { return agecrypt.Encrypt(w, tgt.recipients, tgt.armor, ex.WriteJSON) }
	}
	if !tgt.toStdout {
		return secfile.Write(tgt.path, tgt.wopts, write)
	}
	// A reader that goes away must not kill the process with SIGPIPE
	// (exit 141, outside the documented exit codes): with the signal
	// ignored, the write fails with EPIPE instead.
	signal.Ignore(syscall.SIGPIPE)
	defer signal.Reset(syscall.SIGPIPE)
	if err := write(ios.Out); err != nil {
		return fmt.Errorf("write standard output: %w", err)
	}
	return nil
}

// leftOut is "; 2 revoked devices left out", or "".
func leftOut(revoked int) string {
	if revoked == 0 {
		return ""
	}
	return "; " + registryCount(revoked, "revoked device") + " left out"
}
