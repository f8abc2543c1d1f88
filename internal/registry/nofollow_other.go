//go:build !unix

package registry

// noFollow is 0 where the open flag does not exist; O_EXCL still refuses
// an existing path, link or not.
const noFollow = 0
