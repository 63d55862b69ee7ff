// Package channel is the FFI dispatch channel: the one place where the state
// of every event lives, under one mutex, so that the rules of docs/ABI.md can be
// checked by reading one package. It knows Go values only: the JSON documents
// are internal/wire's, the C status codes internal/cabi's.
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
// Callers wait only in Enqueue (and EnqueueJSON), Poll, PollBatch, TakeGo,
// NextCompletion (and their Into/Append forms) and Shutdown, and only as long as their timeout says. A timeout is a
// time.Duration: 0 never waits, > 0 waits at most that long, < 0 waits until
// the condition holds or the channel shuts down.
package channel

import (
	"sync"
	"time"
)

// The files of this package, by concern:
//
//	channel.go   the Channel, its fields and who guards them; New
//	enqueue.go   dispatch: Enqueue, EnqueueJSON
//	take.go      starting events: Poll, PollInto, PollBatch, PollBatchAppend, TakeGo, FinishGo
//	end.go       ending events: Complete, CleanupTimeouts, NextCompletion, NextCompletionInto
//	checkpoint.go  sending a pending event back to its queue: Checkpoint
//	shutdown.go  Shutdown, cancellation at the drain deadline, Discard
//	source.go    events fed by a source and their completions (FeedSource, TakeSourceCompletions)
//	wait.go      parking callers and waking them (kickLocked)
//	ids.go       UUIDv7 event and correlation ids
//	clock.go     the timestamps (one clock read each)
//	entries.go   recycling the entries of ended FFI events
//	stats.go     the Stats snapshot
//	validate.go  the rules an Event or Result built in Go must meet
//	types.go     Event, Result, Completion, Config (config.go), errors (errors.go)
//	deque.go, heap.go, waitq.go: the containers, guarded by Channel.mu

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
	overdue  bool          // a Go handler still running after its event ended (see Channel.overdueGo)
	src      bool          // fed by a source: its completion goes to srcDone (source.go)
	deadline time.Duration // since Channel.epoch; FFI pending only
	heapIdx  int
	// queuedAt is when the event last entered its queue: its dispatch, or
	// its last checkpoint (so a queue's entries are in queuedAt order).
	queuedAt time.Time
	// startedAt is its first poll (zero until then); ev.PolledAt is the
	// current run's. checkpoints counts its checkpoints.
	startedAt   time.Time
	checkpoints int
	// saving: a source event checkpointed and waiting for its source to
	// persist the checkpoint (source.go). It stays on the pending list (it
	// keeps its running slot) but off the deadline heap, and Complete and
	// Checkpoint refuse it.
	saving bool
	// pending list links, in start order
	prev, next *entry
}

// Channel is the dispatch channel. All methods are safe for concurrent use.
//
// A Channel's fields fall in three groups: those fixed by New (read without
// the lock), the end hook (set once before use), and the state, which mu
// guards. Methods whose names end in Locked must be called with mu held.
type Channel struct {
	// Fixed by New, never changed after: read without the lock.
	cfg   Config
	epoch time.Time // origin of entry.deadline (a monotonic offset)

	// hook, when set, is called for every completion right after it is
	// pushed onto the stream, with mu held, in stream order (so it runs
	// after its completion is in the stream: rule 4). It must not block
	// and must not call the Channel. SetEndHook sets it before the Channel
	// is used; it never changes after.
	hook func(*Completion)

	// waker, when set, hears after each unlock which kind of zero-timeout
	// call would now return something (see SetWaker); wakerWaiting points
	// to the counts of OutsideWaiters, by Stream. SetWaker sets both before
	// the Channel is used; they never change after (the counts do).
	waker        func(events, completions, all bool)
	wakerWaiting [2]*uint32

	mu sync.Mutex // guards every field below

	// wakes collects, for waker, what the kicks of the current critical
	// section found (wake* bits); unlock hands them over and clears them.
	wakes uint8

	// Events. A queued or pending event is in live (by EventID) and in
	// exactly one of queues[kind] (queued) or the pending list (pending);
	// an ended event is in neither (its entry may linger in live for the
	// rest of one critical section: see endAtLocked).
	queues   [2]deque[*entry] // queued events per Kind, in dispatch order
	live     idIndex          // queued and pending events, by EventID
	pendList entry            // sentinel of the pending list, in start order
	pendingN [2]int           // pending events per Kind
	timeouts deadlineHeap     // pending FFI events by deadline
	// overdueGo counts Go handlers whose event has already ended (timeout
	// or cancellation) but whose goroutine has not returned: each still
	// holds a running slot of rule 3 until FinishGo(returned=true). Stats
	// reports it as OverdueGo (overdue_go_handlers).
	overdueGo int
	// stream holds the completions not yet taken by NextCompletion, in the
	// order their events ended. Room for the completion of every running
	// event is reserved when it starts, so ending never allocates.
	stream deque[Completion]

	// Shutdown: closing never returns to false; the drain deadline only
	// moves closer (drainForever: no deadline yet).
	closing      bool
	drainForever bool
	drainAt      time.Time

	// Parked callers, one queue per condition they wait for (kickLocked
	// wakes them).
	waitDispatch waitq    // Enqueue: room in the dispatch queue, or closing
	waitTake     [2]waitq // take, per Kind: a queued event and a running slot, or closing
	waitNext     waitq    // NextCompletion: a completion, or closed with every event ended
	waitIdle     waitq    // Shutdown: every event ended, or a new deadline
	waitSource   waitq    // TakeSourceCompletions: a source completion, or closed with every source event ended

	// Source events (source.go): srcLive counts those queued or pending;
	// srcDone holds the completions of ended ones until the source takes
	// them, with room reserved for every live one. srcWake is set once
	// before use (SetSourceWake), like hook.
	srcLive int
	srcDone deque[Completion]
	srcWake chan struct{}
	// srcSaves holds the checkpoints of source events in the saving state
	// until the source takes them (SourceCheckpointSaved ends that state).
	srcSaves deque[SourceCheckpoint]

	st Stats // the counters; Stats() adds the gauges to a copy

	ids idGen // makes the ids of events dispatched without them (ids.go)

	ready readyWatchers // readiness watchers (ready.go); its fields say what guards them
}

// New makes a channel with a validated config.
func New(cfg Config) (*Channel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := newSeededChaCha8()
	c := &Channel{
		cfg:   cfg,
		epoch: Now(),
		live:  newIDIndex(rng.Uint64(), rng.Uint64()),
		ids:   newIDGen(rng),
	}
	c.pendList.prev, c.pendList.next = &c.pendList, &c.pendList
	return c, nil
}

// Config returns the channel's config.
func (c *Channel) Config() Config { return c.cfg }

// SetEndHook installs fn as the end hook (see Channel.hook): called with the
// channel's lock held right after each completion is pushed onto the stream,
// in stream order. fn must not block and must not call back into the
// channel. Call before the channel is used.
func (c *Channel) SetEndHook(fn func(*Completion)) { c.hook = fn }

// ---- state predicates (mu held) ----

func (c *Channel) queuedLocked() int  { return c.queues[0].len() + c.queues[1].len() }
func (c *Channel) pendingLocked() int { return c.pendingN[0] + c.pendingN[1] }

// budgetLocked is how many more events may start now (rule 3).
func (c *Channel) budgetLocked() int {
	running := c.pendingLocked() + c.overdueGo
	return min(c.cfg.MaxConcurrentHandlers-running, c.cfg.CompletionBufferSize-running-c.stream.len()-c.srcDone.len())
}

func (c *Channel) allEndedLocked() bool { return c.queuedLocked() == 0 && c.pendingLocked() == 0 }
