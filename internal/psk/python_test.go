package psk

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"
)

// gatewayPy computes keys exactly as the USMP gateway does (design §2.1):
// the master is os.environ["USMP_MASTER_SECRET"].encode(), the message the
// device id bytes, and for epochs ≥ 1 id || 0x00 || uint32_be(epoch).
const gatewayPy = `
import hashlib, hmac, json, os, struct, sys
master = os.environ["USMP_MASTER_SECRET"].encode()
out = []
for item in json.load(sys.stdin):
    msg = item["id"].encode()
    if item["epoch"]:
        msg += b"\x00" + struct.pack(">I", item["epoch"])
    out.append(hmac.new(master, msg, hashlib.sha256).hexdigest())
json.dump(out, sys.stdout)
`

func randInt(t *testing.T, n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		t.Fatal(err)
	}
	return v.Int64()
}

// randomMaster returns a random environment value: printable ASCII and
// multi-byte UTF-8 (an environment value is a str in the gateway; NUL can't
// occur), 1 to 100 runes.
func randomMaster(t *testing.T) string {
	pool := []rune("abcXYZ0189 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\tüßé€中文😀\u00a0\u2028")
	var b strings.Builder
	for n := randInt(t, 100) + 1; n > 0; n-- {
		b.WriteRune(pool[randInt(t, int64(len(pool)))])
	}
	s := b.String()
	if !utf8.ValidString(s) {
		t.Fatal("invalid master")
	}
	return s
}

func randomID(t *testing.T) string {
	const first = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	const rest = first + "._:-"
	n := randInt(t, 64) + 1
	b := []byte{first[randInt(t, int64(len(first)))]}
	for i := int64(1); i < n; i++ {
		b = append(b, rest[randInt(t, int64(len(rest)))])
	}
	return string(b)
}

// TestDeriveMatchesPython cross-checks Derive against python3's hmac for
// random masters, ids and epochs (R25; issue 2). CI must run it: without
// python3 it fails when $CI is set, and skips only on a developer machine.
func TestDeriveMatchesPython(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is required in CI for the gateway cross-check")
		}
		t.Skip("python3 not installed")
	}
	type item struct {
		ID    string `json:"id"`
		Epoch uint32 `json:"epoch"`
	}
	for round := 0; round < 10; round++ {
		master := randomMaster(t)
		var items []item
		for i := 0; i < 100; i++ {
			epoch := uint32(0)
			switch i % 4 {
			case 1:
				epoch = 1
			case 2:
				epoch = uint32(randInt(t, 1<<32))
			case 3:
				epoch = uint32(randInt(t, 100))
			}
			items = append(items, item{randomID(t), epoch})
		}
		in, _ := json.Marshal(items)
		cmd := exec.Command(py, "-c", gatewayPy)
		// An explicit environment (R4): only what Python needs, and the
		// master exactly as the gateway gets it.
		cmd.Env = []string{"USMP_MASTER_SECRET=" + master, "PYTHONIOENCODING=utf-8", "LC_ALL=C.UTF-8", "PATH=" + os.Getenv("PATH")}
		cmd.Stdin = bytes.NewReader(in)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("python3: %v: %s", err, errb.String())
		}
		var want []string
		if err := json.Unmarshal(out.Bytes(), &want); err != nil || len(want) != len(items) {
			t.Fatalf("python3 output: %v", err)
		}
		m := CopySecret([]byte(master))
		for i, it := range items {
			got := hex.EncodeToString(Derive(m, it.ID, it.Epoch).Expose())
			if got != want[i] {
				t.Fatalf("round %d: %s@%d differs from the gateway's Python", round, it.ID, it.Epoch)
			}
		}
	}
}
