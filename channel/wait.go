package channel

import (
	"context"
	"fmt"
	"time"
)

// Waiting. A call that must wait parks on the waitq of its condition with
// c.mu released, and re-checks the condition when woken. Every state change
// ends with kickLocked, the one place that decides who is woken.

// waitState carries one call's timeout across its parks.
type waitState struct {
	timeout time.Duration
	timer   *time.Timer
	done    <-chan struct{}
	ctx     context.Context
	expired bool
	parked  bool
}

func newWait(ctx context.Context, timeout time.Duration) waitState {
	return waitState{timeout: timeout, done: ctx.Done(), ctx: ctx}
}

func (w *waitState) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// canWait reports whether the call may park again.
func (w *waitState) canWait() bool { return w.timeout != 0 && !w.expired }

// park waits on q with c.mu held; it returns with c.mu held. A false return
// means the wait is over (timeout or context done); the caller re-checks its
// condition either way.
func (c *Channel) park(q *waitq, w *waitState) {
	if w.timer == nil && w.timeout > 0 {
		w.timer = time.NewTimer(w.timeout)
	}
	var tc <-chan time.Time
	if w.timer != nil {
		tc = w.timer.C
	}
	wt := waiterPool.Get().(*waiter)
	q.add(wt)
	w.parked = true
	c.mu.Unlock()
	woken := false
	select {
	case <-wt.ch:
		woken = true
	case <-tc:
		w.expired = true
	case <-w.done:
		w.expired = true
	}
	c.mu.Lock()
	if !woken {
		q.done(wt)
	}
	waiterPool.Put(wt)
}

// fail ends a call that did not get what it waited for. A parked call may
// have consumed a signal meant for someone else: pass it on.
func (c *Channel) fail(w *waitState, err error) error {
	if w.parked {
		c.kickLocked()
	}
	if w.ctx != nil && w.ctx.Err() != nil && err == ErrEmpty {
		return fmt.Errorf("%w: %w", ErrEmpty, w.ctx.Err())
	}
	return err
}

// kickLocked wakes one waiter of every class whose condition now holds, and
// every waiter of a class that shutdown has released. Called after every
// state change; a woken waiter that takes something kicks again, so wakeups
// chain for as long as there is something to take.
func (c *Channel) kickLocked() {
	if c.waitDispatch.len() > 0 {
		if c.closing {
			c.waitDispatch.broadcast()
		} else if c.queuedLocked() < c.cfg.DispatchBufferSize {
			c.waitDispatch.signal()
		}
	}
	for k := range c.waitTake {
		q := &c.waitTake[k]
		if q.len() == 0 {
			continue
		}
		if c.queues[k].len() == 0 {
			if c.closing {
				q.broadcast()
			}
		} else if c.budgetLocked() > 0 {
			q.signal()
		}
	}
	if c.waitNext.len() > 0 {
		if c.stream.len() > 0 {
			c.waitNext.signal()
		} else if c.closing && c.allEndedLocked() {
			c.waitNext.broadcast()
		}
	}
	if c.waitIdle.len() > 0 && c.allEndedLocked() {
		c.waitIdle.broadcast()
	}
	c.kickSourceLocked()
}
