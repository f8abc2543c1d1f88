package cli

// Reading a secret input named on the command line — a key file, an import
// file, or "-" for standard input — the one way for every command.

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/usmp/usmp-psk/internal/psk"
)

// secretInput says what is read, for its limits and messages.
type secretInput struct {
	what     string // "key file": in "key file: open …: no such file"
	typed    string // the refusal of a terminal
	limit    int    // at most this many bytes
	tooLarge string // the message when there are more
}

var (
	// keyInput is a key (fingerprint, --psk-file): never near 1 MiB.
	keyInput = secretInput{what: "key file", limit: 1 << 20, tooLarge: "larger than 1 MiB; not a key",
		typed: "refusing to read a key typed on a terminal (it would be echoed)\nhint: pass a FILE or pipe the key in"}
	// importInput is a registry import: millions of devices.
	importInput = secretInput{what: "import file", limit: 256 << 20, tooLarge: "larger than 256 MiB; split the import",
		typed: "refusing to read keys typed on a terminal (they would be echoed)\nhint: pass a FILE or pipe the keys in"}
)

// readKeyInput reads a key file or standard input ("-").
func readKeyInput(f *Factory, file string) ([]byte, string, error) {
	return readSecretInput(f, file, keyInput)
}

// readImportFile reads an import file or standard input ("-").
func readImportFile(f *Factory, file string) ([]byte, string, error) {
	return readSecretInput(f, file, importInput)
}

// readSecretInput reads file, or standard input for "-", refusing a
// terminal (what is typed would be echoed) and files that others can write
// (R7). A pipe or FIFO that never delivers does not hold up an interrupt,
// and one that ends empty because Ctrl-C killed its writer is an
// interrupt, not an empty input (readInterruptibly; issue 13 item 6).
func readSecretInput(f *Factory, file string, in secretInput) ([]byte, string, error) {
	source, stream := file, isStream(file)
	if file == "-" {
		source, stream = stdinSource, isStreamReader(f.IO.In)
		if f.IO.IsStdinTTY() {
			return nil, source, inputError(errors.New(in.typed))
		}
	}
	data, err := readInterruptibly(f, func() ([]byte, error) { return readSecretBytes(f, file, source, in) }, psk.Wipe,
		func(d []byte, err error) bool { return stream && (err != nil || len(d) == 0) })
	return data, source, err
}

// readSecretBytes does the reading for readSecretInput.
func readSecretBytes(f *Factory, file, source string, in secretInput) ([]byte, error) {
	r := f.IO.In
	if file != "-" {
		fh, err := os.Open(file)
		if err != nil {
			return nil, inputError(fmt.Errorf("%s: %w", in.what, err))
		}
		defer fh.Close()
		if err := psk.CheckKeyFileMode(fh, file, f.IO.Warn); err != nil {
			return nil, err
		}
		r = fh
	}
	data, tooLarge, err := readAllWiping(r, in.limit)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: read failed", source)
	case tooLarge:
		return nil, &psk.InputError{Source: source, Msg: in.tooLarge}
	}
	return data, nil
}

// readAllWiping reads r to its end, at most limit bytes, wiping every buffer
// it outgrows (the data is key text; R26, best effort). On an error or when
// r holds more than limit bytes, nothing is returned and all is wiped.
func readAllWiping(r io.Reader, limit int) (data []byte, tooLarge bool, err error) {
	buf := make([]byte, 0, 64<<10)
	for {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), 2*cap(buf))
			copy(grown, buf)
			psk.Wipe(buf)
			buf = grown
		}
		n, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case len(buf) > limit:
			psk.Wipe(buf)
			return nil, true, nil
		case rerr == io.EOF:
			return buf, false, nil
		case rerr != nil:
			psk.Wipe(buf)
			return nil, false, rerr
		}
	}
}
