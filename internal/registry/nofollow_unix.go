//go:build unix

package registry

import "syscall"

// noFollow makes creating the database fail on a symbolic link planted at
// its path: the link is resolved once, on purpose, before (resolve).
const noFollow = syscall.O_NOFOLLOW
