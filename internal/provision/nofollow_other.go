//go:build !unix

package provision

// oNoFollow is 0 where the open flag does not exist; writeDirect's Lstat
// check still refuses links there.
const oNoFollow = 0
