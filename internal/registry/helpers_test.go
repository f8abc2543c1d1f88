package registry

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
)

// t0 is the start of every test clock.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// clock returns a Now that advances one second per call.
func clock() func() time.Time {
	var mu sync.Mutex
	t := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

// canaryMaster returns a fresh random master secret (security.md "canary"):
// the text of 32 random bytes in hex, as an operator would put it in
// $USMP_MASTER_SECRET.
func canaryMaster(t testing.TB) *psk.Secret {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return psk.NewSecret([]byte(hex.EncodeToString(b)))
}

// counterReader is a deterministic "random" source for golden files.
type counterReader struct{ n byte }

func (c *counterReader) Read(p []byte) (int, error) {
	for i := range p {
		c.n++
		p[i] = c.n*37 + 11
	}
	return len(p), nil
}

type testEnv struct {
	path  string
	reg   *Registry
	mu    sync.Mutex
	warns []string
	made  []string
}

func (e *testEnv) warnings() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.warns...)
}

// newEnv opens a registry in a fresh directory with a test clock, a fixed
// actor and warnings collected.
func newEnv(t testing.TB, mod ...func(*Options)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{path: filepath.Join(dir, "usmp-registry.db")}
	opts := Options{
		Now:    clock(),
		User:   func() string { return "tester" },
		Getenv: func(string) string { return "" },
		Warn: func(m string) {
			e.mu.Lock()
			e.warns = append(e.warns, m)
			e.mu.Unlock()
		},
		OnCreate: func(loc string) {
			e.mu.Lock()
			e.made = append(e.made, loc)
			e.mu.Unlock()
		},
		LockTimeout: 30 * time.Second,
	}
	for _, m := range mod {
		m(&opts)
	}
	reg, err := Open(e.path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	e.reg = reg
	return e
}

// keyForms returns the encodings of a key that R22 scans for.
func keyForms(key []byte) []string {
	return []string{
		hex.EncodeToString(key),
		strings.ToUpper(hex.EncodeToString(key)),
		base64.StdEncoding.EncodeToString(key),
		base64.RawStdEncoding.EncodeToString(key),
		base64.URLEncoding.EncodeToString(key),
		base64.RawURLEncoding.EncodeToString(key),
		string(key),
	}
}

// assertNoKey fails when data holds key (or a 6-byte window of it) in any
// of the R22 encodings. It prints only the KCV (pitfall 13).
func assertNoKey(t testing.TB, what string, data []byte, key *psk.Secret) {
	t.Helper()
	k := key.Expose()
	for _, f := range keyForms(k) {
		if bytes.Contains(data, []byte(f)) {
			t.Fatalf("%s holds the key with KCV %s", what, psk.KCV(key))
		}
	}
	for i := 0; i+6 <= len(k); i++ {
		w := k[i : i+6]
		if bytes.Contains(data, []byte(hex.EncodeToString(w))) || bytes.Contains(data, w) {
			t.Fatalf("%s holds a 6-byte window of the key with KCV %s", what, psk.KCV(key))
		}
	}
}

// assertNoOverlap fails when msg shares a run of 4 or more characters with
// secret (R9).
func assertNoOverlap(t testing.TB, msg, secret string) {
	t.Helper()
	// KCVs (8 hex digits standing alone) may be shown, and a run of only
	// decimal digits is as likely a line number, count or temporary path
	// as a fragment: neither is evidence of a leak, and with random keys
	// they made this check fail now and then by chance.
	msg = kcvToken.ReplaceAllString(msg, "<kcv>")
	for i := 0; i+4 <= len(secret); i++ {
		w := secret[i : i+4]
		if strings.Trim(w, "0123456789") == "" {
			continue
		}
		if strings.Contains(msg, w) {
			t.Fatalf("error shares %d-character run at offset %d with the secret input", 4, i)
		}
	}
}

// kcvToken matches a KCV in a message.
var kcvToken = regexp.MustCompile(`\b[0-9a-f]{8}\b`)

// ids returns the device ids of a list.
func ids(devs []Device) []string {
	var out []string
	for _, d := range devs {
		out = append(out, d.ID)
	}
	return out
}
