package channel

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Event is one step event: what a producer dispatches and a worker polls.
//
// On dispatch, EventID and CorrelationID may be left zero (they are then
// generated as UUIDv7), TimeoutMs may be 0 (handler_timeout_ms applies) and
// Payload may be nil (JSON null). On poll every field is filled in: TimeoutMs
// is the effective timeout and PolledAt is set.
type Event struct {
	EventID       uuid.UUID
	TaskUUID      uuid.UUID
	StepUUID      uuid.UUID
	CorrelationID uuid.UUID
	Handler       string
	// Payload is carried exactly as the producer wrote it.
	Payload   json.RawMessage
	TimeoutMs int
	// TraceID and SpanID are optional; nil means absent (JSON null).
	TraceID      *string
	SpanID       *string
	DispatchedAt time.Time
	PolledAt     time.Time
	// Checkpoint is the progress saved by the event's last checkpoint, or
	// nil on its first run (see Channel.Checkpoint).
	Checkpoint *Checkpoint
}

// Checkpoint is the progress a handler hands back when it yields
// (tasker_checkpoint): its event goes back to the queue and runs again
// later, from Cursor.
type Checkpoint struct {
	// Cursor is any JSON value (null included), carried as written.
	Cursor json.RawMessage
	// ItemsProcessed is the handler's count of items done; >= 0.
	ItemsProcessed int64
	// AccumulatedResults is any JSON value, or nil (null).
	AccumulatedResults json.RawMessage
	// Count is the number of checkpoints of the event so far, this one
	// included. Set by the channel; ignored on input.
	Count int
}

// Result is a handler's outcome, as tasker_complete takes it (tasker-core's
// StepExecutionResult field names).
type Result struct {
	Success bool
	// Result is any JSON value, carried as written; nil means null.
	Result json.RawMessage
	// Error is required when Success is false and must be nil when it is true.
	Error *ErrorInfo
	// Metadata is a JSON object or nil (null), carried as written.
	Metadata json.RawMessage
}

// ErrorInfo describes a failure.
type ErrorInfo struct {
	Message   string
	ErrorType string
	Retryable bool
}

// CompletionStatus says how an event ended.
type CompletionStatus string

// The four ways an event ends.
const (
	StatusCompleted CompletionStatus = "completed"
	StatusFailed    CompletionStatus = "failed"
	StatusTimeout   CompletionStatus = "timeout"
	StatusCancelled CompletionStatus = "cancelled"
)

// Error types the library itself produces (docs/ABI.md, "Completion").
const (
	ErrorTypeFFITimeout      = "ffi_timeout"
	ErrorTypeHandlerTimeout  = "handler_timeout"
	ErrorTypeHandlerPanic    = "handler_panic"
	ErrorTypeHandlerError    = "handler_error"
	ErrorTypeHandlerNotFound = "handler_not_found"
	ErrorTypeShutdown        = "shutdown"
	// ErrorTypeTooManyCheckpoints ends a step whose checkpoint would exceed
	// max_checkpoints. Not retryable: a rerun would do the same.
	ErrorTypeTooManyCheckpoints = "too_many_checkpoints"
)

// Completion is one entry of the completion stream: exactly one per
// dispatched event. Treat it as read-only: completions ended together (by
// one cleanup or one shutdown) may share one *ErrorInfo.
type Completion struct {
	EventID       uuid.UUID
	TaskUUID      uuid.UUID
	StepUUID      uuid.UUID
	CorrelationID uuid.UUID
	// TraceID and SpanID are the event's (nil: absent, JSON null), carried
	// onto its completion so that a trace can be followed through.
	TraceID      *string
	SpanID       *string
	Handler      string
	Status       CompletionStatus
	Success      bool
	Result       json.RawMessage
	Error        *ErrorInfo
	Metadata     json.RawMessage
	DispatchedAt time.Time
	// PolledAt is the event's first start (its first poll), zero when it
	// was never started: with checkpoints, the execution time spans every run.
	PolledAt    time.Time
	CompletedAt time.Time
	// Checkpoints is the number of checkpoints the event took before it ended.
	Checkpoints int
}

// ExecutionTime is CompletedAt - PolledAt; ok is false when never polled.
func (c *Completion) ExecutionTime() (d time.Duration, ok bool) {
	if c.PolledAt.IsZero() {
		return 0, false
	}
	return c.CompletedAt.Sub(c.PolledAt), true
}
