package cli

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes of the ork command.
const (
	ExitCodeOK      = 0 // success
	ExitCodeFailure = 1 // something failed: a failed run, an invalid workflow, a run or task that does not exist
	ExitCodeUsage   = 2 // the command line itself is wrong: unknown command or flag, argument count, bad URL
	// ExitCodeInterrupted follows the shell's convention for a command stopped by SIGINT (128 + 2).
	ExitCodeInterrupted = 130
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

// usageArgs gives an argument check the usage exit code and a pointer to --help.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError(fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath()))
		}
		return nil
	}
}

// exactArgs, minimumArgs and rangeArgs are cobra's checks with the usage exit code.
func exactArgs(n int) cobra.PositionalArgs      { return usageArgs(cobra.ExactArgs(n)) }
func minimumArgs(n int) cobra.PositionalArgs    { return usageArgs(cobra.MinimumNArgs(n)) }
func rangeArgs(lo, hi int) cobra.PositionalArgs { return usageArgs(cobra.RangeArgs(lo, hi)) }

// checkNATSURL rejects what is not a NATS URL (or a comma-separated list of them) before any
// connection is tried.
func checkNATSURL(s string) error {
	for _, part := range strings.Split(s, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			return fmt.Errorf("bad NATS URL %q: %w", part, err)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("bad NATS URL %q: want nats://HOST:PORT (or tls://, ws://, wss://)", part)
		}
		if u.Host == "" {
			return fmt.Errorf("bad NATS URL %q: no host", part)
		}
	}
	return nil
}

// usageError marks err as a command-line mistake (exit status 2).
func usageError(err error) error {
	return &ExitError{Code: ExitCodeUsage, Err: err}
}

// exitCode is the process status for an error returned by a command: its ExitError code, or 1;
// 130 for any failure after the command was interrupted (Ctrl-C, SIGTERM).
func exitCode(err error, interrupted bool) int {
	if err == nil {
		return ExitCodeOK
	}
	if interrupted {
		return ExitCodeInterrupted
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitCodeFailure
}
