package channel

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// parseUUID accepts only the canonical 36-character form (any case).
func parseUUID(doc, key, s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.UUID{}, invalidf("%s: key %q: %q is not a UUID (want the 36-character form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", doc, key, s)
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return uuid.UUID{}, invalidf("%s: key %q: %q is not a UUID: %v", doc, key, s, err)
	}
	return u, nil
}

// rawUUID decodes a JSON string holding a canonical UUID, without copying
// in the common case (no escapes).
func rawUUID(doc, key string, raw []byte) (uuid.UUID, error) {
	if len(raw) == 38 && raw[0] == '"' && raw[37] == '"' && bytes.IndexByte(raw[1:37], '\\') < 0 {
		if u, err := uuid.ParseBytes(raw[1:37]); err == nil {
			return u, nil
		}
	}
	s, err := rawString(doc, key, raw)
	if err != nil {
		return uuid.UUID{}, err
	}
	return parseUUID(doc, key, s)
}

// ParseDispatch decodes a dispatch document (ABI.md, "Dispatch input"). It
// is strict: unknown keys, duplicate keys, wrong types, bad UUIDs and
// invalid UTF-8 are ErrInvalid with a message naming the key; an input longer
// than maxBytes (when > 0) is ErrTooBig. Fields left out stay zero; Dispatch
// fills them in.
func ParseDispatch(data []byte, maxBytes int) (Event, error) {
	const doc = "event"
	var ev Event
	if maxBytes > 0 && len(data) > maxBytes {
		return ev, tooBig(doc, len(data), maxBytes)
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
			if n, err = rawInt(doc, key, raw, 1, maxTimeoutMs); err != nil {
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
		return Event{}, err
	}
	switch {
	case !haveTask:
		return Event{}, invalidf("%s: missing required key \"task_uuid\"", doc)
	case !haveStep:
		return Event{}, invalidf("%s: missing required key \"step_uuid\"", doc)
	case !haveHandler:
		return Event{}, invalidf("%s: missing required key \"handler\"", doc)
	case ev.Handler == "":
		return Event{}, invalidf("%s: key \"handler\" must be a non-empty string", doc)
	}
	return ev, nil
}

// validateEvent checks an Event built in Go (the JSON path has already
// checked the same things).
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
	case ev.TimeoutMs < 0 || ev.TimeoutMs > maxTimeoutMs:
		return invalidf("%s: timeout_ms = %d is out of range [1, %d] (0 means handler_timeout_ms)", doc, ev.TimeoutMs, maxTimeoutMs)
	case ev.TraceID != nil && !utf8.ValidString(*ev.TraceID):
		return invalidf("%s: trace_id is not valid UTF-8", doc)
	case ev.SpanID != nil && !utf8.ValidString(*ev.SpanID):
		return invalidf("%s: span_id is not valid UTF-8", doc)
	}
	if maxBytes > 0 && len(ev.Payload) > maxBytes {
		return tooBig("event payload", len(ev.Payload), maxBytes)
	}
	if ev.Payload != nil {
		if end, err := skipValue(ev.Payload, skipSpace(ev.Payload, 0), 1); err != nil || skipSpace(ev.Payload, end) != len(ev.Payload) {
			return invalidf("%s: payload is not one valid JSON value", doc)
		}
	}
	return nil
}

func tooBig(doc string, n, max int) error {
	return &sizeError{doc: doc, n: n, max: max}
}

type sizeError struct {
	doc    string
	n, max int
}

func (e *sizeError) Error() string {
	return e.doc + ": " + strconv.Itoa(e.n) + " bytes is larger than max_payload_bytes (" + strconv.Itoa(e.max) + ")"
}
func (e *sizeError) Unwrap() error { return ErrTooBig }

// ParseResult decodes a result document (ABI.md, "Result"). Strict like
// ParseDispatch: `success` is required; a failure needs an `error` object
// with a non-empty `message`; a success must not carry an `error`; unknown
// keys at the top level or inside `error` are ErrInvalid naming the key.
// Defaults: error_type "handler_error", retryable true.
func ParseResult(data []byte, maxBytes int) (Result, error) {
	const doc = "result"
	var r Result
	if maxBytes > 0 && len(data) > maxBytes {
		return r, tooBig(doc, len(data), maxBytes)
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
				return invalidf("%s: key \"metadata\": expected an object, got %s", doc, kindOf(raw))
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
		return Result{}, err
	}
	if !haveSuccess {
		return Result{}, invalidf("%s: missing required key \"success\"", doc)
	}
	if errRaw != nil {
		if r.Success {
			return Result{}, invalidf("%s: key \"error\" given with \"success\": true (use success: false for a failure)", doc)
		}
		if r.Error, err = parseErrorInfo(errRaw); err != nil {
			return Result{}, err
		}
	} else if !r.Success {
		return Result{}, invalidf("%s: \"success\": false needs \"error\": {\"message\": ...}", doc)
	}
	return r, nil
}

func parseErrorInfo(data []byte) (*ErrorInfo, error) {
	const doc = "result.error"
	if data[0] != '{' {
		return nil, invalidf("result: key \"error\": expected an object, got %s", kindOf(data))
	}
	e := &ErrorInfo{ErrorType: ErrorTypeHandlerError, Retryable: true}
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
		e.ErrorType = ErrorTypeHandlerError
	}
	return e, nil
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
		return tooBig(doc, len(r.Result)+len(r.Metadata), maxBytes)
	}
	if r.Result != nil && (!json.Valid(r.Result) || !utf8.Valid(r.Result)) {
		return invalidf("%s: Result is not valid JSON", doc)
	}
	if r.Metadata != nil {
		m := r.Metadata
		if i := skipSpace(m, 0); i >= len(m) || m[i] != '{' || !json.Valid(m) || !utf8.Valid(m) {
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

// ---- encoding ----

const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// appendTime writes t as a quoted RFC 3339 UTC timestamp with nanoseconds
// (what timeLayout gives), or null for the zero time. Hand-rolled: it runs
// several times per event and time.AppendFormat is general-purpose.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	secs, ns := t.Unix(), t.Nanosecond()
	if secs < 0 || secs >= 253402300800 { // outside 1970..9999: the general path
		b = append(b, '"')
		b = t.UTC().AppendFormat(b, timeLayout)
		return append(b, '"')
	}
	// civil date from days since 1970-01-01 (H. Hinnant's algorithm)
	z := secs/86400 + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := int(doy - (153*mp+2)/5 + 1)
	mo := int(mp + 3)
	if mo > 12 {
		mo -= 12
	}
	y := int(yoe + era*400)
	if mo <= 2 {
		y++
	}
	sod := int(secs % 86400)
	h, mi, sec := sod/3600, sod/60%60, sod%60
	var buf [32]byte
	buf[0] = '"'
	put := func(at, width, v int) {
		for i := at + width - 1; i >= at; i-- {
			buf[i] = byte('0' + v%10)
			v /= 10
		}
	}
	put(1, 4, y)
	buf[5] = '-'
	put(6, 2, mo)
	buf[8] = '-'
	put(9, 2, d)
	buf[11] = 'T'
	put(12, 2, h)
	buf[14] = ':'
	put(15, 2, mi)
	buf[17] = ':'
	put(18, 2, sec)
	buf[20] = '.'
	put(21, 9, ns)
	buf[30] = 'Z'
	buf[31] = '"'
	return append(b, buf[:]...)
}

func appendUUID(b []byte, u uuid.UUID) []byte {
	var buf [36]byte
	const hex = "0123456789abcdef"
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf[j] = '-'
			j++
		}
		buf[j], buf[j+1] = hex[c>>4], hex[c&0xf]
		j += 2
	}
	b = append(b, '"')
	b = append(b, buf[:]...)
	return append(b, '"')
}

// appendString writes s as a JSON string. Invalid UTF-8 cannot reach here:
// every string is validated on the way in.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendRaw(b []byte, raw json.RawMessage) []byte {
	if raw == nil {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

func appendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

// AppendEventJSON appends the polled-event document of ev to b.
func AppendEventJSON(b []byte, ev *Event) []byte {
	b = append(b, `{"event_id":`...)
	b = appendUUID(b, ev.EventID)
	b = append(b, `,"task_uuid":`...)
	b = appendUUID(b, ev.TaskUUID)
	b = append(b, `,"step_uuid":`...)
	b = appendUUID(b, ev.StepUUID)
	b = append(b, `,"correlation_id":`...)
	b = appendUUID(b, ev.CorrelationID)
	b = append(b, `,"handler":`...)
	b = appendString(b, ev.Handler)
	b = append(b, `,"payload":`...)
	b = appendRaw(b, ev.Payload)
	b = append(b, `,"timeout_ms":`...)
	b = strconv.AppendInt(b, int64(ev.TimeoutMs), 10)
	b = append(b, `,"trace_id":`...)
	b = appendOptString(b, ev.TraceID)
	b = append(b, `,"span_id":`...)
	b = appendOptString(b, ev.SpanID)
	b = append(b, `,"dispatched_at":`...)
	b = appendTime(b, ev.DispatchedAt)
	b = append(b, `,"polled_at":`...)
	b = appendTime(b, ev.PolledAt)
	return append(b, '}')
}

// MarshalJSON encodes the polled-event document.
func (ev Event) MarshalJSON() ([]byte, error) { return AppendEventJSON(nil, &ev), nil }

// AppendEventsJSON appends a JSON array of polled-event documents.
func AppendEventsJSON(b []byte, evs []Event) []byte {
	b = append(b, '[')
	for i := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendEventJSON(b, &evs[i])
	}
	return append(b, ']')
}

func appendErrorInfo(b []byte, e *ErrorInfo) []byte {
	if e == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"message":`...)
	b = appendString(b, e.Message)
	b = append(b, `,"error_type":`...)
	b = appendString(b, e.ErrorType)
	b = append(b, `,"retryable":`...)
	b = strconv.AppendBool(b, e.Retryable)
	return append(b, '}')
}

// AppendCompletionJSON appends the completion document of c to b. Every key
// of ABI.md is present, null where it has no value.
func AppendCompletionJSON(b []byte, c *Completion) []byte {
	b = append(b, `{"event_id":`...)
	b = appendUUID(b, c.EventID)
	b = append(b, `,"task_uuid":`...)
	b = appendUUID(b, c.TaskUUID)
	b = append(b, `,"step_uuid":`...)
	b = appendUUID(b, c.StepUUID)
	b = append(b, `,"correlation_id":`...)
	b = appendUUID(b, c.CorrelationID)
	b = append(b, `,"handler":`...)
	b = appendString(b, c.Handler)
	b = append(b, `,"status":"`...)
	b = append(b, c.Status...)
	b = append(b, `","success":`...)
	b = strconv.AppendBool(b, c.Success)
	b = append(b, `,"result":`...)
	b = appendRaw(b, c.Result)
	b = append(b, `,"error":`...)
	b = appendErrorInfo(b, c.Error)
	b = append(b, `,"metadata":`...)
	b = appendRaw(b, c.Metadata)
	b = append(b, `,"dispatched_at":`...)
	b = appendTime(b, c.DispatchedAt)
	b = append(b, `,"polled_at":`...)
	b = appendTime(b, c.PolledAt)
	b = append(b, `,"completed_at":`...)
	b = appendTime(b, c.CompletedAt)
	b = append(b, `,"execution_time_ms":`...)
	if d, ok := c.ExecutionTime(); ok {
		// milliseconds with microsecond precision
		b = strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', -1, 64)
	} else {
		b = append(b, "null"...)
	}
	return append(b, '}')
}

// MarshalJSON encodes the completion document.
func (c Completion) MarshalJSON() ([]byte, error) { return AppendCompletionJSON(nil, &c), nil }
