// Package channel is the FFI dispatch channel: the one place where the state
// of every event lives, under one mutex, so that the rules of ABI.md can be
// checked by reading one file.
//
// An event is queued (dispatched, not started), pending (polled by a worker
// or taken by a Go handler, not ended), or ended (its completion is in the
// stream or has been taken from it). Every transition happens under c.mu, and
// every ending pushes exactly one Completion onto the stream in the same
// critical section, which gives:
//
//   - exactly once (rule 1): an event ends only from the pending or queued
//     state, and ending removes it from both, so a second end finds nothing;
//   - order (rule 4): the stream's order is the order of the critical
//     sections that ended the events;
//   - bounds (rule 3): an event is started only while
//     running < MaxConcurrentHandlers and running+undelivered <
//     CompletionBufferSize, so the stream always has room for the completion
//     of every running event and Complete never waits (rule 2).
//
// Callers wait only in Enqueue, Poll, PollBatch, TakeGo, NextCompletion and
// Shutdown, and only as long as their timeout says. A timeout is a
// time.Duration: 0 never waits, > 0 waits at most that long, < 0 waits until
// the condition holds or the channel shuts down.
package channel

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Kind says who starts an event: a worker polling over FFI, or a Go handler.
type Kind uint8

// The two kinds of events. Each has its own FIFO queue; both share the
// dispatch bound and the running bound.
const (
	KindFFI Kind = iota
	KindGo
)

type entryState uint8

const (
	stateQueued entryState = iota
	statePending
	stateEnded
)

type entry struct {
	ev       Event
	kind     Kind
	state    entryState
	zombie   bool          // a Go handler still running after its event ended
	deadline time.Duration // since Channel.epoch; FFI pending only
	heapIdx  int
	// pending list links, in start order
	prev, next *entry
}

// Channel is the dispatch channel. All methods are safe for concurrent use.
type Channel struct {
	cfg   Config
	epoch time.Time

	mu       sync.Mutex
	queues   [2]deque[*entry]
	live     map[uuid.UUID]*entry // queued and pending events
	pendList entry                // sentinel of the pending list (start order)
	pendingN [2]int
	zombies  int
	timeouts deadlineHeap
	stream   deque[Completion]

	closing      bool
	drainForever bool
	drainAt      time.Time

	waitDispatch waitq
	waitTake     [2]waitq
	waitNext     waitq
	waitIdle     waitq

	hook  func(*Completion)
	st    Stats
	ready [2]readyWatch // readiness watchers (ready.go)
}

// New makes a channel with a validated config.
func New(cfg Config) (*Channel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Channel{
		cfg:   cfg,
		epoch: time.Now(),
		live:  make(map[uuid.UUID]*entry),
	}
	c.pendList.prev, c.pendList.next = &c.pendList, &c.pendList
	return c, nil
}

// Config returns the channel's config.
func (c *Channel) Config() Config { return c.cfg }

// SetEndHook installs fn, called under the channel's lock right after each
// completion is pushed onto the stream (so it runs after its completion is in
// the stream, in stream order). fn must not block and must not call back into
// the channel. Call before the channel is used.
func (c *Channel) SetEndHook(fn func(*Completion)) { c.hook = fn }

// ---- waiting ----

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

func (c *Channel) queuedLocked() int  { return c.queues[0].len() + c.queues[1].len() }
func (c *Channel) pendingLocked() int { return c.pendingN[0] + c.pendingN[1] }

// budgetLocked is how many more events may start now (rule 3).
func (c *Channel) budgetLocked() int {
	running := c.pendingLocked() + c.zombies
	return min(c.cfg.MaxConcurrentHandlers-running, c.cfg.CompletionBufferSize-running-c.stream.len())
}

func (c *Channel) allEndedLocked() bool { return c.queuedLocked() == 0 && c.pendingLocked() == 0 }

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
	c.notifyReadyLocked()
}

// ---- dispatch ----

// Enqueue queues ev for a worker of the given kind. EventID and
// CorrelationID are generated when zero, TimeoutMs defaults to
// handler_timeout_ms, DispatchedAt is set. It waits up to timeout for room
// in the dispatch queue; then ErrFull, with nothing queued. After shutdown
// began: ErrShutdown. A bad event is ErrInvalid or ErrTooBig and changes
// nothing. An explicit EventID that is queued or pending is ErrInvalid.
func (c *Channel) Enqueue(ctx context.Context, ev Event, kind Kind, timeout time.Duration) (uuid.UUID, error) {
	if err := validateEvent(&ev, c.cfg.MaxPayloadBytes); err != nil {
		c.recordRejectedInvalid()
		return uuid.Nil, err
	}
	return c.enqueue(ctx, ev, kind, timeout)
}

// EnqueueJSON parses a dispatch document (ParseDispatch, which checks
// everything Enqueue would) and queues it for the kind route chooses from
// its handler name. A document that does not parse queues nothing and
// counts in rejected_invalid.
func (c *Channel) EnqueueJSON(ctx context.Context, doc []byte, route func(handler string) Kind, timeout time.Duration) (uuid.UUID, error) {
	ev, err := ParseDispatch(doc, c.cfg.MaxPayloadBytes)
	if err != nil {
		c.recordRejectedInvalid()
		return uuid.Nil, err
	}
	return c.enqueue(ctx, ev, route(ev.Handler), timeout)
}

// enqueue queues a validated event.
func (c *Channel) enqueue(ctx context.Context, ev Event, kind Kind, timeout time.Duration) (uuid.UUID, error) {
	now := time.Now()
	if ev.EventID == uuid.Nil {
		ev.EventID = newIDAt(now)
	}
	if ev.CorrelationID == uuid.Nil {
		ev.CorrelationID = newIDAt(now)
	}
	if ev.TimeoutMs == 0 {
		ev.TimeoutMs = c.cfg.HandlerTimeoutMs
	}
	ev.PolledAt = time.Time{}
	e := &entry{ev: ev, kind: kind, heapIdx: -1}
	w := newWait(ctx, timeout)
	defer w.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.closing {
			return uuid.Nil, c.fail(&w, fmt.Errorf("%w: dispatch after shutdown began", ErrShutdown))
		}
		if _, dup := c.live[ev.EventID]; dup {
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
		now = time.Now() // it waited for room: dispatched now
	}
	e.ev.DispatchedAt = now
	c.queues[kind].push(e)
	c.live[ev.EventID] = e
	c.st.Dispatched++
	c.kickLocked()
	return ev.EventID, nil
}

// recordRejectedInvalid counts a dispatch rejected as invalid before it
// reached the queue.
func (c *Channel) recordRejectedInvalid() {
	c.mu.Lock()
	c.st.RejectedInvalid++
	c.mu.Unlock()
}

// ids makes UUIDv7s (RFC 9562): 48 bits of Unix milliseconds, then a 12-bit
// counter that keeps ids from one process strictly increasing within a
// millisecond (method 1 of section 6.2), then 62 random bits from a ChaCha8
// stream seeded from crypto/rand. It takes the time from the caller, so a
// dispatch reads the clock once for its timestamp and both of its ids: on
// some virtual machines a clock read costs more than the rest of Enqueue.
var ids = struct {
	sync.Mutex
	rng    *rand.ChaCha8
	lastMs int64
	seq    uint16
}{rng: newSeededChaCha8()}

func newSeededChaCha8() *rand.ChaCha8 {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		panic("channel: crypto/rand failed: " + err.Error())
	}
	return rand.NewChaCha8(seed)
}

// newIDAt returns a UUIDv7 for time now, greater than every id this process
// made before.
func newIDAt(now time.Time) uuid.UUID {
	ms := now.UnixMilli()
	ids.Lock()
	if ms > ids.lastMs {
		ids.lastMs, ids.seq = ms, uint16(ids.rng.Uint64()&0x1ff) // random start, room to count
	} else {
		ids.seq++
		if ids.seq > 0xfff { // counter exhausted: borrow the next millisecond
			ids.lastMs++
			ids.seq = 0
		}
	}
	ms, seq, r := ids.lastMs, ids.seq, ids.rng.Uint64()
	ids.Unlock()
	var u uuid.UUID
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = 0x70 | byte(seq>>8) // version 7
	u[7] = byte(seq)
	binary.BigEndian.PutUint64(u[8:], r)
	u[8] = 0x80 | u[8]&0x3f // variant 10
	return u
}

// ---- taking events ----

// take moves up to max events of kind k from the queue to pending, waiting
// only for the first. It returns ErrEmpty when nothing could be taken within
// the timeout (queue empty or a bound reached) and ErrClosed once shutdown
// began and the queue is empty.
func (c *Channel) take(ctx context.Context, k Kind, max int, timeout time.Duration, out []*entry) ([]*entry, error) {
	w := newWait(ctx, timeout)
	defer w.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		q := &c.queues[k]
		if q.len() > 0 {
			if n := min(max, q.len(), c.budgetLocked()); n > 0 {
				now := time.Now()
				since := now.Sub(c.epoch)
				for range n {
					e := q.pop()
					e.state = statePending
					e.ev.PolledAt = now
					// append to the pending list (start order)
					e.prev, e.next = c.pendList.prev, &c.pendList
					e.prev.next, c.pendList.prev = e, e
					c.pendingN[k]++
					if k == KindFFI {
						e.deadline = since + time.Duration(e.ev.TimeoutMs)*time.Millisecond
						c.timeouts.push(e)
						c.st.Polled++
					} else {
						c.st.StartedGo++
					}
					out = append(out, e)
				}
				// Room for the completions of every running event, reserved
				// now: ending an event (complete, cleanup) never allocates
				// a bigger stream.
				c.stream.reserve(c.pendingLocked() + c.zombies + c.stream.len())
				c.kickLocked()
				return out, nil
			}
		} else if c.closing {
			return nil, c.fail(&w, fmt.Errorf("%w: shutdown began and no queued event is left", ErrClosed))
		}
		if !w.canWait() {
			return nil, c.fail(&w, ErrEmpty)
		}
		c.park(&c.waitTake[k], &w)
	}
}

// Poll takes one event for an FFI worker: it becomes pending and its
// deadline (now + its timeout_ms) starts. ErrEmpty when none could be taken
// within timeout (the queue was empty or a bound of rule 3 was reached);
// ErrClosed once shutdown began and no queued event is left.
func (c *Channel) Poll(ctx context.Context, timeout time.Duration) (Event, error) {
	var one [1]*entry
	es, err := c.take(ctx, KindFFI, 1, timeout, one[:0])
	if err != nil {
		return Event{}, err
	}
	return es[0].ev, nil
}

// PollBatch takes up to max events (max >= 1), waiting only for the first.
func (c *Channel) PollBatch(ctx context.Context, max int, timeout time.Duration) ([]Event, error) {
	if max < 1 {
		return nil, invalidf("poll_batch: max must be >= 1, got %d", max)
	}
	es, err := c.take(ctx, KindFFI, max, timeout, make([]*entry, 0, min(max, 64)))
	if err != nil {
		return nil, err
	}
	evs := make([]Event, len(es))
	for i, e := range es {
		evs[i] = e.ev
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
	var one [1]*entry
	es, err := c.take(ctx, KindGo, 1, timeout, one[:0])
	if err != nil {
		return nil, err
	}
	return &GoTask{e: es[0]}, nil
}

// FinishGo ends a Go task's event with (status, r) if it is still pending.
// returned says whether the handler goroutine has returned: a handler that
// timed out ends its event now (returned=false) and keeps its running slot
// until it does return (then call FinishGo again with returned=true; the
// second result is discarded). It reports whether this call ended the event.
func (c *Channel) FinishGo(t *GoTask, status CompletionStatus, r Result, returned bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := t.e
	ended := false
	if e.state == statePending {
		c.endLocked(e, status, r, returned)
		ended = true
	} else if returned && e.zombie {
		e.zombie = false
		c.zombies--
	}
	c.kickLocked()
	return ended
}

// ---- ending events ----

// endLocked ends e (queued or pending): removes it from every index and
// pushes its completion onto the stream. byReturn is false when a Go
// handler's goroutine is still running after its event ended.
func (c *Channel) endLocked(e *entry, status CompletionStatus, r Result, byReturn bool) {
	c.endAtLocked(e, status, r, byReturn, time.Now())
	delete(c.live, e.ev.EventID)
}

// endAtLocked is endLocked with the completion time given, so that a batch
// of ends (cleanup, cancellation) reads the clock once. It leaves the
// entry in c.live: the caller deletes it, or rebuilds the index after a
// large batch (deleting 100,000 random keys one by one was most of a big
// cleanup's time).
func (c *Channel) endAtLocked(e *entry, status CompletionStatus, r Result, byReturn bool, now time.Time) {
	switch e.state {
	case statePending:
		e.prev.next, e.next.prev = e.next, e.prev
		e.prev, e.next = nil, nil
		c.pendingN[e.kind]--
		if e.heapIdx >= 0 {
			c.timeouts.remove(e)
		}
		if e.kind == KindGo && !byReturn {
			e.zombie = true
			c.zombies++
		}
	case stateQueued:
		// the caller has popped it from its queue
	default:
		panic("channel: ending an event twice")
	}
	e.state = stateEnded
	c.stream.push(Completion{
		EventID:       e.ev.EventID,
		TaskUUID:      e.ev.TaskUUID,
		StepUUID:      e.ev.StepUUID,
		CorrelationID: e.ev.CorrelationID,
		Handler:       e.ev.Handler,
		Status:        status,
		Success:       r.Success,
		Result:        r.Result,
		Error:         r.Error,
		Metadata:      r.Metadata,
		DispatchedAt:  e.ev.DispatchedAt,
		PolledAt:      e.ev.PolledAt,
		CompletedAt:   now,
	})
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
	if c.hook != nil {
		c.hook(c.stream.back())
	}
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

// CompleteJSON parses a result document (ParseResult, which checks
// everything Complete would) and completes the event with it. A document
// that does not parse leaves the event pending.
func (c *Channel) CompleteJSON(id uuid.UUID, doc []byte) error {
	r, err := ParseResult(doc, c.cfg.MaxPayloadBytes)
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
	defer c.mu.Unlock()
	e := c.live[id]
	if e == nil || e.state != statePending || e.kind != KindFFI {
		c.st.LateCompletions++
		why := "unknown or already ended"
		if e != nil && e.state == stateQueued {
			why = "queued, never polled"
		} else if e != nil {
			why = "run by a Go handler"
		}
		return fmt.Errorf("%w: event %s is not pending (%s)", ErrNotPending, id, why)
	}
	c.endLocked(e, status, r, true)
	c.kickLocked()
	return nil
}

// CleanupTimeouts ends every pending FFI event past its deadline with an
// ffi_timeout result and returns how many it ended. Never waits.
func (c *Channel) CleanupTimeouts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	wall := time.Now()
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

// unindexLocked removes ended entries from c.live: one by one for a few,
// by rebuilding the index from the survivors (queued and pending entries)
// when most of it ended at once.
func (c *Channel) unindexLocked(ended []*entry) {
	if len(ended) < 1024 || len(ended) < len(c.live)/2 {
		for _, e := range ended {
			delete(c.live, e.ev.EventID)
		}
		return
	}
	live := make(map[uuid.UUID]*entry, len(c.live)-len(ended))
	for k := range c.queues {
		for i := 0; i < c.queues[k].len(); i++ {
			e := *c.queues[k].at(i)
			live[e.ev.EventID] = e
		}
	}
	for e := c.pendList.next; e != &c.pendList; e = e.next {
		live[e.ev.EventID] = e
	}
	c.live = live
}

// ---- the completion stream ----

// NextCompletion takes the oldest completion from the stream. ErrEmpty when
// none arrived within timeout; ErrClosed once shutdown began, every event has
// ended and the stream is empty.
func (c *Channel) NextCompletion(ctx context.Context, timeout time.Duration) (Completion, error) {
	w := newWait(ctx, timeout)
	defer w.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.stream.len() > 0 {
			comp := c.stream.pop()
			c.st.Delivered++
			c.kickLocked() // room freed: a poller may start an event
			return comp, nil
		}
		if c.closing && c.allEndedLocked() {
			return Completion{}, c.fail(&w, fmt.Errorf("%w: every event has ended and the stream is empty", ErrClosed))
		}
		if !w.canWait() {
			return Completion{}, c.fail(&w, ErrEmpty)
		}
		c.park(&c.waitNext, &w)
	}
}

// ---- shutdown ----

// Shutdown stops intake at once (Enqueue returns ErrShutdown), lets workers
// poll queued events and complete pending ones until the drain deadline
// (now + drain; drain < 0: no deadline), then ends every event still queued
// or pending as cancelled. It returns once every event has ended. A later
// call may bring the deadline closer, never push it back. Idempotent; safe
// to call from several goroutines.
func (c *Channel) Shutdown(drain time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
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
	now := time.Now()
	queued, running := res("still queued"), res("still running")
	for k := range c.queues {
		for c.queues[k].len() > 0 {
			c.endAtLocked(c.queues[k].pop(), StatusCancelled, queued, false, now)
		}
	}
	for c.pendList.next != &c.pendList {
		c.endAtLocked(c.pendList.next, StatusCancelled, running, false, now)
	}
	clear(c.live) // nothing is queued or pending any more
}

// Closing reports whether shutdown has begun.
func (c *Channel) Closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// Discard drops every completion not yet taken (destroy does this after
// shutdown). Later NextCompletion calls return ErrClosed.
func (c *Channel) Discard() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.Discarded += uint64(c.stream.len())
	c.stream.clear()
	c.kickLocked()
}

// ---- stats ----

// Stats returns a consistent snapshot (ABI.md, "Stats").
func (c *Channel) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	s := c.st
	s.QueuedFFI, s.QueuedGo = c.queues[KindFFI].len(), c.queues[KindGo].len()
	s.Queued = s.QueuedFFI + s.QueuedGo
	s.PendingFFI, s.RunningGo = c.pendingN[KindFFI], c.pendingN[KindGo]
	s.Pending = s.PendingFFI + s.RunningGo
	s.OverdueGo = c.zombies
	s.Undelivered = c.stream.len()
	s.InFlight = s.Pending + s.OverdueGo + s.Undelivered
	s.MaxConcurrent = c.cfg.MaxConcurrentHandlers
	s.DispatchCap = c.cfg.DispatchBufferSize
	s.CompletionCap = c.cfg.CompletionBufferSize
	s.WorkerID = c.cfg.WorkerID
	thr := time.Duration(c.cfg.StarvationWarningThresholdMs) * time.Millisecond
	if e := c.pendList.next; e != &c.pendList {
		s.OldestPendingAgeMs = now.Sub(e.ev.PolledAt).Milliseconds()
		id := e.ev.EventID.String()
		s.OldestPendingEventID = &id
		for ; e != &c.pendList && now.Sub(e.ev.PolledAt) > thr; e = e.next {
			s.StarvingEventCount++
		}
	}
	for k := range c.queues {
		q := &c.queues[k]
		if q.len() == 0 {
			continue
		}
		s.OldestQueuedAgeMs = max(s.OldestQueuedAgeMs, now.Sub((*q.front()).ev.DispatchedAt).Milliseconds())
		for i := 0; i < q.len() && now.Sub((*q.at(i)).ev.DispatchedAt) > thr; i++ {
			s.StarvingEventCount++
		}
	}
	s.StarvationDetected = s.StarvingEventCount > 0
	switch {
	case !c.closing:
		s.State = "running"
	case !c.allEndedLocked():
		s.State = "draining"
	default:
		s.State = "closed"
	}
	return s
}
