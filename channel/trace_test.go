package channel_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/channel"
)

// TestCompletionCarriesTraceAndCorrelation: trace_id, span_id and
// correlation_id travel from the dispatched event onto its completion,
// whichever way it ends (completed, timed out, cancelled queued or pending),
// and stay nil when the event had none.
func TestCompletionCarriesTraceAndCorrelation(t *testing.T) {
	c := newChan(t, nil)
	traced := func(n string) channel.Event {
		e := ev("h")
		tr, sp := "trace-"+n, "span-"+n
		e.TraceID, e.SpanID = &tr, &sp
		return e
	}
	done := enqueue(t, c, traced("done"))
	late := ev("h")
	late.TimeoutMs = 1
	tr := "trace-late"
	late.TraceID = &tr
	lateID := enqueue(t, c, late)
	plain := enqueue(t, c, ev("h"))
	queued := enqueue(t, c, traced("queued"))

	require.Equal(t, done, poll(t, c).EventID)
	require.NoError(t, c.Complete(done, ok()))
	require.Equal(t, lateID, poll(t, c).EventID)
	time.Sleep(5 * time.Millisecond)
	require.Equal(t, 1, c.CleanupTimeouts())
	pend := poll(t, c)
	require.Equal(t, plain, pend.EventID)
	c.Shutdown(0) // cancels `plain` (pending) and `queued`

	byID := map[string]channel.Completion{}
	for _, comp := range drain(t, c) {
		byID[comp.EventID.String()] = comp
	}
	require.Len(t, byID, 4)
	check := func(id string, trace, span *string) {
		t.Helper()
		comp := byID[id]
		require.Equal(t, trace, comp.TraceID, "trace_id of %s (%s)", id, comp.Status)
		require.Equal(t, span, comp.SpanID, "span_id of %s (%s)", id, comp.Status)
		require.NotZero(t, comp.CorrelationID)
	}
	s := func(v string) *string { return &v }
	check(done.String(), s("trace-done"), s("span-done"))
	check(lateID.String(), s("trace-late"), nil)
	check(plain.String(), nil, nil)
	check(queued.String(), s("trace-queued"), s("span-queued"))
	require.Equal(t, channel.StatusTimeout, byID[lateID.String()].Status)
	require.Equal(t, channel.StatusCancelled, byID[queued.String()].Status)
}
