package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/cabi"
	"github.com/tasker-systems/libtasker/internal/wire"
	rt "github.com/tasker-systems/libtasker/runtime"
)

// Seeds shared by the fuzz targets and TestRule12_NoPanicOnHostileInput.
var dispatchSeeds = []string{
	dispatchDoc(),
	dispatchDoc(`"payload":{"n":1.000000000000000000001,"m":1e400,"s":"\u00e9\ud83d\ude00"}`, `"timeout_ms":5`),
	dispatchDoc(`"event_id":"`+eU+`"`, `"correlation_id":"`+cU+`"`, `"trace_id":"t"`, `"span_id":null`),
	dispatchDoc(`"handler":"dup"`),
	dispatchDoc(`"retryable":true`),
	`{"task_uuid":"` + tU + `","step_uuid":"` + sU + `","handler":"\u0000\"\\"}`,
	`{"task_uuid":"` + tU + `","step_uuid":"` + sU + `","handler":""}`,
	`{"task_uuid":1}`,
	`{}`, `[]`, `null`, ``, `{`, `{"a":`, `{"a":"\ud800"}`, "{\"\xff\":1}",
	dispatchDoc(`"payload":[[[[[[[[[[]]]]]]]]]]`),
}

var resultSeeds = []string{
	`{"success":true}`,
	`{"success":true,"result":{"n":1e400},"metadata":{"k":[1,2,3]}}`,
	`{"success":false,"error":{"message":"boom"}}`,
	`{"success":false,"error":{"message":"boom","error_type":"x","retryable":false},"metadata":null}`,
	`{"success":false,"error":{"message":""}}`,
	`{"success":true,"error":{"message":"m"}}`,
	`{"success":false,"error":{"message":"m"},"retryable":false}`,
	`{"success":false,"error":{"message":"m","code":1}}`,
	`{"success":true,"metadata":[]}`,
	`{"success":"true"}`,
	`{"success":true,"success":true}`,
	`{"success":true} x`, `{`, ``, "{\"success\":true,\"result\":\"\xff\"}",
}

// acceptedValid checks what both decoders promise: a rejection is
// ErrInvalid or ErrTooBig, and an accepted document is valid JSON and UTF-8.
// It reports whether the document was accepted.
func acceptedValid(t *testing.T, data []byte, err error) bool {
	t.Helper()
	if err != nil {
		if st := cabi.Status(err); st != cabi.Invalid && st != cabi.TooBig {
			t.Fatalf("unexpected error class: %v", err)
		}
		return false
	}
	if !json.Valid(data) || !utf8.Valid(data) {
		t.Fatalf("accepted a document that is not valid JSON/UTF-8: %q", data)
	}
	return true
}

// FuzzParseDispatch: never panics; whatever is accepted is a valid JSON
// document whose fields are valid, and re-encodes to a valid polled-event
// document that encoding/json reads back to the same values.
func FuzzParseDispatch(f *testing.F) {
	for _, s := range dispatchSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := wire.ParseDispatch(data, 1<<16)
		if !acceptedValid(t, data, err) {
			return
		}
		if len(data) > 1<<16 {
			t.Fatalf("accepted %d bytes over max_payload_bytes", len(data))
		}
		if e.Handler == "" || !utf8.ValidString(e.Handler) {
			t.Fatalf("bad handler %q", e.Handler)
		}
		if e.TraceID != nil && !utf8.ValidString(*e.TraceID) || e.SpanID != nil && !utf8.ValidString(*e.SpanID) {
			t.Fatalf("bad trace/span id")
		}
		if e.TimeoutMs < 0 {
			t.Fatalf("negative timeout %d", e.TimeoutMs)
		}
		if e.Payload != nil && !json.Valid(e.Payload) {
			t.Fatalf("payload not valid JSON: %q", e.Payload)
		}
		// encoding/json agrees on the values
		var std struct {
			TaskUUID  uuid.UUID       `json:"task_uuid"`
			StepUUID  uuid.UUID       `json:"step_uuid"`
			Handler   string          `json:"handler"`
			Payload   json.RawMessage `json:"payload"`
			TimeoutMs int             `json:"timeout_ms"`
		}
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatalf("encoding/json rejects an accepted document: %v", err)
		}
		if std.Handler != e.Handler || std.TaskUUID != e.TaskUUID || std.StepUUID != e.StepUUID || std.TimeoutMs != e.TimeoutMs {
			t.Fatalf("encoding/json reads other values: %+v vs %+v", std, e)
		}
		if e.Payload != nil && !bytes.Equal(std.Payload, e.Payload) {
			t.Fatalf("payload not carried as written: %q vs %q", std.Payload, e.Payload)
		}
		// re-encode as a polled event and read it back
		e.DispatchedAt, e.PolledAt = time.Unix(1, 2), time.Unix(3, 4)
		out := wire.AppendEventJSON(nil, &e)
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("re-encoded event is not valid JSON/UTF-8: %q", out)
		}
		var back struct {
			Handler string          `json:"handler"`
			Payload json.RawMessage `json:"payload"`
			TraceID *string         `json:"trace_id"`
		}
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if back.Handler != e.Handler {
			t.Fatalf("handler round trip: %q vs %q", back.Handler, e.Handler)
		}
		if e.Payload != nil && !bytes.Equal(back.Payload, e.Payload) {
			t.Fatalf("payload round trip: %q vs %q", back.Payload, e.Payload)
		}
		if (e.TraceID == nil) != (back.TraceID == nil) || e.TraceID != nil && *e.TraceID != *back.TraceID {
			t.Fatalf("trace_id round trip")
		}
		// the Go path agrees: an accepted document makes an event Enqueue takes
		// (unless a UUID is nil, which only Enqueue rejects)
		if e.TaskUUID != uuid.Nil && e.StepUUID != uuid.Nil {
			c := newChan(t, nil)
			if _, err := c.Enqueue(bg, e, channel.KindFFI, 0); err != nil {
				t.Fatalf("Enqueue rejects a parsed event: %v", err)
			}
		}
	})
}

// FuzzParseResult: never panics; whatever is accepted is valid JSON, obeys
// the result rules, passes ValidateResult (the Go path's rules), and
// re-encodes into a valid completion document.
func FuzzParseResult(f *testing.F) {
	for _, s := range resultSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := wire.ParseResult(data, 1<<16)
		if !acceptedValid(t, data, err) {
			return
		}
		if r.Success != (r.Error == nil) {
			t.Fatalf("success %v with error %+v", r.Success, r.Error)
		}
		if r.Error != nil && (r.Error.Message == "" || r.Error.ErrorType == "" ||
			!utf8.ValidString(r.Error.Message) || !utf8.ValidString(r.Error.ErrorType)) {
			t.Fatalf("bad error %+v", r.Error)
		}
		if r.Metadata != nil && r.Metadata[0] != '{' {
			t.Fatalf("metadata not an object: %q", r.Metadata)
		}
		if err := channel.ValidateResult(&r, 1<<16); err != nil {
			t.Fatalf("ValidateResult rejects what ParseResult accepted: %v", err)
		}
		var std struct {
			Success  *bool           `json:"success"`
			Result   json.RawMessage `json:"result"`
			Metadata json.RawMessage `json:"metadata"`
		}
		if err := json.Unmarshal(data, &std); err != nil || std.Success == nil || *std.Success != r.Success {
			t.Fatalf("encoding/json disagrees: %v %+v", err, std)
		}
		if r.Result != nil && !bytes.Equal(std.Result, r.Result) {
			t.Fatalf("result not carried as written: %q vs %q", std.Result, r.Result)
		}
		comp := channel.Completion{Status: channel.StatusCompleted, Success: r.Success, Result: r.Result, Error: r.Error,
			Metadata: r.Metadata, DispatchedAt: time.Unix(1, 0), PolledAt: time.Unix(2, 0), CompletedAt: time.Unix(3, 0)}
		out := wire.AppendCompletionJSON(nil, &comp)
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("completion is not valid JSON/UTF-8: %q", out)
		}
		var back struct {
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message   string `json:"message"`
				ErrorType string `json:"error_type"`
				Retryable bool   `json:"retryable"`
			} `json:"error"`
		}
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if r.Result != nil && !bytes.Equal(back.Result, r.Result) {
			t.Fatalf("result round trip: %q vs %q", back.Result, r.Result)
		}
		if (r.Error == nil) != (back.Error == nil) ||
			r.Error != nil && (back.Error.Message != r.Error.Message || back.Error.ErrorType != r.Error.ErrorType || back.Error.Retryable != r.Error.Retryable) {
			t.Fatalf("error round trip: %+v vs %+v", back.Error, r.Error)
		}
	})
}

// TestRule12_NoPanicOnHostileInput runs every parser, and the channel calls
// that take caller input, over the seeds and thousands of deterministic
// mutations of them (truncations, byte flips, insertions of JSON
// metacharacters, invalid UTF-8). A panic fails the test; every rejection
// must map to EINVAL or ETOOBIG, never to EINTERNAL.
func TestRule12_NoPanicOnHostileInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	specials := []string{`"`, `\`, `{`, `}`, `[`, `]`, `:`, `,`, "\x00", "\xff", "\xed\xa0\x80", `\u`, `\ud800`, `1e999`, `-`, ` `, "null"}
	mutate := func(s []byte) []byte {
		out := append([]byte(nil), s...)
		for range 1 + rng.IntN(3) {
			switch rng.IntN(4) {
			case 0:
				if len(out) > 0 {
					out = out[:rng.IntN(len(out))]
				}
			case 1:
				if len(out) > 0 {
					out[rng.IntN(len(out))] ^= byte(1 << rng.IntN(8))
				}
			case 2:
				i := rng.IntN(len(out) + 1)
				sp := specials[rng.IntN(len(specials))]
				out = append(out[:i], append([]byte(sp), out[i:]...)...)
			case 3:
				if len(out) > 1 {
					i := rng.IntN(len(out) - 1)
					out = append(out[:i], out[i+1:]...)
				}
			}
		}
		return out
	}
	check := func(what string, in []byte, err error) {
		if err != nil && cabi.Status(err) != cabi.Invalid && cabi.Status(err) != cabi.TooBig {
			t.Fatalf("%s(%q): error %v maps to status %d", what, in, err, cabi.Status(err))
		}
	}
	c := newChan(t, func(cfg *channel.Config) {
		cfg.DispatchBufferSize, cfg.MaxConcurrentHandlers, cfg.CompletionBufferSize = 1<<20, 1<<20, 1<<20
	})
	n := 1000
	if testing.Short() {
		n = 200
	}
	all := append(append([]string{}, dispatchSeeds...), resultSeeds...)
	all = append(all, `{"dispatch_buffer_size":5,"worker_id":"w"}`)
	for _, seed := range all {
		for i := range n {
			in := []byte(seed)
			if i > 0 {
				in = mutate(in)
			}
			e, err := wire.ParseDispatch(in, 256)
			check("ParseDispatch", in, err)
			if err == nil {
				_, err = c.Enqueue(bg, e, channel.KindFFI, 0)
				if err != nil && !errors.Is(err, channel.ErrInvalid) { // a duplicate explicit id is EINVAL
					t.Fatalf("Enqueue of a parsed event: %v", err)
				}
			}
			r, err := wire.ParseResult(in, 256)
			check("ParseResult", in, err)
			if err == nil {
				err = c.Complete(uuid.New(), r)
				if !errors.Is(err, channel.ErrNotPending) {
					t.Fatalf("Complete of a parsed result for an unknown id: %v", err)
				}
			}
			_, err = rt.ParseConfig(in)
			check("ParseConfig", in, err)
		}
	}
}
