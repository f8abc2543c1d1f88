package registry

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"

	"github.com/usmp/usmp-psk/internal/psk"
)

// kcvMessage is the message of the key check value (design §3); psk.KCV is
// the reference.
const kcvMessage = "usmp-psk kcv v1"

// kcvChecker checks the KCVs of many stored keys when a registry is read:
// the same HMAC-SHA256 as psk.KCV, with its two SHA-256 states and pads
// reused instead of allocated per key (a registry of 100,000 random keys
// checks 100,000 KCVs on every read; design §8). The pads hold key
// material and are wiped after each use (R26).
type kcvChecker struct {
	h     hash.Hash
	pad   [sha256.BlockSize]byte
	inner [sha256.Size]byte
	sum   [sha256.Size]byte
	hexb  [8]byte
}

// matches reports whether want is the KCV of key, compared in constant
// time (R15).
func (c *kcvChecker) matches(key *psk.Secret, want string) bool {
	if c.h == nil {
		c.h = sha256.New()
	}
	k := key.Expose()
	if len(k) > sha256.BlockSize {
		// HMAC hashes long keys first; rare, so use the reference.
		return subtle.ConstantTimeCompare([]byte(psk.KCV(key)), []byte(want)) == 1
	}
	defer c.wipe()
	for i := range c.pad {
		c.pad[i] = 0x36
	}
	for i, b := range k {
		c.pad[i] ^= b
	}
	c.h.Reset()
	c.h.Write(c.pad[:])
	c.h.Write([]byte(kcvMessage))
	c.h.Sum(c.inner[:0])
	for i := range c.pad {
		c.pad[i] ^= 0x36 ^ 0x5c
	}
	c.h.Reset()
	c.h.Write(c.pad[:])
	c.h.Write(c.inner[:])
	c.h.Sum(c.sum[:0])
	hex.Encode(c.hexb[:], c.sum[:4])
	return subtle.ConstantTimeCompare(c.hexb[:], []byte(want)) == 1
}

func (c *kcvChecker) wipe() {
	psk.Wipe(c.pad[:])
	psk.Wipe(c.inner[:])
	c.h.Reset()
}
