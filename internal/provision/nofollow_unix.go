//go:build unix

package provision

import "syscall"

// oNoFollow makes an open fail on a symbolic link: batch files are written
// and read in place, and a link planted in the output directory must not
// send a key somewhere else.
const oNoFollow = syscall.O_NOFOLLOW
