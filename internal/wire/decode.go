package wire

import (
	"encoding/json"
	"math"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/channel"
)

// ParseDispatch decodes a dispatch document (docs/ABI.md, "Dispatch input"). It
// is strict: unknown keys, duplicate keys, wrong types, bad UUIDs and
// invalid UTF-8 are ErrInvalid with a message naming the key; an input longer
// than maxBytes (when > 0) is ErrTooBig. Fields left out stay zero; Dispatch
// fills them in.
func ParseDispatch(data []byte, maxBytes int) (channel.Event, error) {
	var ev channel.Event
	if err := ParseDispatchInto(data, maxBytes, &ev); err != nil {
		return channel.Event{}, err
	}
	return ev, nil
}

// ParseDispatchInto is ParseDispatch decoding into *ev, which must be the
// zero Event: the channel parses straight into the entry it queues, with no
// copy of the event on the way (channel.DispatchParser). After an error
// *ev holds whatever was decoded before it; the caller drops it.
func ParseDispatchInto(data []byte, maxBytes int, ev *channel.Event) error {
	const doc = "event"
	if maxBytes > 0 && len(data) > maxBytes {
		return &channel.SizeError{Doc: doc, N: len(data), Max: maxBytes}
	}
	var haveTask, haveStep, haveHandler bool
	err := scanObject(data, doc, func(key string, raw []byte) error {
		var err error
		switch key {
		case "task_uuid", "step_uuid", "event_id", "correlation_id":
			var u uuid.UUID
			if u, err = rawUUID(doc, key, raw); err != nil {
				return err
			}
			if u == uuid.Nil {
				return invalidf("%s: key %q: the nil UUID is not allowed (leave the key out to have one generated)", doc, key)
			}
			switch key {
			case "task_uuid":
				ev.TaskUUID, haveTask = u, true
			case "step_uuid":
				ev.StepUUID, haveStep = u, true
			case "event_id":
				ev.EventID = u
			default:
				ev.CorrelationID = u
			}
		case "handler":
			if ev.Handler, err = rawString(doc, key, raw); err != nil {
				return err
			}
			haveHandler = true
		case "payload":
			ev.Payload = append(json.RawMessage(nil), raw...)
		case "timeout_ms":
			var n int64
			if n, err = rawInt(doc, key, raw, 1, channel.MaxTimeoutMs); err != nil {
				return err
			}
			ev.TimeoutMs = int(n)
		case "trace_id", "span_id":
			if isNull(raw) {
				return nil
			}
			var s string
			if s, err = rawString(doc, key, raw); err != nil {
				return err
			}
			if key == "trace_id" {
				ev.TraceID = &s
			} else {
				ev.SpanID = &s
			}
		default:
			return invalidf("%s: unknown key %q (known: task_uuid, step_uuid, handler, payload, event_id, "+
				"correlation_id, timeout_ms, trace_id, span_id)", doc, key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case !haveTask:
		return invalidf("%s: missing required key \"task_uuid\"", doc)
	case !haveStep:
		return invalidf("%s: missing required key \"step_uuid\"", doc)
	case !haveHandler:
		return invalidf("%s: missing required key \"handler\"", doc)
	case ev.Handler == "":
		return invalidf("%s: key \"handler\" must be a non-empty string", doc)
	}
	return nil
}

// ParseResult decodes a result document (docs/ABI.md, "Result"). Strict like
// ParseDispatch: `success` is required; a failure needs an `error` object
// with a non-empty `message`; a success must not carry an `error`; unknown
// keys at the top level or inside `error` are ErrInvalid naming the key.
// Defaults: error_type "handler_error", retryable true.
func ParseResult(data []byte, maxBytes int) (channel.Result, error) {
	const doc = "result"
	var r channel.Result
	if maxBytes > 0 && len(data) > maxBytes {
		return r, &channel.SizeError{Doc: doc, N: len(data), Max: maxBytes}
	}
	var haveSuccess bool
	var errRaw []byte
	err := scanObject(data, doc, func(key string, raw []byte) error {
		var err error
		switch key {
		case "success":
			r.Success, err = rawBool(doc, key, raw)
			haveSuccess = true
			return err
		case "result":
			if !isNull(raw) {
				r.Result = append(json.RawMessage(nil), raw...)
			}
		case "metadata":
			if isNull(raw) {
				return nil
			}
			if raw[0] != '{' {
				return invalidf("%s: key \"metadata\": expected an object, got %s", doc, KindOf(raw))
			}
			r.Metadata = append(json.RawMessage(nil), raw...)
		case "error":
			if !isNull(raw) {
				errRaw = raw
			}
		default:
			hint := ""
			switch key {
			case "retryable", "message", "error_type":
				hint = " (it belongs inside \"error\")"
			}
			return invalidf("%s: unknown key %q%s (known: success, result, error, metadata)", doc, key, hint)
		}
		return nil
	})
	if err != nil {
		return channel.Result{}, err
	}
	if !haveSuccess {
		return channel.Result{}, invalidf("%s: missing required key \"success\"", doc)
	}
	if errRaw != nil {
		if r.Success {
			return channel.Result{}, invalidf("%s: key \"error\" given with \"success\": true (use success: false for a failure)", doc)
		}
		if r.Error, err = parseErrorInfo(errRaw); err != nil {
			return channel.Result{}, err
		}
	} else if !r.Success {
		return channel.Result{}, invalidf("%s: \"success\": false needs \"error\": {\"message\": ...}", doc)
	}
	return r, nil
}

// ParseCheckpoint decodes a checkpoint document (tasker_checkpoint):
// {"cursor": any JSON (required, null allowed), "items_processed": integer
// >= 0 (required), "accumulated_results": any JSON (optional)}. Strict like
// every document: unknown or duplicate keys, wrong types and invalid UTF-8
// are channel.ErrInvalid naming the key; more than maxBytes is
// channel.ErrTooBig. The raw values are copied (the input is borrowed).
func ParseCheckpoint(data []byte, maxBytes int) (channel.Checkpoint, error) {
	return parseCheckpoint(data, maxBytes, "checkpoint", false)
}

// ParseSourceCheckpoint decodes the `checkpoint` object of a step message
// of a queue source (docs/QUEUE.md, "A step message"): ParseCheckpoint's keys
// plus an optional "count" (integer >= 0, default 0: the checkpoints taken
// so far, which the next checkpoint continues from). Strict the same way;
// errors name the key as "message.checkpoint".
func ParseSourceCheckpoint(data []byte, maxBytes int) (channel.Checkpoint, error) {
	return parseCheckpoint(data, maxBytes, "message.checkpoint", true)
}

func parseCheckpoint(data []byte, maxBytes int, doc string, withCount bool) (channel.Checkpoint, error) {
	var cp channel.Checkpoint
	if maxBytes > 0 && len(data) > maxBytes {
		return cp, &channel.SizeError{Doc: doc, N: len(data), Max: maxBytes}
	}
	var haveCursor, haveItems bool
	err := scanObject(data, doc, func(key string, raw []byte) error {
		var err error
		switch key {
		case "cursor":
			cp.Cursor = append(json.RawMessage(nil), raw...)
			haveCursor = true
		case "items_processed":
			cp.ItemsProcessed, err = rawInt(doc, key, raw, 0, math.MaxInt64)
			haveItems = true
		case "accumulated_results":
			if !isNull(raw) {
				cp.AccumulatedResults = append(json.RawMessage(nil), raw...)
			}
		case "count":
			if !withCount {
				return invalidf("%s: unknown key %q (known: cursor, items_processed, accumulated_results; the library counts checkpoints itself)", doc, key)
			}
			var n int64
			n, err = rawInt(doc, key, raw, 0, math.MaxInt32)
			cp.Count = int(n)
		default:
			known := "cursor, items_processed, accumulated_results"
			if withCount {
				known += ", count"
			}
			err = invalidf("%s: unknown key %q (known: %s)", doc, key, known)
		}
		return err
	})
	switch {
	case err != nil:
		return channel.Checkpoint{}, err
	case !haveCursor:
		return channel.Checkpoint{}, invalidf("%s: missing required key \"cursor\" (any JSON value, null included)", doc)
	case !haveItems:
		return channel.Checkpoint{}, invalidf("%s: missing required key \"items_processed\" (an integer >= 0)", doc)
	}
	return cp, nil
}

func parseErrorInfo(data []byte) (*channel.ErrorInfo, error) {
	const doc = "result.error"
	if data[0] != '{' {
		return nil, invalidf("result: key \"error\": expected an object, got %s", KindOf(data))
	}
	e := &channel.ErrorInfo{ErrorType: channel.ErrorTypeHandlerError, Retryable: true}
	var haveMsg bool
	err := scanObject(data, doc, func(key string, raw []byte) error {
		var err error
		switch key {
		case "message":
			e.Message, err = rawString(doc, key, raw)
			haveMsg = true
		case "error_type":
			if !isNull(raw) {
				e.ErrorType, err = rawString(doc, key, raw)
			}
		case "retryable":
			if !isNull(raw) {
				e.Retryable, err = rawBool(doc, key, raw)
			}
		default:
			err = invalidf("%s: unknown key %q (known: message, error_type, retryable)", doc, key)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if !haveMsg || e.Message == "" {
		return nil, invalidf("%s: \"message\" is required and must be a non-empty string", doc)
	}
	if e.ErrorType == "" {
		e.ErrorType = channel.ErrorTypeHandlerError
	}
	return e, nil
}
