//go:build ignore

// Fixture for secret-print: fmt, log and slog calls, *log.Logger and
// *slog.Logger methods, the builtins and the CLI's f.IO.Infof that are given
// a value from Expose(), directly or through a tracked variable.

package cli

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"

	"github.com/usmp/usmp-psk/internal/psk"
)

// factory has the shape of the CLI's Factory; IOStreams is not declared in
// this lone file, so f.IO.Infof is recognised by its shape.
type factory struct {
	IO *IOStreams
}

func printDirect(w io.Writer, key *psk.Secret) error {
	fmt.Println(key.Expose())                                // want "secret-print"
	fmt.Fprintf(w, "%s\n", hex.EncodeToString(key.Expose())) // want "secret-print"
	log.Printf("key %x", key.Expose()[:4])                   // want "secret-print"
	slog.Info("derived", "key", key.Expose())                // want "secret-print"
	return fmt.Errorf("bad key %x", key.Expose())            // want "secret-print"
}

func printTracked(f *factory, key *psk.Secret) {
	b := key.Expose()
	head := b[:4]
	var enc = base64.StdEncoding.EncodeToString(head)
	fmt.Printf("%x\n", b)          // want "secret-print"
	fmt.Println("head", head)      // want "secret-print"
	fmt.Println(enc)               // want "secret-print"
	f.IO.Infof("key %x", b)        // want "secret-print"
	f.IO.Warnf("key %x", head)     // want "secret-print"
	println(len(b), string(b[:2])) // want "secret-print" "secret-string"
	fmt.Fprintln(os.Stderr,
		"wrote", "key", b) // want "secret-print"
	defer func() {
		fmt.Println(b) // want "secret-print"
	}()
	if len(b) == 0 {
		panic(b) // want "secret-print"
	}
}

func printLoggers(key *psk.Secret) {
	b := key.Expose()
	logger := log.New(os.Stderr, "usmp-psk: ", 0)
	logger.Println("key", b) // want "secret-print"
	sl := slog.New(slog.NewTextHandler(os.Stderr, nil))
	sl.Warn("key", "value", b)                 // want "secret-print"
	sl.With("key", key.Expose()).Info("ready") // want "secret-print"
	s := slog.Any("key", b)                    // want "secret-print"
	_ = s
}
