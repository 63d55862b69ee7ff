package channel

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Events fed by a source (runtime.Source; docs/QUEUE.md) live in the channel like
// dispatched ones — the same queues, the same bounds, polled and completed
// the same way — with one difference: their completions go to the source's
// own list (srcDone), never to the completion stream and never to the end
// hook. So:
//
//   - every source event's completion is handed to the source exactly once
//     (TakeSourceCompletions pops it under mu), and local consumers never
//     see it (docs/QUEUE.md rule 10);
//   - nothing is dropped: srcDone has room for every live source event,
//     reserved when the event is fed;
//   - bounds (rule 3 of docs/ABI.md): a source event counts as running while
//     pending, and its completion counts against completion_buffer_size
//     until the source takes it, exactly as an undelivered local
//     completion does (budgetLocked adds srcDone.len()). The runtime's
//     source takes them at once, so in practice they hold room for the
//     time of one database write; a source that stops taking them stops
//     every event from starting, which is the bound doing its job;
//   - at the drain deadline a source event still queued or running ends as
//     cancelled, like any other, and goes to srcDone: for a source that
//     status means "release it, write no result" (docs/QUEUE.md rule 7);
//   - a checkpoint of a source event does not send it back to the queue at
//     once: the event stays running (pending list, off the deadline heap,
//     Complete/Checkpoint refused) in the saving state while its checkpoint
//     waits in srcSaves for the source, which persists it and then calls
//     SourceCheckpointSaved: queued again if the write held its lease,
//     ended as cancelled (write no result) if the lease was lost. So a
//     worker never runs from a checkpoint that is not yet durable, and
//     tasker_checkpoint never waits for the database. At the drain deadline
//     a saving event is cancelled like any running one; its checkpoint is
//     still handed over first (TakeSourceWork returns checkpoints before
//     completions), so the source persists it before releasing the lease.

// FeedSource queues ev as a source event for a worker of the given kind,
// without waiting: ErrFull when the dispatch queue is full, ErrShutdown once
// shutdown began, ErrInvalid/ErrTooBig for a bad event (nothing queued).
// EventID and the other defaults are filled in as by Enqueue. Call
// SourceRoom first: feeding only what it allows keeps rule 6 of docs/QUEUE.md.
func (c *Channel) FeedSource(ev Event, kind Kind) (uuid.UUID, error) {
	if err := validateEvent(&ev, c.cfg.MaxPayloadBytes); err != nil {
		c.RecordRejected()
		return uuid.Nil, err
	}
	if ev.Checkpoint != nil {
		cp := *ev.Checkpoint
		if err := ValidateCheckpoint(&cp, c.cfg.MaxPayloadBytes); err != nil {
			c.RecordRejected()
			return uuid.Nil, err
		}
		if cp.Count < 0 {
			c.RecordRejected()
			return uuid.Nil, invalidf("checkpoint: count = %d must be >= 0", cp.Count)
		}
		ev.Checkpoint = &cp
	}
	return c.enqueueAs(context.Background(), ev, kind, 0, true)
}

// SourceCheckpoint is a checkpoint of a source event for its source to
// persist (TakeSourceWork); Checkpoint.Count is the event's count so far.
type SourceCheckpoint struct {
	EventID    uuid.UUID
	Checkpoint Checkpoint
}

// SourceWork is what TakeSourceWork hands a source: checkpoints to persist
// (each followed by one SourceCheckpointSaved) and completions to write,
// each in the order they happened. Persist the checkpoints first: a
// completion in the same batch may be the cancellation of a checkpointed
// event.
type SourceWork struct {
	Checkpoints []SourceCheckpoint
	Completions []Completion
}

// holdForSourceLocked puts a checkpointed source event e in the saving
// state and hands cp to the source (mu held).
func (c *Channel) holdForSourceLocked(e *entry, cp Checkpoint) {
	if e.heapIdx >= 0 {
		c.timeouts.remove(e) // the worker gave it up: no deadline while saving
	}
	e.saving = true
	c.srcSaves.push(SourceCheckpoint{EventID: e.ev.EventID, Checkpoint: cp})
	c.kickLocked()
}

// SourceCheckpointSaved ends the saving state of a checkpointed source
// event: held true (the source persisted the checkpoint under its lease)
// queues it again, at the end of its queue, without a room check (it kept
// its place, like any checkpoint); held false (the lease was lost: another
// reader owns the message now) ends it as cancelled, which tells the source
// to write nothing. ErrNotPending when the event is not saving (it was
// cancelled at the drain deadline meanwhile, or is unknown). Never waits.
func (c *Channel) SourceCheckpointSaved(id uuid.UUID, held bool) error {
	c.mu.Lock()
	defer c.unlock()
	e := c.live.get(id)
	if e == nil || !e.saving {
		return fmt.Errorf("%w: source event %s is not waiting for its checkpoint to be saved", ErrNotPending, id)
	}
	e.saving = false
	if !held {
		c.endLocked(e, StatusCancelled, Result{Error: &ErrorInfo{
			Message:   "the source lost the lease of the message while saving a checkpoint: another worker has it",
			ErrorType: ErrorTypeShutdown,
			Retryable: true,
		}}, true)
		c.kickLocked()
		return nil
	}
	c.requeueLocked(e)
	return nil
}

// TakeSourceWork is TakeSourceCompletions for a source that also persists
// checkpoints: it returns, waiting up to timeout for the first, the
// checkpoints waiting to be persisted and up to max completions. ErrEmpty
// when nothing came in time; ErrClosed once shutdown began, every source
// event has ended and everything was taken. A source uses either this or
// TakeSourceCompletions, not both.
func (c *Channel) TakeSourceWork(ctx context.Context, max int, timeout time.Duration) (SourceWork, error) {
	if max < 1 {
		return SourceWork{}, invalidf("take source work: max must be >= 1, got %d", max)
	}
	w := newWait(ctx, timeout)
	defer w.stop()
	c.mu.Lock()
	defer c.unlock()
	for {
		var out SourceWork
		if n := c.srcSaves.len(); n > 0 {
			out.Checkpoints = make([]SourceCheckpoint, n)
			for i := range out.Checkpoints {
				out.Checkpoints[i] = c.srcSaves.pop()
			}
		}
		if n := min(max, c.srcDone.len()); n > 0 {
			out.Completions = make([]Completion, n)
			for i := range out.Completions {
				out.Completions[i] = c.srcDone.pop()
			}
			c.st.SourceHanded += uint64(n)
			c.kickLocked() // room freed
		}
		if out.Checkpoints != nil || out.Completions != nil {
			return out, nil
		}
		if c.closing && c.srcLive == 0 {
			return SourceWork{}, c.fail(&w, fmt.Errorf("%w: every source event has ended and was taken", ErrClosed))
		}
		if !w.canWait() {
			return SourceWork{}, c.fail(&w, ErrEmpty)
		}
		c.park(&c.waitSource, &w)
	}
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
	if c.waitSource.len() == 0 && c.srcWake == nil {
		return // no source: small enough to inline, so every kick skips the call
	}
	c.kickSourceSlowLocked()
}

// kickSourceSlowLocked is kickSourceLocked for a channel with a source or a
// waiter for one.
func (c *Channel) kickSourceSlowLocked() {
	if c.waitSource.len() > 0 {
		if c.srcSaves.len() > 0 {
			c.waitSource.broadcast() // a TakeSourceCompletions waiter would not take it
		} else if c.srcDone.len() > 0 {
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
