package channel_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/channel"
	ts "github.com/tasker-systems/libtasker/internal/testsupport"
)

// fastID returns a random v4-shaped UUID without crypto/rand, which would
// dominate the stress test's CPU time.
func fastID(r *rand.Rand) uuid.UUID {
	var u uuid.UUID
	binary.LittleEndian.PutUint64(u[:8], r.Uint64())
	binary.LittleEndian.PutUint64(u[8:], r.Uint64())
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

type dispatched struct {
	id    uuid.UUID
	short bool // tiny timeout_ms: cleanup races complete
}

type completeOutcome struct {
	id      uuid.UUID
	success bool // the result we sent
	err     error
}

// TestRule1_ExactlyOnceStress: producers dispatch concurrently, 8 workers
// poll (Poll and PollBatch) and complete, a goroutine calls CleanupTimeouts
// in a loop while some events have 1-2 ms timeouts, a consumer takes
// completions, and a final Shutdown races all of them. Every dispatch that
// returned OK must produce exactly one completion, and the counters must add
// up. The scenario (stressScenario.run) records what every party saw; the
// checks below judge it.
func TestRule1_ExactlyOnceStress(t *testing.T) {
	target := 200_000
	if testing.Short() {
		target = 20_000
	}
	sc := newStressScenario(t, target)
	sc.run(t)
	sc.checkNoErrors(t)
	all := sc.checkExactlyOnce(t)
	byStatus := sc.checkFirstEndStands(t, all)
	sc.checkCounters(t, byStatus)
}

// stressScenario is one run of the exactly-once scenario: its channel, its
// parties' counters and everything they observed.
type stressScenario struct {
	c      *channel.Channel
	target int // accepted dispatches after which shutdown begins

	accepted, rejectedFull          atomic.Int64
	polled, late, invalid, bogusIDs atomic.Int64
	expired, shutdownAt             atomic.Int64
	shutdownOnce                    sync.Once
	shutdownDone                    chan struct{}

	prodOut     [][]dispatched      // per producer: the dispatches that returned OK
	pollOut     [][]completeOutcome // per poller: each event it completed, and how
	prodErr     []error
	pollErr     []error
	completions map[uuid.UUID]channel.Completion // what the consumer took
	dupes       int                              // completions for an id already taken
	consumerErr error
	elapsed     time.Duration
}

const (
	stressProducers = 3
	stressPollers   = 8
)

func newStressScenario(t *testing.T, target int) *stressScenario {
	return &stressScenario{
		c: newChan(t, func(cfg *channel.Config) {
			cfg.DispatchBufferSize = 512
			cfg.CompletionBufferSize = 256
			cfg.MaxConcurrentHandlers = 128
			cfg.HandlerTimeoutMs = 600_000
		}),
		target:       target,
		shutdownDone: make(chan struct{}),
		prodOut:      make([][]dispatched, stressProducers),
		prodErr:      make([]error, stressProducers),
		pollOut:      make([][]completeOutcome, stressPollers),
		pollErr:      make([]error, stressPollers),
		completions:  make(map[uuid.UUID]channel.Completion, target+target/10),
	}
}

// startShutdown begins the racing Shutdown once (at the target, or at the
// first error so that every party stops).
func (sc *stressScenario) startShutdown() {
	sc.shutdownOnce.Do(func() {
		sc.shutdownAt.Store(sc.accepted.Load())
		go func() {
			sc.c.Shutdown(5 * time.Millisecond)
			close(sc.shutdownDone)
		}()
	})
}

// run starts every party, waits for all of them and the shutdown, and
// returns once the consumer has seen the stream close.
func (sc *stressScenario) run(t *testing.T) {
	var wg sync.WaitGroup
	for p := range stressProducers {
		wg.Add(1)
		go func() { defer wg.Done(); sc.produce(p) }()
	}
	for w := range stressPollers {
		wg.Add(1)
		go func() { defer wg.Done(); sc.work(w) }()
	}
	stopCleanup := make(chan struct{})
	cleanupDone := make(chan struct{})
	go func() { defer close(cleanupDone); sc.cleanup(stopCleanup) }()
	consumerDone := make(chan struct{})
	go func() { defer close(consumerDone); sc.consume() }()

	start := time.Now()
	wg.Wait()
	ts.Recv(t, sc.shutdownDone, "Shutdown")
	ts.Recv(t, consumerDone, "the consumer")
	close(stopCleanup)
	<-cleanupDone
	sc.elapsed = time.Since(start)
	t.Logf("%d events dispatched in %v; shutdown began at %d; %d expired by cleanup; %d late completes",
		sc.accepted.Load(), sc.elapsed, sc.shutdownAt.Load(), sc.expired.Load(), sc.late.Load())
}

// produce dispatches until shutdown: mostly explicit ids, every 8th
// generated, every 8th with a 1-2 ms timeout.
func (sc *stressScenario) produce(p int) {
	rng := rand.New(rand.NewPCG(uint64(p), uint64(time.Now().UnixNano())))
	for i := 0; ; i++ {
		e := channel.Event{TaskUUID: fastID(rng), StepUUID: fastID(rng), Handler: "h"}
		if i%8 != 3 { // mostly explicit ids; every 8th is generated (UUIDv7)
			e.EventID, e.CorrelationID = fastID(rng), fastID(rng)
		}
		short := i%8 == 0
		if short {
			e.TimeoutMs = 1 + i%2
		}
		id, err := sc.c.Enqueue(bg, e, channel.KindFFI, 50*time.Millisecond)
		switch {
		case err == nil:
			sc.prodOut[p] = append(sc.prodOut[p], dispatched{id, short})
			if sc.accepted.Add(1) >= int64(sc.target) {
				sc.startShutdown()
			}
		case errors.Is(err, channel.ErrFull):
			sc.rejectedFull.Add(1)
		case errors.Is(err, channel.ErrShutdown):
			return
		default:
			sc.prodErr[p] = err
			sc.startShutdown()
			return
		}
	}
}

// work polls (even workers one at a time, odd ones in batches) and
// completes each event, sprinkling invalid results, completes for unknown
// ids and duplicate completes, until the channel is closed.
func (sc *stressScenario) work(w int) {
	fail := func(err error) { sc.pollErr[w] = err; sc.startShutdown() }
	n := 0
	handle := func(e channel.Event) bool {
		n++
		if n%97 == 0 { // an invalid result first: rejected, event stays pending
			if err := sc.c.Complete(e.EventID, channel.Result{}); !errors.Is(err, channel.ErrInvalid) {
				fail(fmt.Errorf("invalid result: got %v", err))
				return false
			}
			sc.invalid.Add(1)
		}
		if n%101 == 0 { // a complete for an id nobody dispatched
			if err := sc.c.Complete(uuid.New(), ok()); !errors.Is(err, channel.ErrNotPending) {
				fail(fmt.Errorf("bogus id: got %v", err))
				return false
			}
			sc.late.Add(1)
			sc.bogusIDs.Add(1)
		}
		success := e.EventID[15]%2 == 0
		r := ok()
		if !success {
			r = failed("nope")
		}
		err := sc.c.Complete(e.EventID, r)
		switch {
		case err == nil:
		case errors.Is(err, channel.ErrNotPending):
			sc.late.Add(1)
		default:
			fail(fmt.Errorf("complete: %w", err))
			return false
		}
		sc.pollOut[w] = append(sc.pollOut[w], completeOutcome{e.EventID, success, err})
		if n%53 == 0 { // a duplicate complete: always late
			if err := sc.c.Complete(e.EventID, ok()); !errors.Is(err, channel.ErrNotPending) {
				fail(fmt.Errorf("duplicate complete: got %v", err))
				return false
			}
			sc.late.Add(1)
		}
		return true
	}
	for {
		var evs []channel.Event
		var err error
		if w%2 == 0 {
			var e channel.Event
			e, err = sc.c.Poll(bg, 20*time.Millisecond)
			evs = []channel.Event{e}
		} else {
			evs, err = sc.c.PollBatch(bg, 1+w, 20*time.Millisecond)
		}
		switch {
		case err == nil:
		case errors.Is(err, channel.ErrEmpty):
			continue
		case errors.Is(err, channel.ErrClosed):
			return
		default:
			fail(fmt.Errorf("poll: %w", err))
			return
		}
		sc.polled.Add(int64(len(evs)))
		for _, e := range evs {
			if !handle(e) {
				return
			}
		}
	}
}

// cleanup calls CleanupTimeouts in a loop until stop is closed.
func (sc *stressScenario) cleanup(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		sc.expired.Add(int64(sc.c.CleanupTimeouts()))
		goruntime.Gosched()
	}
}

// consume takes completions until the stream is closed.
func (sc *stressScenario) consume() {
	for {
		comp, err := sc.c.NextCompletion(bg, -1)
		if err != nil {
			if !errors.Is(err, channel.ErrClosed) {
				sc.consumerErr = err
			}
			return
		}
		if _, seen := sc.completions[comp.EventID]; seen {
			sc.dupes++
		}
		sc.completions[comp.EventID] = comp
	}
}

// ---- the checks ----

// checkNoErrors: no party met an error it did not expect.
func (sc *stressScenario) checkNoErrors(t *testing.T) {
	for _, err := range append(sc.prodErr, sc.pollErr...) {
		require.NoError(t, err)
	}
	require.NoError(t, sc.consumerErr)
}

// checkExactlyOnce (rule 1): every accepted id has one completion, and
// nothing else does. It returns the accepted ids (true: a tiny timeout).
// Plain loops: testify per element would dominate the run time.
func (sc *stressScenario) checkExactlyOnce(t *testing.T) map[uuid.UUID]bool {
	require.Zero(t, sc.dupes, "an event produced more than one completion")
	all := make(map[uuid.UUID]bool, len(sc.completions))
	for _, out := range sc.prodOut {
		for _, d := range out {
			if _, dup := all[d.id]; dup {
				t.Fatalf("Enqueue returned the id %s twice", d.id)
			}
			all[d.id] = d.short
		}
	}
	require.Len(t, all, int(sc.accepted.Load()))
	require.GreaterOrEqual(t, len(all), sc.target)
	missing := 0
	for id := range all {
		if _, okc := sc.completions[id]; !okc {
			missing++
		}
	}
	require.Zero(t, missing, "accepted events without a completion")
	for id := range sc.completions {
		if _, known := all[id]; !known {
			t.Fatalf("completion for an id never dispatched: %s", id)
		}
	}
	require.Len(t, sc.completions, len(all))
	return all
}

// checkFirstEndStands (rule 8): a complete that returned OK is what the
// stream says; one that returned ENOENT lost to a timeout or a
// cancellation; only events with a tiny timeout_ms time out. It returns the
// completions counted by status.
func (sc *stressScenario) checkFirstEndStands(t *testing.T, all map[uuid.UUID]bool) map[channel.CompletionStatus]uint64 {
	byStatus := map[channel.CompletionStatus]uint64{}
	for _, comp := range sc.completions {
		byStatus[comp.Status]++
		if comp.Status == channel.StatusTimeout && (!all[comp.EventID] || comp.Error.ErrorType != "ffi_timeout") {
			t.Fatalf("unexpected timeout completion %+v (only events with a tiny timeout_ms can time out)", comp)
		}
	}
	for _, out := range sc.pollOut {
		for _, o := range out {
			comp := sc.completions[o.id]
			want := channel.StatusFailed
			if o.success {
				want = channel.StatusCompleted
			}
			switch {
			case o.err == nil && (comp.Status != want || comp.Success != o.success):
				t.Fatalf("complete of %s returned OK with success=%v but the stream says %s", o.id, o.success, comp.Status)
			case o.err != nil && comp.Status != channel.StatusTimeout && comp.Status != channel.StatusCancelled:
				t.Fatalf("complete of %s returned %v but the stream says %s", o.id, o.err, comp.Status)
			}
		}
	}
	return byStatus
}

// checkCounters: the channel's counters equal what the parties counted, and
// add up.
func (sc *stressScenario) checkCounters(t *testing.T, byStatus map[channel.CompletionStatus]uint64) {
	var pollCount int64
	for _, out := range sc.pollOut {
		pollCount += int64(len(out))
	}
	s := sc.c.Stats()
	assert.EqualValues(t, sc.accepted.Load(), s.Dispatched)
	assert.Equal(t, s.Dispatched, s.Completed+s.Failed+s.TimedOut+s.Cancelled)
	assert.Equal(t, s.Dispatched, s.Delivered)
	assert.Zero(t, s.Queued)
	assert.Zero(t, s.Pending)
	assert.Zero(t, s.Undelivered)
	assert.Zero(t, s.InFlight)
	assert.Zero(t, s.Discarded)
	assert.EqualValues(t, sc.polled.Load(), s.Polled)
	assert.EqualValues(t, pollCount, s.Polled)
	assert.EqualValues(t, sc.late.Load(), s.LateCompletions)
	assert.EqualValues(t, sc.expired.Load(), s.TimedOut)
	assert.EqualValues(t, sc.rejectedFull.Load(), s.RejectedFull)
	assert.Equal(t, byStatus[channel.StatusCompleted], s.Completed)
	assert.Equal(t, byStatus[channel.StatusFailed], s.Failed)
	assert.Equal(t, byStatus[channel.StatusTimeout], s.TimedOut)
	assert.Equal(t, byStatus[channel.StatusCancelled], s.Cancelled)
	assert.Equal(t, "closed", s.State)
	t.Logf("completed %d failed %d timed_out %d cancelled %d late %d (bogus %d) invalid %d rejected_full %d",
		s.Completed, s.Failed, s.TimedOut, s.Cancelled, s.LateCompletions, sc.bogusIDs.Load(), sc.invalid.Load(), s.RejectedFull)
}
