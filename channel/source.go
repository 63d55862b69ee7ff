package channel

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Events fed by a source (runtime.Source; QUEUE.md) live in the channel like
// dispatched ones — the same queues, the same bounds, polled and completed
// the same way — with one difference: their completions go to the source's
// own list (srcDone), never to the completion stream and never to the end
// hook. So:
//
//   - every source event's completion is handed to the source exactly once
//     (TakeSourceCompletions pops it under mu), and local consumers never
//     see it (QUEUE.md rule 10);
//   - nothing is dropped: srcDone has room for every live source event,
//     reserved when the event is fed;
//   - bounds (rule 3 of ABI.md): a source event counts as running while
//     pending, and its completion counts against completion_buffer_size
//     until the source takes it, exactly as an undelivered local
//     completion does (budgetLocked adds srcDone.len()). The runtime's
//     source takes them at once, so in practice they hold room for the
//     time of one database write; a source that stops taking them stops
//     every event from starting, which is the bound doing its job;
//   - at the drain deadline a source event still queued or running ends as
//     cancelled, like any other, and goes to srcDone: for a source that
//     status means "release it, write no result" (QUEUE.md rule 7).

// FeedSource queues ev as a source event for a worker of the given kind,
// without waiting: ErrFull when the dispatch queue is full, ErrShutdown once
// shutdown began, ErrInvalid/ErrTooBig for a bad event (nothing queued).
// EventID and the other defaults are filled in as by Enqueue. Call
// SourceRoom first: feeding only what it allows keeps rule 6 of QUEUE.md.
func (c *Channel) FeedSource(ev Event, kind Kind) (uuid.UUID, error) {
	if err := validateEvent(&ev, c.cfg.MaxPayloadBytes); err != nil {
		c.RecordRejected()
		return uuid.Nil, err
	}
	return c.enqueueAs(context.Background(), ev, kind, 0, true)
}

// SetSourceWake installs ch (capacity >= 1) to be signalled, without
// blocking, whenever SourceRoom may have grown. Call before the channel is
// used.
func (c *Channel) SetSourceWake(ch chan struct{}) { c.srcWake = ch }

// SourceRoom is how many events a source may feed now: the smaller of the
// dispatch queue's free room and the running slots (rule 3) not already
// claimed by queued events. 0 once shutdown began.
func (c *Channel) SourceRoom() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sourceRoomLocked()
}

func (c *Channel) sourceRoomLocked() int {
	if c.closing {
		return 0
	}
	q := c.queuedLocked()
	return max(0, min(c.cfg.DispatchBufferSize-q, c.budgetLocked()-q))
}

// TakeSourceCompletions takes up to max (>= 1) completions of source events,
// in the order they ended, waiting up to timeout for the first. ErrEmpty
// when none came in time; ErrClosed once shutdown began, every source event
// has ended and every completion was taken.
func (c *Channel) TakeSourceCompletions(ctx context.Context, max int, timeout time.Duration) ([]Completion, error) {
	if max < 1 {
		return nil, invalidf("take source completions: max must be >= 1, got %d", max)
	}
	w := newWait(ctx, timeout)
	defer w.stop()
	c.mu.Lock()
	defer c.unlock()
	for {
		if n := min(max, c.srcDone.len()); n > 0 {
			out := make([]Completion, n)
			for i := range out {
				out[i] = c.srcDone.pop()
			}
			c.st.SourceHanded += uint64(n)
			c.kickLocked() // room freed
			return out, nil
		}
		if c.closing && c.srcLive == 0 {
			return nil, c.fail(&w, fmt.Errorf("%w: every source event has ended and was taken", ErrClosed))
		}
		if !w.canWait() {
			return nil, c.fail(&w, ErrEmpty)
		}
		c.park(&c.waitSource, &w)
	}
}

// kickSourceLocked is kickLocked's part for the source (mu held).
func (c *Channel) kickSourceLocked() {
	if c.waitSource.len() > 0 {
		if c.srcDone.len() > 0 {
			c.waitSource.signal()
		} else if c.closing && c.srcLive == 0 {
			c.waitSource.broadcast()
		}
	}
	if c.srcWake != nil && c.sourceRoomLocked() > 0 {
		select {
		case c.srcWake <- struct{}{}:
		default:
		}
	}
}
