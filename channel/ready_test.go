package channel_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/tasker-systems/libtasker/channel"
)

// watcher records what WatchReady reports.
type watcher struct {
	state   bool
	calls   int
	repeats int // calls that did not change the state (must stay 0 after the first)
}

func (w *watcher) fn(ready bool) {
	if w.calls > 0 && ready == w.state {
		w.repeats++
	}
	w.state = ready
	w.calls++
}

// TestReadyIsExactlyAZeroTimeoutAnswer: over random sequences of every
// operation (FFI and Go events, complete, Go handlers that return late,
// next completion, shutdown, discard), each stream's watcher says "ready"
// exactly when the zero-timeout call made right then returns something
// (a value or ErrClosed), and it is called only on changes.
func TestReadyIsExactlyAZeroTimeoutAnswer(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := newChan(t, func(cfg *channel.Config) {
			cfg.DispatchBufferSize = rapid.IntRange(1, 6).Draw(t, "D")
			cfg.MaxConcurrentHandlers = rapid.IntRange(1, 4).Draw(t, "M")
			cfg.CompletionBufferSize = cfg.MaxConcurrentHandlers + rapid.IntRange(0, 3).Draw(t, "extra")
		})
		var we, wc watcher
		c.WatchReady(channel.StreamEvents, we.fn)
		c.WatchReady(channel.StreamCompletions, wc.fn)
		require.Equal(t, 1, we.calls)
		require.False(t, we.state)
		require.False(t, wc.state)
		var pending []channel.Event
		var goTasks []*channel.GoTask
		var zombies []*channel.GoTask
		shut := false
		steps := rapid.IntRange(1, 120).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			require.Equal(t, c.Ready(channel.StreamEvents), we.state, "Ready and the watcher agree")
			switch op := rapid.IntRange(0, 10).Draw(t, "op"); op {
			case 0, 1:
				_, _ = c.Enqueue(bg, ev("h"), channel.KindFFI, 0)
			case 2:
				_, _ = c.Enqueue(bg, ev("g"), channel.KindGo, 0)
			case 3, 4:
				want := we.state
				e, err := c.Poll(bg, 0)
				got := err == nil || errors.Is(err, channel.ErrClosed)
				require.Equal(t, want, got, "event readiness %v, Poll(0) error %v", want, err)
				if err == nil {
					pending = append(pending, e)
				}
			case 5:
				if tk, err := c.TakeGo(bg, 0); err == nil {
					goTasks = append(goTasks, tk)
				}
			case 6:
				if len(pending) > 0 {
					k := rapid.IntRange(0, len(pending)-1).Draw(t, "k")
					_ = c.Complete(pending[k].EventID, ok())
					pending = append(pending[:k], pending[k+1:]...)
				}
			case 7:
				if len(goTasks) > 0 {
					tk := goTasks[0]
					goTasks = goTasks[1:]
					returned := rapid.Bool().Draw(t, "returned")
					c.FinishGo(tk, channel.StatusCompleted, ok(), returned)
					if !returned {
						zombies = append(zombies, tk)
					}
				} else if len(zombies) > 0 {
					c.FinishGo(zombies[0], channel.StatusCompleted, ok(), true)
					zombies = zombies[1:]
				}
			case 8, 9:
				want := wc.state
				_, err := c.NextCompletion(bg, 0)
				got := err == nil || errors.Is(err, channel.ErrClosed)
				require.Equal(t, want, got, "completion readiness %v, NextCompletion(0) error %v", want, err)
			case 10:
				if !shut && rapid.IntRange(0, 3).Draw(t, "shutdown?") == 0 {
					c.Shutdown(0)
					shut = true
					pending, goTasks = nil, nil
					require.True(t, we.state, "after shutdown the event stream reports CLOSED")
				}
			}
		}
		c.Shutdown(0)
		c.Discard()
		require.True(t, we.state)
		require.True(t, wc.state, "after shutdown and discard the completion stream reports CLOSED")
		require.Zero(t, we.repeats, "the events watcher is called only on changes")
		require.Zero(t, wc.repeats, "the completions watcher is called only on changes")
		c.WatchReady(channel.StreamEvents, nil)
		n := we.calls
		_, _ = c.NextCompletion(bg, 0)
		require.Equal(t, n, we.calls, "a removed watcher is never called again")
	})
}

// TestWatchReadyReportsAtInstall: a watcher installed on a channel that
// already has work is told so at once.
func TestWatchReadyReportsAtInstall(t *testing.T) {
	c := newChan(t, nil)
	enqueue(t, c, ev("h"))
	var w watcher
	c.WatchReady(channel.StreamEvents, w.fn)
	require.True(t, w.state)
	poll(t, c)
	require.False(t, w.state)
	var wc watcher
	c.WatchReady(channel.StreamCompletions, wc.fn)
	require.False(t, wc.state)
}

// blockingWatcher records every call; the first fn(true) after install
// blocks until release is closed (entered says it has begun), standing for
// a thread that woke a waiter and was preempted inside the descriptor's
// write.
type blockingWatcher struct {
	mu      sync.Mutex
	calls   []bool
	blocked bool
	entered chan struct{}
	release chan struct{}
}

func newBlockingWatcher() *blockingWatcher {
	return &blockingWatcher{entered: make(chan struct{}), release: make(chan struct{})}
}

func (w *blockingWatcher) fn(ready bool) {
	w.mu.Lock()
	w.calls = append(w.calls, ready)
	block := ready && !w.blocked
	if block {
		w.blocked = true
	}
	w.mu.Unlock()
	if block {
		close(w.entered)
		<-w.release
	}
}

func (w *blockingWatcher) seen() []bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]bool(nil), w.calls...)
}

// whileTelling makes an event ready with the watcher's first fn(true)
// blocked in another goroutine, runs ops, and requires that they return
// while that call still blocks: a caller never waits for a watcher call
// another goroutine makes (the thread woken by tasker_event_fd takes the
// event while the thread that woke it is still inside the write; parking
// it there costs the Go scheduler's hand-off to a locked thread). Then it
// releases the call and returns what the watcher was told.
func whileTelling(t *testing.T, ops func(c *channel.Channel)) []bool {
	c := newChan(t, nil)
	w := newBlockingWatcher()
	c.WatchReady(channel.StreamEvents, w.fn)
	dispatched := make(chan error, 1)
	go func() {
		_, err := c.Enqueue(bg, ev("h"), channel.KindFFI, 0)
		dispatched <- err
	}()
	<-w.entered
	done := make(chan struct{})
	go func() {
		defer close(done)
		ops(c)
	}()
	select {
	case <-done:
	case <-time.After(wait): // a deadlock detector, not a time limit
		t.Fatal("a caller waited for a watcher call made by another goroutine")
	}
	close(w.release)
	require.NoError(t, <-dispatched)
	return w.seen()
}

// TestReadyWatcherCallDoesNotBlockOtherCallers: the newest state wins
// once the blocked call returns (taken: not ready).
func TestReadyWatcherCallDoesNotBlockOtherCallers(t *testing.T) {
	seen := whileTelling(t, func(c *channel.Channel) {
		_, err := c.Poll(bg, 0) // ready -> not ready, told by the blocked goroutine later
		if err != nil {
			panic(err)
		}
	})
	require.Equal(t, []bool{false, true, false}, seen, "install, the blocked call, then the newest state")
}

// TestReadyToldAgainAfterAnUnseenGap: not ready and ready again while the
// watcher was busy: it is told "ready" again, a new edge for a waiter that
// drained the stream to empty meanwhile (EPOLLET), and never "not ready"
// twice.
func TestReadyToldAgainAfterAnUnseenGap(t *testing.T) {
	seen := whileTelling(t, func(c *channel.Channel) {
		if _, err := c.Poll(bg, 0); err != nil { // -> not ready
			panic(err)
		}
		if _, err := c.Enqueue(bg, ev("h"), channel.KindFFI, 0); err != nil { // -> ready
			panic(err)
		}
	})
	require.Equal(t, []bool{false, true, true}, seen)
}
