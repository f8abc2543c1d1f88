//go:build ignore

// Fixture: printing what may be printed (R10) — the KCV, the length, the
// Secret itself (which redacts), a path — and using Expose() where key bytes
// belong (a MAC, a constant-time comparison).

package cli

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/usmp/usmp-psk/internal/psk"
)

type factory struct {
	IO *IOStreams
}

func printOK(f *factory, key *psk.Secret, path string) {
	fmt.Println(psk.KCV(key))
	fmt.Printf("%d bytes\n", len(key.Expose()))
	fmt.Println(key.Len(), key)
	f.IO.Infof("wrote %s (%d bytes, KCV %s)", path, key.Len(), psk.KCV(key))
	b := key.Expose()
	fmt.Fprintf(os.Stderr, "%d bytes\n", len(b))
	log.Printf("cap %d", cap(b))
	slog.Info("key written", "path", path, "kcv", psk.KCV(key))
	m := hmac.New(sha256.New, b)
	m.Write([]byte("usmp-psk kcv v1"))
	fmt.Println(path, m.Size())
	// The result of a function of the key is not tracked: only the key
	// bytes themselves (and their slices, copies and encodings) are.
	placeholder := psk.IsPlaceholder(b)
	fmt.Println("placeholder:", placeholder)
}
