// Package testsupport holds the helpers the Go tests of every package share:
// running a blocking call in the background and asserting that it returns
// (or not yet), and asserting an error's sentinel and C status together.
// Only tests import it.
package testsupport

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/internal/cabi"
)

// Wait is the generous limit for anything a test awaits: a deadlock
// detector, never a performance threshold.
const Wait = 20 * time.Second

// NotYetWindow is how long NotYet watches a blocked call.
const NotYetWindow = 50 * time.Millisecond

// Async runs fn in a goroutine and returns a channel that receives its result.
func Async[T any](fn func() T) <-chan T {
	ch := make(chan T, 1)
	go func() { ch <- fn() }()
	return ch
}

// Recv waits (up to Wait) for a value from ch; what names the call in the
// failure message.
func Recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Wait):
		t.Fatalf("%s did not return within %v", what, Wait)
	}
	panic("unreachable")
}

// NotYet asserts that ch has not delivered within NotYetWindow: a blocked
// call is still blocked. It can only fail (never pass wrongly) if the call
// under test returns when it should not.
func NotYet[T any](t testing.TB, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s returned %v while it should still be waiting", what, v)
	case <-time.After(NotYetWindow):
	}
}

// ErrIs asserts that err wraps target and that the C layer maps it to code
// (one of the cabi constants).
func ErrIs(t require.TestingT, err, target error, code int) {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	require.Error(t, err)
	require.ErrorIs(t, err, target)
	require.Equal(t, code, cabi.Status(err), "status of %v", err)
}

// DecodeObject asserts that b is one valid JSON object in valid UTF-8 and
// decodes it, numbers as json.Number.
func DecodeObject(t testing.TB, b []byte) map[string]any {
	t.Helper()
	require.True(t, json.Valid(b), "not valid JSON: %s", b)
	require.True(t, utf8.Valid(b), "not valid UTF-8: %q", b)
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&m))
	return m
}

// SortedKeys returns m's keys in order.
func SortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CompletionKeys and EventKeys are the keys of a completion and of a
// polled-event document (docs/ABI.md), sorted. A polled event has "checkpoint"
// too after a checkpoint (not listed: a first run has none).
var (
	CompletionKeys = []string{"checkpoints", "completed_at", "correlation_id", "dispatched_at", "error", "event_id",
		"execution_time_ms", "handler", "metadata", "polled_at", "result", "span_id", "status", "step_uuid", "success",
		"task_uuid", "trace_id"}
	EventKeys = []string{"correlation_id", "dispatched_at", "event_id", "handler", "payload", "polled_at",
		"span_id", "step_uuid", "task_uuid", "timeout_ms", "trace_id"}
)

// TimestampRE is the form of every timestamp the library writes: RFC 3339,
// UTC, nine fraction digits.
var TimestampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)

// CheckTime asserts that raw is a timestamp of the library's form equal to want.
func CheckTime(t testing.TB, raw any, want time.Time) {
	t.Helper()
	s, isStr := raw.(string)
	require.True(t, isStr, "timestamp %v is not a string", raw)
	require.Regexp(t, TimestampRE, s)
	got, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	require.True(t, got.Equal(want), "got %v want %v", got, want)
}
