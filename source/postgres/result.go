package postgres

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/wire"
)

// Error types of the results the source itself writes (docs/QUEUE.md rule 5).
const (
	ErrorTypeInvalidMessage      = "invalid_message"
	ErrorTypeMaxAttemptsExceeded = "max_attempts_exceeded"
)

// appendResult appends the result message of docs/QUEUE.md rule 4 around a
// completion document.
func appendResult(b []byte, queue string, l Lease, completion []byte) []byte {
	b = append(b, `{"msg_id":`...)
	b = strconv.AppendInt(b, l.MsgID, 10)
	b = append(b, `,"queue":`...)
	b = strconv.AppendQuote(b, queue) // queue names are [a-z0-9_]: plain ASCII
	b = append(b, `,"read_ct":`...)
	b = strconv.AppendInt(b, int64(l.ReadCt), 10)
	b = append(b, `,"completion":`...)
	b = append(b, completion...)
	return append(b, '}')
}

// ResultFor is the result message of a completed source event.
func ResultFor(queue string, l Lease, c *channel.Completion) []byte {
	return appendResult(make([]byte, 0, 512), queue, l, wire.AppendCompletionJSON(make([]byte, 0, 384), c))
}

// poisonCompletion is the completion document (docs/ABI.md, every key present)
// of a message that was never dispatched: fields the message did not
// provide as valid values are null.
type poisonCompletion struct {
	EventID       string          `json:"event_id"`
	TaskUUID      *string         `json:"task_uuid"`
	StepUUID      *string         `json:"step_uuid"`
	CorrelationID *string         `json:"correlation_id"`
	Handler       *string         `json:"handler"`
	Status        string          `json:"status"`
	Success       bool            `json:"success"`
	Result        json.RawMessage `json:"result"`
	Error         poisonError     `json:"error"`
	Metadata      json.RawMessage `json:"metadata"`
	DispatchedAt  string          `json:"dispatched_at"`
	PolledAt      *string         `json:"polled_at"`
	CompletedAt   string          `json:"completed_at"`
	ExecutionMs   *float64        `json:"execution_time_ms"`
}

type poisonError struct {
	Message   string `json:"message"`
	ErrorType string `json:"error_type"`
	Retryable bool   `json:"retryable"`
}

const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// PoisonResult is the failed result of a message that is not dispatched
// (invalid, or read more than max_attempts times). Whatever identifying
// fields the message carries as valid values are copied into it, so that an
// orchestrator can tell which step it was; retryable is false.
func PoisonResult(queue string, m *Message, errorType, reason string) []byte {
	pc := poisonCompletion{
		EventID:      uuid.Must(uuid.NewV7()).String(),
		Status:       string(channel.StatusFailed),
		Result:       json.RawMessage("null"),
		Metadata:     json.RawMessage("null"),
		Error:        poisonError{Message: reason, ErrorType: errorType},
		DispatchedAt: m.EnqueuedAt.UTC().Format(timeLayout),
		CompletedAt:  time.Now().UTC().Format(timeLayout),
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(m.Body, &fields) == nil {
		ids := func(key string) *string {
			var s string
			if json.Unmarshal(fields[key], &s) != nil {
				return nil
			}
			if _, err := uuid.Parse(s); err != nil || len(s) != 36 {
				return nil
			}
			return &s
		}
		pc.TaskUUID, pc.StepUUID, pc.CorrelationID = ids("task_uuid"), ids("step_uuid"), ids("correlation_id")
		var h string
		if json.Unmarshal(fields["handler"], &h) == nil && h != "" {
			pc.Handler = &h
		}
	}
	doc, _ := json.Marshal(pc) // plain fields: cannot fail
	return appendResult(make([]byte, 0, len(doc)+96), queue, m.Lease, doc)
}
