package channel

import (
	"errors"
	"fmt"
)

// Sentinel errors. Each maps one-to-one onto a status code of the C ABI
// (see Status). Errors returned by this package wrap one of them with
// context; test with errors.Is.
var (
	// ErrEmpty: nothing arrived within the timeout (TASKER_EMPTY).
	ErrEmpty = errors.New("empty: nothing arrived within the timeout")
	// ErrClosed: shut down and drained; nothing more will ever arrive (TASKER_CLOSED).
	ErrClosed = errors.New("closed: shut down and drained")
	// ErrInvalid: a bad argument, document or configuration (TASKER_EINVAL).
	ErrInvalid = errors.New("invalid argument")
	// ErrBadHandle: unknown or destroyed handle (TASKER_EBADF). Only the C
	// layer produces it; it lives here so that the status table is complete.
	ErrBadHandle = errors.New("unknown or destroyed handle")
	// ErrNotPending: the event is not pending: never polled, already ended,
	// or unknown (TASKER_ENOENT).
	ErrNotPending = errors.New("event not pending")
	// ErrFull: the dispatch queue stayed full for the whole wait (TASKER_EFULL).
	ErrFull = errors.New("dispatch queue full")
	// ErrShutdown: the channel is shutting down and takes no new events (TASKER_ESHUTDOWN).
	ErrShutdown = errors.New("channel is shutting down")
	// ErrTooBig: an input is larger than max_payload_bytes (TASKER_ETOOBIG).
	ErrTooBig = errors.New("input too large")
	// ErrForked: called in a forked child (TASKER_EFORKED). Produced by the C shim.
	ErrForked = errors.New("called in a forked child process")
	// ErrInternal: a bug; a panic was recovered (TASKER_EINTERNAL).
	ErrInternal = errors.New("internal error")
)

// Status codes of the C ABI (ABI.md, "Types and status codes").
const (
	StatusOK        = 0
	StatusEmpty     = 1
	StatusClosed    = 2
	StatusInvalid   = -1
	StatusBadHandle = -2
	StatusNotFound  = -3
	StatusFull      = -4
	StatusShutdown  = -5
	StatusTooBig    = -6
	StatusForked    = -7
	StatusInternal  = -8
)

var statusTable = []struct {
	err    error
	status int
}{
	{ErrEmpty, StatusEmpty},
	{ErrClosed, StatusClosed},
	{ErrInvalid, StatusInvalid},
	{ErrBadHandle, StatusBadHandle},
	{ErrNotPending, StatusNotFound},
	{ErrFull, StatusFull},
	{ErrShutdown, StatusShutdown},
	{ErrTooBig, StatusTooBig},
	{ErrForked, StatusForked},
	{ErrInternal, StatusInternal},
}

// Status maps an error returned by this module to its C ABI status code:
// nil is StatusOK, an error wrapping a sentinel is that sentinel's code, and
// anything else is StatusInternal (an unexpected error is a bug).
func Status(err error) int {
	if err == nil {
		return StatusOK
	}
	for _, s := range statusTable {
		if errors.Is(err, s.err) {
			return s.status
		}
	}
	return StatusInternal
}

// invalidf returns an ErrInvalid carrying a message a user can act on.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
