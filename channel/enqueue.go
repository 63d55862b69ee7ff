package channel

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Enqueue queues ev for a worker of the given kind. EventID and
// CorrelationID are generated when zero, TimeoutMs defaults to
// handler_timeout_ms (completion_timeout_ms for KindFFI when that is set),
// DispatchedAt is set. It waits up to timeout for room
// in the dispatch queue; then ErrFull, with nothing queued. After shutdown
// began: ErrShutdown. A bad event is ErrInvalid or ErrTooBig and changes
// nothing. An explicit EventID that is queued or pending is ErrInvalid.
func (c *Channel) Enqueue(ctx context.Context, ev Event, kind Kind, timeout time.Duration) (uuid.UUID, error) {
	if err := validateEvent(&ev, c.cfg.MaxPayloadBytes); err != nil {
		c.RecordRejected()
		return uuid.Nil, err
	}
	return c.enqueueAs(ctx, ev, kind, timeout, false)
}

// DispatchParser decodes a dispatch document into *ev, the zero Event of the
// entry that will be queued. It must reject (with ErrInvalid or ErrTooBig)
// every document whose Event Enqueue's validation would reject: EnqueueJSON
// does not validate what it decodes a second time, and drops the entry of a
// rejected one. wire.ParseDispatchInto is the module's one.
type DispatchParser func(doc []byte, maxBytes int, ev *Event) error

// EnqueueJSON parses a dispatch document with parse (given
// max_payload_bytes) and queues the event for the kind route chooses from
// its handler name. Parsing and queueing happen in one call so that the
// parsed event goes straight in: a document that does not parse queues
// nothing and counts in rejected_invalid.
func (c *Channel) EnqueueJSON(ctx context.Context, doc []byte, parse DispatchParser, route func(handler string) Kind, timeout time.Duration) (uuid.UUID, error) {
	e := newEntry()
	if err := parse(doc, c.cfg.MaxPayloadBytes, &e.ev); err != nil {
		c.RecordRejected()
		recycle(e) // never queued: no one else has it
		return uuid.Nil, err
	}
	return c.enqueueEntry(ctx, e, route(e.ev.Handler), timeout, false)
}

// enqueueAs queues a validated event; src marks a source event (source.go).
func (c *Channel) enqueueAs(ctx context.Context, ev Event, kind Kind, timeout time.Duration, src bool) (uuid.UUID, error) {
	e := newEntry()
	e.ev = ev
	return c.enqueueEntry(ctx, e, kind, timeout, src)
}

// enqueueEntry queues e, a new entry holding a validated event (nothing
// else set but heapIdx = -1), for kind.
func (c *Channel) enqueueEntry(ctx context.Context, e *entry, kind Kind, timeout time.Duration, src bool) (uuid.UUID, error) {
	ev := &e.ev
	now := Now()
	if ev.TimeoutMs == 0 {
		ev.TimeoutMs = c.cfg.HandlerTimeoutMs
		if kind == KindFFI && c.cfg.CompletionTimeoutMs > 0 {
			ev.TimeoutMs = c.cfg.CompletionTimeoutMs
		}
	}
	ev.PolledAt = time.Time{}
	e.kind, e.src = kind, src
	if src && ev.Checkpoint != nil {
		e.checkpoints = ev.Checkpoint.Count // a resumed step: the count continues
	}
	w := newWait(ctx, timeout)
	defer w.stop()
	c.mu.Lock()
	defer c.unlock()
	if ev.EventID == uuid.Nil {
		ev.EventID = c.ids.next(now)
	}
	if ev.CorrelationID == uuid.Nil {
		ev.CorrelationID = c.ids.next(now)
	}
	for {
		if c.closing {
			return uuid.Nil, c.fail(&w, fmt.Errorf("%w: dispatch after shutdown began", ErrShutdown))
		}
		if c.live.get(ev.EventID) != nil {
			c.st.RejectedInvalid++
			return uuid.Nil, c.fail(&w, invalidf("event: event_id %s is already queued or pending", ev.EventID))
		}
		if c.queuedLocked() < c.cfg.DispatchBufferSize {
			break
		}
		if !w.canWait() {
			c.st.RejectedFull++
			return uuid.Nil, c.fail(&w, fmt.Errorf("%w: %d events queued (dispatch_buffer_size) for the whole wait of %v",
				ErrFull, c.cfg.DispatchBufferSize, timeout))
		}
		c.park(&c.waitDispatch, &w)
	}
	if w.parked {
		now = Now() // it waited for room: dispatched now
	}
	e.ev.DispatchedAt = now
	e.queuedAt = now
	c.queues[kind].push(e)
	c.live.put(ev.EventID, e)
	c.st.Dispatched++
	if src {
		c.srcLive++
		c.st.SourceFed++
		c.srcDone.reserve(c.srcLive + c.srcDone.len()) // ending never allocates
	}
	c.kickLocked()
	return ev.EventID, nil
}

// RecordRejected counts in rejected_invalid a dispatch its caller refused
// before the channel saw it: the C layer refuses a document longer than
// max_payload_bytes without reading it. Enqueue and EnqueueJSON count their
// own rejections (ErrInvalid and ErrTooBig alike).
func (c *Channel) RecordRejected() {
	c.mu.Lock()
	c.st.RejectedInvalid++
	c.unlock()
}
