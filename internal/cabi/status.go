// Package cabi holds what only the C ABI has: its status codes, the two
// errors only the C layer produces (a bad handle, a call in a forked child),
// and Status, the one mapping from a Go error to a status code. Package ffi
// uses it; the pure Go packages (channel, runtime) know nothing of it.
package cabi

import (
	"errors"

	"github.com/tasker-systems/libtasker/channel"
)

// Errors produced only by the C layer. Like channel's sentinels, errors
// wrapping them are tested with errors.Is.
var (
	// ErrBadHandle: unknown or destroyed handle (TASKER_EBADF).
	ErrBadHandle = errors.New("unknown or destroyed handle")
	// ErrForked: called in a forked child (TASKER_EFORKED). The C shim
	// returns the code itself, before entering Go; the error is here so that
	// the status table is complete.
	ErrForked = errors.New("called in a forked child process")
)

// Status codes of the C ABI (docs/ABI.md, "Types and status codes").
const (
	OK        = 0
	Empty     = 1
	Closed    = 2
	Invalid   = -1
	BadHandle = -2
	NotFound  = -3
	Full      = -4
	Shutdown  = -5
	TooBig    = -6
	Forked    = -7
	Internal  = -8
)

var statusTable = []struct {
	err    error
	status int
}{
	{channel.ErrEmpty, Empty},
	{channel.ErrClosed, Closed},
	{channel.ErrInvalid, Invalid},
	{ErrBadHandle, BadHandle},
	{channel.ErrNotPending, NotFound},
	{channel.ErrFull, Full},
	{channel.ErrShutdown, Shutdown},
	{channel.ErrTooBig, TooBig},
	{ErrForked, Forked},
	{channel.ErrInternal, Internal},
}

// Status maps an error returned by this module to its C ABI status code:
// nil is OK, an error wrapping a sentinel is that sentinel's code, and
// anything else is Internal (an unexpected error is a bug).
func Status(err error) int {
	if err == nil {
		return OK
	}
	for _, s := range statusTable {
		if errors.Is(err, s.err) {
			return s.status
		}
	}
	return Internal
}
