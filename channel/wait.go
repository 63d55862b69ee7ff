package channel

import (
	"context"
	"fmt"
	"sync/atomic"
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
	c.unlock()
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
// chain for as long as there is something to take. Threads parked outside Go
// (SetWaker) hear of what it found only when the critical section ends in
// c.unlock(): a method that kicks must release mu with c.unlock(), never with
// c.mu.Unlock(), or a thread parked in tasker_poll sleeps through the change.
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
	c.notifyReadyLocked() // readiness watchers (ready.go)
	if c.waker != nil {
		if c.outsideWaiting(StreamEvents) {
			q := c.queues[KindFFI].len()
			if (q > 0 && c.budgetLocked() > 0) || (q == 0 && c.closing) {
				c.wakes |= wakeEvents
			}
		}
		if c.outsideWaiting(StreamCompletions) && (c.stream.len() > 0 || (c.closing && c.allEndedLocked())) {
			c.wakes |= wakeCompletions
		}
		if c.closing {
			c.wakes |= wakeAll
		}
	}
	c.kickSourceLocked()
}

// The bits of Channel.wakes.
const (
	wakeEvents      = 1 << iota // a Poll(ctx, 0) would return an event or ErrClosed
	wakeCompletions             // a NextCompletion(ctx, 0) would return a completion or ErrClosed
	wakeAll                     // shutdown began: every waiter has a new answer
	wakeReady                   // readiness may have changed: publish it, then tell the watchers (ready.go)
)

// SetWaker installs fn for waiters that are not goroutines: the C shim
// (package ffi) parks threads on a futex outside Go and needs to hear when
// a try may succeed. After every critical section whose kicks found that a
// zero-timeout Poll (events) or NextCompletion (completions) would now
// return something, fn is called once, after the lock is released (a
// thread it wakes must not find the lock still held by the waker); all is
// true once shutdown began, when every waiter, not one, has a new answer.
// fn must not block; it may run concurrently with itself and with any
// method. Call before the Channel is used.
//
// waiting may point to the counts of the threads that wait outside Go
// (see OutsideWaiters): while a stream's count is 0, fn does not hear of
// that stream, and a critical section with nothing else to tell calls no
// fn at all.
func (c *Channel) SetWaker(fn func(events, completions, all bool), waiting OutsideWaiters) {
	c.mu.Lock()
	c.waker = fn
	c.wakerWaiting = [2]*uint32{waiting.Events, waiting.Completions}
	c.mu.Unlock()
}

// OutsideWaiters points to two counts kept by the waker's owner: of the
// threads that wait outside Go for events and for completions. The channel
// only reads them (atomically); a nil one is not counted (fn always hears
// of that stream). In a busy round trip nobody waits, and calling fn to
// find that out cost more than most of the state change.
//
// A waiting thread must add itself to its count before its first try takes
// the channel's lock, and leave it only when done waiting. Then a kick that
// reads 0 under the lock either came before that try, which sees the
// change, or would have read the raised count.
type OutsideWaiters struct {
	Events, Completions *uint32
}

// outsideWaiting reports whether a thread may wait outside Go for stream s
// (always true when that is not counted).
func (c *Channel) outsideWaiting(s Stream) bool {
	p := c.wakerWaiting[s]
	return p == nil || atomic.LoadUint32(p) != 0
}

// unlock releases mu and then tells the waker, and the readiness watchers,
// what this critical section's kicks found. Every method that changes state
// under mu releases it here.
func (c *Channel) unlock() {
	if c.wakes == 0 { // nothing to tell: the common case of a take or a failed call
		c.mu.Unlock()
		return
	}
	c.unlockAndWake()
}

// unlockAndWake is unlock when the kicks found something to tell.
func (c *Channel) unlockAndWake() {
	w := c.wakes
	c.wakes = 0
	ready := w&wakeReady != 0 && c.publishReadyLocked()
	c.mu.Unlock()
	if w&^wakeReady != 0 {
		c.waker(w&wakeEvents != 0, w&wakeCompletions != 0, w&wakeAll != 0)
	}
	if ready {
		c.applyReady()
	}
}
