package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/cabi"
	ts "github.com/tasker-systems/libtasker/internal/testsupport"
	"github.com/tasker-systems/libtasker/internal/wire"
	rt "github.com/tasker-systems/libtasker/runtime"
)

// wait is the generous limit for anything awaited: a deadlock detector,
// never a performance threshold.
const wait = 20 * time.Second

var bg = context.Background()

func TestMain(m *testing.M) {
	// every test ends its dispatcher and releases its handlers
	goleak.VerifyTestMain(m)
}

func newDisp(t *testing.T, mod func(*rt.Config), opts ...rt.Option) *rt.Dispatcher {
	t.Helper()
	cfg := rt.DefaultConfig()
	cfg.CleanupIntervalMs = 0
	if mod != nil {
		mod(&cfg)
	}
	d, err := rt.New(cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { d.Shutdown(0) })
	return d
}

func ev(handler string) channel.Event {
	return channel.Event{TaskUUID: uuid.New(), StepUUID: uuid.New(), Handler: handler}
}

func dispatch(t *testing.T, d *rt.Dispatcher, e channel.Event) uuid.UUID {
	t.Helper()
	id, err := d.Dispatch(bg, e, 0)
	require.NoError(t, err)
	return id
}

func next(t *testing.T, d *rt.Dispatcher) channel.Completion {
	t.Helper()
	c, err := d.NextCompletion(bg, wait)
	require.NoError(t, err)
	return c
}

func ok() channel.Result { return channel.Result{Success: true, Result: []byte(`{"ok":true}`)} }

// completionJSON encodes c and checks it is a valid completion document.
func completionJSON(t *testing.T, c channel.Completion) map[string]any {
	t.Helper()
	b := wire.AppendCompletionJSON(nil, &c)
	require.True(t, json.Valid(b), "%s", b)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, ts.CompletionKeys, ts.SortedKeys(m))
	return m
}

// ---- Go handlers ----

func TestGoHandler_Success(t *testing.T) {
	got := make(chan channel.Event, 1)
	d := newDisp(t, func(c *rt.Config) { c.HandlerTimeoutMs = 60_000 }, rt.WithHandler("go", rt.HandlerFunc(
		func(ctx context.Context, e *channel.Event) (channel.Result, error) {
			_, hasDeadline := ctx.Deadline()
			assert.True(t, hasDeadline, "the handler's context carries its timeout")
			got <- *e
			e.Handler = "mutated" // the handler has its own copy
			return channel.Result{Success: true, Result: []byte(`{"n":1.000000000000000000001}`), Metadata: []byte(`{"m":1}`)}, nil
		})))
	in := ev("go")
	in.Payload = []byte(`{"p":1e400}`)
	id := dispatch(t, d, in)
	e := ts.Recv(t, got, "the handler")
	assert.Equal(t, id, e.EventID)
	assert.Equal(t, `{"p":1e400}`, string(e.Payload))
	assert.Equal(t, 60_000, e.TimeoutMs)
	assert.False(t, e.PolledAt.IsZero())

	c := next(t, d)
	assert.Equal(t, id, c.EventID)
	assert.Equal(t, "go", c.Handler)
	assert.Equal(t, channel.StatusCompleted, c.Status)
	assert.True(t, c.Success)
	assert.Nil(t, c.Error)
	assert.Equal(t, `{"n":1.000000000000000000001}`, string(c.Result))
	assert.Equal(t, `{"m":1}`, string(c.Metadata))
	assert.False(t, c.PolledAt.IsZero())
	completionJSON(t, c)
	s := d.Stats()
	assert.EqualValues(t, 1, s.StartedGo)
	assert.EqualValues(t, 0, s.Polled)
	assert.EqualValues(t, 1, s.Completed)
}

type notRetryable struct{ error }

func (notRetryable) Retryable() bool { return false }

type retryable struct{ error }

func (retryable) Retryable() bool { return true }

func TestGoHandler_ReturnedError(t *testing.T) {
	errs := map[string]error{
		"plain":         errors.New("boom"),
		"not retryable": fmt.Errorf("wrapped: %w", notRetryable{errors.New("permanent")}),
		"retryable":     retryable{errors.New("transient")},
	}
	var opts []rt.Option
	for name, err := range errs {
		opts = append(opts, rt.WithHandler(name, rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
			return ok(), err // the error wins over the result
		})))
	}
	d := newDisp(t, nil, opts...)
	for name := range errs {
		dispatch(t, d, ev(name))
	}
	for range errs {
		c := next(t, d)
		assert.Equal(t, channel.StatusFailed, c.Status, c.Handler)
		assert.False(t, c.Success)
		assert.Nil(t, c.Result)
		require.NotNil(t, c.Error)
		assert.Equal(t, "handler_error", c.Error.ErrorType)
		assert.Equal(t, errs[c.Handler].Error(), c.Error.Message)
		assert.Equal(t, c.Handler != "not retryable", c.Error.Retryable, c.Handler)
	}
	assert.EqualValues(t, 3, d.Stats().Failed)
}

func TestGoHandler_ReturnedFailureResult(t *testing.T) {
	d := newDisp(t, nil, rt.WithHandler("go", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
		return channel.Result{Error: &channel.ErrorInfo{Message: "nope", ErrorType: "validation", Retryable: false}}, nil
	})))
	dispatch(t, d, ev("go"))
	c := next(t, d)
	assert.Equal(t, channel.StatusFailed, c.Status)
	assert.Equal(t, channel.ErrorInfo{Message: "nope", ErrorType: "validation", Retryable: false}, *c.Error)
}

// Rule 12 (Go side): a handler panic is recovered and becomes a failure.
func TestRule12_GoHandlerPanic(t *testing.T) {
	d := newDisp(t, nil, rt.WithHandler("go", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
		panic("kaboom 42")
	})), rt.WithHandler("nilmap", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
		var m map[string]int
		m["x"] = 1 // a runtime error panic
		return ok(), nil
	})))
	dispatch(t, d, ev("go"))
	dispatch(t, d, ev("nilmap"))
	for range 2 {
		c := next(t, d)
		assert.Equal(t, channel.StatusFailed, c.Status)
		require.NotNil(t, c.Error)
		assert.Equal(t, "handler_panic", c.Error.ErrorType)
		assert.False(t, c.Error.Retryable, "a panic is not retryable")
		if c.Handler == "go" {
			assert.Contains(t, c.Error.Message, "kaboom 42")
		} else {
			assert.Contains(t, c.Error.Message, "nil map")
		}
		m := completionJSON(t, c)
		assert.Equal(t, "failed", m["status"])
	}
	// the dispatcher keeps working
	dispatch(t, d, ev("go"))
	assert.Equal(t, channel.StatusFailed, next(t, d).Status)
}

func TestGoHandler_InvalidResult(t *testing.T) {
	results := map[string]channel.Result{
		"no error":         {},
		"success and err":  {Success: true, Error: &channel.ErrorInfo{Message: "m"}},
		"bad json":         {Success: true, Result: []byte(`{"a":`)},
		"metadata array":   {Success: true, Metadata: []byte(`[1]`)},
		"bad utf8 message": {Error: &channel.ErrorInfo{Message: "\xff"}},
	}
	var opts []rt.Option
	for name, r := range results {
		opts = append(opts, rt.WithHandler(name, rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
			return r, nil
		})))
	}
	d := newDisp(t, nil, opts...)
	for name := range results {
		dispatch(t, d, ev(name))
	}
	for range results {
		c := next(t, d)
		assert.Equal(t, channel.StatusFailed, c.Status, c.Handler)
		require.NotNil(t, c.Error)
		assert.Equal(t, "handler_error", c.Error.ErrorType)
		assert.Contains(t, c.Error.Message, "invalid result")
		completionJSON(t, c)
	}
}

// docs/ABI.md, "Completion": of the error types the library itself produces, all
// are retryable except handler_panic and handler_not_found.
func TestGoHandler_InvalidResult_RetryableAsABI(t *testing.T) {
	d := newDisp(t, nil, rt.WithHandler("go", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
		return channel.Result{}, nil // a failure without an error: invalid
	})))
	dispatch(t, d, ev("go"))
	c := next(t, d)
	require.Equal(t, "handler_error", c.Error.ErrorType)
	assert.True(t, c.Error.Retryable, "docs/ABI.md: every handler_error the library produces is retryable")
}

// A timeout ends the event with handler_timeout; the handler that honours
// ctx returns, and its late result is discarded.
func TestGoHandler_Timeout(t *testing.T) {
	returned := make(chan error, 1)
	d := newDisp(t, nil, rt.WithHandler("go", rt.HandlerFunc(func(ctx context.Context, _ *channel.Event) (channel.Result, error) {
		<-ctx.Done()
		returned <- ctx.Err()
		return ok(), nil // too late: discarded
	})))
	e := ev("go")
	e.TimeoutMs = 20
	id := dispatch(t, d, e)
	c := next(t, d)
	assert.Equal(t, id, c.EventID)
	assert.Equal(t, channel.StatusTimeout, c.Status)
	require.NotNil(t, c.Error)
	assert.Equal(t, "handler_timeout", c.Error.ErrorType)
	assert.True(t, c.Error.Retryable)
	assert.ErrorIs(t, ts.Recv(t, returned, "the handler's return"), context.DeadlineExceeded)
	require.Eventually(t, func() bool { return d.Stats().OverdueGo == 0 }, wait, time.Millisecond)
	_, err := d.NextCompletion(bg, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
	s := d.Stats()
	assert.EqualValues(t, 1, s.TimedOut)
	assert.EqualValues(t, 0, s.Completed)
}

// Rule 3: a handler that ignores ctx keeps its running slot after its
// timeout (overdue_go_handlers) until it returns.
func TestRule3_OverdueGoHandlerKeepsSlot(t *testing.T) {
	release := make(chan struct{})
	d := newDisp(t, func(c *rt.Config) { c.MaxConcurrentHandlers = 1 },
		rt.WithHandler("stuck", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
			<-release // ignores ctx
			return ok(), nil
		})))
	t.Cleanup(func() { closeOnce(release) }) // runs before the Shutdown registered by newDisp
	e := ev("stuck")
	e.TimeoutMs = 10
	id := dispatch(t, d, e)
	c := next(t, d)
	assert.Equal(t, id, c.EventID)
	assert.Equal(t, channel.StatusTimeout, c.Status)
	assert.Equal(t, "handler_timeout", c.Error.ErrorType)

	s := d.Stats()
	assert.Equal(t, 1, s.OverdueGo, "the handler still runs")
	assert.Equal(t, 0, s.RunningGo)
	ffi := dispatch(t, d, ev("ffi"))
	_, err := d.Poll(bg, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
	_, err = d.Poll(bg, 30*time.Millisecond)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)

	closeOnce(release)
	got, err := d.Poll(bg, wait)
	require.NoError(t, err, "the slot is free once the overdue handler returned")
	assert.Equal(t, ffi, got.EventID)
	assert.Equal(t, 0, d.Stats().OverdueGo)
	_, err = d.NextCompletion(bg, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty) // the late result was discarded
	require.NoError(t, d.Complete(ffi, ok()))
}

var closeMu sync.Mutex

func closeOnce(ch chan struct{}) {
	closeMu.Lock()
	defer closeMu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// Routing: a registered handler name runs in Go, every other goes to Poll.
func TestRouting(t *testing.T) {
	var ran atomic.Int32
	d := newDisp(t, nil, rt.WithHandler("go", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
		ran.Add(1)
		return ok(), nil
	})))
	goID := dispatch(t, d, ev("go"))
	ffiID := dispatch(t, d, ev("Go")) // names are exact
	assert.Equal(t, channel.StatusCompleted, next(t, d).Status)
	assert.EqualValues(t, 1, ran.Load())

	e, err := d.Poll(bg, 0)
	require.NoError(t, err)
	assert.Equal(t, ffiID, e.EventID)
	_, err = d.Poll(bg, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
	ts.ErrIs(t, d.Complete(goID, ok()), channel.ErrNotPending, cabi.NotFound)
	require.NoError(t, d.Complete(ffiID, ok()))
	c := next(t, d)
	assert.Equal(t, ffiID, c.EventID)
	assert.Equal(t, "Go", c.Handler)
	s := d.Stats()
	assert.EqualValues(t, 1, s.StartedGo)
	assert.EqualValues(t, 1, s.Polled)
	assert.EqualValues(t, 1, s.LateCompletions)
}

// Rule 3: the running bound is shared by Go handlers and FFI polls.
func TestRule3_ConcurrencyBoundSharedByGoAndFFI(t *testing.T) {
	t.Run("Go handlers block polls", func(t *testing.T) {
		release := make(chan struct{})
		started := make(chan struct{}, 10)
		d := newDisp(t, func(c *rt.Config) { c.MaxConcurrentHandlers = 2; c.CompletionBufferSize = 10 },
			rt.WithHandler("go", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
				started <- struct{}{}
				<-release
				return ok(), nil
			})))
		t.Cleanup(func() { closeOnce(release) }) // runs before the Shutdown registered by newDisp
		dispatch(t, d, ev("go"))
		dispatch(t, d, ev("go"))
		ts.Recv(t, started, "first handler")
		ts.Recv(t, started, "second handler")
		dispatch(t, d, ev("ffi"))
		_, err := d.Poll(bg, 0)
		ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
		_, err = d.Poll(bg, 30*time.Millisecond)
		ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
		assert.Equal(t, 2, d.Stats().RunningGo)

		closeOnce(release)
		e, err := d.Poll(bg, wait)
		require.NoError(t, err)
		require.NoError(t, d.Complete(e.EventID, ok()))
	})
	t.Run("polls block Go handlers", func(t *testing.T) {
		started := make(chan struct{}, 10)
		d := newDisp(t, func(c *rt.Config) { c.MaxConcurrentHandlers = 2; c.CompletionBufferSize = 10 },
			rt.WithHandler("go", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
				started <- struct{}{}
				return ok(), nil
			})))
		dispatch(t, d, ev("ffi"))
		dispatch(t, d, ev("ffi"))
		evs, err := d.PollBatch(bg, 2, 0)
		require.NoError(t, err)
		require.Len(t, evs, 2)
		dispatch(t, d, ev("go"))
		ts.NotYet(t, started, "a Go handler while FFI workers hold every slot")
		s := d.Stats()
		assert.Equal(t, 1, s.QueuedGo)
		assert.Equal(t, 0, s.RunningGo)
		require.NoError(t, d.Complete(evs[0].EventID, ok()))
		ts.Recv(t, started, "the Go handler after a slot was freed")
		require.NoError(t, d.Complete(evs[1].EventID, ok()))
	})
	t.Run("dispatch bound counts Go and FFI queues together", func(t *testing.T) {
		release := make(chan struct{})
		started := make(chan struct{}, 10)
		d := newDisp(t, func(c *rt.Config) {
			c.MaxConcurrentHandlers = 1
			c.CompletionBufferSize = 1
			c.DispatchBufferSize = 2
		},
			rt.WithHandler("go", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
				started <- struct{}{}
				<-release
				return ok(), nil
			})))
		t.Cleanup(func() { closeOnce(release) }) // runs before the Shutdown registered by newDisp
		dispatch(t, d, ev("go"))
		ts.Recv(t, started, "the first handler") // running: no longer queued
		dispatch(t, d, ev("go"))
		dispatch(t, d, ev("ffi"))
		_, err := d.Dispatch(bg, ev("ffi"), 0)
		ts.ErrIs(t, err, channel.ErrFull, cabi.Full)
		_, err = d.Dispatch(bg, ev("go"), 10*time.Millisecond)
		ts.ErrIs(t, err, channel.ErrFull, cabi.Full)
		s := d.Stats()
		assert.Equal(t, 1, s.QueuedGo)
		assert.Equal(t, 1, s.QueuedFFI)
		assert.EqualValues(t, 2, s.RejectedFull)
	})
	t.Run("never more than max_concurrent_handlers Go handlers", func(t *testing.T) {
		const limit, n = 3, 40
		var running, peak atomic.Int32
		d := newDisp(t, func(c *rt.Config) { c.MaxConcurrentHandlers = limit; c.CompletionBufferSize = limit },
			rt.WithHandler("go", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
				r := running.Add(1)
				for {
					p := peak.Load()
					if r <= p || peak.CompareAndSwap(p, r) {
						break
					}
				}
				time.Sleep(time.Millisecond)
				running.Add(-1)
				return ok(), nil
			})))
		for range n {
			_, err := d.Dispatch(bg, ev("go"), wait)
			require.NoError(t, err)
		}
		for range n {
			next(t, d)
		}
		assert.LessOrEqual(t, peak.Load(), int32(limit))
		assert.Positive(t, peak.Load())
	})
}

// ---- callbacks (rule 4) ----

// Rule 4: a post-handler callback runs only after its completion is in the
// stream, and callbacks run in stream order.
func TestRule4_CallbacksAfterCompletionInStreamOrder(t *testing.T) {
	const n = 60
	var (
		mu      sync.Mutex
		cbOrder []uuid.UUID
		early   []string
		d       *rt.Dispatcher
	)
	ready := make(chan struct{})
	d = newDisp(t, func(c *rt.Config) { c.MaxConcurrentHandlers = 8; c.CompletionBufferSize = n },
		rt.WithHandler("go", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
			return ok(), nil
		})),
		rt.WithCallback(func(c channel.Completion) {
			<-ready
			s := d.Stats()
			mu.Lock()
			defer mu.Unlock()
			cbOrder = append(cbOrder, c.EventID)
			ended := s.Completed + s.Failed + s.TimedOut + s.Cancelled
			if ended < uint64(len(cbOrder)) || s.Delivered+uint64(s.Undelivered) < uint64(len(cbOrder)) {
				early = append(early, fmt.Sprintf("callback #%d ran with only %d completions pushed", len(cbOrder), ended))
			}
		}))
	close(ready)
	var ffi []uuid.UUID
	for i := range n {
		if i%2 == 0 {
			dispatch(t, d, ev("go"))
		} else {
			ffi = append(ffi, dispatch(t, d, ev("ffi")))
		}
	}
	// complete the FFI events while Go handlers finish concurrently
	done := 0
	for done < len(ffi) {
		e, err := d.Poll(bg, wait)
		require.NoError(t, err)
		require.NoError(t, d.Complete(e.EventID, ok()))
		done++
	}
	var stream []uuid.UUID
	for range n {
		stream = append(stream, next(t, d).EventID)
	}
	require.Eventually(t, func() bool { return d.Stats().CallbacksRun == n }, wait, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, early)
	assert.Equal(t, stream, cbOrder, "callbacks run in stream order")
}

func TestCallback_PanicCountedLaterCallbacksRun(t *testing.T) {
	const n = 20
	var seen atomic.Int32
	d := newDisp(t, nil,
		rt.WithHandler("boom", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) { return ok(), nil })),
		rt.WithHandler("fine", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) { return ok(), nil })),
		rt.WithCallback(func(c channel.Completion) {
			if c.Handler == "boom" {
				panic("callback panic")
			}
		}),
		rt.WithCallback(func(channel.Completion) { seen.Add(1) }),
	)
	for i := range n {
		if i%4 == 0 {
			dispatch(t, d, ev("boom"))
		} else {
			dispatch(t, d, ev("fine"))
		}
	}
	for range n {
		next(t, d)
	}
	require.Eventually(t, func() bool { return seen.Load() == n }, wait, time.Millisecond,
		"the second callback runs for every completion, also after the first panicked")
	s := d.Stats()
	assert.EqualValues(t, n/4, s.CallbacksPanicked)
	assert.EqualValues(t, 2*n-n/4, s.CallbacksRun)
	assert.Zero(t, s.CallbacksDropped)
}

// A blocking callback does not stall the stream: callbacks are dropped instead.
func TestCallback_BlockingDoesNotStallStream(t *testing.T) {
	const n = 40
	release := make(chan struct{})
	d := newDisp(t, func(c *rt.Config) { c.MaxConcurrentHandlers = 4; c.CompletionBufferSize = 4 },
		rt.WithCallback(func(channel.Completion) { <-release }))
	t.Cleanup(func() { closeOnce(release) }) // runs before the Shutdown registered by newDisp
	for range n {
		id := dispatch(t, d, ev("ffi"))
		e, err := d.Poll(bg, wait)
		require.NoError(t, err)
		assert.Equal(t, id, e.EventID)
		// neither Complete nor NextCompletion may wait for the callback
		require.NoError(t, ts.Recv(t, ts.Async(func() error { return d.Complete(id, ok()) }), "Complete with a blocked callback"))
		c := next(t, d)
		assert.Equal(t, id, c.EventID)
	}
	s := d.Stats()
	assert.GreaterOrEqual(t, s.CallbacksDropped, uint64(n-4-1), "at most the queue (completion_buffer_size) and one running")
	closeOnce(release)
	require.Eventually(t, func() bool {
		s := d.Stats()
		return s.CallbacksRun+s.CallbacksDropped == n
	}, wait, time.Millisecond)
}

// ---- timeouts (rule 9) ----

func TestRule9_ReaperExpiresWithoutManualCleanup(t *testing.T) {
	d := newDisp(t, func(c *rt.Config) { c.CleanupIntervalMs = 5; c.HandlerTimeoutMs = 3_600_000 })
	e := ev("ffi")
	e.TimeoutMs = 1
	id := dispatch(t, d, e)
	long := dispatch(t, d, ev("ffi"))
	evs, err := d.PollBatch(bg, 2, 0)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	c := next(t, d) // nobody calls CleanupTimeouts
	assert.Equal(t, id, c.EventID)
	assert.Equal(t, channel.StatusTimeout, c.Status)
	assert.Equal(t, "ffi_timeout", c.Error.ErrorType)
	assert.True(t, c.Error.Retryable)
	ts.ErrIs(t, d.Complete(id, ok()), channel.ErrNotPending, cabi.NotFound)
	require.NoError(t, d.Complete(long, ok()))
	assert.Equal(t, channel.StatusCompleted, next(t, d).Status)
}

func TestRule9_CleanupIntervalZeroMeansNoReaper(t *testing.T) {
	d := newDisp(t, func(c *rt.Config) { c.CleanupIntervalMs = 0 })
	e := ev("ffi")
	e.TimeoutMs = 1
	id := dispatch(t, d, e)
	_, err := d.Poll(bg, 0)
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond) // far past the deadline; a reaper would have run
	s := d.Stats()
	assert.Equal(t, 1, s.Pending, "no reaper: the expired event is still pending")
	assert.Zero(t, s.TimedOut)
	assert.Equal(t, 1, d.CleanupTimeouts(), "manual cleanup still works")
	assert.Equal(t, id, next(t, d).EventID)
}

// ---- shutdown (rule 10) ----

func TestRule10_ShutdownCancelsRunningGoHandler(t *testing.T) {
	sawCancel := make(chan error, 1)
	started := make(chan struct{}, 1)
	d := newDisp(t, nil, rt.WithHandler("go", rt.HandlerFunc(func(ctx context.Context, _ *channel.Event) (channel.Result, error) {
		started <- struct{}{}
		<-ctx.Done()
		sawCancel <- ctx.Err()
		return ok(), nil
	})))
	id := dispatch(t, d, ev("go"))
	ts.Recv(t, started, "the handler")
	done := ts.Async(func() struct{} { d.Shutdown(30 * time.Millisecond); return struct{}{} })
	assert.ErrorIs(t, ts.Recv(t, sawCancel, "the handler's ctx cancellation"), context.Canceled)
	ts.Recv(t, done, "Shutdown")
	c := next(t, d)
	assert.Equal(t, id, c.EventID)
	assert.Equal(t, channel.StatusCancelled, c.Status)
	assert.Equal(t, "shutdown", c.Error.ErrorType)
	assert.True(t, c.Error.Retryable)
	_, err := d.NextCompletion(bg, 0)
	ts.ErrIs(t, err, channel.ErrClosed, cabi.Closed)
	_, err = d.Dispatch(bg, ev("go"), 0)
	ts.ErrIs(t, err, channel.ErrShutdown, cabi.Shutdown)
	_, err = d.DispatchJSON(bg, []byte(`{"task_uuid":"`+uuid.NewString()+`","step_uuid":"`+uuid.NewString()+`","handler":"go"}`), 0)
	ts.ErrIs(t, err, channel.ErrShutdown, cabi.Shutdown)
}

// Rule 10: queued Go events still run while draining.
func TestRule10_GoHandlersDrain(t *testing.T) {
	release := make(chan struct{})
	d := newDisp(t, func(c *rt.Config) { c.MaxConcurrentHandlers = 1 },
		rt.WithHandler("go", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
			<-release
			return ok(), nil
		})))
	t.Cleanup(func() { closeOnce(release) }) // runs before the Shutdown registered by newDisp
	for range 3 {
		dispatch(t, d, ev("go"))
	}
	done := ts.Async(func() struct{} { d.Shutdown(time.Hour); return struct{}{} })
	ts.NotYet(t, done, "Shutdown while handlers run")
	close(release)
	ts.Recv(t, done, "Shutdown once every event ended")
	for range 3 {
		assert.Equal(t, channel.StatusCompleted, next(t, d).Status)
	}
	_, err := d.NextCompletion(bg, 0)
	ts.ErrIs(t, err, channel.ErrClosed, cabi.Closed)
}

// Shutdown returns after the grace even if a handler never returns.
func TestShutdownGrace(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	d := newDisp(t, nil, rt.WithShutdownGrace(10*time.Millisecond),
		rt.WithHandler("stuck", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
			started <- struct{}{}
			<-release
			return ok(), nil
		})))
	t.Cleanup(func() { closeOnce(release) }) // runs before the Shutdown registered by newDisp
	dispatch(t, d, ev("stuck"))
	ts.Recv(t, started, "the handler")
	ts.Recv(t, ts.Async(func() struct{} { d.Shutdown(0); return struct{}{} }), "Shutdown with a stuck handler")
	assert.Equal(t, 1, d.Stats().OverdueGo)
	assert.Equal(t, channel.StatusCancelled, next(t, d).Status)
	closeOnce(release)
	require.Eventually(t, func() bool { return d.Stats().OverdueGo == 0 }, wait, time.Millisecond)
}

func TestClose_DiscardsCompletions(t *testing.T) {
	d := newDisp(t, nil)
	dispatch(t, d, ev("ffi"))
	dispatch(t, d, ev("ffi"))
	d.Close()
	_, err := d.NextCompletion(bg, 0)
	ts.ErrIs(t, err, channel.ErrClosed, cabi.Closed)
	s := d.Stats()
	assert.EqualValues(t, 2, s.Cancelled)
	assert.EqualValues(t, 2, s.Discarded)
	_, err = d.Poll(bg, 0)
	ts.ErrIs(t, err, channel.ErrClosed, cabi.Closed)
}

// ---- JSON path ----

func TestDispatchJSON_CompleteJSON(t *testing.T) {
	d := newDisp(t, func(c *rt.Config) { c.MaxPayloadBytes = 512 })
	doc := `{"task_uuid":"` + uuid.NewString() + `","step_uuid":"` + uuid.NewString() + `","handler":"ffi","payload":{"n":1e400}}`
	id, err := d.DispatchJSON(bg, []byte(doc), 0)
	require.NoError(t, err)

	_, err = d.DispatchJSON(bg, []byte(`{"handler":"ffi","priority":1}`), 0)
	ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
	assert.Contains(t, err.Error(), `"priority"`)
	_, err = d.DispatchJSON(bg, []byte(`{"payload":"`+strings.Repeat("x", 600)+`"}`), 0)
	ts.ErrIs(t, err, channel.ErrTooBig, cabi.TooBig)
	s := d.Stats()
	assert.EqualValues(t, 2, s.RejectedInvalid)
	assert.EqualValues(t, 1, s.Dispatched)

	e, err := d.Poll(bg, 0)
	require.NoError(t, err)
	assert.Equal(t, id, e.EventID)
	assert.Equal(t, `{"n":1e400}`, string(e.Payload))

	err = d.CompleteJSON(id, []byte(`{"success":false,"error":{"message":"m"},"retryable":false}`))
	ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
	assert.Contains(t, err.Error(), `"retryable"`)
	assert.Equal(t, 1, d.Stats().Pending, "rule 7: an invalid result leaves the event pending")
	err = d.CompleteJSON(id, []byte(`{"success":true,"result":"`+strings.Repeat("y", 600)+`"}`))
	ts.ErrIs(t, err, channel.ErrTooBig, cabi.TooBig)
	assert.Equal(t, 1, d.Stats().Pending)

	require.NoError(t, d.CompleteJSON(id, []byte(`{"success":true,"result":{"big":1.000000000000000000001}}`)))
	ts.ErrIs(t, d.CompleteJSON(id, []byte(`{"success":true}`)), channel.ErrNotPending, cabi.NotFound)
	c := next(t, d)
	assert.Equal(t, `{"big":1.000000000000000000001}`, string(c.Result))
	b := wire.AppendCompletionJSON(nil, &c)
	assert.Contains(t, string(b), `"result":{"big":1.000000000000000000001}`)
}

func TestNew_RejectsBadOptions(t *testing.T) {
	h := rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) { return ok(), nil })
	_, err := rt.New(rt.DefaultConfig(), rt.WithHandler("", h))
	ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
	_, err = rt.New(rt.DefaultConfig(), rt.WithHandler("x", nil))
	ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)
	bad := rt.DefaultConfig()
	bad.CompletionBufferSize = bad.MaxConcurrentHandlers - 1
	_, err = rt.New(bad)
	ts.ErrIs(t, err, channel.ErrInvalid, cabi.Invalid)

	cfg := rt.DefaultConfig()
	cfg.WorkerID = "w"
	d, err := rt.New(cfg)
	require.NoError(t, err)
	assert.Equal(t, cfg, d.Config())
	d.Shutdown(0)
}

// Every completion document must be valid UTF-8 (ABI: bad UTF-8 is never
// passed on). A Go handler's error text is not validated on the way in.
func TestGoHandler_ErrorTextWithInvalidUTF8_CompletionIsValidUTF8(t *testing.T) {
	d := newDisp(t, nil,
		rt.WithHandler("err", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
			return channel.Result{}, errors.New("bad byte \xff here")
		})),
		rt.WithHandler("panic", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) {
			panic("bad byte \xfe here")
		})))
	dispatch(t, d, ev("err"))
	dispatch(t, d, ev("panic"))
	var bad []string
	for range 2 {
		c := next(t, d)
		if b := wire.AppendCompletionJSON(nil, &c); !utf8.Valid(b) {
			bad = append(bad, c.Handler)
		}
	}
	assert.Empty(t, bad, "completion JSON must be valid UTF-8 whatever a handler's error text holds")
}

// goleak: no goroutine outlives Shutdown of a dispatcher with Go handlers,
// callbacks and the reaper.
func TestNoGoroutineLeakAfterShutdown(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := rt.DefaultConfig()
	cfg.CleanupIntervalMs = 1
	cfg.MaxConcurrentHandlers = 4
	var cbs atomic.Int32
	d, err := rt.New(cfg,
		rt.WithHandler("fast", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) { return ok(), nil })),
		rt.WithHandler("slow", rt.HandlerFunc(func(ctx context.Context, _ *channel.Event) (channel.Result, error) {
			<-ctx.Done() // runs until its timeout or the shutdown deadline
			return channel.Result{}, ctx.Err()
		})),
		rt.WithHandler("panics", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) { panic("x") })),
		rt.WithCallback(func(channel.Completion) { cbs.Add(1) }),
		rt.WithCallback(func(channel.Completion) { panic("callback") }),
	)
	require.NoError(t, err)
	for i := range 30 {
		e := ev([]string{"fast", "slow", "panics", "ffi"}[i%4])
		if i%8 == 1 {
			e.TimeoutMs = 5 // some slow handlers time out
		}
		if i%4 == 3 {
			e.TimeoutMs = 1 // some FFI events are reaped
		}
		_, err := d.Dispatch(bg, e, wait)
		require.NoError(t, err)
	}
	for range 3 {
		_, err := d.Poll(bg, wait)
		require.NoError(t, err)
	}
	d.Shutdown(50 * time.Millisecond)
	s := d.Stats()
	assert.EqualValues(t, 30, s.Completed+s.Failed+s.TimedOut+s.Cancelled)
	assert.Zero(t, s.Queued+s.Pending)
	assert.Positive(t, cbs.Load())
}
