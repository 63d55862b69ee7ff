package channel_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/channel"
)

// wakeLog records every call of a channel's waker.
type wakeLog struct {
	mu    sync.Mutex
	calls [][3]bool
}

func (l *wakeLog) take() [][3]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls
	l.calls = nil
	return c
}

// watch installs a waker that records its calls and, to prove that it runs
// outside the channel's lock, takes the lock itself (Stats): called under
// the lock, it would deadlock and the test would time out.
func watch(c *channel.Channel) *wakeLog { return watchCounted(c, channel.OutsideWaiters{}) }

// watchCounted is watch with the counts of the threads waiting outside Go.
func watchCounted(c *channel.Channel, waiting channel.OutsideWaiters) *wakeLog {
	l := &wakeLog{}
	c.SetWaker(func(events, completions, all bool) {
		_ = c.Stats()
		l.mu.Lock()
		l.calls = append(l.calls, [3]bool{events, completions, all})
		l.mu.Unlock()
	}, waiting)
	return l
}

// The waker (how the C shim's parked threads learn that a try may succeed)
// hears of every change that makes a zero-timeout Poll or NextCompletion
// return something, once per critical section, after the lock is released.
func TestWakerTellsEveryChangeThatLetsATrySucceed(t *testing.T) {
	c := newChan(t, func(cfg *channel.Config) { cfg.MaxConcurrentHandlers = 1; cfg.CompletionBufferSize = 1 })
	l := watch(c)

	a := enqueue(t, c, ev("h"))
	require.Equal(t, [][3]bool{{true, false, false}}, l.take(), "dispatch: an event can be polled")

	b := enqueue(t, c, ev("h"))
	require.Equal(t, [][3]bool{{true, false, false}}, l.take())

	poll(t, c) // a pending: the bound of 1 is reached, b stays queued
	require.Empty(t, l.take(), "nothing can be taken after this poll: no wake-up")

	require.NoError(t, c.Complete(a, ok()))
	// a's completion fills the stream (completion_buffer_size 1): b still cannot start
	require.Equal(t, [][3]bool{{false, true, false}}, l.take(), "complete: a completion can be taken")

	next(t, c) // room again: b can start
	require.Equal(t, [][3]bool{{true, false, false}}, l.take(), "next_completion freed the room b needs")

	got := poll(t, c)
	require.Equal(t, b, got.EventID)
	require.Empty(t, l.take())

	require.Equal(t, 0, c.CleanupTimeouts()) // no deadline passed: nothing ends
	require.Empty(t, l.take())

	c.Shutdown(0) // b is cancelled: its completion, and CLOSED for pollers, for every waiter
	calls := l.take()
	require.NotEmpty(t, calls)
	last := calls[len(calls)-1]
	require.Equal(t, [3]bool{true, true, true}, last, "shutdown wakes every waiter of both streams")
}

// With the counts of the threads waiting outside Go installed, the waker
// hears only of the streams somebody waits for: nothing while both counts
// are 0 (the busy round trip, where nobody waits), and each stream as soon
// as its count is raised, in the first critical section after that.
func TestWakerHearsOnlyOfStreamsSomebodyWaitsFor(t *testing.T) {
	c := newChan(t, nil)
	var events, completions uint32
	l := watchCounted(c, channel.OutsideWaiters{Events: &events, Completions: &completions})

	a := enqueue(t, c, ev("h"))
	poll(t, c)
	require.NoError(t, c.Complete(a, ok()))
	next(t, c)
	require.Empty(t, l.take(), "nobody waits outside Go: the waker is never called")

	atomic.StoreUint32(&events, 1)
	b := enqueue(t, c, ev("h"))
	require.Equal(t, [][3]bool{{true, false, false}}, l.take(), "a thread waits for events")
	poll(t, c)
	require.NoError(t, c.Complete(b, ok()))
	require.Empty(t, l.take(), "nobody waits for completions, and no event is left to take")

	atomic.StoreUint32(&completions, 1)
	enqueue(t, c, ev("h")) // the stream still holds b's completion
	require.Equal(t, [][3]bool{{true, true, false}}, l.take(), "both streams have a waiter and something to take")

	atomic.StoreUint32(&events, 0)
	next(t, c)
	require.Empty(t, l.take(), "the stream is empty now, and nobody waits for events")

	c.Shutdown(0)
	calls := l.take()
	require.NotEmpty(t, calls)
	require.Equal(t, [3]bool{false, true, true}, calls[len(calls)-1], "shutdown: only the counted stream hears")
}
