// Package agecrypt encrypts registry exports to age X25519 recipients
// (filippo.io/age), so an export can travel to a gateway as a file that is
// not secret: only the gateway's age identity opens it.
//
// Recipients are public keys, but a bad value is never repeated in an
// error: the most likely mistake is pasting the identity (the secret key)
// where its recipient belongs, and that must not end up in a log.
package agecrypt
