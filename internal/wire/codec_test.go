package wire_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/cabi"
	"github.com/tasker-systems/libtasker/internal/strictjson"
	ts "github.com/tasker-systems/libtasker/internal/testsupport"
	"github.com/tasker-systems/libtasker/internal/wire"
)

const (
	tU = "0190a6c5-8f3e-7a11-9c2d-1234567890ab"
	sU = "0190a6c5-8f3e-7a11-9c2d-1234567890ac"
	eU = "0190a6c5-8f3e-7a11-9c2d-1234567890ad"
	cU = "0190a6c5-8f3e-7a11-9c2d-1234567890ae"
)

// dispatchDoc builds a dispatch document from the three required keys plus
// extra raw members (each `"key":value`).
func dispatchDoc(extra ...string) string {
	members := append([]string{`"task_uuid":"` + tU + `"`, `"step_uuid":"` + sU + `"`, `"handler":"h"`}, extra...)
	return "{" + strings.Join(members, ",") + "}"
}

func TestParseDispatch_Minimal(t *testing.T) {
	e, err := wire.ParseDispatch([]byte(dispatchDoc()), 0)
	require.NoError(t, err)
	assert.Equal(t, uuid.MustParse(tU), e.TaskUUID)
	assert.Equal(t, uuid.MustParse(sU), e.StepUUID)
	assert.Equal(t, "h", e.Handler)
	// fields left out stay zero: Enqueue fills them in
	assert.Equal(t, uuid.Nil, e.EventID)
	assert.Equal(t, uuid.Nil, e.CorrelationID)
	assert.Zero(t, e.TimeoutMs)
	assert.Nil(t, e.Payload)
	assert.Nil(t, e.TraceID)
	assert.Nil(t, e.SpanID)
}

func TestParseDispatch_AllKeys(t *testing.T) {
	doc := fmt.Sprintf(` {
		"event_id": %q, "task_uuid": %q, "step_uuid": %q, "correlation_id": %q,
		"handler": "process_order", "payload": {"a": [1, 2, {"b": null}]},
		"timeout_ms": 2147483647, "trace_id": "t-1", "span_id": "s-1"
	} `, strings.ToUpper(eU), tU, sU, cU)
	e, err := wire.ParseDispatch([]byte(doc), 0)
	require.NoError(t, err)
	assert.Equal(t, uuid.MustParse(eU), e.EventID, "UUIDs are accepted in any case")
	assert.Equal(t, uuid.MustParse(cU), e.CorrelationID)
	assert.Equal(t, "process_order", e.Handler)
	assert.Equal(t, `{"a": [1, 2, {"b": null}]}`, string(e.Payload))
	assert.Equal(t, 2147483647, e.TimeoutMs)
	require.NotNil(t, e.TraceID)
	require.NotNil(t, e.SpanID)
	assert.Equal(t, "t-1", *e.TraceID)
	assert.Equal(t, "s-1", *e.SpanID)

	// trace_id and span_id may be null (absent)
	e, err = wire.ParseDispatch([]byte(dispatchDoc(`"trace_id":null`, `"span_id":null`)), 0)
	require.NoError(t, err)
	assert.Nil(t, e.TraceID)
	assert.Nil(t, e.SpanID)
}

// Payload numbers and formatting are carried exactly as written.
func TestParseDispatch_PayloadByteExact(t *testing.T) {
	payloads := []string{
		`1.000000000000000000001`,
		`1e400`,
		`-1E-400`,
		`123456789012345678901234567890`,
		`{"n": 1.000000000000000000001, "big": 1e400, "neg": -0.0, "x": [1.0, 2.50]}`,
		`"caf\u00e9 \ud83d\ude00 \"quoted\""`,
		`[ 1 ,  2 ]`,
		`null`,
		`true`,
	}
	for _, p := range payloads {
		t.Run(p, func(t *testing.T) {
			e, err := wire.ParseDispatch([]byte(dispatchDoc(`"payload":`+p)), 0)
			require.NoError(t, err)
			assert.Equal(t, p, string(e.Payload))
			e.DispatchedAt = time.Now()
			out := wire.AppendEventJSON(nil, &e)
			require.True(t, json.Valid(out), "%s", out)
			assert.Contains(t, string(out), `"payload":`+p+`,`)
			var back struct{ Payload json.RawMessage }
			require.NoError(t, json.Unmarshal(out, &back))
			assert.Equal(t, p, string(back.Payload))
		})
	}
}

func TestParseDispatch_BadInput(t *testing.T) {
	cases := []struct {
		name, doc string
		mention   string // the message must contain this (the key, usually)
	}{
		// not a single object
		{"empty", ``, "empty"},
		{"spaces", "  \n ", "empty"},
		{"array", `[]`, "object"},
		{"string", `"x"`, "object"},
		{"null", `null`, "object"},
		{"number", `1`, "object"},
		{"unterminated", `{"task_uuid":"` + tU + `"`, ""},
		{"trailing comma", `{"handler":"h",}`, ""},
		{"missing colon", `{"handler" "h"}`, ""},
		{"single quotes", `{'handler':'h'}`, ""},
		{"bare key", `{handler:"h"}`, ""},
		{"trailing data", dispatchDoc() + ` x`, "trailing"},
		{"two objects", dispatchDoc() + dispatchDoc(), "trailing"},
		{"trailing comma after object", dispatchDoc() + `,`, "trailing"},
		{"NUL after object", dispatchDoc() + "\x00", "trailing"},
		// unknown and duplicate keys
		{"unknown key", dispatchDoc(`"priority":1`), `"priority"`},
		{"unknown key case", dispatchDoc(`"Handler":"h"`), `"Handler"`},
		{"polled-only key", dispatchDoc(`"dispatched_at":"2024-01-01T00:00:00Z"`), `"dispatched_at"`},
		{"duplicate handler", dispatchDoc(`"handler":"h2"`), `duplicate key "handler"`},
		{"duplicate escaped", dispatchDoc(`"\u0068andler":"h2"`), `duplicate key "handler"`},
		{"duplicate payload", dispatchDoc(`"payload":1`, `"payload":2`), `duplicate key "payload"`},
		// missing required keys
		{"missing task_uuid", `{"step_uuid":"` + sU + `","handler":"h"}`, `"task_uuid"`},
		{"missing step_uuid", `{"task_uuid":"` + tU + `","handler":"h"}`, `"step_uuid"`},
		{"missing handler", `{"task_uuid":"` + tU + `","step_uuid":"` + sU + `"}`, `"handler"`},
		{"empty object", `{}`, `"task_uuid"`},
		{"empty handler", `{"task_uuid":"` + tU + `","step_uuid":"` + sU + `","handler":""}`, `"handler"`},
		// wrong types
		{"task_uuid number", `{"task_uuid":1,"step_uuid":"` + sU + `","handler":"h"}`, `"task_uuid"`},
		{"step_uuid null", `{"task_uuid":"` + tU + `","step_uuid":null,"handler":"h"}`, `"step_uuid"`},
		{"handler number", `{"task_uuid":"` + tU + `","step_uuid":"` + sU + `","handler":5}`, `"handler"`},
		{"handler null", `{"task_uuid":"` + tU + `","step_uuid":"` + sU + `","handler":null}`, `"handler"`},
		{"handler array", `{"task_uuid":"` + tU + `","step_uuid":"` + sU + `","handler":["h"]}`, `"handler"`},
		{"event_id number", dispatchDoc(`"event_id":7`), `"event_id"`},
		{"event_id null", dispatchDoc(`"event_id":null`), `"event_id"`},
		{"correlation_id object", dispatchDoc(`"correlation_id":{}`), `"correlation_id"`},
		{"timeout_ms string", dispatchDoc(`"timeout_ms":"10"`), `"timeout_ms"`},
		{"timeout_ms float", dispatchDoc(`"timeout_ms":1.5`), `"timeout_ms"`},
		{"timeout_ms float zero frac", dispatchDoc(`"timeout_ms":10.0`), `"timeout_ms"`},
		{"timeout_ms exponent", dispatchDoc(`"timeout_ms":1e3`), `"timeout_ms"`},
		{"timeout_ms zero", dispatchDoc(`"timeout_ms":0`), `"timeout_ms"`},
		{"timeout_ms negative", dispatchDoc(`"timeout_ms":-1`), `"timeout_ms"`},
		{"timeout_ms too big", dispatchDoc(`"timeout_ms":2147483648`), `"timeout_ms"`},
		{"timeout_ms overflow", dispatchDoc(`"timeout_ms":99999999999999999999`), `"timeout_ms"`},
		{"timeout_ms bool", dispatchDoc(`"timeout_ms":true`), `"timeout_ms"`},
		{"timeout_ms null", dispatchDoc(`"timeout_ms":null`), `"timeout_ms"`},
		{"trace_id number", dispatchDoc(`"trace_id":5`), `"trace_id"`},
		{"span_id bool", dispatchDoc(`"span_id":true`), `"span_id"`},
		// bad and non-canonical UUIDs
		{"uuid garbage", `{"task_uuid":"not-a-uuid","step_uuid":"` + sU + `","handler":"h"}`, `"task_uuid"`},
		{"uuid no dashes", `{"task_uuid":"` + strings.ReplaceAll(tU, "-", "") + `","step_uuid":"` + sU + `","handler":"h"}`, `"task_uuid"`},
		{"uuid braces", `{"task_uuid":"{` + tU + `}","step_uuid":"` + sU + `","handler":"h"}`, `"task_uuid"`},
		{"uuid urn", `{"task_uuid":"urn:uuid:` + tU + `","step_uuid":"` + sU + `","handler":"h"}`, `"task_uuid"`},
		{"uuid non-hex", `{"task_uuid":"g190a6c5-8f3e-7a11-9c2d-1234567890ab","step_uuid":"` + sU + `","handler":"h"}`, `"task_uuid"`},
		{"uuid dash moved", `{"task_uuid":"0190a6c58-f3e-7a11-9c2d-1234567890ab","step_uuid":"` + sU + `","handler":"h"}`, `"task_uuid"`},
		{"uuid short", `{"task_uuid":"` + tU[:35] + `","step_uuid":"` + sU + `","handler":"h"}`, `"task_uuid"`},
		{"uuid padded", `{"task_uuid":" ` + tU + `","step_uuid":"` + sU + `","handler":"h"}`, `"task_uuid"`},
		{"uuid empty", `{"task_uuid":"","step_uuid":"` + sU + `","handler":"h"}`, `"task_uuid"`},
		{"step uuid bad", `{"task_uuid":"` + tU + `","step_uuid":"x","handler":"h"}`, `"step_uuid"`},
		{"event_id bad", dispatchDoc(`"event_id":"` + strings.ReplaceAll(eU, "-", "") + `"`), `"event_id"`},
		{"correlation_id bad", dispatchDoc(`"correlation_id":"{` + cU + `}"`), `"correlation_id"`},
		// invalid UTF-8 and control characters
		{"handler bad utf8", `{"task_uuid":"` + tU + `","step_uuid":"` + sU + `","handler":"h` + "\xff" + `"}`, "UTF-8"},
		{"handler truncated utf8", `{"task_uuid":"` + tU + `","step_uuid":"` + sU + `","handler":"` + "\xe6\x97" + `"}`, "UTF-8"},
		{"handler surrogate utf8", `{"task_uuid":"` + tU + `","step_uuid":"` + sU + `","handler":"` + "\xed\xa0\x80" + `"}`, "UTF-8"},
		{"trace_id bad utf8", dispatchDoc("\"trace_id\":\"\xc3\x28\""), "UTF-8"},
		{"payload bad utf8", dispatchDoc("\"payload\":{\"k\":\"\xff\"}"), "UTF-8"},
		{"payload key bad utf8", dispatchDoc("\"payload\":{\"\xfe\":1}"), "UTF-8"},
		{"key bad utf8", dispatchDoc("\"\xff\":1"), "UTF-8"},
		{"raw control char", `{"task_uuid":"` + tU + `","step_uuid":"` + sU + `","handler":"a` + "\x01" + `"}`, "control"},
		{"raw newline", `{"task_uuid":"` + tU + `","step_uuid":"` + sU + `","handler":"a` + "\n" + `"}`, "control"},
		{"bad escape", `{"task_uuid":"` + tU + `","step_uuid":"` + sU + `","handler":"\x"}`, "escape"},
		{"short unicode escape", `{"task_uuid":"` + tU + `","step_uuid":"` + sU + `","handler":"\u12"}`, ""},
		// bad payload JSON
		{"payload missing", dispatchDoc(`"payload":`), `"payload"`},
		{"payload leading zero", dispatchDoc(`"payload":01`), ""},
		{"payload trailing dot", dispatchDoc(`"payload":1.`), `"payload"`},
		{"payload leading dot", dispatchDoc(`"payload":.5`), `"payload"`},
		{"payload plus", dispatchDoc(`"payload":+1`), `"payload"`},
		{"payload NaN", dispatchDoc(`"payload":NaN`), `"payload"`},
		{"payload bad literal", dispatchDoc(`"payload":tru`), `"payload"`},
		{"payload unclosed array", dispatchDoc(`"payload":[1,2`), ""},
		{"payload deep", dispatchDoc(`"payload":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000)), "deep"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := wire.ParseDispatch([]byte(tc.doc), 0)
			ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
			assert.Contains(t, err.Error(), tc.mention)
			assert.Equal(t, channel.Event{}, e, "a rejected document yields no event")
		})
	}
}

func TestParseDispatch_Whitespace(t *testing.T) {
	doc := " \t\r\n{ \"task_uuid\" : \"" + tU + "\" ,\n\"step_uuid\":\"" + sU + "\",\"handler\" :\"h\" } \n\t "
	_, err := wire.ParseDispatch([]byte(doc), 0)
	require.NoError(t, err)
}

func TestParseDispatch_EscapedStrings(t *testing.T) {
	doc := `{"task_uuid":"` + tU + `","step_uuid":"` + sU + `","handler":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00","trace_id":"\u0000"}`
	e, err := wire.ParseDispatch([]byte(doc), 0)
	require.NoError(t, err)
	assert.Equal(t, "a\"b\\c/d\n\té😀", e.Handler)
	assert.Equal(t, "\x00", *e.TraceID)
}

func TestParseDispatch_TooBig(t *testing.T) {
	doc := []byte(dispatchDoc(`"payload":"` + strings.Repeat("x", 200) + `"`))
	_, err := wire.ParseDispatch(doc, len(doc))
	require.NoError(t, err, "exactly max_payload_bytes is allowed")
	_, err = wire.ParseDispatch(doc, len(doc)-1)
	ts.ErrIs(t, err, channel.ErrTooBig, cabi.TooBig)
	assert.Contains(t, err.Error(), "max_payload_bytes")
	// the size check comes first, even for a document that would not parse
	_, err = wire.ParseDispatch([]byte(strings.Repeat("x", 100)), 64)
	ts.ErrIs(t, err, channel.ErrTooBig, cabi.TooBig)
}

// ---- results ----

func TestParseResult_Valid(t *testing.T) {
	r, err := wire.ParseResult([]byte(`{"success":true}`), 0)
	require.NoError(t, err)
	assert.Equal(t, channel.Result{Success: true}, r)

	r, err = wire.ParseResult([]byte(`{"success":true,"result":{"n":1.000000000000000000001,"m":1e400},"metadata":{"k":[1, 2]}}`), 0)
	require.NoError(t, err)
	assert.True(t, r.Success)
	assert.Nil(t, r.Error)
	assert.Equal(t, `{"n":1.000000000000000000001,"m":1e400}`, string(r.Result), "numbers are never rounded")
	assert.Equal(t, `{"k":[1, 2]}`, string(r.Metadata))

	r, err = wire.ParseResult([]byte(`{"success":true,"result":null,"metadata":null,"error":null}`), 0)
	require.NoError(t, err)
	assert.Equal(t, channel.Result{Success: true}, r, "null means absent")

	r, err = wire.ParseResult([]byte(`{"success":true,"result":[1,"two",false]}`), 0)
	require.NoError(t, err)
	assert.Equal(t, `[1,"two",false]`, string(r.Result))
}

func TestParseResult_FailureDefaults(t *testing.T) {
	r, err := wire.ParseResult([]byte(`{"success":false,"error":{"message":"boom"}}`), 0)
	require.NoError(t, err)
	require.NotNil(t, r.Error)
	assert.False(t, r.Success)
	assert.Equal(t, channel.ErrorInfo{Message: "boom", ErrorType: "handler_error", Retryable: true}, *r.Error)

	r, err = wire.ParseResult([]byte(`{"success":false,"error":{"message":"boom","error_type":null,"retryable":null}}`), 0)
	require.NoError(t, err)
	assert.Equal(t, channel.ErrorInfo{Message: "boom", ErrorType: "handler_error", Retryable: true}, *r.Error)

	r, err = wire.ParseResult([]byte(`{"success":false,"error":{"message":"boom","error_type":""}}`), 0)
	require.NoError(t, err)
	assert.Equal(t, "handler_error", r.Error.ErrorType)

	r, err = wire.ParseResult([]byte(`{"metadata":{"a":1},"error":{"retryable":false,"error_type":"validation","message":"bad \"input\""},"success":false}`), 0)
	require.NoError(t, err)
	assert.Equal(t, channel.ErrorInfo{Message: `bad "input"`, ErrorType: "validation", Retryable: false}, *r.Error)
	assert.Equal(t, `{"a":1}`, string(r.Metadata))
}

func TestParseResult_BadInput(t *testing.T) {
	cases := []struct{ name, doc, mention string }{
		{"empty", ``, "empty"},
		{"not object", `true`, "object"},
		{"array", `[{"success":true}]`, "object"},
		{"success missing", `{}`, `"success"`},
		{"success missing with result", `{"result":1}`, `"success"`},
		{"success string", `{"success":"true"}`, `"success"`},
		{"success number", `{"success":1}`, `"success"`},
		{"success null", `{"success":null}`, `"success"`},
		{"duplicate success", `{"success":true,"success":false}`, `duplicate key "success"`},
		{"failure without error", `{"success":false}`, `"error"`},
		{"failure null error", `{"success":false,"error":null}`, `"error"`},
		{"failure error string", `{"success":false,"error":"boom"}`, `"error"`},
		{"failure error array", `{"success":false,"error":["boom"]}`, `"error"`},
		{"failure without message", `{"success":false,"error":{}}`, `"message"`},
		{"failure empty message", `{"success":false,"error":{"message":""}}`, `"message"`},
		{"failure message number", `{"success":false,"error":{"message":1}}`, `"message"`},
		{"failure message null", `{"success":false,"error":{"message":null}}`, `"message"`},
		{"error_type number", `{"success":false,"error":{"message":"m","error_type":3}}`, `"error_type"`},
		{"retryable string", `{"success":false,"error":{"message":"m","retryable":"yes"}}`, `"retryable"`},
		{"duplicate in error", `{"success":false,"error":{"message":"m","message":"n"}}`, `duplicate key "message"`},
		{"unknown key in error", `{"success":false,"error":{"message":"m","code":42}}`, `"code"`},
		{"error with success true", `{"success":true,"error":{"message":"m"}}`, `"error"`},
		{"misplaced retryable", `{"success":false,"error":{"message":"m"},"retryable":false}`, `"retryable"`},
		{"misplaced message", `{"success":false,"message":"m"}`, `"message"`},
		{"misplaced error_type", `{"success":false,"error":{"message":"m"},"error_type":"x"}`, `"error_type"`},
		{"unknown top key", `{"success":true,"output":1}`, `"output"`},
		{"metadata number", `{"success":true,"metadata":1}`, `"metadata"`},
		{"metadata array", `{"success":true,"metadata":[]}`, `"metadata"`},
		{"metadata string", `{"success":true,"metadata":"{}"}`, `"metadata"`},
		{"metadata bool", `{"success":true,"metadata":true}`, `"metadata"`},
		{"result bad json", `{"success":true,"result":{"a":}}`, `"result"`},
		{"result bad utf8", "{\"success\":true,\"result\":\"\xff\"}", "UTF-8"},
		{"message bad utf8", "{\"success\":false,\"error\":{\"message\":\"\xff\"}}", "UTF-8"},
		{"trailing data", `{"success":true} {}`, "trailing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := wire.ParseResult([]byte(tc.doc), 0)
			ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
			assert.Contains(t, err.Error(), tc.mention)
			assert.Equal(t, channel.Result{}, r)
		})
	}
}

func TestParseResult_TooBig(t *testing.T) {
	doc := []byte(`{"success":true,"result":"` + strings.Repeat("y", 100) + `"}`)
	_, err := wire.ParseResult(doc, len(doc))
	require.NoError(t, err)
	_, err = wire.ParseResult(doc, len(doc)-1)
	ts.ErrIs(t, err, channel.ErrTooBig, cabi.TooBig)
}

// ValidateResult applies ParseResult's rules to a Result built in Go.
func TestValidateResult(t *testing.T) {
	good := []channel.Result{
		{Success: true},
		{Success: true, Result: []byte(`1e400`), Metadata: []byte(` {"a":1}`)},
		{Error: &channel.ErrorInfo{Message: "m"}},
	}
	for _, r := range good {
		assert.NoError(t, channel.ValidateResult(&r, 0), "%+v", r)
	}
	bad := map[string]channel.Result{
		"success with error":   {Success: true, Error: &channel.ErrorInfo{Message: "m"}},
		"failure no error":     {},
		"failure no message":   {Error: &channel.ErrorInfo{ErrorType: "x"}},
		"result not json":      {Success: true, Result: []byte(`{`)},
		"result empty":         {Success: true, Result: []byte{}},
		"metadata array":       {Success: true, Metadata: []byte(`[]`)},
		"metadata not json":    {Success: true, Metadata: []byte(`{"a"}`)},
		"metadata empty":       {Success: true, Metadata: []byte(` `)},
		"message bad utf8":     {Error: &channel.ErrorInfo{Message: "\xff"}},
		"error type bad utf8":  {Error: &channel.ErrorInfo{Message: "m", ErrorType: "\xfe"}},
		"result two values":    {Success: true, Result: []byte(`1 2`)},
		"metadata two objects": {Success: true, Metadata: []byte(`{}{}`)},
	}
	for name, r := range bad {
		t.Run(name, func(t *testing.T) {
			ts.ErrIs(t, channel.ValidateResult(&r, 0), channel.ErrInvalid, cabi.Invalid)
		})
	}
	big := channel.Result{Success: true, Result: []byte(`"` + strings.Repeat("z", 100) + `"`)}
	ts.ErrIs(t, channel.ValidateResult(&big, 64), channel.ErrTooBig, cabi.TooBig)
}

// ValidateResult promises the same rules as ParseResult, and ParseResult
// rejects invalid UTF-8 anywhere in `result` or `metadata`.
func TestValidateResult_RejectsInvalidUTF8InRawJSON(t *testing.T) {
	_, err := wire.ParseResult([]byte("{\"success\":true,\"result\":\"\xff\"}"), 0)
	require.ErrorIs(t, err, channel.ErrInvalid, "the JSON path rejects it")
	r := channel.Result{Success: true, Result: []byte("\"\xff\"")}
	ts.ErrIs(t, channel.ValidateResult(&r, 0), channel.ErrInvalid, cabi.Invalid)
	m := channel.Result{Success: true, Metadata: []byte("{\"k\":\"\xff\"}")}
	ts.ErrIs(t, channel.ValidateResult(&m, 0), channel.ErrInvalid, cabi.Invalid)
}

// The same for what encoding/json accepts and the strict rules do not: a
// lone UTF-16 surrogate escape, and nesting deeper than strictjson.MaxDepth.
// For each value, ParseResult of a document carrying it and ValidateResult
// of a Result built in Go with it must agree.
func TestValidateResult_AgreesWithParseResult(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	cases := map[string]bool{ // raw value -> valid
		`"\ud800"`:                    false, // lone high surrogate
		`"\udc00x"`:                   false, // lone low surrogate
		`"a\ud83dz"`:                  false, // high surrogate not followed by a low one
		`["\ud83d\ude00"]`:            true,  // a pair: U+1F600
		`{"k":"\ud800"}`:              false,
		`{"\udfff":1}`:                false, // in a key
		deep(500):                     true,
		deep(strictjson.MaxDepth + 5): false,
		`{"a":1}`:                     true,
	}
	for raw, valid := range cases {
		name := raw
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			_, perr := wire.ParseResult([]byte(`{"success":true,"result":`+raw+`}`), 0)
			verr := channel.ValidateResult(&channel.Result{Success: true, Result: []byte(raw)}, 0)
			if valid {
				require.NoError(t, perr)
				require.NoError(t, verr)
			} else {
				require.ErrorIs(t, perr, channel.ErrInvalid, "the document path rejects it")
				ts.ErrIs(t, verr, channel.ErrInvalid, cabi.Invalid)
			}
			if raw[0] == '{' { // and as metadata
				_, perr = wire.ParseResult([]byte(`{"success":true,"metadata":`+raw+`}`), 0)
				verr = channel.ValidateResult(&channel.Result{Success: true, Metadata: []byte(raw)}, 0)
				require.Equal(t, perr == nil, verr == nil, "metadata: ParseResult %v, ValidateResult %v", perr, verr)
			}
		})
	}
}

// ---- encoders ----

// tricky strings: quotes, backslashes, every control character, unicode
// (including U+2028/2029, which JavaScript once treated as newlines).
var tricky = func() string {
	var b strings.Builder
	b.WriteString(`q"uo\te/ é 日本 😀 ` + "\u2028\u2029\u007f")
	for c := 0; c < 0x20; c++ {
		b.WriteByte(byte(c))
	}
	return b.String()
}()

func TestAppendEventJSON(t *testing.T) {
	loc := time.FixedZone("X", -7*3600)
	e := channel.Event{
		EventID: uuid.MustParse(eU), TaskUUID: uuid.MustParse(tU), StepUUID: uuid.MustParse(sU), CorrelationID: uuid.MustParse(cU),
		Handler: tricky, Payload: []byte(`{"n":1.000000000000000000001}`), TimeoutMs: 1234,
		TraceID:      &tricky,
		DispatchedAt: time.Date(2024, 2, 29, 23, 59, 59, 1, loc),
		PolledAt:     time.Date(2024, 3, 1, 7, 0, 0, 999999999, time.UTC),
	}
	prefix := []byte("prefix:")
	out := wire.AppendEventJSON(append([]byte(nil), prefix...), &e)
	require.Equal(t, prefix, out[:len(prefix)], "Append appends")
	m := ts.DecodeObject(t, out[len(prefix):])
	assert.Equal(t, ts.EventKeys, ts.SortedKeys(m))
	assert.Equal(t, eU, m["event_id"])
	assert.Equal(t, tU, m["task_uuid"])
	assert.Equal(t, sU, m["step_uuid"])
	assert.Equal(t, cU, m["correlation_id"])
	assert.Equal(t, tricky, m["handler"])
	assert.Equal(t, tricky, m["trace_id"])
	assert.Nil(t, m["span_id"])
	assert.Equal(t, json.Number("1234"), m["timeout_ms"])
	assert.Equal(t, json.Number("1.000000000000000000001"), m["payload"].(map[string]any)["n"])
	ts.CheckTime(t, m["dispatched_at"], e.DispatchedAt)
	assert.Equal(t, "2024-03-01T06:59:59.000000001Z", m["dispatched_at"], "converted to UTC")
	ts.CheckTime(t, m["polled_at"], e.PolledAt)

	// nil payload is null; zero polled_at is null
	e2 := channel.Event{Handler: "h", DispatchedAt: time.Unix(0, 0)}
	m = ts.DecodeObject(t, wire.AppendEventJSON(nil, &e2))
	assert.Equal(t, ts.EventKeys, ts.SortedKeys(m))
	assert.Nil(t, m["payload"])
	assert.Nil(t, m["polled_at"])
	assert.Equal(t, "1970-01-01T00:00:00.000000000Z", m["dispatched_at"])

	arr := wire.AppendEventsJSON(nil, []channel.Event{e, e2})
	var list []map[string]any
	require.NoError(t, json.Unmarshal(arr, &list))
	require.Len(t, list, 2)
	assert.Equal(t, "[]", string(wire.AppendEventsJSON(nil, nil)))
}

func TestAppendCompletionJSON(t *testing.T) {
	polled := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	trace, span := tricky, "span-1"

	c := channel.Completion{
		EventID: uuid.MustParse(eU), TaskUUID: uuid.MustParse(tU), StepUUID: uuid.MustParse(sU), CorrelationID: uuid.MustParse(cU),
		Handler: tricky, Status: channel.StatusFailed, TraceID: &trace, SpanID: &span,
		Error:        &channel.ErrorInfo{Message: tricky, ErrorType: "handler_error", Retryable: true},
		Metadata:     []byte(`{"big":1e400}`),
		DispatchedAt: polled.Add(-time.Second),
		PolledAt:     polled,
		CompletedAt:  polled.Add(1500*time.Microsecond + 700*time.Nanosecond),
	}
	m := ts.DecodeObject(t, wire.AppendCompletionJSON(nil, &c))
	assert.Equal(t, ts.CompletionKeys, ts.SortedKeys(m))
	assert.Equal(t, eU, m["event_id"])
	assert.Equal(t, tU, m["task_uuid"])
	assert.Equal(t, sU, m["step_uuid"])
	assert.Equal(t, cU, m["correlation_id"])
	assert.Equal(t, tricky, m["trace_id"], "trace_id carried onto the completion")
	assert.Equal(t, "span-1", m["span_id"])
	assert.Equal(t, tricky, m["handler"])
	assert.Equal(t, "failed", m["status"])
	assert.Equal(t, false, m["success"])
	assert.Nil(t, m["result"])
	assert.Equal(t, map[string]any{"message": tricky, "error_type": "handler_error", "retryable": true}, m["error"])
	assert.Equal(t, json.Number("1e400"), m["metadata"].(map[string]any)["big"])
	ts.CheckTime(t, m["dispatched_at"], c.DispatchedAt)
	ts.CheckTime(t, m["polled_at"], c.PolledAt)
	ts.CheckTime(t, m["completed_at"], c.CompletedAt)
	assert.Equal(t, json.Number("1.5"), m["execution_time_ms"])

	// a never-polled event: polled_at and execution_time_ms are null, every key still present
	never := channel.Completion{Status: channel.StatusCancelled, DispatchedAt: polled, CompletedAt: polled}
	m = ts.DecodeObject(t, wire.AppendCompletionJSON(nil, &never))
	assert.Equal(t, ts.CompletionKeys, ts.SortedKeys(m))
	for _, k := range []string{"result", "error", "metadata", "polled_at", "execution_time_ms", "trace_id", "span_id"} {
		assert.Nil(t, m[k], k)
	}
	assert.Equal(t, "00000000-0000-0000-0000-000000000000", m["event_id"])

	// success with a result
	s := channel.Completion{Status: channel.StatusCompleted, Success: true, Result: []byte(`[1.10, "x"]`),
		DispatchedAt: polled, PolledAt: polled, CompletedAt: polled}
	b := wire.AppendCompletionJSON(nil, &s)
	m = ts.DecodeObject(t, b)
	assert.Equal(t, true, m["success"])
	assert.Equal(t, "completed", m["status"])
	assert.Contains(t, string(b), `"result":[1.10, "x"]`)
	assert.Equal(t, json.Number("0"), m["execution_time_ms"])
}

// The hand-rolled timestamp encoder writes what the RFC 3339 layout with
// nanoseconds writes, in UTC, for any instant.
func TestTimestampsMatchRFC3339Nano(t *testing.T) {
	const layout = "2006-01-02T15:04:05.000000000Z07:00"
	rng := rand.New(rand.NewPCG(3, 4))
	zones := []*time.Location{time.UTC, time.FixedZone("E", 13*3600+45*60), time.FixedZone("W", -12*3600), time.Local}
	times := []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2000, 2, 29, 12, 0, 0, 5, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2024, 1, 1, 0, 30, 0, 0, time.FixedZone("ahead", 3600)), // the previous year in UTC
		time.Now(),
	}
	for range 2000 {
		times = append(times, time.Unix(rng.Int64N(253402300799), rng.Int64N(1e9)).In(zones[rng.IntN(len(zones))]))
	}
	for _, tm := range times {
		c := channel.Completion{DispatchedAt: tm, PolledAt: tm, CompletedAt: tm}
		b := wire.AppendCompletionJSON(nil, &c)
		want := `"dispatched_at":"` + tm.UTC().Format(layout) + `"`
		if !strings.Contains(string(b), want) {
			t.Fatalf("time %v: want %s in %s", tm, want, b)
		}
		if !ts.TimestampRE.MatchString(tm.UTC().Format(layout)) {
			t.Fatalf("layout check %v", tm)
		}
	}
	// the zero time is null
	m := ts.DecodeObject(t, wire.AppendCompletionJSON(nil, &channel.Completion{}))
	assert.Nil(t, m["dispatched_at"])
	assert.Nil(t, m["completed_at"])
}

// The parsers allocate only the copies they hand out (the payload, the
// result and metadata): the scanner and the error plumbing around it cost
// nothing on an accepted document. (An errors.As on every call once cost two
// allocations per round trip.)
func TestParsers_AllocateOnlyTheirCopies(t *testing.T) {
	doc := []byte(dispatchDoc(`"payload":{"order":12345}`, `"timeout_ms":5000`))
	if n := testing.AllocsPerRun(200, func() {
		if _, err := wire.ParseDispatch(doc, 1<<20); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Errorf("ParseDispatch: %v allocations, want 1 (the payload)", n)
	}
	res := []byte(`{"success":true,"result":{"charged":12.5},"metadata":{"worker":"w1"}}`)
	if n := testing.AllocsPerRun(200, func() {
		if _, err := wire.ParseResult(res, 1<<20); err != nil {
			t.Fatal(err)
		}
	}); n > 2 {
		t.Errorf("ParseResult: %v allocations, want 2 (result, metadata)", n)
	}
}

// AppendUUIDText writes the canonical text (what uuid.UUID.String gives)
// and, into a buffer with room (tasker_dispatch's 37 bytes), allocates nothing.
func TestAppendUUIDText(t *testing.T) {
	us := []uuid.UUID{uuid.Nil, uuid.Max, uuid.Must(uuid.NewV7())}
	var every uuid.UUID // every byte value, in every position
	for i := range 256 {
		for j := range every {
			every[j] = byte(i + 17*j)
		}
		us = append(us, every)
	}
	for _, u := range us {
		got := wire.AppendUUIDText([]byte("id="), u)
		require.Equal(t, "id="+u.String(), string(got))
	}
	buf := make([]byte, 37)
	u := uuid.New()
	if n := testing.AllocsPerRun(200, func() { _ = wire.AppendUUIDText(buf[:0], u) }); n != 0 {
		t.Errorf("AppendUUIDText into a 37-byte buffer: %v allocations, want 0", n)
	}
}
