// Package postgres is the PostgreSQL queue source of docs/QUEUE.md: it reads
// step messages from <schema>.q_<queue> with a lease, feeds them to a
// channel through a Link, heartbeats the leases of the events it holds,
// and writes each completion back as one result in the same transaction
// that moves the message to <schema>.a_<queue>.
//
// Goroutines of one running Source (all started and ended by Run):
//   - the reader (Run's own goroutine): waits for room in the channel, then
//     for a notification or the poll interval, reads at most that much;
//   - the listener: LISTEN on "<schema>.q_<queue>.INSERT" on its own
//     connection, reconnecting with backoff, waking the reader;
//   - the heartbeater: every heartbeat_ms extends the vt of every lease held;
//   - the writer: takes the completions of the source's events from the
//     Link and acks (or, for events unfinished at the drain deadline,
//     releases) them, retrying with backoff while the database is away;
//     it also takes the checkpoints of its events, writes each into its
//     message under the lease (Store.Checkpoint), and only then tells the
//     Link (CheckpointSaved) to queue the event again, or, the lease lost,
//     to end it without a result.
//
// Invariant: a message read by this source is in exactly one of these
// places until it is retired, released or its lease is known lost:
// s.leases (held: queued, running, or ended and not yet written) and, when
// a write failed, s.retry. Nothing is dropped; a write that cannot be done
// before Run gives up at shutdown leaves the message to come back when its
// vt passes (at least once), and never writes a second result.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/wire"
	"github.com/tasker-systems/libtasker/runtime"
)

func init() {
	runtime.RegisterSource("postgres", func(doc []byte) (runtime.Source, error) {
		cfg, err := ParseConfig(doc)
		if err != nil {
			return nil, err
		}
		return New(cfg)
	})
	runtime.RegisterSourceKeys("postgres", knownKeys)
}

// Link is what the source needs from the dispatcher it feeds (see
// runtime.Source for the contract); *runtime.SourceLink implements it.
type Link interface {
	// MaxPayloadBytes is the channel's max_payload_bytes: a bigger message
	// is invalid.
	MaxPayloadBytes() int
	// Room is how many more events the source may feed now: the smaller of
	// the dispatch queue's free room and the handler slots not already
	// claimed by running or queued events (docs/QUEUE.md rule 6).
	Room() int
	// RoomChanged is signalled (non-blocking, capacity 1) whenever Room may
	// have grown.
	RoomChanged() <-chan struct{}
	// Feed queues ev without waiting. ev.EventID is set by the caller and
	// unique. Errors: channel.ErrFull (no room after all),
	// channel.ErrShutdown, channel.ErrInvalid / ErrTooBig (a bad event).
	Feed(ev channel.Event) error
	// Work takes the checkpoints of the source's events waiting to be
	// persisted and up to max completions, waiting up to timeout (< 0: no
	// limit) for the first. channel.ErrEmpty when nothing came in time;
	// channel.ErrClosed once shutdown began, every source event has ended
	// and all were taken. A completion with status cancelled is an event
	// still queued or running at the drain deadline (or whose lease a
	// checkpoint found lost): release it, write no result.
	Work(ctx context.Context, max int, timeout time.Duration) (channel.SourceWork, error)
	// CheckpointSaved answers one checkpoint handed out by Work: held
	// queues the event again, !held ends it as cancelled. Never waits.
	CheckpointSaved(id uuid.UUID, held bool) error
}

// Stats are the source_* keys of tasker_stats (docs/QUEUE.md rule 9).
type Stats = runtime.SourceStats

var _ runtime.Source = (*Source)(nil)

// Source states.
const (
	StateConnecting   = "connecting"
	StateConnected    = "connected"
	StateReconnecting = "reconnecting"
	StateStopped      = "stopped"
)

// lease is one message held by this source.
type lease struct {
	Lease
	lost bool // a heartbeat found it taken by a later read
	// gone: a checkpoint write found the lease lost (counted in
	// source_lease_lost then); the event's completion writes nothing.
	gone bool
}

// Source is one PostgreSQL queue source. Make it with New, run it once with
// Run. Stats may be called at any time from any goroutine.
type Source struct {
	cfg Config
	// CloseTimeout bounds how long Run keeps retrying writes (acks,
	// releases) after the last event ended at shutdown (default 10s).
	CloseTimeout time.Duration

	state                                         atomic.Value // string
	read, acked, released, leaseLost, dead, beats atomic.Uint64
	errs                                          atomic.Uint64
	lastErr                                       atomic.Pointer[string]

	wake     chan struct{} // notification or reconnect: read now
	maxBytes int           // the channel's max_payload_bytes (set by Run)
	link     Link          // set by Run before any goroutine starts

	mu     sync.Mutex
	leases map[uuid.UUID]*lease
	retry  []pendingWrite // writes that failed, oldest first
}

type writeKind uint8

// The kinds of writes, in the order flush performs them: checkpoints
// first, so that a checkpointed event cancelled at the drain deadline has
// its progress saved before its lease is released.
const (
	writeCheckpoint writeKind = iota
	writeAck
	writeRelease
	writeDead
	nWriteKinds
)

type pendingWrite struct {
	kind    writeKind
	ev      uuid.UUID // held lease key (zero for dead letters: never in leases)
	ack     DeadLetter
	cp      []byte // writeCheckpoint: the checkpoint object
	retried bool   // a write of it failed before: on "not found", look in the archive
}

// New makes a source from a validated config. It does not connect.
func New(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, CloseTimeout: 10 * time.Second, wake: make(chan struct{}, 1), leases: map[uuid.UUID]*lease{}}
	s.state.Store(StateConnecting)
	return s, nil
}

// Config returns the source's config (defaults filled in).
func (s *Source) Config() Config { return s.cfg }

// Stats returns a snapshot of the source's counters.
func (s *Source) Stats() Stats {
	return Stats{
		State:        s.state.Load().(string),
		Read:         s.read.Load(),
		Acked:        s.acked.Load(),
		Released:     s.released.Load(),
		LeaseLost:    s.leaseLost.Load(),
		DeadLettered: s.dead.Load(),
		Heartbeats:   s.beats.Load(),
		Errors:       s.errs.Load(),
		LastError:    s.lastErr.Load(),
	}
}

func (s *Source) fail(err error) {
	s.errs.Add(1)
	msg := err.Error()
	s.lastErr.Store(&msg)
}

func (s *Source) setState(st string) {
	if s.state.Load().(string) != StateStopped {
		s.state.Store(st)
	}
}

func (s *Source) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// backoff is exponential from 50ms to 5s with jitter.
type backoff struct{ n int }

func (b *backoff) next() time.Duration {
	d := 50 * time.Millisecond << min(b.n, 7)
	b.n++
	d = min(d, 5*time.Second)
	return d/2 + rand.N(d/2+1)
}
func (b *backoff) reset() { b.n = 0 }

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Run runs the source until reading stops (stop is done: shutdown began)
// and every event it fed has ended and been written (acked or released),
// or CloseTimeout after the last one ended if the database stays away.
// The dispatcher calls it once, in its own goroutine (runtime.Source).
func (s *Source) Run(stop context.Context, link *runtime.SourceLink) { s.run(stop, link) }

func (s *Source) run(stop context.Context, link Link) {
	defer s.state.Store(StateStopped)
	s.maxBytes = link.MaxPayloadBytes()
	s.link = link
	poolCfg, err := pgxpool.ParseConfig(s.cfg.DSN)
	if err != nil { // Validate parsed it already
		s.fail(fmt.Errorf("dsn: %w", err))
		return
	}
	poolCfg.MaxConns = 4
	poolCfg.MinConns = 0
	// every connection gives up on a dead server within a few seconds
	if poolCfg.ConnConfig.ConnectTimeout == 0 || poolCfg.ConnConfig.ConnectTimeout > 5*time.Second {
		poolCfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), poolCfg) // lazy: does not connect
	if err != nil {
		s.fail(fmt.Errorf("dsn: %w", err))
		return
	}
	defer pool.Close()
	store := NewStore(pool, s.cfg)

	// background work lives until the writer is done
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	var wg sync.WaitGroup
	ready := make(chan struct{})
	wg.Add(3)
	go func() { defer wg.Done(); s.listen(bg, stop, poolCfg.ConnConfig) }()
	go func() { defer wg.Done(); s.heartbeat(bg, ready, store) }()
	writerDone := make(chan struct{})
	go func() { defer wg.Done(); defer close(writerDone); s.write(bg, ready, store, link) }()

	if s.prepare(stop, store) {
		close(ready)
		s.readLoop(stop, store, link)
	} else {
		close(ready) // nothing was read: the writer ends at once
	}
	<-writerDone
	stopBG()
	wg.Wait()
}

// prepare connects and makes sure the queues exist, retrying with backoff
// until it works or stop is done.
func (s *Source) prepare(stop context.Context, store *Store) bool {
	var b backoff
	for stop.Err() == nil {
		ctx, cancel := context.WithTimeout(stop, 30*time.Second)
		err := store.Prepare(ctx)
		cancel()
		if err == nil {
			s.setState(StateConnected)
			return true
		}
		if stop.Err() != nil {
			return false
		}
		s.fail(err)
		if s.state.Load().(string) != StateConnecting {
			s.setState(StateReconnecting)
		}
		sleep(stop, b.next())
	}
	return false
}

// readLoop is the reader. It reads only when the channel has room, and at
// most that much; after a read that did not fill its batch it waits for a
// notification or the poll interval.
func (s *Source) readLoop(stop context.Context, store *Store, link Link) {
	var b backoff
	backlog := false // the last read filled its batch: more messages are waiting
	poll := time.NewTimer(0)
	defer poll.Stop()
	for stop.Err() == nil {
		room := link.Room()
		if room <= 0 {
			select {
			case <-stop.Done():
				return
			case <-link.RoomChanged():
			}
			if backlog {
				s.gatherRoom(stop, link, s.cfg.BatchSize)
			}
			continue
		}
		n := min(room, s.cfg.BatchSize)
		// not cancelled by stop: a read cut off mid-way may have taken
		// leases that nobody would then hold until their vt passed
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		msgs, err := store.Read(ctx, n)
		cancel()
		if err != nil {
			if stop.Err() != nil {
				return
			}
			s.fail(err)
			s.setState(StateReconnecting)
			sleep(stop, b.next())
			continue
		}
		b.reset()
		s.setState(StateConnected)
		s.read.Add(uint64(len(msgs)))
		s.take(stop, store, link, msgs)
		if backlog = len(msgs) == n; backlog {
			continue // there may be more: read again as soon as there is room
		}
		if !poll.Stop() {
			select {
			case <-poll.C:
			default:
			}
		}
		poll.Reset(s.cfg.pollEvery())
		select {
		case <-stop.Done():
			return
		case <-s.wake:
		case <-poll.C:
		}
	}
}

// gatherRoom lets room grow for a moment before the next read while a
// backlog is waiting: under load room comes back one completion at a time,
// and reading one message per statement would cost a round trip each. It
// waits at most gatherWait, or until room reaches want (batch_size: a
// smaller target measured 3-4 times slower with 16 slots and batch 20).
func (s *Source) gatherRoom(stop context.Context, link Link, want int) {
	t := time.NewTimer(gatherWait)
	defer t.Stop()
	for link.Room() < want {
		select {
		case <-stop.Done():
			return
		case <-t.C:
			return
		case <-link.RoomChanged():
		}
	}
}

// gatherWait is how long a reader with a backlog waits for room to grow.
const gatherWait = 2 * time.Millisecond

// take turns read messages into events, dead letters and releases.
func (s *Source) take(stop context.Context, store *Store, link Link, msgs []Message) {
	var dead []DeadLetter
	var release []pendingWrite
	for i := range msgs {
		m := &msgs[i]
		if int(m.ReadCt) > s.cfg.MaxAttempts {
			reason := fmt.Sprintf("message %d of queue %s was read %d times, more than max_attempts (%d): not dispatched again",
				m.MsgID, s.cfg.Queue, m.ReadCt, s.cfg.MaxAttempts)
			dead = append(dead, DeadLetter{Ack: Ack{Lease: m.Lease, Result: PoisonResult(s.cfg.Queue, m, ErrorTypeMaxAttemptsExceeded, reason)},
				ErrorType: ErrorTypeMaxAttemptsExceeded, Reason: reason})
			continue
		}
		ev, err := s.event(m)
		if err == nil {
			s.mu.Lock()
			s.leases[ev.EventID] = &lease{Lease: m.Lease}
			s.mu.Unlock()
			err = link.Feed(ev)
			if err == nil {
				continue
			}
			s.mu.Lock()
			delete(s.leases, ev.EventID)
			s.mu.Unlock()
			if errors.Is(err, channel.ErrFull) || errors.Is(err, channel.ErrShutdown) {
				release = append(release, pendingWrite{kind: writeRelease, ack: DeadLetter{Ack: Ack{Lease: m.Lease}}})
				continue
			}
		}
		reason := fmt.Sprintf("message %d of queue %s is not a valid dispatch document: %v", m.MsgID, s.cfg.Queue, err)
		dead = append(dead, DeadLetter{Ack: Ack{Lease: m.Lease, Result: PoisonResult(s.cfg.Queue, m, ErrorTypeInvalidMessage, reason)},
			ErrorType: ErrorTypeInvalidMessage, Reason: reason})
	}
	var writes []pendingWrite
	for _, d := range dead {
		writes = append(writes, pendingWrite{kind: writeDead, ack: d})
	}
	writes = append(writes, release...)
	if len(writes) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s.flush(ctx, store, writes)
		cancel()
	}
}

// event parses a message into the event to dispatch: a fresh event_id for
// each lease (docs/QUEUE.md, "A step message").
func (s *Source) event(m *Message) (channel.Event, error) {
	if m.Body == nil {
		return channel.Event{}, fmt.Errorf("%w: the message is SQL NULL", channel.ErrInvalid)
	}
	ev, err := wire.ParseDispatch(m.Body, s.maxBytes)
	if err != nil {
		return ev, err
	}
	if m.Checkpoint != nil {
		cp, err := wire.ParseSourceCheckpoint(m.Checkpoint, s.maxBytes)
		if err != nil {
			return channel.Event{}, err
		}
		ev.Checkpoint = &cp
	}
	ev.EventID = uuid.Must(uuid.NewV7())
	return ev, nil
}

// flush performs writes, grouped by kind; what fails is queued for retry by
// the writer goroutine.
func (s *Source) flush(ctx context.Context, store *Store, ws []pendingWrite) (failed bool) {
	var groups [nWriteKinds][]pendingWrite
	for _, w := range ws {
		groups[w.kind] = append(groups[w.kind], w)
	}
	for kind, g := range groups {
		if len(g) == 0 {
			continue
		}
		var done map[int64]bool
		var err error
		switch writeKind(kind) {
		case writeCheckpoint:
			cps := make([]SavedCheckpoint, len(g))
			for i := range g {
				cps[i] = SavedCheckpoint{Lease: g[i].ack.Lease, Checkpoint: g[i].cp}
			}
			done, err = store.Checkpoint(ctx, cps)
		case writeAck:
			acks := make([]Ack, len(g))
			for i := range g {
				acks[i] = g[i].ack.Ack
			}
			done, err = store.Ack(ctx, acks)
		case writeRelease:
			ls := make([]Lease, len(g))
			for i := range g {
				ls[i] = g[i].ack.Lease
			}
			done, err = store.Release(ctx, ls)
		case writeDead:
			ds := make([]DeadLetter, len(g))
			for i := range g {
				ds[i] = g[i].ack
			}
			done, err = store.DeadLetter(ctx, ds)
		}
		if err != nil {
			s.fail(err)
			failed = true
			s.mu.Lock()
			for i := range g {
				g[i].retried = true
			}
			s.retry = append(s.retry, g...)
			s.mu.Unlock()
			continue
		}
		// A write retried after an error may have committed the first time
		// (the connection dropped before the answer): look in the archive.
		if writeKind(kind) == writeCheckpoint {
			s.checkpointsSaved(g, done)
			continue
		}
		var archived map[int64]bool
		if writeKind(kind) != writeRelease {
			var again []Lease
			for _, w := range g {
				if !done[w.ack.MsgID] && w.retried {
					again = append(again, w.ack.Lease)
				}
			}
			if len(again) > 0 {
				archived, _ = store.Archived(ctx, again)
			}
		}
		for _, w := range g {
			ok := done[w.ack.MsgID] || archived[w.ack.MsgID]
			switch {
			case !ok:
				s.leaseLost.Add(1)
			case writeKind(kind) == writeAck:
				s.acked.Add(1)
			case writeKind(kind) == writeRelease:
				s.released.Add(1)
			default:
				s.dead.Add(1)
			}
			if w.ev != uuid.Nil {
				s.mu.Lock()
				delete(s.leases, w.ev)
				s.mu.Unlock()
			}
		}
	}
	return failed
}

// checkpointsSaved answers the checkpoints of g, written where done says:
// the event goes back to the queue, or, its lease lost, ends (cancelled)
// with its lease marked gone so that its completion writes nothing.
func (s *Source) checkpointsSaved(g []pendingWrite, done map[int64]bool) {
	for _, w := range g {
		held := done[w.ack.MsgID]
		if !held {
			s.leaseLost.Add(1)
			s.mu.Lock()
			if l := s.leases[w.ev]; l != nil {
				l.gone = true
			}
			s.mu.Unlock()
		}
		// ErrNotPending: cancelled at the drain deadline meanwhile; its
		// completion (a release) follows
		_ = s.link.CheckpointSaved(w.ev, held)
	}
}

// write is the writer: it takes the completions of the source's events and
// acks or releases them, retrying failed writes with backoff, until the
// Link reports every source event ended and taken and nothing is left to
// retry (or CloseTimeout passed since then).
func (s *Source) write(bg context.Context, ready <-chan struct{}, store *Store, link Link) {
	<-ready
	var b backoff
	var closedAt time.Time // when the link reported every source event ended and taken
	buf := make([]pendingWrite, 0, 64)
	for {
		if closedAt.IsZero() {
			// Wait for completions, at most a second so that writes the
			// reader queued for retry get their turn; not at all while
			// writes are failing (the backoff below is the wait).
			timeout := time.Second
			s.mu.Lock()
			if len(s.retry) > 0 {
				timeout = 0
			}
			s.mu.Unlock()
			if s.takeCompletions(link, &buf, timeout) {
				closedAt = time.Now()
			}
		}
		s.mu.Lock()
		work := append(s.retry, buf...)
		s.retry = nil
		s.mu.Unlock()
		buf = buf[:0]
		if len(work) > 0 {
			ctx, cancel := context.WithTimeout(bg, 30*time.Second)
			failed := s.flush(ctx, store, work) // what fails is back in s.retry
			cancel()
			if failed {
				s.setState(StateReconnecting)
				if !closedAt.IsZero() && time.Since(closedAt) > s.CloseTimeout {
					s.mu.Lock()
					n := len(s.retry)
					s.mu.Unlock()
					s.fail(fmt.Errorf("shutdown: gave up writing %d results/releases after %v: those messages come back when their vt passes",
						n, s.CloseTimeout))
					return
				}
				wait := b.next()
				if !closedAt.IsZero() {
					wait = min(wait, max(s.CloseTimeout-time.Since(closedAt), 0)+time.Millisecond)
				}
				if !sleep(bg, wait) {
					return
				}
				continue
			}
			b.reset()
		}
		if !closedAt.IsZero() {
			s.mu.Lock()
			n := len(s.retry)
			s.mu.Unlock()
			if n == 0 {
				return
			}
		}
	}
}

// takeCompletions waits up to timeout for completions of the source's
// events and turns them into writes in *buf. It reports whether the Link
// is closed (every source event ended and was taken).
func (s *Source) takeCompletions(link Link, buf *[]pendingWrite, timeout time.Duration) (closed bool) {
	work, err := link.Work(context.Background(), 256, timeout)
	if errors.Is(err, channel.ErrClosed) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range work.Checkpoints {
		sc := &work.Checkpoints[i]
		l := s.leases[sc.EventID]
		if l == nil { // cannot happen: the event is running, its lease held
			s.errs.Add(1)
			msg := fmt.Sprintf("internal: checkpoint for unknown source event %s", sc.EventID)
			s.lastErr.Store(&msg)
			continue
		}
		*buf = append(*buf, pendingWrite{kind: writeCheckpoint, ev: sc.EventID, ack: DeadLetter{Ack: Ack{Lease: l.Lease}},
			cp: wire.AppendCheckpointJSON(nil, &sc.Checkpoint)})
	}
	cs := work.Completions
	for i := range cs {
		c := &cs[i]
		l := s.leases[c.EventID]
		if l != nil && l.gone { // lease lost at a checkpoint: nothing to write
			delete(s.leases, c.EventID)
			continue
		}
		if l == nil {
			// cannot happen: every fed event's lease is held until written
			s.errs.Add(1)
			msg := fmt.Sprintf("internal: completion for unknown source event %s", c.EventID)
			s.lastErr.Store(&msg)
			continue
		}
		w := pendingWrite{ev: c.EventID, ack: DeadLetter{Ack: Ack{Lease: l.Lease}}}
		if c.Status == channel.StatusCancelled {
			w.kind = writeRelease
		} else {
			w.kind = writeAck
			w.ack.Result = ResultFor(s.cfg.Queue, l.Lease, c)
		}
		*buf = append(*buf, w)
	}
	return false
}

// heartbeat extends every held lease every heartbeat_ms (docs/QUEUE.md rule 2).
// A lease it finds taken is marked lost: its ack will write nothing.
func (s *Source) heartbeat(bg context.Context, ready <-chan struct{}, store *Store) {
	select {
	case <-ready:
	case <-bg.Done():
		return
	}
	t := time.NewTicker(s.cfg.heartbeat())
	defer t.Stop()
	for {
		select {
		case <-bg.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		ls := make([]Lease, 0, len(s.leases))
		keys := make([]uuid.UUID, 0, len(s.leases))
		for k, l := range s.leases {
			if !l.lost {
				ls = append(ls, l.Lease)
				keys = append(keys, k)
			}
		}
		s.mu.Unlock()
		if len(ls) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(bg, s.cfg.heartbeat())
		held, err := store.Heartbeat(ctx, ls)
		cancel()
		if err != nil {
			if bg.Err() == nil {
				s.fail(err)
			}
			continue
		}
		s.beats.Add(1)
		s.mu.Lock()
		for _, k := range keys {
			if l := s.leases[k]; l != nil && !held[l.MsgID] {
				l.lost = true
			}
		}
		s.mu.Unlock()
	}
}

// listen keeps a LISTEN on the queue's notify channel, waking the reader on
// each notification and after each (re)connect (docs/QUEUE.md rule 8). It stops
// when reading stops.
func (s *Source) listen(bg, stop context.Context, cc *pgx.ConnConfig) {
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	go func() {
		select {
		case <-stop.Done():
		case <-ctx.Done():
		}
		cancel()
	}()
	var b backoff
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cc.Copy())
		if err == nil {
			_, err = conn.Exec(ctx, `LISTEN `+qident(NotifyChannel(s.cfg.Schema, s.cfg.Queue)))
		}
		if err == nil {
			b.reset()
			s.poke() // catch up on what was sent while not listening
			for err == nil {
				_, err = conn.WaitForNotification(ctx)
				if err == nil {
					s.poke()
				}
			}
		}
		if conn != nil {
			closeCtx, c2 := context.WithTimeout(context.Background(), time.Second)
			_ = conn.Close(closeCtx)
			c2()
		}
		if ctx.Err() != nil {
			return
		}
		s.fail(fmt.Errorf("listen on %q: %w", NotifyChannel(s.cfg.Schema, s.cfg.Queue), err))
		sleep(ctx, b.next())
	}
}

// Held returns how many messages this source holds a lease on (for tests
// and stats).
func (s *Source) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.leases)
}
