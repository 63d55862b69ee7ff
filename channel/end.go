package channel

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// endLocked ends e (queued or pending): removes it from every index and
// pushes its completion onto the stream. byReturn is false when a Go
// handler's goroutine is still running after its event ended. An FFI entry
// is recycled: the caller must not touch e afterwards.
func (c *Channel) endLocked(e *entry, status CompletionStatus, r Result, byReturn bool) {
	c.endAtLocked(e, status, r, byReturn, Now())
	c.live.del(e.ev.EventID)
	recycle(e)
}

// endAtLocked is endLocked with the completion time given, so that a batch
// of ends (cleanup, cancellation) reads the clock once. It leaves the
// entry in c.live: the caller deletes it, or rebuilds the index after a
// large batch (deleting 100,000 random keys one by one was most of a big
// cleanup's time).
func (c *Channel) endAtLocked(e *entry, status CompletionStatus, r Result, byReturn bool, now time.Time) {
	switch e.state {
	case statePending:
		c.unlinkPendingLocked(e)
		if e.kind == KindGo && !byReturn {
			e.overdue = true
			c.overdueGo++
		}
	case stateQueued:
		// the caller has popped it from its queue
	default:
		panic("channel: ending an event twice")
	}
	e.state = stateEnded
	comp := Completion{
		EventID:       e.ev.EventID,
		TaskUUID:      e.ev.TaskUUID,
		StepUUID:      e.ev.StepUUID,
		CorrelationID: e.ev.CorrelationID,
		TraceID:       e.ev.TraceID,
		SpanID:        e.ev.SpanID,
		Handler:       e.ev.Handler,
		Status:        status,
		Success:       r.Success,
		Result:        r.Result,
		Error:         r.Error,
		Metadata:      r.Metadata,
		DispatchedAt:  e.ev.DispatchedAt,
		PolledAt:      e.startedAt,
		CompletedAt:   now,
		Checkpoints:   e.checkpoints,
	}
	if e.src {
		c.srcLive--
		c.srcDone.push(comp)
	} else {
		c.stream.push(comp)
	}
	switch status {
	case StatusCompleted:
		c.st.Completed++
	case StatusFailed:
		c.st.Failed++
	case StatusTimeout:
		c.st.TimedOut++
	case StatusCancelled:
		c.st.Cancelled++
	}
	if c.hook != nil && !e.src {
		c.hook(c.stream.back())
	}
}

// notPendingLocked counts a late complete or checkpoint for id (entry e,
// nil when unknown) in late_completions and says why it is late.
func (c *Channel) notPendingLocked(id uuid.UUID, e *entry) error {
	c.st.LateCompletions++
	why := "unknown or already ended"
	switch {
	case e == nil:
	case e.saving:
		why = "checkpointed, waiting for its source to persist the checkpoint"
	case e.state == stateQueued && e.checkpoints > 0:
		why = "queued again after a checkpoint, waiting for its next poll"
	case e.state == stateQueued:
		why = "queued, never polled"
	default:
		why = "run by a Go handler"
	}
	return fmt.Errorf("%w: event %s is not pending (%s)", ErrNotPending, id, why)
}

// Complete ends a pending FFI event with the worker's result: completed when
// r.Success, failed otherwise. It never waits (room was reserved at poll). An
// invalid result is ErrInvalid and leaves the event pending. An event that is
// not pending (never polled, already ended, unknown, or run by a Go handler)
// is ErrNotPending and counts as a late completion; the first end stands.
func (c *Channel) Complete(id uuid.UUID, r Result) error {
	if err := ValidateResult(&r, c.cfg.MaxPayloadBytes); err != nil {
		return err
	}
	return c.complete(id, r)
}

// ResultParser decodes a result document into a Result. Like
// DispatchParser it must reject every document whose Result
// ValidateResult would reject. wire.ParseResult is the module's one.
type ResultParser func(doc []byte, maxBytes int) (Result, error)

// CompleteJSON parses a result document with parse and completes the event
// with it. A document that does not parse leaves the event pending.
func (c *Channel) CompleteJSON(id uuid.UUID, doc []byte, parse ResultParser) error {
	r, err := parse(doc, c.cfg.MaxPayloadBytes)
	if err != nil {
		return err
	}
	return c.complete(id, r)
}

// complete ends a pending FFI event with a validated result.
func (c *Channel) complete(id uuid.UUID, r Result) error {
	status := StatusCompleted
	if !r.Success {
		status = StatusFailed
	}
	c.mu.Lock()
	defer c.unlock()
	e := c.live.get(id)
	if e == nil || e.state != statePending || e.kind != KindFFI || e.saving {
		return c.notPendingLocked(id, e)
	}
	c.endLocked(e, status, r, true)
	c.kickLocked()
	return nil
}

// CleanupTimeouts ends every pending FFI event past its deadline with an
// ffi_timeout result and returns how many it ended. Never waits.
func (c *Channel) CleanupTimeouts() int {
	c.mu.Lock()
	defer c.unlock()
	wall := Now()
	now := wall.Sub(c.epoch)
	n := 0
	infos := map[int]*ErrorInfo{} // one (read-only) error per distinct timeout in this sweep
	var ended []*entry
	for len(c.timeouts) > 0 && c.timeouts[0].deadline <= int64(now) {
		e, _ := c.timeouts.min()
		info, ok := infos[e.ev.TimeoutMs]
		if !ok {
			info = &ErrorInfo{
				Message:   "no result within " + strconv.Itoa(e.ev.TimeoutMs) + " ms of poll (cleanup)",
				ErrorType: ErrorTypeFFITimeout,
				Retryable: true,
			}
			infos[e.ev.TimeoutMs] = info
		}
		c.endAtLocked(e, StatusTimeout, Result{Error: info}, true, wall)
		ended = append(ended, e)
		n++
	}
	c.unindexLocked(ended)
	if n > 0 {
		c.kickLocked()
	}
	return n
}

// unindexLocked removes ended entries from c.live (one by one for a few,
// by rebuilding the index from the survivors, the queued and pending
// entries, when most of it ended at once), then recycles the first
// recycleMax of them: the caller must not touch any afterwards.
func (c *Channel) unindexLocked(ended []*entry) {
	if len(ended) < 1024 || len(ended) < c.live.len()/2 {
		for _, e := range ended {
			c.live.del(e.ev.EventID)
		}
	} else {
		c.rebuildLiveLocked(c.live.len() - len(ended))
	}
	for _, e := range ended[:min(len(ended), recycleMax)] {
		recycle(e)
	}
}

// rebuildLiveLocked makes c.live anew from the queued and pending entries
// (about n of them), in a table sized for them.
func (c *Channel) rebuildLiveLocked(n int) {
	c.live.reset(n)
	for k := range c.queues {
		for i := 0; i < c.queues[k].len(); i++ {
			e := *c.queues[k].at(i)
			c.live.put(e.ev.EventID, e)
		}
	}
	for e := c.pendList.next; e != &c.pendList; e = e.next {
		c.live.put(e.ev.EventID, e)
	}
}

// ---- the completion stream ----

// NextCompletion takes the oldest completion from the stream. ErrEmpty when
// none arrived within timeout; ErrClosed once shutdown began, every event has
// ended and the stream is empty.
func (c *Channel) NextCompletion(ctx context.Context, timeout time.Duration) (Completion, error) {
	var comp Completion
	if err := c.NextCompletionInto(ctx, timeout, &comp); err != nil {
		return Completion{}, err
	}
	return comp, nil
}

// NextCompletionInto is NextCompletion storing the completion in *dst (left
// alone on an error): the C layer encodes it from there, with no copy of
// the completion on the way out.
func (c *Channel) NextCompletionInto(ctx context.Context, timeout time.Duration, dst *Completion) error {
	w := newWait(ctx, timeout)
	defer w.stop()
	c.mu.Lock()
	defer c.unlock()
	for {
		if c.stream.len() > 0 {
			c.stream.popInto(dst)
			c.st.Delivered++
			c.kickLocked() // room freed: a poller may start an event
			return nil
		}
		if c.closing && c.allEndedLocked() {
			return c.fail(&w, fmt.Errorf("%w: every event has ended and the stream is empty", ErrClosed))
		}
		if !w.canWait() {
			return c.fail(&w, ErrEmpty)
		}
		c.park(&c.waitNext, &w)
	}
}
