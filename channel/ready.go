package channel

// Readiness: what a caller that cannot block in Poll or NextCompletion (an
// event loop, a fiber scheduler) waits on. The channel tells a watcher,
// right after the critical section that made the change, every time the
// answer of a zero-timeout call changes between "something" and ErrEmpty;
// package runtime turns that into a file descriptor (tasker_event_fd,
// tasker_completion_fd).

import (
	"sync"
	"sync/atomic"
)

// Stream names what a readiness watcher follows.
type Stream uint8

const (
	// StreamEvents is ready while Poll(ctx, 0) (and PollBatch) would return
	// an event or ErrClosed: an FFI event is queued and the bounds of rule 3
	// let one start, or shutdown began and no FFI event is queued.
	StreamEvents Stream = iota
	// StreamCompletions is ready while NextCompletion(ctx, 0) would return a
	// completion or ErrClosed: the stream is not empty, or shutdown began
	// and every event has ended.
	StreamCompletions
)

// String names the stream.
func (s Stream) String() string {
	if s == StreamEvents {
		return "events"
	}
	return "completions"
}

// readyWatchers holds the readiness watchers. A change of readiness is
// found under Channel.mu, at the end of the critical section that made it
// (publishReadyLocked), and told to the watcher right after Channel.mu is
// released, by the goroutine that made it (applyReady): a waiter woken by
// the watcher (a thread blocked on tasker_event_fd) must not find the lock
// still held, or its zero-timeout Poll parks on the mutex and pays the Go
// scheduler's hand-off to its locked thread.
//
// Several goroutines may apply at once and out of order; each reads the
// newest published state under mu, so the last one to apply leaves the
// watcher with the newest state, and no watcher is left stale.
type readyWatchers struct {
	// last and gen are guarded by Channel.mu: per stream, the readiness
	// published last, and how many times it was published. watched is
	// guarded by Channel.mu too: a copy of fns[s] != nil.
	last    [2]bool
	gen     [2]uint32
	watched [2]bool

	// want is written under Channel.mu and read by applyReady without it:
	// per stream, gen<<1 | ready.
	want [2]atomic.Uint32

	// pending says that a change was published since the last applyReady
	// took mu (see applyReady).
	pending atomic.Bool

	mu   sync.Mutex    // taken after Channel.mu or alone, never before it
	fns  [2]func(bool) // guarded by mu
	told [2]uint32     // guarded by mu: the want each fn was last told
}

// WatchReady installs fn as the readiness watcher of s, replacing any
// other; nil removes it. fn is called at once with the current readiness,
// then after every critical section that changed it, right after the lock
// is released, by the goroutine that made the change. Calls to fn never
// overlap. fn(true) may repeat without an fn(false) in between when the
// stream was briefly not ready (a reader who drained it may wait again:
// an edge-triggered waiter needs that new edge); fn(false) never repeats.
// A waiter that sees "ready" and then calls Poll(ctx, 0) finds the event
// unless another caller took it first. fn must not block and must not call
// back into the channel. Once WatchReady(s, nil) has returned, the old fn
// is never called again.
func (c *Channel) WatchReady(s Stream, fn func(ready bool)) {
	c.mu.Lock()
	r := &c.ready
	r.mu.Lock()
	r.fns[s] = fn
	r.watched[s] = fn != nil
	if fn != nil {
		v := r.publishLocked(s, c.readyLocked(s))
		r.told[s] = v
		fn(v&1 != 0)
	}
	r.mu.Unlock()
	c.mu.Unlock()
	if r.pending.Load() {
		c.applyReady() // an applyReady that found r.mu held by this call left it to us
	}
}

// Ready reports whether a zero-timeout Poll (StreamEvents) or
// NextCompletion (StreamCompletions) would return something now.
func (c *Channel) Ready(s Stream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readyLocked(s)
}

// readyLocked mirrors the conditions of take (KindFFI) and NextCompletion.
func (c *Channel) readyLocked(s Stream) bool {
	if s == StreamEvents {
		q := c.queues[KindFFI].len()
		return (q > 0 && c.budgetLocked() > 0) || (q == 0 && c.closing)
	}
	return c.stream.len() > 0 || (c.closing && c.allEndedLocked())
}

// notifyReadyLocked marks the critical section as one whose end must
// look at readiness (publishReadyLocked). Called at the end of kickLocked,
// which follows every state change.
func (c *Channel) notifyReadyLocked() {
	if c.ready.watched[StreamEvents] || c.ready.watched[StreamCompletions] {
		c.wakes |= wakeReady
	}
}

// publishReadyLocked computes each watched stream's readiness once, at the
// end of a critical section, and publishes those that changed. It reports
// whether any did (then applyReady must run once mu is released).
func (c *Channel) publishReadyLocked() bool {
	r := &c.ready
	changed := false
	for s := range r.last {
		if !r.watched[s] {
			continue
		}
		if now := c.readyLocked(Stream(s)); now != r.last[s] {
			r.publishLocked(Stream(s), now)
			changed = true
		}
	}
	return changed
}

// publishLocked records readiness now for s and returns the published
// word (gen<<1 | ready). Channel.mu held.
func (r *readyWatchers) publishLocked(s Stream, now bool) uint32 {
	r.last[s] = now
	r.gen[s]++
	v := r.gen[s] << 1
	if now {
		v |= 1
	}
	r.want[s].Store(v)
	return v
}

// applyReady tells each watcher the newest published readiness it has not
// been told. Called without Channel.mu, after a critical section that
// published a change. It never waits for another applyReady: if one is
// running (its goroutine may even be preempted inside the watcher's system
// call), this one leaves a note (pending) and returns, and the running one
// applies again before it lets go. So a thread that only took an event
// never parks here behind the thread that woke it.
func (c *Channel) applyReady() {
	r := &c.ready
	r.pending.Store(true)
	for r.pending.Load() {
		if !r.mu.TryLock() {
			return // the holder sees pending after its Unlock and applies for us
		}
		r.pending.Store(false)
		for s, fn := range r.fns {
			if fn == nil {
				continue
			}
			v := r.want[s].Load()
			if v == r.told[s] {
				continue
			}
			was := r.told[s]&1 != 0
			r.told[s] = v
			if now := v&1 != 0; now || was {
				fn(now) // ready again after an unseen gap: a new edge; false only after true
			}
		}
		r.mu.Unlock()
	}
}
