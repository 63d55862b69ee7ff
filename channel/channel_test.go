package channel_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/cabi"
	ts "github.com/tasker-systems/libtasker/internal/testsupport"
	"github.com/tasker-systems/libtasker/internal/wire"
)

// ---- dispatch ----

func TestEnqueue_Defaults(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.HandlerTimeoutMs = 4321 })
	in := ev("h")
	in.Payload = []byte(`{"x":1e400}`)
	before := time.Now()
	id, err := c.Enqueue(bg, in, channel.KindFFI, 0)
	require.NoError(t, err)
	assert.Equal(t, uuid.Version(7), id.Version(), "generated event ids are UUIDv7")

	got := poll(t, c)
	assert.Equal(t, id, got.EventID)
	assert.Equal(t, uuid.Version(7), got.CorrelationID.Version(), "generated correlation ids are UUIDv7")
	assert.NotEqual(t, got.EventID, got.CorrelationID)
	assert.Equal(t, 4321, got.TimeoutMs, "timeout_ms defaults to handler_timeout_ms")
	assert.Equal(t, in.TaskUUID, got.TaskUUID)
	assert.Equal(t, in.StepUUID, got.StepUUID)
	assert.Equal(t, `{"x":1e400}`, string(got.Payload))
	assert.False(t, got.DispatchedAt.Before(before))
	assert.False(t, got.PolledAt.Before(got.DispatchedAt))

	// explicit values are kept
	in2 := ev("h")
	in2.EventID, in2.CorrelationID, in2.TimeoutMs = uuid.New(), uuid.New(), 7
	trace := "trace"
	in2.TraceID = &trace
	in2.PolledAt = time.Now() // ignored: set at poll
	id2 := enqueue(t, c, in2)
	assert.Equal(t, in2.EventID, id2)
	got2 := poll(t, c)
	assert.Equal(t, in2.EventID, got2.EventID)
	assert.Equal(t, in2.CorrelationID, got2.CorrelationID)
	assert.Equal(t, 7, got2.TimeoutMs)
	assert.Equal(t, "trace", *got2.TraceID)

	// the polled document carries every key filled in
	m := ts.DecodeObject(t, wire.AppendEventJSON(nil, &got))
	assert.Equal(t, ts.EventKeys, ts.SortedKeys(m))
	assert.Equal(t, json.Number("4321"), m["timeout_ms"])
	assert.NotNil(t, m["polled_at"])
	assert.NotNil(t, m["correlation_id"])
}

// Generated ids are UUIDv7, unique and time-ordered (strictly increasing
// within the process), from several goroutines at once.
func TestEnqueue_GeneratedIDsUniqueAndOrdered(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) {
		cfg.DispatchBufferSize, cfg.MaxConcurrentHandlers, cfg.CompletionBufferSize = 4000, 4000, 4000
	})
	var prev uuid.UUID
	seen := map[uuid.UUID]bool{}
	for range 1000 {
		id := enqueue(t, c, ev("h"))
		require.Equal(t, uuid.Version(7), id.Version())
		require.Equal(t, uuid.RFC4122, id.Variant())
		require.Positive(t, bytes.Compare(id[:], prev[:]), "%s after %s", id, prev)
		prev = id
		seen[id] = true
	}
	results := make(chan []uuid.UUID, 4)
	for range 4 {
		go func() {
			var out []uuid.UUID
			for range 500 {
				id, err := c.Enqueue(bg, ev("h"), channel.KindFFI, 0)
				if err != nil {
					break
				}
				out = append(out, id)
			}
			results <- out
		}()
	}
	for range 4 {
		out := ts.Recv(t, results, "concurrent dispatches")
		require.Len(t, out, 500)
		for _, id := range out {
			require.False(t, seen[id], "duplicate generated id %s", id)
			seen[id] = true
		}
	}
	evs, err := c.PollBatch(bg, 3000, 0)
	require.NoError(t, err)
	require.Len(t, evs, 3000)
	for _, e := range evs {
		require.Equal(t, uuid.Version(7), e.CorrelationID.Version())
		require.False(t, seen[e.CorrelationID], "correlation id equal to an event id")
		seen[e.CorrelationID] = true
	}
}

func TestEnqueue_DuplicateLiveEventID(t *testing.T) {
	c := newChan(t, nil)
	id := uuid.New()
	e := ev("h")
	e.EventID = id
	enqueue(t, c, e)

	_, err := c.Enqueue(bg, e, channel.KindFFI, 0)
	ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
	assert.Contains(t, err.Error(), id.String())
	assert.Equal(t, 1, c.Stats().Queued, "the duplicate queued nothing")

	poll(t, c)
	_, err = c.Enqueue(bg, e, channel.KindFFI, 0)
	ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
	assert.Equal(t, 0, c.Stats().Queued)

	require.NoError(t, c.Complete(id, ok()))
	// ended (its completion still in the stream): the id may be reused
	got, err := c.Enqueue(bg, e, channel.KindFFI, 0)
	require.NoError(t, err)
	assert.Equal(t, id, got)
	s := c.Stats()
	assert.EqualValues(t, 2, s.Dispatched)
	assert.EqualValues(t, 2, s.RejectedInvalid)
}

// Rule 7: a rejected dispatch queues nothing.
func TestRule7_RejectedDispatchQueuesNothing(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxPayloadBytes = 64 })
	bad := map[string]channel.Event{
		"nil task":          {StepUUID: uuid.New(), Handler: "h"},
		"nil step":          {TaskUUID: uuid.New(), Handler: "h"},
		"empty handler":     {TaskUUID: uuid.New(), StepUUID: uuid.New()},
		"bad utf8 handler":  {TaskUUID: uuid.New(), StepUUID: uuid.New(), Handler: "h\xff"},
		"negative timeout":  {TaskUUID: uuid.New(), StepUUID: uuid.New(), Handler: "h", TimeoutMs: -1},
		"payload not json":  {TaskUUID: uuid.New(), StepUUID: uuid.New(), Handler: "h", Payload: []byte(`{`)},
		"payload empty":     {TaskUUID: uuid.New(), StepUUID: uuid.New(), Handler: "h", Payload: []byte{}},
		"payload two":       {TaskUUID: uuid.New(), StepUUID: uuid.New(), Handler: "h", Payload: []byte(`1 2`)},
		"payload bad utf8":  {TaskUUID: uuid.New(), StepUUID: uuid.New(), Handler: "h", Payload: []byte("\"\xff\"")},
		"trace bad utf8":    {TaskUUID: uuid.New(), StepUUID: uuid.New(), Handler: "h", TraceID: ptr("\xff")},
		"span bad utf8":     {TaskUUID: uuid.New(), StepUUID: uuid.New(), Handler: "h", SpanID: ptr("\xfe")},
		"timeout too large": {TaskUUID: uuid.New(), StepUUID: uuid.New(), Handler: "h", TimeoutMs: 1 << 31},
	}
	n := 0
	for name, e := range bad {
		t.Run(name, func(t *testing.T) {
			id, err := c.Enqueue(bg, e, channel.KindFFI, 0)
			ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
			assert.Equal(t, uuid.Nil, id)
			n++
		})
	}
	big := ev("h")
	big.Payload = []byte(`"` + strings.Repeat("x", 100) + `"`)
	_, err := c.Enqueue(bg, big, channel.KindFFI, 0)
	ts.ErrIs(t, err, channel.ErrTooBig, cabi.TooBig)
	n++

	s := c.Stats()
	assert.Zero(t, s.Dispatched)
	assert.Zero(t, s.Queued)
	assert.EqualValues(t, n, s.RejectedInvalid)
	_, err = c.Poll(bg, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
}

func ptr(s string) *string { return &s }

// Rule 3 (dispatch bound): with nobody polling exactly dispatch_buffer_size
// dispatches succeed; the next waits its timeout, then ErrFull, queueing
// nothing.
func TestRule3_DispatchBufferBound(t *testing.T) {
	const size = 5
	c := newChan(t, func(cfg *channel.Config) { cfg.DispatchBufferSize = size })
	first := enqueueN(t, c, size)

	_, err := c.Enqueue(bg, ev("h"), channel.KindFFI, 0)
	ts.ErrIs(t, err, channel.ErrFull, cabi.Full)
	_, err = c.Enqueue(bg, ev("h"), channel.KindFFI, 20*time.Millisecond)
	ts.ErrIs(t, err, channel.ErrFull, cabi.Full)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	_, err = c.Enqueue(ctx, ev("h"), channel.KindFFI, -1)
	require.Error(t, err, "a cancelled context ends the wait")

	s := c.Stats()
	assert.Equal(t, size, s.Queued, "a rejected dispatch queues nothing")
	assert.EqualValues(t, size, s.Dispatched)
	assert.EqualValues(t, 3, s.RejectedFull)

	// a waiting dispatch succeeds as soon as a poll frees room
	extra := ev("h")
	waiting := ts.Async(func() result {
		id, err := c.Enqueue(bg, extra, channel.KindFFI, wait)
		return result{id, err}
	})
	ts.NotYet(t, waiting, "Enqueue into a full queue")
	assert.Equal(t, first[0], poll(t, c).EventID)
	r := ts.Recv(t, waiting, "Enqueue after a poll freed room")
	require.NoError(t, r.err)
	assert.Equal(t, size, c.Stats().Queued)

	// FIFO: the waiting dispatch went to the back
	for _, want := range append(first[1:], r.id) {
		assert.Equal(t, want, poll(t, c).EventID)
	}
}

// Rule 3: poll hands out nothing while running == max_concurrent_handlers.
func TestRule3_InFlightBoundOnPoll_MaxConcurrent(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxConcurrentHandlers = 2; cfg.CompletionBufferSize = 100 })
	enqueueN(t, c, 10)
	a, b := poll(t, c), poll(t, c)

	_, err := c.Poll(bg, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
	_, err = c.Poll(bg, 20*time.Millisecond)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
	_, err = c.PollBatch(bg, 5, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
	s := c.Stats()
	assert.Equal(t, 2, s.Pending)
	assert.Equal(t, 8, s.Queued)

	// a blocked poll resumes when a complete frees a slot
	waiting := ts.Async(func() error { _, err := c.Poll(bg, wait); return err })
	ts.NotYet(t, waiting, "Poll at max_concurrent_handlers")
	require.NoError(t, c.Complete(a.EventID, ok()))
	require.NoError(t, ts.Recv(t, waiting, "Poll after a complete"))
	assert.Equal(t, 2, c.Stats().Pending)

	_, err = c.Poll(bg, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
	require.NoError(t, c.Complete(b.EventID, ok()))
	evs, err := c.PollBatch(bg, 100, 0)
	require.NoError(t, err)
	assert.Len(t, evs, 1, "a batch takes only what the bound allows")
}

// Rule 3: poll hands out nothing while running + undelivered ==
// completion_buffer_size, and resumes after NextCompletion.
func TestRule3_InFlightBoundOnPoll_CompletionBuffer(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxConcurrentHandlers = 2; cfg.CompletionBufferSize = 3 })
	enqueueN(t, c, 10)
	for range 3 {
		e := poll(t, c)
		require.NoError(t, c.Complete(e.EventID, ok()))
	}
	// running 0, undelivered 3: full although no handler runs
	_, err := c.Poll(bg, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
	_, err = c.PollBatch(bg, 2, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)

	next(t, c)
	e := poll(t, c) // running 1 + undelivered 2 == 3
	assert.Equal(t, 1, c.Stats().Pending)
	_, err = c.Poll(bg, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)

	// a blocked poll resumes when NextCompletion frees room
	waiting := ts.Async(func() error { _, err := c.Poll(bg, wait); return err })
	ts.NotYet(t, waiting, "Poll at completion_buffer_size")
	next(t, c)
	require.NoError(t, ts.Recv(t, waiting, "Poll after NextCompletion"))
	s := c.Stats()
	assert.Equal(t, 2, s.Pending)
	assert.Equal(t, 1, s.Undelivered)
	assert.LessOrEqual(t, s.Pending+s.Undelivered, 3)
	require.NoError(t, c.Complete(e.EventID, ok()))
}

func TestPollBatch(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxConcurrentHandlers = 4; cfg.CompletionBufferSize = 4 })
	_, err := c.PollBatch(bg, 0, 0)
	ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
	_, err = c.PollBatch(bg, 3, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)

	want := enqueueN(t, c, 6)
	evs, err := c.PollBatch(bg, 3, 0)
	require.NoError(t, err)
	require.Len(t, evs, 3)
	for i := range evs {
		assert.Equal(t, want[i], evs[i].EventID, "FIFO")
		assert.False(t, evs[i].PolledAt.IsZero())
	}
	evs, err = c.PollBatch(bg, 3, 0)
	require.NoError(t, err)
	require.Len(t, evs, 1, "only max_concurrent_handlers - running more")
	assert.Equal(t, want[3], evs[0].EventID)
	assert.EqualValues(t, 4, c.Stats().Polled)

	// a batch waits only for the first event
	c2 := newChan(t, nil)
	got := ts.Async(func() []channel.Event { evs, _ := c2.PollBatch(bg, 10, wait); return evs })
	ts.NotYet(t, got, "PollBatch on an empty queue")
	enqueue(t, c2, ev("h"))
	assert.Len(t, ts.Recv(t, got, "PollBatch"), 1)
}

func TestPoll_WaitsForDispatchAndContext(t *testing.T) {
	c := newChan(t, nil)
	got := ts.Async(func() result { e, err := c.Poll(bg, wait); return result{e.EventID, err} })
	ts.NotYet(t, got, "Poll on an empty queue")
	id := enqueue(t, c, ev("h"))
	r := ts.Recv(t, got, "Poll")
	require.NoError(t, r.err)
	assert.Equal(t, id, r.id)

	ctx, cancel := context.WithCancel(bg)
	res := ts.Async(func() error { _, err := c.Poll(ctx, -1); return err })
	ts.NotYet(t, res, "Poll(-1)")
	cancel()
	err := ts.Recv(t, res, "Poll after cancel")
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
	assert.ErrorIs(t, err, context.Canceled)

	_, err = c.NextCompletion(bg, 20*time.Millisecond)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
}

// Rule 2: Complete and CleanupTimeouts never wait for a consumer: with
// nobody taking completions, completing every running event returns at once.
func TestRule2_CompleteNeverBlocks(t *testing.T) {
	const n = 64
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxConcurrentHandlers = n; cfg.CompletionBufferSize = n })
	enqueueN(t, c, 2*n)
	evs, err := c.PollBatch(bg, 2*n, 0)
	require.NoError(t, err)
	require.Len(t, evs, n)
	done := ts.Async(func() error {
		for i, e := range evs {
			var err error
			if i%2 == 0 {
				err = c.Complete(e.EventID, ok())
			} else {
				err = c.Complete(e.EventID, failed("no"))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, ts.Recv(t, done, "Complete with nobody calling NextCompletion"))
	s := c.Stats()
	assert.Equal(t, n, s.Undelivered)
	assert.Equal(t, 0, s.Pending)

	// the same for cleanup: a second round, all expiring
	c2 := newChan(t, func(cfg *channel.Config) {
		cfg.MaxConcurrentHandlers, cfg.CompletionBufferSize, cfg.HandlerTimeoutMs = n, n, 1
	})
	enqueueN(t, c2, n)
	evs, err = c2.PollBatch(bg, n, 0)
	require.NoError(t, err)
	require.Len(t, evs, n)
	total := 0
	require.Eventually(t, func() bool {
		r := ts.Async(func() int { return c2.CleanupTimeouts() })
		total += ts.Recv(t, r, "CleanupTimeouts with nobody calling NextCompletion")
		return total == n
	}, wait, time.Millisecond)
	assert.Equal(t, n, c2.Stats().Undelivered)
}

// Rule 7: an invalid result leaves its event pending; a later valid one
// completes it.
func TestRule7_InvalidResultLeavesEventPending(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxPayloadBytes = 64 })
	id := enqueue(t, c, ev("h"))
	poll(t, c)
	bad := map[string]channel.Result{
		"failure without error":   {},
		"failure without message": {Error: &channel.ErrorInfo{ErrorType: "x"}},
		"success with error":      {Success: true, Error: &channel.ErrorInfo{Message: "m"}},
		"result not json":         {Success: true, Result: []byte(`{"a":`)},
		"metadata not object":     {Success: true, Metadata: []byte(`[1]`)},
		"message bad utf8":        {Error: &channel.ErrorInfo{Message: "\xff"}},
	}
	for name, r := range bad {
		err := c.Complete(id, r)
		ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
		s := c.Stats()
		assert.Equal(t, 1, s.Pending, name)
		assert.Equal(t, 0, s.Undelivered, name)
		assert.Zero(t, s.LateCompletions, name)
	}
	err := c.Complete(id, channel.Result{Success: true, Result: []byte(`"` + strings.Repeat("x", 100) + `"`)})
	ts.ErrIs(t, err, channel.ErrTooBig, cabi.TooBig)
	_, err = c.NextCompletion(bg, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)

	require.NoError(t, c.Complete(id, channel.Result{Success: true, Result: []byte(`1.000000000000000000001`)}))
	comp := next(t, c)
	assert.Equal(t, id, comp.EventID)
	assert.Equal(t, channel.StatusCompleted, comp.Status)
	assert.Equal(t, `1.000000000000000000001`, string(comp.Result))
}

// Rule 8: a complete for an event that is not pending returns ErrNotPending
// and counts as a late completion; the first end stands.
func TestRule8_LateCompletions(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.HandlerTimeoutMs = 60_000 })
	late := 0
	expectLate := func(id uuid.UUID, r channel.Result) {
		t.Helper()
		ts.ErrIs(t, c.Complete(id, r), channel.ErrNotPending, cabi.NotFound)
		late++
		assert.EqualValues(t, late, c.Stats().LateCompletions)
	}

	// unknown
	expectLate(uuid.New(), ok())
	// never polled: stays queued
	queued := enqueue(t, c, ev("h"))
	expectLate(queued, ok())
	assert.Equal(t, 1, c.Stats().Queued)
	assert.Equal(t, queued, poll(t, c).EventID)

	// already completed: the first result stands, one completion only
	require.NoError(t, c.Complete(queued, channel.Result{Success: true, Result: []byte(`"first"`)}))
	expectLate(queued, failed("second"))
	expectLate(queued, channel.Result{Success: true, Result: []byte(`"third"`)})
	comp := next(t, c)
	assert.Equal(t, channel.StatusCompleted, comp.Status)
	assert.Equal(t, `"first"`, string(comp.Result))
	// and after its completion was taken
	expectLate(queued, ok())

	// expired by cleanup: the timeout stands
	e := ev("h")
	e.TimeoutMs = 1
	expired := enqueue(t, c, e)
	poll(t, c)
	require.Eventually(t, func() bool { return c.CleanupTimeouts() == 1 }, wait, time.Millisecond)
	expectLate(expired, ok())
	comp = next(t, c)
	assert.Equal(t, expired, comp.EventID)
	assert.Equal(t, channel.StatusTimeout, comp.Status)

	// cancelled at shutdown
	cancelled := enqueue(t, c, ev("h"))
	poll(t, c)
	c.Shutdown(0)
	expectLate(cancelled, ok())
	comp = next(t, c)
	assert.Equal(t, channel.StatusCancelled, comp.Status)
	_, err := c.NextCompletion(bg, 0)
	ts.ErrIs(t, err, channel.ErrClosed, cabi.Closed)

	// an invalid late result is rejected as invalid first, and not counted
	ts.ErrIs(t, c.Complete(uuid.New(), channel.Result{}), channel.ErrInvalid, cabi.Invalid)
	assert.EqualValues(t, late, c.Stats().LateCompletions)
}

// Rule 8, second half: a reused explicit id means a late complete for the
// earlier event reaches the new one (documented).
func TestRule8_ReusedIDReceivesLateComplete(t *testing.T) {
	c := newChan(t, nil)
	e := ev("h")
	e.EventID = uuid.New()
	enqueue(t, c, e)
	poll(t, c)
	require.NoError(t, c.Complete(e.EventID, ok()))
	enqueue(t, c, e)
	poll(t, c)
	require.NoError(t, c.Complete(e.EventID, failed("meant for the first")))
	cs := drain(t, c)
	require.Len(t, cs, 2)
	assert.Equal(t, channel.StatusCompleted, cs[0].Status)
	assert.Equal(t, channel.StatusFailed, cs[1].Status)
	assert.Equal(t, "meant for the first", cs[1].Error.Message)
}

// Rule 4: completions leave the stream in the order in which complete,
// cleanup and shutdown ended their events.
func TestRule4_CompletionOrder(t *testing.T) {
	const n = 60
	c := newChan(t, func(cfg *channel.Config) {
		cfg.MaxConcurrentHandlers, cfg.CompletionBufferSize, cfg.HandlerTimeoutMs = n, n, 3_600_000
	})
	short := map[uuid.UUID]bool{}
	for i := range n {
		e := ev("h")
		if i%6 == 0 {
			e.TimeoutMs = 1
		}
		id := enqueue(t, c, e)
		if e.TimeoutMs == 1 {
			short[id] = true
		}
	}
	evs, err := c.PollBatch(bg, n, 0)
	require.NoError(t, err)
	require.Len(t, evs, n)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	var long []channel.Event
	for _, e := range evs {
		if !short[e.EventID] {
			long = append(long, e)
		}
	}

	// expected stream: a list of groups; order inside a group is free only
	// for events ended by one cleanup or one shutdown
	var groups [][]uuid.UUID
	for _, e := range long[:20] {
		require.NoError(t, c.Complete(e.EventID, ok()))
		groups = append(groups, []uuid.UUID{e.EventID})
	}
	expired := 0
	require.Eventually(t, func() bool { expired += c.CleanupTimeouts(); return expired == len(short) }, wait, time.Millisecond)
	var g []uuid.UUID
	for id := range short {
		g = append(g, id)
	}
	groups = append(groups, g)
	for _, e := range long[20:40] {
		require.NoError(t, c.Complete(e.EventID, failed("x")))
		groups = append(groups, []uuid.UUID{e.EventID})
	}
	g = nil
	for _, e := range long[40:] {
		g = append(g, e.EventID)
	}
	c.Shutdown(0)
	groups = append(groups, g)

	got := ids(drain(t, c))
	require.Len(t, got, n)
	i := 0
	for _, g := range groups {
		assert.ElementsMatch(t, g, got[i:i+len(g)], "stream positions %d..%d", i, i+len(g))
		i += len(g)
	}
}

// Rule 4 with completes only: the stream is exactly the complete order.
func TestRule4_ShuffledCompleteOrderIsStreamOrder(t *testing.T) {
	const n = 200
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxConcurrentHandlers, cfg.CompletionBufferSize = n, n })
	enqueueN(t, c, n)
	evs, err := c.PollBatch(bg, n, 0)
	require.NoError(t, err)
	rand.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	want := make([]uuid.UUID, n)
	for i, e := range evs {
		want[i] = e.EventID
		require.NoError(t, c.Complete(e.EventID, ok()))
	}
	assert.Equal(t, want, ids(drain(t, c)))
}

// Rule 9: an event's deadline is its poll time plus its own timeout_ms
// (default handler_timeout_ms); cleanup ends it with an ffi_timeout result.
func TestRule9_PerEventTimeout(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.HandlerTimeoutMs = 3_600_000 })
	e := ev("h")
	e.TimeoutMs = 1
	short := enqueue(t, c, e)
	long := enqueue(t, c, ev("h"))
	evs, err := c.PollBatch(bg, 2, 0)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	assert.Equal(t, 1, evs[0].TimeoutMs)
	assert.Equal(t, 3_600_000, evs[1].TimeoutMs)

	require.Eventually(t, func() bool { return c.CleanupTimeouts() == 1 }, wait, time.Millisecond)
	assert.Zero(t, c.CleanupTimeouts(), "the event with the default timeout is not expired")
	s := c.Stats()
	assert.Equal(t, 1, s.Pending)
	assert.EqualValues(t, 1, s.TimedOut)

	comp := next(t, c)
	assert.Equal(t, short, comp.EventID)
	assert.Equal(t, channel.StatusTimeout, comp.Status)
	assert.False(t, comp.Success)
	require.NotNil(t, comp.Error)
	assert.Equal(t, "ffi_timeout", comp.Error.ErrorType)
	assert.True(t, comp.Error.Retryable)
	assert.NotEmpty(t, comp.Error.Message)
	assert.False(t, comp.PolledAt.IsZero())
	d, okd := comp.ExecutionTime()
	assert.True(t, okd)
	assert.GreaterOrEqual(t, d, time.Millisecond, "it ended no earlier than its deadline")

	m := ts.DecodeObject(t, wire.AppendCompletionJSON(nil, &comp))
	assert.Equal(t, "timeout", m["status"])
	assert.Equal(t, "ffi_timeout", m["error"].(map[string]any)["error_type"])

	ts.ErrIs(t, c.Complete(short, ok()), channel.ErrNotPending, cabi.NotFound)
	require.NoError(t, c.Complete(long, ok()))
}

func TestRule9_DefaultTimeoutFromConfig(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.HandlerTimeoutMs = 1 })
	id := enqueue(t, c, ev("h"))
	assert.Equal(t, 1, poll(t, c).TimeoutMs)
	require.Eventually(t, func() bool { return c.CleanupTimeouts() == 1 }, wait, time.Millisecond)
	comp := next(t, c)
	assert.Equal(t, id, comp.EventID)
	assert.Equal(t, channel.StatusTimeout, comp.Status)
}

// Rule 9: the clock starts at poll, not at dispatch; queued events never expire.
func TestRule9_DeadlineCountsFromPoll(t *testing.T) {
	c := newChan(t, nil)
	e := ev("h")
	e.TimeoutMs = 1000
	enqueue(t, c, e)
	time.Sleep(1100 * time.Millisecond) // longer than its timeout, spent queued
	assert.Zero(t, c.CleanupTimeouts(), "a queued event does not expire")
	poll(t, c)
	assert.Zero(t, c.CleanupTimeouts(), "its deadline is poll time + timeout_ms")
	assert.Equal(t, 1, c.Stats().Pending)
	require.Eventually(t, func() bool { return c.CleanupTimeouts() == 1 }, wait, 5*time.Millisecond)
}

// ---- shutdown (rule 10) ----

func TestRule10_DispatchAfterShutdownBegins(t *testing.T) {
	c := newChan(t, nil)
	id := enqueue(t, c, ev("h"))
	poll(t, c)
	assert.Equal(t, "running", c.Stats().State)
	done := ts.Async(func() struct{} { c.Shutdown(-1); return struct{}{} })
	require.Eventually(t, c.Closing, wait, time.Millisecond)
	assert.Equal(t, "draining", c.Stats().State)

	_, err := c.Enqueue(bg, ev("h"), channel.KindFFI, 0)
	ts.ErrIs(t, err, channel.ErrShutdown, cabi.Shutdown)
	_, err = c.Enqueue(bg, ev("h"), channel.KindFFI, -1)
	ts.ErrIs(t, err, channel.ErrShutdown, cabi.Shutdown)
	s := c.Stats()
	assert.EqualValues(t, 1, s.Dispatched)
	assert.Zero(t, s.Queued)

	ts.NotYet(t, done, "Shutdown(-1) with a pending event")
	// workers may still complete pending events while draining
	require.NoError(t, c.Complete(id, ok()))
	ts.Recv(t, done, "Shutdown(-1) after the last event ended")
	assert.Equal(t, "closed", c.Stats().State)
	comp := next(t, c)
	assert.Equal(t, channel.StatusCompleted, comp.Status)
	_, err = c.NextCompletion(bg, 0)
	ts.ErrIs(t, err, channel.ErrClosed, cabi.Closed)
}

// Rule 10: poll still hands out queued events until the deadline; Poll
// returns ErrClosed once no queued event is left, even with events pending.
func TestRule10_PollDrainsQueuedThenClosed(t *testing.T) {
	c := newChan(t, nil)
	want := enqueueN(t, c, 3)
	done := ts.Async(func() struct{} { c.Shutdown(time.Hour); return struct{}{} })
	require.Eventually(t, c.Closing, wait, time.Millisecond)

	var got []channel.Event
	for range 3 {
		got = append(got, poll(t, c))
	}
	for i := range got {
		assert.Equal(t, want[i], got[i].EventID)
	}
	_, err := c.Poll(bg, 0)
	ts.ErrIs(t, err, channel.ErrClosed, cabi.Closed)
	_, err = c.Poll(bg, -1)
	ts.ErrIs(t, err, channel.ErrClosed, cabi.Closed)
	_, err = c.PollBatch(bg, 4, wait)
	ts.ErrIs(t, err, channel.ErrClosed, cabi.Closed)

	// the stream is not closed while events are pending
	_, err = c.NextCompletion(bg, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)

	for _, e := range got {
		require.NoError(t, c.Complete(e.EventID, ok()))
	}
	ts.Recv(t, done, "Shutdown after every event ended (well before its one-hour deadline)")
	cs := drain(t, c)
	require.Len(t, cs, 3)
	for _, comp := range cs {
		assert.Equal(t, channel.StatusCompleted, comp.Status)
	}
	_, err = c.NextCompletion(bg, -1)
	ts.ErrIs(t, err, channel.ErrClosed, cabi.Closed)
	assert.Zero(t, c.Stats().Cancelled)
}

// Rule 10: at the deadline every queued and pending event is cancelled.
func TestRule10_DeadlineCancelsQueuedAndPending(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxConcurrentHandlers = 2; cfg.CompletionBufferSize = 2 })
	all := enqueueN(t, c, 5)
	p1, p2 := poll(t, c), poll(t, c)
	c.Shutdown(30 * time.Millisecond)

	s := c.Stats()
	assert.Zero(t, s.Queued)
	assert.Zero(t, s.Pending)
	assert.EqualValues(t, 5, s.Cancelled)
	assert.Equal(t, "closed", s.State)
	assert.EqualValues(t, s.Dispatched, s.Completed+s.Failed+s.TimedOut+s.Cancelled)

	cs := drain(t, c)
	require.Len(t, cs, 5)
	assert.ElementsMatch(t, all, ids(cs))
	polled := map[uuid.UUID]bool{p1.EventID: true, p2.EventID: true}
	for _, comp := range cs {
		assert.Equal(t, channel.StatusCancelled, comp.Status)
		assert.False(t, comp.Success)
		require.NotNil(t, comp.Error)
		assert.Equal(t, "shutdown", comp.Error.ErrorType)
		assert.True(t, comp.Error.Retryable)
		m := ts.DecodeObject(t, wire.AppendCompletionJSON(nil, &comp))
		assert.Equal(t, ts.CompletionKeys, ts.SortedKeys(m))
		if polled[comp.EventID] {
			assert.False(t, comp.PolledAt.IsZero())
			assert.NotNil(t, m["polled_at"])
		} else {
			assert.True(t, comp.PolledAt.IsZero())
			assert.Nil(t, m["polled_at"], "never polled: polled_at null")
			assert.Nil(t, m["execution_time_ms"], "never polled: execution_time_ms null")
		}
	}
	ts.ErrIs(t, c.Complete(p1.EventID, ok()), channel.ErrNotPending, cabi.NotFound)
	_, err := c.Poll(bg, 0)
	ts.ErrIs(t, err, channel.ErrClosed, cabi.Closed)
	_, err = c.NextCompletion(bg, 0)
	ts.ErrIs(t, err, channel.ErrClosed, cabi.Closed)
	_, err = c.Enqueue(bg, ev("h"), channel.KindFFI, 0)
	ts.ErrIs(t, err, channel.ErrShutdown, cabi.Shutdown)

	// idempotent
	c.Shutdown(0)
	c.Shutdown(-1)
	assert.EqualValues(t, 5, c.Stats().Cancelled)
}

// Rule 10: NextCompletion hands out what is left in the stream, then ErrClosed.
func TestRule10_NextCompletionDrainsThenClosed(t *testing.T) {
	c := newChan(t, nil)
	want := enqueueN(t, c, 3)
	for range 3 {
		require.NoError(t, c.Complete(poll(t, c).EventID, ok()))
	}
	c.Shutdown(0)
	assert.Equal(t, want, ids(drain(t, c)))
	_, err := c.NextCompletion(bg, -1)
	ts.ErrIs(t, err, channel.ErrClosed, cabi.Closed)

	// Discard drops what was not taken
	c2 := newChan(t, nil)
	enqueueN(t, c2, 2)
	c2.Shutdown(0)
	c2.Discard()
	_, err = c2.NextCompletion(bg, 0)
	ts.ErrIs(t, err, channel.ErrClosed, cabi.Closed)
	assert.EqualValues(t, 2, c2.Stats().Discarded)
}

// Rule 10: a second shutdown with a shorter drain brings the deadline closer.
func TestRule10_SecondShutdownBringsDeadlineCloser(t *testing.T) {
	c := newChan(t, nil)
	id := enqueue(t, c, ev("h"))
	poll(t, c)
	start := time.Now()
	first := ts.Async(func() time.Time { c.Shutdown(time.Hour); return time.Now() })
	require.Eventually(t, c.Closing, wait, time.Millisecond)
	ts.NotYet(t, first, "Shutdown(1h) with a pending event")

	second := ts.Async(func() time.Time { c.Shutdown(10 * time.Millisecond); return time.Now() })
	t2 := ts.Recv(t, second, "the second, shorter Shutdown")
	t1 := ts.Recv(t, first, "the first Shutdown, whose deadline the second brought closer")
	assert.Less(t, t1.Sub(start), time.Hour, "the first shutdown returned well before its own deadline")
	assert.Less(t, t2.Sub(start), time.Hour)
	comp := next(t, c)
	assert.Equal(t, id, comp.EventID)
	assert.Equal(t, channel.StatusCancelled, comp.Status)
}

// Rule 10: a later shutdown with a longer drain never pushes the deadline back.
func TestRule10_LongerShutdownNeverPushesDeadlineBack(t *testing.T) {
	c := newChan(t, nil)
	enqueue(t, c, ev("h"))
	poll(t, c)
	first := ts.Async(func() struct{} { c.Shutdown(100 * time.Millisecond); return struct{}{} })
	require.Eventually(t, c.Closing, wait, time.Millisecond)
	second := ts.Async(func() struct{} { c.Shutdown(time.Hour); return struct{}{} })
	third := ts.Async(func() struct{} { c.Shutdown(-1); return struct{}{} })
	ts.Recv(t, second, "Shutdown(1h) after Shutdown(100ms)")
	ts.Recv(t, third, "Shutdown(-1) after Shutdown(100ms)")
	ts.Recv(t, first, "Shutdown(100ms)")
	assert.EqualValues(t, 1, c.Stats().Cancelled)
}

// Rule 10: Shutdown(-1) has no deadline until a finite one brings it in.
func TestRule10_ForeverThenFinite(t *testing.T) {
	c := newChan(t, nil)
	enqueue(t, c, ev("h"))
	poll(t, c)
	first := ts.Async(func() struct{} { c.Shutdown(-1); return struct{}{} })
	require.Eventually(t, c.Closing, wait, time.Millisecond)
	ts.NotYet(t, first, "Shutdown(-1)")
	ts.Recv(t, ts.Async(func() struct{} { c.Shutdown(0); return struct{}{} }), "Shutdown(0) after Shutdown(-1)")
	ts.Recv(t, first, "Shutdown(-1) after Shutdown(0)")
	assert.EqualValues(t, 1, c.Stats().Cancelled)
}

// Rule 10: blocked Poll, NextCompletion and Enqueue wake at shutdown.
func TestRule10_BlockedCallsWakeAtShutdown(t *testing.T) {
	t.Run("Poll on empty queue", func(t *testing.T) {
		c := newChan(t, nil)
		res := ts.Async(func() error { _, err := c.Poll(bg, -1); return err })
		ts.NotYet(t, res, "Poll(-1)")
		c.Shutdown(time.Hour)
		ts.ErrIs(t, ts.Recv(t, res, "Poll(-1) at shutdown"), channel.ErrClosed, cabi.Closed)
	})
	t.Run("PollBatch at the running bound", func(t *testing.T) {
		c := newChan(t, func(cfg *channel.Config) { cfg.MaxConcurrentHandlers = 1; cfg.CompletionBufferSize = 1 })
		enqueueN(t, c, 3)
		poll(t, c)
		res := ts.Async(func() error { _, err := c.PollBatch(bg, 2, -1); return err })
		ts.NotYet(t, res, "PollBatch(-1) at the bound")
		c.Shutdown(0) // cancels the queued events: nothing left to poll
		ts.ErrIs(t, ts.Recv(t, res, "PollBatch(-1) at shutdown"), channel.ErrClosed, cabi.Closed)
	})
	t.Run("NextCompletion", func(t *testing.T) {
		c := newChan(t, nil)
		res := ts.Async(func() error { _, err := c.NextCompletion(bg, -1); return err })
		ts.NotYet(t, res, "NextCompletion(-1)")
		c.Shutdown(time.Hour)
		ts.ErrIs(t, ts.Recv(t, res, "NextCompletion(-1) at shutdown"), channel.ErrClosed, cabi.Closed)
	})
	t.Run("NextCompletion gets the cancellation", func(t *testing.T) {
		c := newChan(t, nil)
		id := enqueue(t, c, ev("h"))
		res := ts.Async(func() result {
			comp, err := c.NextCompletion(bg, -1)
			return result{comp.EventID, err}
		})
		ts.NotYet(t, res, "NextCompletion(-1)")
		c.Shutdown(0)
		r := ts.Recv(t, res, "NextCompletion(-1) at shutdown")
		require.NoError(t, r.err)
		assert.Equal(t, id, r.id)
	})
	t.Run("Enqueue on full queue", func(t *testing.T) {
		c := newChan(t, func(cfg *channel.Config) { cfg.DispatchBufferSize = 1 })
		enqueue(t, c, ev("h"))
		res := ts.Async(func() error { _, err := c.Enqueue(bg, ev("h"), channel.KindFFI, -1); return err })
		ts.NotYet(t, res, "Enqueue(-1) on a full queue")
		go c.Shutdown(time.Hour)
		ts.ErrIs(t, ts.Recv(t, res, "Enqueue(-1) at shutdown"), channel.ErrShutdown, cabi.Shutdown)
		// drain so the background Shutdown returns
		require.NoError(t, c.Complete(poll(t, c).EventID, ok()))
	})
	t.Run("many blocked pollers", func(t *testing.T) {
		c := newChan(t, nil)
		var rs []<-chan error
		for range 8 {
			rs = append(rs, ts.Async(func() error { _, err := c.Poll(bg, -1); return err }))
		}
		c.Shutdown(0)
		for _, r := range rs {
			ts.ErrIs(t, ts.Recv(t, r, "Poll(-1) at shutdown"), channel.ErrClosed, cabi.Closed)
		}
	})
}

// ---- stats ----

func TestStats_GaugesAndStarvation(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) {
		cfg.StarvationWarningThresholdMs = 1
		cfg.WorkerID = "w1"
	})
	s := c.Stats()
	assert.Nil(t, s.OldestPendingEventID)
	assert.False(t, s.StarvationDetected)
	assert.Equal(t, "w1", s.WorkerID)
	assert.Equal(t, 10, s.MaxConcurrent)

	enqueueN(t, c, 3)
	p := poll(t, c)
	require.Eventually(t, func() bool { return c.Stats().StarvingEventCount == 3 }, wait, time.Millisecond)
	s = c.Stats()
	assert.True(t, s.StarvationDetected)
	require.NotNil(t, s.OldestPendingEventID)
	assert.Equal(t, p.EventID.String(), *s.OldestPendingEventID)
	assert.Equal(t, 2, s.Queued)
	assert.Equal(t, 1, s.Pending)
	assert.Equal(t, 3, s.InFlight-s.Undelivered+s.Queued)
	assert.EqualValues(t, 3, s.Dispatched)
	assert.EqualValues(t, 1, s.Polled)
}

func TestNextCompletion_ContextCancel(t *testing.T) {
	c := newChan(t, nil)
	ctx, cancel := context.WithCancel(bg)
	res := ts.Async(func() error { _, err := c.NextCompletion(ctx, -1); return err })
	ts.NotYet(t, res, "NextCompletion(-1)")
	cancel()
	err := ts.Recv(t, res, "NextCompletion after cancel")
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
	assert.True(t, errors.Is(err, context.Canceled))
}

// Go events: TakeGo / FinishGo keep their own queue and share the bounds.
func TestGoTasks_ShareBoundsAndAreNotPollable(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxConcurrentHandlers = 1; cfg.CompletionBufferSize = 2 })
	goID, err := c.Enqueue(bg, ev("go"), channel.KindGo, 0)
	require.NoError(t, err)
	ffiID := enqueue(t, c, ev("ffi"))

	task, err := c.TakeGo(bg, 0)
	require.NoError(t, err)
	assert.Equal(t, goID, task.Event().EventID)
	assert.False(t, task.Event().PolledAt.IsZero())
	_, err = c.Poll(bg, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty) // the Go handler holds the only slot
	ts.ErrIs(t, c.Complete(goID, ok()), channel.ErrNotPending, cabi.NotFound)

	// a timed-out handler ends its event but keeps its slot until it returns
	assert.True(t, c.FinishGo(task, channel.StatusTimeout, channel.Result{Error: &channel.ErrorInfo{Message: "t", ErrorType: "handler_timeout", Retryable: true}}, false))
	s := c.Stats()
	assert.Equal(t, 1, s.OverdueGo)
	assert.Equal(t, 0, s.RunningGo)
	_, err = c.Poll(bg, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
	assert.False(t, c.FinishGo(task, channel.StatusCompleted, ok(), true), "the second result is discarded")
	assert.Zero(t, c.Stats().OverdueGo)
	assert.Equal(t, ffiID, poll(t, c).EventID)

	cs := drain(t, c)
	require.Len(t, cs, 1)
	assert.Equal(t, channel.StatusTimeout, cs[0].Status)
	assert.EqualValues(t, 1, c.Stats().StartedGo)
}

// Rule 9 with many distinct deadlines and completes that remove events from
// the middle of the deadline order: every sweep ends exactly the events
// whose deadline (poll time + timeout_ms) had passed when it began, never
// one whose deadline had not passed when it ended, and never a completed one.
func TestRule9_CleanupExpiresExactlyThePastDeadline(t *testing.T) {
	const n = 1500
	c := newChan(t, func(cfg *channel.Config) {
		cfg.DispatchBufferSize, cfg.MaxConcurrentHandlers, cfg.CompletionBufferSize = n, n, n
		cfg.HandlerTimeoutMs = 3_600_000
	})
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range n {
		e := ev("h")
		if i%10 < 7 {
			e.TimeoutMs = 1 + rng.IntN(150)
		}
		enqueue(t, c, e)
	}
	deadline := map[uuid.UUID]time.Time{}
	short := map[uuid.UUID]bool{}
	for len(deadline) < n {
		evs, err := c.PollBatch(bg, 1+rng.IntN(200), 0)
		require.NoError(t, err)
		for _, e := range evs {
			deadline[e.EventID] = e.PolledAt.Add(time.Duration(e.TimeoutMs) * time.Millisecond)
			short[e.EventID] = e.TimeoutMs < 1000
		}
	}
	// complete a random third right away: they leave the heap from anywhere
	live := map[uuid.UUID]bool{}
	for id := range deadline {
		live[id] = true
	}
	for id := range deadline {
		if rng.IntN(3) == 0 {
			require.NoError(t, c.Complete(id, ok()))
			delete(live, id)
		}
	}
	drain(t, c)

	shortLeft := func() int {
		k := 0
		for id := range live {
			if short[id] {
				k++
			}
		}
		return k
	}
	limit := time.Now().Add(wait)
	for shortLeft() > 0 {
		require.True(t, time.Now().Before(limit), "%d short events never expired", shortLeft())
		before := time.Now()
		expired := c.CleanupTimeouts()
		after := time.Now()
		cs := drain(t, c)
		require.Len(t, cs, expired)
		// plain checks: testify per element per sweep would dominate the run time
		for _, comp := range cs {
			dl := deadline[comp.EventID]
			switch {
			case !live[comp.EventID]:
				t.Fatalf("cleanup ended %s, which was not pending", comp.EventID)
			case comp.Status != channel.StatusTimeout:
				t.Fatalf("cleanup ended %s as %s", comp.EventID, comp.Status)
			case dl.After(after):
				t.Fatalf("%s expired before its deadline", comp.EventID)
			case dl.After(comp.CompletedAt):
				t.Fatalf("%s: completed_at %v before its deadline %v", comp.EventID, comp.CompletedAt, dl)
			}
			delete(live, comp.EventID)
		}
		for id := range live {
			if deadline[id].Before(before) {
				t.Fatalf("event %s past its deadline survived a sweep", id)
			}
		}
		// occasionally complete a still-pending short event between sweeps
		for id := range live {
			if short[id] && rng.IntN(20) == 0 {
				require.NoError(t, c.Complete(id, ok()))
				delete(live, id)
				next(t, c)
			}
			break
		}
		time.Sleep(time.Duration(1+rng.IntN(5)) * time.Millisecond)
	}
	assert.Equal(t, len(live), c.Stats().Pending, "only the hour-long events are left")
	for id := range live {
		require.NoError(t, c.Complete(id, ok()))
	}
}

// PollInto and NextCompletionInto (what the C layer calls) hand out what
// Poll and NextCompletion do, and leave the destination alone on an error.
func TestInto_SameResultsAndDestinationLeftAloneOnError(t *testing.T) {
	c := newChan(t, nil)
	sentinelEv := channel.Event{Handler: "sentinel"}
	dstEv := sentinelEv
	ts.ErrIs(t, c.PollInto(bg, 0, &dstEv), channel.ErrEmpty, cabi.Empty)
	assert.Equal(t, sentinelEv, dstEv)
	sentinelComp := channel.Completion{Handler: "sentinel"}
	dstComp := sentinelComp
	ts.ErrIs(t, c.NextCompletionInto(bg, 0, &dstComp), channel.ErrEmpty, cabi.Empty)
	assert.Equal(t, sentinelComp, dstComp)

	e := ev("h")
	e.Payload = []byte(`{"n":1}`)
	id := enqueue(t, c, e)
	require.NoError(t, c.PollInto(bg, 0, &dstEv))
	assert.Equal(t, id, dstEv.EventID)
	assert.Equal(t, e.TaskUUID, dstEv.TaskUUID)
	assert.Equal(t, "h", dstEv.Handler)
	assert.JSONEq(t, `{"n":1}`, string(dstEv.Payload))
	assert.False(t, dstEv.PolledAt.IsZero())
	require.NoError(t, c.Complete(id, ok()))
	require.NoError(t, c.NextCompletionInto(bg, 0, &dstComp))
	assert.Equal(t, id, dstComp.EventID)
	assert.Equal(t, channel.StatusCompleted, dstComp.Status)
	assert.Equal(t, dstEv.PolledAt, dstComp.PolledAt)

	// the same again through Poll and NextCompletion
	id2 := enqueue(t, c, e)
	p, err := c.Poll(bg, 0)
	require.NoError(t, err)
	assert.Equal(t, id2, p.EventID)
	require.NoError(t, c.Complete(id2, ok()))
	comp, err := c.NextCompletion(bg, 0)
	require.NoError(t, err)
	assert.Equal(t, id2, comp.EventID)
}

// EnqueueJSON parses into the entry it queues: a parser that fails after
// filling part of the event queues nothing and counts one rejection; one that
// succeeds has its event queued with the defaults filled in.
func TestEnqueueJSON_ParsesIntoTheQueuedEntry(t *testing.T) {
	c := newChan(t, nil)
	route := func(string) channel.Kind { return channel.KindFFI }
	task, step := uuid.New(), uuid.New()
	failing := func(doc []byte, _ int, ev *channel.Event) error {
		ev.TaskUUID, ev.StepUUID, ev.Handler = task, step, "half"
		return fmt.Errorf("%w: %s", channel.ErrInvalid, doc)
	}
	_, err := c.EnqueueJSON(bg, []byte("bad"), failing, route, 0)
	ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
	assert.EqualValues(t, 1, c.Stats().RejectedInvalid)
	_, err = c.Poll(bg, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)

	var sawZero bool
	parse := func(_ []byte, max int, ev *channel.Event) error {
		sawZero = reflect.DeepEqual(*ev, channel.Event{})
		assert.Equal(t, channel.DefaultConfig().MaxPayloadBytes, max)
		ev.TaskUUID, ev.StepUUID, ev.Handler = task, step, "h"
		return nil
	}
	id, err := c.EnqueueJSON(bg, []byte("{}"), parse, route, 0)
	require.NoError(t, err)
	assert.True(t, sawZero, "the parser is given the zero Event")
	p, err := c.Poll(bg, 0)
	require.NoError(t, err)
	assert.Equal(t, id, p.EventID)
	assert.Equal(t, task, p.TaskUUID)
	assert.NotEqual(t, uuid.Nil, p.CorrelationID)
	assert.Equal(t, channel.DefaultConfig().HandlerTimeoutMs, p.TimeoutMs)
	assert.False(t, p.DispatchedAt.IsZero())
}

// PollBatchAppend (what the C layer calls, with a reused slice) appends the
// batch after what dst holds and hands dst back unchanged on an error.
func TestPollBatchAppend(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxConcurrentHandlers = 100 })
	keep := []channel.Event{{Handler: "kept"}}
	got, err := c.PollBatchAppend(bg, 4, 0, keep)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
	require.Len(t, got, 1)
	assert.Equal(t, "kept", got[0].Handler)
	got, err = c.PollBatchAppend(bg, 0, 0, keep)
	ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
	require.Len(t, got, 1)

	want := enqueueN(t, c, 70) // more than the 64 entries a batch takes without allocating
	got, err = c.PollBatchAppend(bg, 100, 0, keep)
	require.NoError(t, err)
	require.Len(t, got, 71)
	assert.Equal(t, "kept", got[0].Handler)
	for i, id := range want {
		assert.Equal(t, id, got[i+1].EventID, "FIFO")
		assert.False(t, got[i+1].PolledAt.IsZero())
	}
	assert.EqualValues(t, 70, c.Stats().Polled)
}
