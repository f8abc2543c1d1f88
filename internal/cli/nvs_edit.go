package cli

// nvs set and nvs erase: general edits of an image with the editor that
// writes the way the device's NVS library does (issue #6 item 5). Blob
// values come only from --value-file (- for stdin), never from a flag, and
// --value is refused for the configured PSK entry (R1). Images are secrets:
// they are written 0600 and atomically (R5, R16).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/nvs/nvscrypt"
	"github.com/usmp/usmp-psk/internal/provision"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/secfile"
)

type nvsEditOptions struct {
	nvsDeps
	// FileOptions are the secret-file options of the edited image.
	FileOptions func(replace bool) secfile.Options
	// ReadValueFile reads --value-file (- for standard input).
	ReadValueFile func(path string) ([]byte, string, error)

	image     string
	namespace string
	key       string
	typ       string
	value     string
	valueSet  bool
	valueFile string
	output    string
	force     bool
	keys      nvsKeySource
	erase     bool
	json      bool
}

// nvsValueTypes are the types nvs set takes.
var nvsValueTypes = map[string]nvs.Type{
	"u8": nvs.TypeU8, "i8": nvs.TypeI8, "u16": nvs.TypeU16, "i16": nvs.TypeI16,
	"u32": nvs.TypeU32, "i32": nvs.TypeI32, "u64": nvs.TypeU64, "i64": nvs.TypeI64,
	"string": nvs.TypeString, "blob": nvs.TypeBlob,
}

// newNVSEditOptions returns the options of nvs set (erase false) or nvs
// erase, with what they use of the Factory.
func newNVSEditOptions(f *Factory, root *rootOptions, erase bool) *nvsEditOptions {
	return &nvsEditOptions{nvsDeps: newNVSDeps(f), FileOptions: f.fileOptionsFor(root),
		ReadValueFile: func(path string) ([]byte, string, error) { return readValueFile(f, path) },
		erase:         erase}
}

func newNVSSetCmd(f *Factory, root *rootOptions, runF func(*nvsEditOptions) error) *cobra.Command {
	opts := newNVSEditOptions(f, root, false)
	cmd := &cobra.Command{
		Use:   "set IMAGE --namespace NS --key K --type T (--value V | --value-file F) [-o OUT] [--keys KEYS.bin | --hmac-key FILE]",
		Short: "Set a key in an NVS image the way the device's library writes it",
		Long: `Set one key of an NVS image — for example one read off a device with esptool
read_flash — the way the device's own NVS library writes it: the new item is
appended to the active page and the old one is marked erased, so every other
entry stays as the device left it. With --keys or --hmac-key the image is
encrypted and stays encrypted. An image that looks encrypted (valid pages, no
entry with a valid CRC) is refused without them (exit 2): the edit would erase
every entry. Keys that do not decrypt the image exit 3.

Types: u8 i8 u16 i16 u32 i32 u64 i64 string blob. Integers and strings may be
given with --value; blobs only with --value-file (a file, or - for standard
input), and the configured PSK entry (usmp/psk by default) only that way too,
so no key ever appears on a command line. A string from --value-file loses one
trailing newline.

The image is edited in place (atomically, 0600) unless -o OUT names a new file.`,
		Example: `  # WiFi credentials next to the USMP entries
  $ usmp-psk nvs set dev.bin --namespace wifi --key ssid --type string --value factory-net
  $ usmp-psk nvs set dev.bin --namespace wifi --key pass --type string --value-file wifi-pass.txt

  # a new key into an encrypted image, as a new file
  $ usmp-psk derive dev-7 --encoding raw | usmp-psk nvs set dev.bin --namespace usmp --key psk --type blob --value-file - --keys nvs_keys.bin -o dev-new.bin`,
		Args: exactArgs(1, "IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			opts.valueSet = cmd.Flags().Changed("value")
			if err := opts.validate(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runNVSEdit(cmd.Context(), opts)
		},
	}
	opts.addFlags(cmd)
	cmd.Flags().StringVar(&opts.typ, "type", "", "value type `T`: u8 i8 u16 i16 u32 i32 u64 i64 string blob")
	cmd.Flags().StringVar(&opts.value, "value", "", "the value `V` (integers and strings; never blobs or the PSK)")
	cmd.Flags().StringVar(&opts.valueFile, "value-file", "", "read the value from `FILE` (- for standard input)")
	cmd.MarkFlagsMutuallyExclusive("value", "value-file")
	return cmd
}

func newNVSEraseCmd(f *Factory, root *rootOptions, runF func(*nvsEditOptions) error) *cobra.Command {
	opts := newNVSEditOptions(f, root, true)
	cmd := &cobra.Command{
		Use:   "erase IMAGE --namespace NS --key K [-o OUT] [--keys KEYS.bin | --hmac-key FILE]",
		Short: "Erase a key from an NVS image the way the device's library does",
		Long: `Erase one key of an NVS image the way the device's NVS library does
(nvs_erase_key): its entries are marked erased, every other entry is kept.
A key that is not there is an error (exit 2). The image is edited in place
(atomically, 0600) unless -o OUT names a new file. An encrypted image needs
its keys (--keys or --hmac-key), as for nvs set.`,
		Example: `  $ usmp-psk nvs erase dev.bin --namespace wifi --key pass`,
		Args:    exactArgs(1, "IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.image = args[0]
			if err := opts.validate(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runNVSEdit(cmd.Context(), opts)
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func (o *nvsEditOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.namespace, "namespace", "", "namespace `NS` (1-15 bytes)")
	cmd.Flags().StringVar(&o.key, "key", "", "key name `K` (1-15 bytes)")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "write the edited image to `OUT` instead of editing IMAGE in place")
	cmd.Flags().BoolVar(&o.force, "force", false, "replace an existing OUT")
	addKeySourceFlags(cmd, &o.keys)
	addReportJSONFlag(cmd, &o.json)
}

// isPSKEntry reports whether ns/key is a PSK entry: the configured one,
// or design §6's default, which no configuration makes an ordinary entry
// (a stray usmp-psk.yaml moving nvs.psk_key must not lift the rules on
// what goes into usmp/psk).
func (o *nvsEditOptions) isPSKEntry() bool {
	l, def := o.Layout(), nvs.DefaultUSMPLayout()
	return (o.namespace == l.Namespace && o.key == l.PSKKey) ||
		(o.namespace == def.Namespace && o.key == def.PSKKey)
}

func (o *nvsEditOptions) validate(cmd *cobra.Command) error {
	for _, n := range []struct{ flag, v string }{{"--namespace", o.namespace}, {"--key", o.key}} {
		if n.v == "" || len(n.v) > nvs.MaxKeyLen || strings.IndexByte(n.v, 0) >= 0 {
			return flagErrorf(n.flag + " must be 1 to 15 bytes")
		}
	}
	if err := o.keys.validate(cmd); err != nil {
		return err
	}
	if o.erase {
		return nil
	}
	t, ok := nvsValueTypes[strings.ToLower(o.typ)]
	switch {
	case o.typ == "":
		return flagErrorf("--type is required: u8 i8 u16 i16 u32 i32 u64 i64 string blob")
	case !ok:
		return flagErrorf("unknown --type (want u8 i8 u16 i16 u32 i32 u64 i64 string blob)")
	case !o.valueSet && o.valueFile == "":
		return flagErrorf("give the value with --value V or --value-file FILE")
	case o.valueSet && o.isPSKEntry():
		return flagErrorf(fmt.Sprintf("refusing --value for %s/%s, the PSK entry: a key never goes on a command line\nhint: use --value-file FILE or --value-file - (standard input)", o.namespace, o.key))
	case o.valueSet && t == nvs.TypeBlob:
		return flagErrorf("blob values come only from --value-file FILE (or - for standard input)")
	}
	return nil
}

func runNVSEdit(ctx context.Context, o *nvsEditOptions) error {
	out, replace := o.output, o.force
	if out == "" {
		out, replace = o.image, true
	}
	wopts := o.FileOptions(replace)
	if err := secfile.Check(out, wopts); err != nil {
		return err
	}
	if !replace && exists(out) {
		return &secfile.ExistsError{Path: out}
	}
	keys, err := o.keys.load(o.ReadKeyFile)
	if err != nil {
		return err
	}
	if keys != nil {
		defer keys.Destroy()
	}
	img, err := readImageFile(ctx, o.image)
	if err != nil {
		return err
	}
	defer psk.Wipe(img)
	if err := o.checkBase(img, keys); err != nil {
		return err
	}
	dec, enc, err := provision.EntryHooks(keys)
	if err != nil {
		return err
	}
	ed, err := nvs.OpenEditor(img, nvs.EditOptions{Decrypt: dec, Encrypt: enc})
	if err != nil {
		return fmt.Errorf("%s: %w", o.image, err)
	}
	what, err := o.edit(ed)
	if err != nil {
		return err
	}
	edited := ed.Bytes()
	defer psk.Wipe(edited)
	if err := secfile.WriteFile(out, edited, wopts); err != nil {
		return err
	}
	kind := "image"
	if keys != nil {
		kind = "encrypted-image"
	}
	if err := reportFiles(o.IO, o.json, fileReport{Path: out, Kind: kind, Bytes: len(edited), Edit: what,
		text: fmt.Sprintf("%s in %s", what, out)}); err != nil {
		return err
	}
	if keys == nil && !o.erase && o.isPSKEntry() {
		warnPlaintextImage(o.IO, out)
	}
	return nil
}

// checkBase refuses an image the editor would damage: the editor drops
// entries whose CRC fails, as the device does, so an encrypted image
// edited without its keys, or with the wrong ones, would lose every entry.
// Nothing is written then.
func (o *nvsEditOptions) checkBase(img []byte, keys *nvscrypt.Keys) error {
	err := provision.CheckBase(img, keys)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, provision.ErrNotNVS):
		// Zeros or random bytes would be "edited" into a fresh NVS image
		// with exit 0 (issue 13 item 8): the wrong file.
		return badInputf("%s: %w; nothing was written\nhint: IMAGE is an NVS partition image, e.g. esptool read_flash 0x9000 0x6000 dev.bin (the nvs partition's offset and size)", o.image, err)
	case errors.Is(err, provision.ErrLooksEncrypted):
		return encryptedImageError(o.image, "nothing was written", "")
	case errors.Is(err, provision.ErrWrongKeys):
		return &wrongKeyError{image: o.image, keysFile: o.keys.keys + o.keys.hmacKey, kcv: keys.KCV(), err: err}
	}
	return err
}

// edit makes the change, nvs set's or nvs erase's, and says what it was.
func (o *nvsEditOptions) edit(ed *nvs.Editor) (string, error) {
	if !o.erase {
		return o.set(ed)
	}
	if err := ed.Erase(o.namespace, o.key); err != nil {
		if errors.Is(err, nvs.DeviceNotFound) {
			return "", badInputf("%s: there is no key %s/%s to erase", o.image, o.namespace, o.key)
		}
		return "", fmt.Errorf("%s: %w", o.image, err)
	}
	return fmt.Sprintf("erased %s/%s", o.namespace, o.key), nil
}

// set parses the value and writes it; it returns what it did, for the
// report (lengths and KCVs, never values of strings or blobs).
func (o *nvsEditOptions) set(ed *nvs.Editor) (string, error) {
	t := nvsValueTypes[strings.ToLower(o.typ)]
	var data []byte
	if o.valueFile != "" {
		b, source, err := o.ReadValueFile(o.valueFile)
		if err != nil {
			return "", err
		}
		defer psk.Wipe(b)
		if t == nvs.TypeString && len(b) > 0 && b[len(b)-1] == '\n' {
			b = b[:len(b)-1]
			if len(b) > 0 && b[len(b)-1] == '\r' {
				b = b[:len(b)-1]
			}
		}
		// The documentation's example keys are refused for the PSK entry
		// whatever its type, as nvs generate refuses them (design §3; a
		// string PSK got through, issue 13 item 10).
		if o.isPSKEntry() && psk.IsPlaceholder(b) {
			return "", &psk.InputError{Source: source, Msg: psk.PlaceholderRule}
		}
		data = b
	} else {
		data = []byte(o.value)
	}
	where := o.namespace + "/" + o.key
	var err error
	switch {
	case t == nvs.TypeBlob:
		err = ed.SetBlob(o.namespace, o.key, data)
	case t == nvs.TypeString:
		// The editor takes a string; values are not secret here (the PSK
		// entry is a blob), but the conversion is kept to this call.
		err = ed.SetString(o.namespace, o.key, string(data))
	case t.Signed():
		v, perr := parseNVSInt(strings.TrimSpace(string(data)), t)
		if perr != nil {
			return "", perr
		}
		err = ed.SetInt(o.namespace, o.key, t, v)
	default:
		v, perr := parseNVSUint(strings.TrimSpace(string(data)), t)
		if perr != nil {
			return "", perr
		}
		err = ed.SetUint(o.namespace, o.key, t, v)
	}
	if err != nil {
		if errors.Is(err, nvs.ErrStringNUL) || errors.Is(err, nvs.ErrInvalidName) {
			return "", badInputf("%s: %w", where, err)
		}
		return "", fmt.Errorf("%s: %w", o.image, err)
	}
	switch t {
	case nvs.TypeBlob:
		k := psk.CopySecret(data)
		defer k.Destroy()
		return fmt.Sprintf("set %s (blob, %d bytes, kcv %s)", where, len(data), psk.KCV(k)), nil
	case nvs.TypeString:
		return fmt.Sprintf("set %s (string, %d bytes)", where, len(data)), nil
	}
	return fmt.Sprintf("set %s (%s)", where, t), nil
}

// readValueFile reads --value-file: a file (R7 mode check) or stdin ("-"),
// refusing a terminal, which would echo a secret value. A pipe or FIFO
// that never delivers does not hold up an interrupt.
func readValueFile(f *Factory, path string) ([]byte, string, error) {
	source, stream := path, isStream(path)
	if path == "-" {
		source, stream = stdinSource, isStreamReader(f.IO.In)
	}
	data, err := readInterruptibly(f, func() ([]byte, error) {
		b, _, err := readValueBytes(f, path)
		return b, err
	}, psk.Wipe, func(d []byte, err error) bool { return stream && (err != nil || len(d) == 0) })
	return data, source, err
}

// readValueBytes does the reading for readValueFile.
func readValueBytes(f *Factory, path string) ([]byte, string, error) {
	if path == "-" {
		if f.IO.IsStdinTTY() {
			return nil, stdinSource, inputError(errors.New("refusing to read a value typed on a terminal (it would be echoed)\nhint: pass --value-file FILE or pipe the value in"))
		}
		b, err := io.ReadAll(io.LimitReader(f.IO.In, nvs.MaxImageSize+1))
		if err != nil {
			return nil, stdinSource, fmt.Errorf("standard input: read failed")
		}
		if len(b) > nvs.MaxImageSize {
			psk.Wipe(b)
			return nil, stdinSource, &psk.InputError{Source: stdinSource, Msg: "larger than the largest image"}
		}
		return b, stdinSource, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, path, badInputf("--value-file: %w", err)
	}
	defer fh.Close()
	if err := psk.CheckKeyFileMode(fh, path, f.IO.Warn); err != nil {
		return nil, path, err
	}
	b, err := io.ReadAll(io.LimitReader(fh, nvs.MaxImageSize+1))
	if err != nil {
		return nil, path, fmt.Errorf("%s: read failed", path)
	}
	if len(b) > nvs.MaxImageSize {
		psk.Wipe(b)
		return nil, path, &psk.InputError{Source: path, Msg: "larger than the largest image"}
	}
	return b, path, nil
}

func parseNVSInt(s string, t nvs.Type) (int64, error) {
	bits := t.IntSize() * 8
	v, err := strconv.ParseInt(s, 10, bits)
	if err != nil {
		lo, hi := int64(-1)<<(bits-1), int64(math.MaxInt64)>>(64-bits)
		return 0, &psk.InputError{Source: "--value", Msg: fmt.Sprintf("want a decimal integer from %d to %d for %s", lo, hi, t)}
	}
	return v, nil
}

func parseNVSUint(s string, t nvs.Type) (uint64, error) {
	bits := t.IntSize() * 8
	v, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		hi := uint64(math.MaxUint64) >> (64 - bits)
		return 0, &psk.InputError{Source: "--value", Msg: fmt.Sprintf("want a decimal integer from 0 to %d for %s", hi, t)}
	}
	return v, nil
}
