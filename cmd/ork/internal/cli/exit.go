package cli

import (
	"errors"
	"fmt"
)

// Exit codes of the ork command.
const (
	ExitCodeOK      = 0 // success
	ExitCodeFailure = 1 // the command ran and something failed: an invalid workflow, a failed run
	ExitCodeUsage   = 2 // the command line itself is wrong: unknown command or flag, missing argument
)

// ExitError is an error that chooses the process exit status. Err is printed as "error: <Err>"; a nil
// Err exits silently (the command already printed what the user needs, e.g. JSON).
type ExitError struct {
	Code int
	Err  error
}

// Error returns the message of the wrapped error.
func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

// Unwrap returns the wrapped error.
func (e *ExitError) Unwrap() error { return e.Err }

// usageError marks err as a command-line mistake (exit status 2).
func usageError(err error) error {
	return &ExitError{Code: ExitCodeUsage, Err: err}
}

// exitCode is the process status for an error returned by a command: its ExitError code, or 1.
func exitCode(err error) int {
	if err == nil {
		return ExitCodeOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitCodeFailure
}
