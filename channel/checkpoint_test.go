package channel_test

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
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

func cp(cursor string, items int64, acc string) channel.Checkpoint {
	c := channel.Checkpoint{Cursor: json.RawMessage(cursor), ItemsProcessed: items}
	if acc != "" {
		c.AccumulatedResults = json.RawMessage(acc)
	}
	return c
}

// A checkpoint ends the run without a completion; the next poll hands the
// same event out with the progress and the count; the one completion
// carries the number of checkpoints and the first poll's time.
func TestCheckpoint_RequeuesWithProgress(t *testing.T) {
	c := newChan(t, nil)
	id := enqueue(t, c, ev("h"))
	first := poll(t, c)
	assert.Nil(t, first.Checkpoint, "first run has no checkpoint")

	require.NoError(t, c.Checkpoint(id, cp(`{"offset":10}`, 10, `[1,2]`)))
	assert.Empty(t, drain(t, c), "a checkpoint is not a completion")
	s := c.Stats()
	assert.Equal(t, 1, s.Queued)
	assert.Equal(t, 0, s.Pending)
	assert.EqualValues(t, 1, s.Checkpoints)

	time.Sleep(time.Millisecond)
	second := poll(t, c)
	require.Equal(t, id, second.EventID)
	require.NotNil(t, second.Checkpoint)
	assert.JSONEq(t, `{"offset":10}`, string(second.Checkpoint.Cursor))
	assert.Equal(t, int64(10), second.Checkpoint.ItemsProcessed)
	assert.JSONEq(t, `[1,2]`, string(second.Checkpoint.AccumulatedResults))
	assert.Equal(t, 1, second.Checkpoint.Count)
	assert.True(t, second.PolledAt.After(first.PolledAt), "polled_at is this run's poll")

	require.NoError(t, c.Checkpoint(id, cp(`null`, 20, "")))
	third := poll(t, c)
	assert.Equal(t, 2, third.Checkpoint.Count)
	assert.Nil(t, third.Checkpoint.AccumulatedResults)

	require.NoError(t, c.Complete(id, ok()))
	cs := drain(t, c)
	require.Len(t, cs, 1)
	assert.Equal(t, channel.StatusCompleted, cs[0].Status)
	assert.Equal(t, 2, cs[0].Checkpoints)
	assert.Equal(t, first.PolledAt, cs[0].PolledAt, "the completion's polled_at is the first poll")
	ts.ErrIs(t, c.Complete(id, ok()), channel.ErrNotPending, cabi.NotFound)
	assert.Empty(t, drain(t, c))
	s = c.Stats()
	assert.EqualValues(t, 3, s.Polled)
	assert.EqualValues(t, 1, s.Dispatched)
	assert.EqualValues(t, 1, s.Completed)
}

// The event keeps its room: a checkpoint into a full dispatch queue
// succeeds and goes to the back; new dispatches still see the queue full.
func TestCheckpoint_KeepsItsRoom(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.DispatchBufferSize = 2 })
	a, b := enqueue(t, c, ev("h")), enqueue(t, c, ev("h"))
	require.Equal(t, a, poll(t, c).EventID)
	cid := enqueue(t, c, ev("h"))
	_, err := c.Enqueue(bg, ev("h"), channel.KindFFI, 0)
	ts.ErrIs(t, err, channel.ErrFull, cabi.Full)

	require.NoError(t, c.Checkpoint(a, cp(`1`, 1, "")))
	assert.Equal(t, 3, c.Stats().Queued)
	_, err = c.Enqueue(bg, ev("h"), channel.KindFFI, 0)
	ts.ErrIs(t, err, channel.ErrFull, cabi.Full)
	assert.Equal(t, []uuid.UUID{b, cid, a}, []uuid.UUID{poll(t, c).EventID, poll(t, c).EventID, poll(t, c).EventID})
}

// A poll waiting at the in-flight bound is woken by a checkpoint and gets
// the event back.
func TestCheckpoint_WakesWaitingPoll(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxConcurrentHandlers = 1 })
	id := enqueue(t, c, ev("h"))
	poll(t, c)
	got := ts.Async(func() result {
		e, err := c.Poll(bg, -1)
		return result{e.EventID, err}
	})
	ts.NotYet(t, got, "poll at the bound")
	require.NoError(t, c.Checkpoint(id, cp(`1`, 1, "")))
	r := ts.Recv(t, got, "poll after a checkpoint")
	require.NoError(t, r.err)
	assert.Equal(t, id, r.id)
}

// The deadline restarts at the poll after a checkpoint.
func TestCheckpoint_DeadlineRestartsAtNextPoll(t *testing.T) {
	c := newChan(t, nil)
	e := ev("h")
	e.TimeoutMs = 200
	id := enqueue(t, c, e)
	poll(t, c)
	time.Sleep(120 * time.Millisecond)
	require.NoError(t, c.Checkpoint(id, cp(`1`, 1, "")))
	time.Sleep(120 * time.Millisecond) // 240 ms since the first poll
	polled := time.Now()
	poll(t, c)
	n := c.CleanupTimeouts()
	if time.Since(polled) < 200*time.Millisecond {
		assert.Zero(t, n, "expired by the first poll's deadline")
	}
	time.Sleep(220 * time.Millisecond)
	assert.Equal(t, 1, c.CleanupTimeouts())
	cs := drain(t, c)
	require.Len(t, cs, 1)
	assert.Equal(t, channel.StatusTimeout, cs[0].Status)
	assert.Equal(t, 1, cs[0].Checkpoints)
}

// Not pending (unknown, queued, queued again after a checkpoint, run by a
// Go handler, ended): ErrNotPending, counted in late_completions.
func TestCheckpoint_NotPending(t *testing.T) {
	c := newChan(t, nil)
	ts.ErrIs(t, c.Checkpoint(uuid.New(), cp(`1`, 1, "")), channel.ErrNotPending, cabi.NotFound)
	id := enqueue(t, c, ev("h"))
	ts.ErrIs(t, c.Checkpoint(id, cp(`1`, 1, "")), channel.ErrNotPending, cabi.NotFound)
	poll(t, c)
	require.NoError(t, c.Checkpoint(id, cp(`1`, 1, "")))
	err := c.Checkpoint(id, cp(`1`, 1, ""))
	ts.ErrIs(t, err, channel.ErrNotPending, cabi.NotFound)
	assert.Contains(t, err.Error(), "after a checkpoint")
	ts.ErrIs(t, c.Complete(id, ok()), channel.ErrNotPending, cabi.NotFound)
	goID, err := c.Enqueue(bg, ev("go"), channel.KindGo, 0)
	require.NoError(t, err)
	_, err = c.TakeGo(bg, 0)
	require.NoError(t, err)
	ts.ErrIs(t, c.Checkpoint(goID, cp(`1`, 1, "")), channel.ErrNotPending, cabi.NotFound)
	poll(t, c)
	require.NoError(t, c.Complete(id, ok()))
	ts.ErrIs(t, c.Checkpoint(id, cp(`1`, 1, "")), channel.ErrNotPending, cabi.NotFound)
	assert.EqualValues(t, 6, c.Stats().LateCompletions)
	assert.EqualValues(t, 1, c.Stats().Checkpoints)
}

// An invalid checkpoint changes nothing: the event stays pending.
func TestCheckpoint_InvalidChangesNothing(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxPayloadBytes = 64 })
	id := enqueue(t, c, ev("h"))
	poll(t, c)
	for _, bad := range []channel.Checkpoint{
		cp(`1`, -1, ""),
		cp(`{"a":`, 1, ""),
		cp(`1`, 1, `[1,`),
		cp(`"`+strings.Repeat("x", 70)+`"`, 1, ""),
		{Cursor: json.RawMessage("\"\xff\""), ItemsProcessed: 1},
	} {
		err := c.Checkpoint(id, bad)
		require.Error(t, err, "%+v", bad)
		assert.Contains(t, []int{cabi.Invalid, cabi.TooBig}, cabi.Status(err))
	}
	for _, doc := range []string{`{"cursor":1}`, `{"cursor":1,"items_processed":1,"x":1}`, `{`,
		`{"cursor":1,"items_processed":"` + strings.Repeat("9", 60) + `"}`} {
		require.Error(t, c.CheckpointJSON(id, []byte(doc), wire.ParseCheckpoint), doc)
	}
	s := c.Stats()
	assert.Equal(t, 1, s.Pending)
	assert.Zero(t, s.Queued)
	assert.Zero(t, s.LateCompletions)
	assert.Zero(t, s.Checkpoints)
	require.NoError(t, c.Checkpoint(id, channel.Checkpoint{ItemsProcessed: 0})) // nil cursor is null
	assert.Equal(t, "null", string(poll(t, c).Checkpoint.Cursor))
}

// max_checkpoints: the checkpoint beyond it ends the event as failed
// (too_many_checkpoints, not retryable) and returns nil.
func TestCheckpoint_MaxCheckpoints(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxCheckpoints = 2 })
	id := enqueue(t, c, ev("h"))
	for range 2 {
		poll(t, c)
		require.NoError(t, c.Checkpoint(id, cp(`1`, 1, "")))
	}
	poll(t, c)
	require.NoError(t, c.Checkpoint(id, cp(`1`, 1, "")))
	_, err := c.Poll(bg, 0)
	ts.ErrIs(t, err, channel.ErrEmpty, cabi.Empty)
	cs := drain(t, c)
	require.Len(t, cs, 1)
	assert.Equal(t, channel.StatusFailed, cs[0].Status)
	assert.False(t, cs[0].Success)
	require.NotNil(t, cs[0].Error)
	assert.Equal(t, channel.ErrorTypeTooManyCheckpoints, cs[0].Error.ErrorType)
	assert.False(t, cs[0].Error.Retryable)
	assert.Contains(t, cs[0].Error.Message, "max_checkpoints = 2")
	assert.Equal(t, 2, cs[0].Checkpoints)
	assert.EqualValues(t, 2, c.Stats().Checkpoints)

	assert.Equal(t, 100000, channel.DefaultConfig().MaxCheckpoints)
}

// A checkpointed event waiting in the queue at the drain deadline is
// cancelled, once, with its checkpoint count.
func TestCheckpoint_ShutdownCancelsQueuedAgain(t *testing.T) {
	c := newChan(t, nil)
	id := enqueue(t, c, ev("h"))
	poll(t, c)
	require.NoError(t, c.Checkpoint(id, cp(`1`, 1, "")))
	c.Shutdown(0)
	cs := drain(t, c)
	require.Len(t, cs, 1)
	assert.Equal(t, channel.StatusCancelled, cs[0].Status)
	assert.Equal(t, 1, cs[0].Checkpoints)
	assert.False(t, cs[0].PolledAt.IsZero(), "it was polled before")
}

// Starvation and queue age count from when the event entered the queue
// again, not from its dispatch.
func TestCheckpoint_QueueAgeFromRequeue(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.StarvationWarningThresholdMs = 60 })
	id := enqueue(t, c, ev("h"))
	poll(t, c)
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, 1, c.Stats().StarvingEventCount, "pending for 100 ms")
	before := time.Now()
	require.NoError(t, c.Checkpoint(id, cp(`1`, 1, "")))
	s := c.Stats()
	if time.Since(before) < 50*time.Millisecond {
		assert.Zero(t, s.StarvingEventCount)
		assert.Less(t, s.OldestQueuedAgeMs, int64(60))
	}
}

// completion_timeout_ms is the default timeout of FFI events; Go handlers
// keep handler_timeout_ms.
func TestConfig_CompletionTimeoutMs(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.CompletionTimeoutMs = 1234; cfg.HandlerTimeoutMs = 5678 })
	enqueue(t, c, ev("h"))
	assert.Equal(t, 1234, poll(t, c).TimeoutMs)
	_, err := c.Enqueue(bg, ev("go"), channel.KindGo, 0)
	require.NoError(t, err)
	task, err := c.TakeGo(bg, 0)
	require.NoError(t, err)
	assert.Equal(t, 5678, task.Event().TimeoutMs)
	e := ev("h")
	e.TimeoutMs = 7
	enqueue(t, c, e)
	assert.Equal(t, 7, poll(t, c).TimeoutMs, "the event's own timeout_ms wins")

	c = newChan(t, func(cfg *channel.Config) { cfg.HandlerTimeoutMs = 5678 })
	enqueue(t, c, ev("h"))
	assert.Equal(t, 5678, poll(t, c).TimeoutMs, "0 means handler_timeout_ms")
	cfg := channel.DefaultConfig()
	cfg.CompletionTimeoutMs = -5
	ts.ErrIs(t, cfg.Validate(), channel.ErrInvalid, cabi.Invalid)
}

// Rule 1 with checkpoints: workers checkpoint each event a fixed number of
// times, racing the reaper on short timeouts and a shutdown: every event
// ends exactly once, and a completed one carries all its checkpoints.
func TestCheckpoint_ExactlyOnceUnderRaces(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) {
		cfg.MaxConcurrentHandlers = 4
		cfg.CompletionBufferSize = 16
		cfg.DispatchBufferSize = 64
	})
	const n = 2000
	want := func(id uuid.UUID) int { return int(id[15] % 5) }
	var wg sync.WaitGroup
	var accepted atomic.Int64
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				e, err := c.Poll(bg, 5*time.Millisecond)
				if err != nil {
					select {
					case <-stop:
						return
					default:
						continue
					}
				}
				count := 0
				if e.Checkpoint != nil {
					count = e.Checkpoint.Count
				}
				if e.TimeoutMs == 1 {
					time.Sleep(2 * time.Millisecond)
				}
				if count < want(e.EventID) {
					if c.Checkpoint(e.EventID, cp(`1`, int64(count+1), "")) == nil {
						accepted.Add(1)
					}
					continue
				}
				_ = c.Complete(e.EventID, ok())
			}
		}()
	}
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				c.CleanupTimeouts()
				time.Sleep(time.Millisecond)
			}
		}
	}()
	seen := map[uuid.UUID]int{}
	total := 0
	for i := range n {
		e := ev("h")
		if i%10 == 0 {
			e.TimeoutMs = 1
		}
		_, err := c.Enqueue(bg, e, channel.KindFFI, wait)
		require.NoError(t, err)
		for _, comp := range drain(t, c) {
			seen[comp.EventID]++
			total += comp.Checkpoints
			if comp.Status == channel.StatusCompleted {
				assert.Equal(t, want(comp.EventID), comp.Checkpoints)
			}
		}
	}
	for len(seen) < n {
		comp, err := c.NextCompletion(bg, wait)
		require.NoError(t, err)
		seen[comp.EventID]++
		total += comp.Checkpoints
	}
	close(stop)
	wg.Wait()
	c.Shutdown(0)
	assert.Empty(t, drain(t, c))
	for id, k := range seen {
		require.Equal(t, 1, k, "event %s ended %d times", id, k)
	}
	assert.EqualValues(t, accepted.Load(), total)
	assert.EqualValues(t, total, c.Stats().Checkpoints)
}
