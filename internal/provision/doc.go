// Package provision turns a device into a provisioned image: device → key
// (from the registry, recorded first) → NVS image (plain or encrypted,
// fresh or edited from an image read off the device) → verdicts and
// rotation. It is the domain half of the provision, verify and rotate
// commands (design §6 and §7, issue #6) and of factory batches.
//
// Keys are *psk.Secret throughout; images that hold a plaintext key are
// secrets too, and callers write them only through internal/secfile.
package provision
