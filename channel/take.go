package channel

import (
	"context"
	"fmt"
	"slices"
	"time"
	"unsafe"
)

// take moves up to max events of kind k from the queue to pending, waiting
// only for the first. It returns ErrEmpty when nothing could be taken within
// the timeout (queue empty or a bound reached) and ErrClosed once shutdown
// began and the queue is empty.
//
// An FFI event is copied into evs (appended) before the lock is released:
// once it is unlocked, a complete, a cleanup or a shutdown may end the event
// and recycle its entry (entries.go), so no FFI entry is handed out. A Go
// event's entry is returned (with max 1): its GoTask keeps it, and Go
// entries are never recycled.
func (c *Channel) take(ctx context.Context, k Kind, max int, timeout time.Duration, evs []Event) ([]Event, *entry, error) {
	w := newWait(ctx, timeout)
	defer w.stop()
	c.mu.Lock()
	defer c.unlock()
	for {
		q := &c.queues[k]
		if q.len() > 0 {
			if n := min(max, q.len(), c.budgetLocked()); n > 0 {
				now := Now()
				since := now.Sub(c.epoch)
				var goEntry *entry
				if k == KindFFI {
					evs = slices.Grow(evs, n)
				}
				for range n {
					e := q.pop()
					e.state = statePending
					e.ev.PolledAt = now
					if e.startedAt.IsZero() {
						e.startedAt = now
					}
					c.linkPendingLocked(e)
					if k == KindFFI {
						e.deadline = since + time.Duration(e.ev.TimeoutMs)*time.Millisecond
						c.timeouts.push(e)
						c.st.Polled++
						evs = append(evs, e.ev)
					} else {
						c.st.StartedGo++
						goEntry = e
					}
				}
				// Room for the completions of every running event, reserved
				// now: ending an event (complete, cleanup) never allocates
				// a bigger stream.
				c.stream.reserve(c.pendingLocked() + c.overdueGo + c.stream.len())
				c.kickLocked()
				return evs, goEntry, nil
			}
		} else if c.closing {
			return evs, nil, c.fail(&w, fmt.Errorf("%w: shutdown began and no queued event is left", ErrClosed))
		}
		if !w.canWait() {
			return evs, nil, c.fail(&w, ErrEmpty)
		}
		c.park(&c.waitTake[k], &w)
	}
}

// linkPendingLocked appends e to the pending list (start order).
func (c *Channel) linkPendingLocked(e *entry) {
	e.prev, e.next = c.pendList.prev, &c.pendList
	e.prev.next, c.pendList.prev = e, e
	c.pendingN[e.kind]++
}

// unlinkPendingLocked takes e off the pending list and the deadline heap.
func (c *Channel) unlinkPendingLocked(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	c.pendingN[e.kind]--
	if e.heapIdx >= 0 {
		c.timeouts.remove(e)
	}
}

// Poll takes one event for an FFI worker: it becomes pending and its
// deadline (now + its timeout_ms) starts. ErrEmpty when none could be taken
// within timeout (the queue was empty or a bound of rule 3 was reached);
// ErrClosed once shutdown began and no queued event is left.
func (c *Channel) Poll(ctx context.Context, timeout time.Duration) (Event, error) {
	var ev Event
	if err := c.PollInto(ctx, timeout, &ev); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// PollInto is Poll storing the event in *dst (left alone on an error): the
// C layer encodes it from there, with no copy on the way out.
func (c *Channel) PollInto(ctx context.Context, timeout time.Duration, dst *Event) error {
	// take appends the event straight into *dst, and only on success.
	_, _, err := c.take(ctx, KindFFI, 1, timeout, unsafe.Slice(dst, 1)[:0])
	return err
}

// PollBatch takes up to max events (max >= 1), waiting only for the first.
func (c *Channel) PollBatch(ctx context.Context, max int, timeout time.Duration) ([]Event, error) {
	return c.PollBatchAppend(ctx, max, timeout, nil)
}

// PollBatchAppend is PollBatch appending the events to dst (returned as
// is on an error): the C layer reuses one slice for every batch instead of
// allocating 184 bytes per event.
func (c *Channel) PollBatchAppend(ctx context.Context, max int, timeout time.Duration, dst []Event) ([]Event, error) {
	if max < 1 {
		return dst, invalidf("poll_batch: max must be >= 1, got %d", max)
	}
	evs, _, err := c.take(ctx, KindFFI, max, timeout, dst)
	if err != nil {
		return dst, err
	}
	return evs, nil
}

// GoTask is an event taken for a Go handler. Its goroutine must call
// FinishGo exactly once, when the handler has returned (or, for a timeout,
// once with returned=false first and once more when it returns).
type GoTask struct {
	e *entry
}

// Event returns the task's event (PolledAt is its start time).
func (t *GoTask) Event() *Event { return &t.e.ev }

// TakeGo takes one event for a Go handler; same waiting rules as Poll.
func (c *Channel) TakeGo(ctx context.Context, timeout time.Duration) (*GoTask, error) {
	_, e, err := c.take(ctx, KindGo, 1, timeout, nil)
	if err != nil {
		return nil, err
	}
	return &GoTask{e: e}, nil
}

// FinishGo ends a Go task's event with (status, r) if it is still pending.
// returned says whether the handler goroutine has returned: a handler that
// timed out ends its event now (returned=false) and keeps its running slot
// until it does return (then call FinishGo again with returned=true; the
// second result is discarded). It reports whether this call ended the event.
func (c *Channel) FinishGo(t *GoTask, status CompletionStatus, r Result, returned bool) bool {
	c.mu.Lock()
	defer c.unlock()
	e := t.e
	ended := false
	if e.state == statePending {
		c.endLocked(e, status, r, returned)
		ended = true
	} else if returned && e.overdue {
		e.overdue = false
		c.overdueGo--
	}
	c.kickLocked()
	return ended
}
