package channel

import (
	"context"
	"time"
)

// Shutdown stops intake at once (Enqueue returns ErrShutdown), lets workers
// poll queued events and complete pending ones until the drain deadline
// (now + drain; drain < 0: no deadline), then ends every event still queued
// or pending as cancelled. It returns once every event has ended. A later
// call may bring the deadline closer, never push it back. Idempotent; safe
// to call from several goroutines.
func (c *Channel) Shutdown(drain time.Duration) {
	c.mu.Lock()
	defer c.unlock()
	now := Now()
	switch {
	case !c.closing:
		c.closing = true
		c.drainForever = drain < 0
		c.drainAt = now.Add(max(drain, 0))
	case drain >= 0 && (c.drainForever || now.Add(drain).Before(c.drainAt)):
		c.drainForever = false
		c.drainAt = now.Add(drain)
	}
	// release every waiter whose answer shutdown changes, and every other
	// Shutdown so that it re-reads the deadline
	c.waitIdle.broadcast()
	c.kickLocked()
	for !c.allEndedLocked() {
		if !c.drainForever {
			left := time.Until(c.drainAt)
			if left <= 0 {
				c.cancelAllLocked()
				break
			}
			w := newWait(context.Background(), left)
			c.park(&c.waitIdle, &w)
			w.stop()
		} else {
			w := newWait(context.Background(), -1)
			c.park(&c.waitIdle, &w)
		}
	}
	c.kickLocked()
}

// cancelAllLocked ends every queued and pending event as cancelled: queued
// ones in dispatch order, then pending ones in start order.
func (c *Channel) cancelAllLocked() {
	res := func(what string) Result {
		return Result{Error: &ErrorInfo{
			Message:   "cancelled at shutdown: " + what + " when the drain deadline passed",
			ErrorType: ErrorTypeShutdown,
			Retryable: true,
		}}
	}
	now := Now()
	queued, running := res("still queued"), res("still running")
	for k := range c.queues {
		for c.queues[k].len() > 0 {
			c.endAtLocked(c.queues[k].pop(), StatusCancelled, queued, false, now)
		}
	}
	for c.pendList.next != &c.pendList {
		c.endAtLocked(c.pendList.next, StatusCancelled, running, false, now)
	}
	c.live.reset(0) // nothing is queued or pending any more
}

// Closing reports whether shutdown has begun.
func (c *Channel) Closing() bool {
	c.mu.Lock()
	defer c.unlock()
	return c.closing
}

// Discard drops every completion not yet taken (destroy does this after
// shutdown). Later NextCompletion calls return ErrClosed.
func (c *Channel) Discard() {
	c.mu.Lock()
	defer c.unlock()
	c.st.Discarded += uint64(c.stream.len())
	c.stream.clear()
	c.kickLocked()
}
