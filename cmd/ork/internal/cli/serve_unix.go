package cli

import "syscall"

// sigZero checks that a process exists without signalling it.
const sigZero = syscall.Signal(0)
