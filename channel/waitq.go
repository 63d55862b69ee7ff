package channel

import "sync"

// waiter is one goroutine parked in a wait queue. Its channel has room for
// exactly one token: a waiter is signalled at most once per add.
type waiter struct {
	ch chan struct{}
}

var waiterPool = sync.Pool{New: func() any { return &waiter{ch: make(chan struct{}, 1)} }}

// waitq is a FIFO of parked goroutines. It is guarded by the Channel's mutex.
// Protocol: a goroutine adds itself under the lock, unlocks, then waits on
// its channel (or a timer); on waking it relocks and calls done(w), which
// tells whether it had been signalled, and leaves w reusable. Whoever wakes
// re-checks its condition under the lock: a signal is a hint, not a grant.
// A goroutine that was signalled but leaves without using the state (timed
// out, cancelled) must re-kick so the signal is passed on.
type waitq struct {
	ws []*waiter
}

func (q *waitq) len() int { return len(q.ws) }

func (q *waitq) add(w *waiter) { q.ws = append(q.ws, w) }

// signal wakes the longest-waiting goroutine, if any.
func (q *waitq) signal() {
	if len(q.ws) == 0 {
		return
	}
	w := q.ws[0]
	copy(q.ws, q.ws[1:])
	q.ws[len(q.ws)-1] = nil
	q.ws = q.ws[:len(q.ws)-1]
	w.ch <- struct{}{}
}

// broadcast wakes every waiting goroutine.
func (q *waitq) broadcast() {
	for _, w := range q.ws {
		w.ch <- struct{}{}
	}
	clear(q.ws)
	q.ws = q.ws[:0]
}

// done removes w if it is still queued (it was not signalled) and drains its
// token otherwise, so that w can go back to the pool. It reports whether w
// had been signalled.
func (q *waitq) done(w *waiter) (signalled bool) {
	for i, x := range q.ws {
		if x == w {
			copy(q.ws[i:], q.ws[i+1:])
			q.ws[len(q.ws)-1] = nil
			q.ws = q.ws[:len(q.ws)-1]
			return false
		}
	}
	<-w.ch // the signaller sent under the lock we now hold: the token is there
	return true
}
