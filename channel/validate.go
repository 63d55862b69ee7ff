package channel

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/internal/strictjson"
)

// Validation of events and results built in Go. The document parsers
// (internal/wire) check the same rules on the way in and produce values
// that pass these checks; both reject with ErrInvalid or ErrTooBig and a
// message naming the field.

// validateEvent checks an Event built in Go (the JSON path checks the same
// things while parsing).
func validateEvent(ev *Event, maxBytes int) error {
	const doc = "event"
	switch {
	case ev.TaskUUID == uuid.Nil:
		return invalidf("%s: task_uuid is required (the nil UUID is not allowed)", doc)
	case ev.StepUUID == uuid.Nil:
		return invalidf("%s: step_uuid is required (the nil UUID is not allowed)", doc)
	case ev.Handler == "":
		return invalidf("%s: handler must be a non-empty string", doc)
	case !utf8.ValidString(ev.Handler):
		return invalidf("%s: handler is not valid UTF-8", doc)
	case ev.TimeoutMs < 0 || ev.TimeoutMs > MaxTimeoutMs:
		return invalidf("%s: timeout_ms = %d is out of range [1, %d] (0 means handler_timeout_ms)", doc, ev.TimeoutMs, MaxTimeoutMs)
	case ev.TraceID != nil && !utf8.ValidString(*ev.TraceID):
		return invalidf("%s: trace_id is not valid UTF-8", doc)
	case ev.SpanID != nil && !utf8.ValidString(*ev.SpanID):
		return invalidf("%s: span_id is not valid UTF-8", doc)
	}
	if maxBytes > 0 && len(ev.Payload) > maxBytes {
		return &SizeError{Doc: "event payload", N: len(ev.Payload), Max: maxBytes}
	}
	if ev.Payload != nil && !strictjson.Valid(ev.Payload) {
		return invalidf("%s: payload is not one valid JSON value", doc)
	}
	return nil
}

// ValidateCheckpoint checks a Checkpoint built in Go by the rules
// wire.ParseCheckpoint applies to a document (items_processed >= 0, cursor
// and accumulated_results valid JSON, their sum within maxBytes). A nil
// Cursor means null and is set to it.
func ValidateCheckpoint(cp *Checkpoint, maxBytes int) error {
	const doc = "checkpoint"
	if cp.ItemsProcessed < 0 {
		return invalidf("%s: items_processed = %d must be >= 0", doc, cp.ItemsProcessed)
	}
	if maxBytes > 0 && len(cp.Cursor)+len(cp.AccumulatedResults) > maxBytes {
		return &SizeError{Doc: doc, N: len(cp.Cursor) + len(cp.AccumulatedResults), Max: maxBytes}
	}
	if cp.Cursor != nil && !strictjson.Valid(cp.Cursor) {
		return invalidf("%s: cursor is not one valid JSON value", doc)
	}
	if cp.AccumulatedResults != nil && !strictjson.Valid(cp.AccumulatedResults) {
		return invalidf("%s: accumulated_results is not one valid JSON value", doc)
	}
	if cp.Cursor == nil {
		cp.Cursor = json.RawMessage("null")
	}
	return nil
}

// ValidateResult checks a Result built in Go: the rules ParseResult applies
// to a document (valid JSON and UTF-8, a failure with a message, no error
// on a success), and fills in the same default (error_type handler_error).
func ValidateResult(r *Result, maxBytes int) error {
	const doc = "result"
	if r.Success && r.Error != nil {
		return invalidf("%s: Error given with Success true", doc)
	}
	if !r.Success && (r.Error == nil || r.Error.Message == "") {
		return invalidf("%s: a failure needs Error with a non-empty Message", doc)
	}
	if maxBytes > 0 && len(r.Result)+len(r.Metadata) > maxBytes {
		return &SizeError{Doc: doc, N: len(r.Result) + len(r.Metadata), Max: maxBytes}
	}
	// strictjson.Valid, not json.Valid: the same rules as a document's
	// values (ParseResult), lone UTF-16 surrogate escapes and nesting deeper
	// than strictjson.MaxDepth included, which encoding/json accepts.
	if r.Result != nil && !strictjson.Valid(r.Result) {
		return invalidf("%s: Result is not valid JSON", doc)
	}
	if r.Metadata != nil {
		m := r.Metadata
		if i := strictjson.SkipSpace(m, 0); i >= len(m) || m[i] != '{' || !strictjson.Valid(m) {
			return invalidf("%s: Metadata must be a JSON object", doc)
		}
	}
	if r.Error != nil && (!utf8.ValidString(r.Error.Message) || !utf8.ValidString(r.Error.ErrorType)) {
		return invalidf("%s: error strings must be valid UTF-8", doc)
	}
	if r.Error != nil && r.Error.ErrorType == "" {
		r.Error.ErrorType = ErrorTypeHandlerError // the default ParseResult applies
	}
	return nil
}
