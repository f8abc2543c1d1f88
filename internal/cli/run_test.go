package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/usmp/usmp-psk/internal/psk"
)

// TestRunFromOptions: a run function needs only its context and its
// options — test streams and fakes, no Factory (house style §5, §20).
func TestRunFromOptions(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{0x5a}, 32)
	secret := psk.CopySecret(key)
	defer secret.Destroy()
	kcv := psk.KCV(secret)

	t.Run("generate", func(t *testing.T) {
		ios, _, out, errOut := testIOStreams()
		opts := &generateOptions{IO: ios, Rand: bytes.NewReader(key), bytes: 32, out: keyOutput{encoding: psk.Hex}}
		if err := runGenerate(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		if got, want := out.String(), string(psk.Encode(secret, psk.Hex)); got != want {
			t.Errorf("stdout %q, want %q", got, want)
		}
		if !strings.Contains(errOut.String(), "kcv "+kcv) {
			t.Errorf("stderr %q lacks kcv %s", errOut, kcv)
		}
	})
	t.Run("fingerprint", func(t *testing.T) {
		ios, _, out, _ := testIOStreams()
		var read string
		opts := &fingerprintOptions{IO: ios, file: "k.psk", encoding: psk.Auto,
			ReadKey: func(file string) ([]byte, string, error) {
				read = file
				return []byte(hex.EncodeToString(key)), file, nil
			}}
		if err := runFingerprint(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		if read != "k.psk" || out.String() != kcv+"\n" {
			t.Errorf("read %q, stdout %q; want k.psk, %s", read, out, kcv)
		}
	})
}
