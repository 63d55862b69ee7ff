package channel

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Errors returned by this module wrap one of them with
// context; test with errors.Is. The C layer maps each to one status code
// (internal/cabi).
var (
	// ErrEmpty: nothing arrived within the timeout (TASKER_EMPTY).
	ErrEmpty = errors.New("empty: nothing arrived within the timeout")
	// ErrClosed: shut down and drained; nothing more will ever arrive (TASKER_CLOSED).
	ErrClosed = errors.New("closed: shut down and drained")
	// ErrInvalid: a bad argument, document or configuration (TASKER_EINVAL).
	ErrInvalid = errors.New("invalid argument")
	// ErrNotPending: the event is not pending: never polled, already ended,
	// or unknown (TASKER_ENOENT).
	ErrNotPending = errors.New("event not pending")
	// ErrFull: the dispatch queue stayed full for the whole wait (TASKER_EFULL).
	ErrFull = errors.New("dispatch queue full")
	// ErrShutdown: the channel is shutting down and takes no new events (TASKER_ESHUTDOWN).
	ErrShutdown = errors.New("channel is shutting down")
	// ErrTooBig: an input is larger than max_payload_bytes (TASKER_ETOOBIG).
	ErrTooBig = errors.New("input too large")
	// ErrInternal: a bug; a panic was recovered (TASKER_EINTERNAL).
	ErrInternal = errors.New("internal error")
)

// invalidf returns an ErrInvalid carrying a message a user can act on.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// SizeError is an input longer than max_payload_bytes; it wraps ErrTooBig.
type SizeError struct {
	Doc    string // what was too big: "event", "result", "event payload"
	N, Max int    // its length and the limit, in bytes
}

func (e *SizeError) Error() string {
	return e.Doc + ": " + strconv.Itoa(e.N) + " bytes is larger than max_payload_bytes (" + strconv.Itoa(e.Max) + ")"
}

// Unwrap makes errors.Is(err, ErrTooBig) true.
func (e *SizeError) Unwrap() error { return ErrTooBig }
