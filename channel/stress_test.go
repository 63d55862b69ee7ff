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
// up.
func TestRule1_ExactlyOnceStress(t *testing.T) {
	target := 200_000
	if testing.Short() {
		target = 20_000
	}
	const (
		producers = 3
		pollers   = 8
	)
	c := newChan(t, func(cfg *channel.Config) {
		cfg.DispatchBufferSize = 512
		cfg.CompletionBufferSize = 256
		cfg.MaxConcurrentHandlers = 128
		cfg.HandlerTimeoutMs = 600_000
	})

	var (
		accepted     atomic.Int64
		rejectedFull atomic.Int64
		shutdownOnce sync.Once
		shutdownDone = make(chan struct{})
		shutdownAt   atomic.Int64
	)
	startShutdown := func() {
		shutdownOnce.Do(func() {
			shutdownAt.Store(accepted.Load())
			go func() {
				c.Shutdown(5 * time.Millisecond)
				close(shutdownDone)
			}()
		})
	}

	var wg sync.WaitGroup
	prodOut := make([][]dispatched, producers)
	prodErr := make([]error, producers)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
				id, err := c.Enqueue(bg, e, channel.KindFFI, 50*time.Millisecond)
				switch {
				case err == nil:
					prodOut[p] = append(prodOut[p], dispatched{id, short})
					if accepted.Add(1) >= int64(target) {
						startShutdown()
					}
				case errors.Is(err, channel.ErrFull):
					rejectedFull.Add(1)
				case errors.Is(err, channel.ErrShutdown):
					return
				default:
					prodErr[p] = err
					startShutdown()
					return
				}
			}
		}()
	}

	var (
		polled   atomic.Int64
		late     atomic.Int64
		invalid  atomic.Int64
		bogusIDs atomic.Int64
	)
	pollOut := make([][]completeOutcome, pollers)
	pollErr := make([]error, pollers)
	for w := range pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(err error) { pollErr[w] = err; startShutdown() }
			n := 0
			handle := func(e channel.Event) bool {
				n++
				if n%97 == 0 { // an invalid result first: rejected, event stays pending
					if err := c.Complete(e.EventID, channel.Result{}); !errors.Is(err, channel.ErrInvalid) {
						fail(fmt.Errorf("invalid result: got %v", err))
						return false
					}
					invalid.Add(1)
				}
				if n%101 == 0 { // a complete for an id nobody dispatched
					if err := c.Complete(uuid.New(), ok()); !errors.Is(err, channel.ErrNotPending) {
						fail(fmt.Errorf("bogus id: got %v", err))
						return false
					}
					late.Add(1)
					bogusIDs.Add(1)
				}
				success := e.EventID[15]%2 == 0
				r := ok()
				if !success {
					r = failed("nope")
				}
				err := c.Complete(e.EventID, r)
				switch {
				case err == nil:
				case errors.Is(err, channel.ErrNotPending):
					late.Add(1)
				default:
					fail(fmt.Errorf("complete: %w", err))
					return false
				}
				pollOut[w] = append(pollOut[w], completeOutcome{e.EventID, success, err})
				if n%53 == 0 { // a duplicate complete: always late
					if err := c.Complete(e.EventID, ok()); !errors.Is(err, channel.ErrNotPending) {
						fail(fmt.Errorf("duplicate complete: got %v", err))
						return false
					}
					late.Add(1)
				}
				return true
			}
			for {
				var evs []channel.Event
				var err error
				if w%2 == 0 {
					var e channel.Event
					e, err = c.Poll(bg, 20*time.Millisecond)
					evs = []channel.Event{e}
				} else {
					evs, err = c.PollBatch(bg, 1+w, 20*time.Millisecond)
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
				polled.Add(int64(len(evs)))
				for _, e := range evs {
					if !handle(e) {
						return
					}
				}
			}
		}()
	}

	var expired atomic.Int64
	stopCleanup := make(chan struct{})
	cleanupDone := make(chan struct{})
	go func() {
		defer close(cleanupDone)
		for {
			select {
			case <-stopCleanup:
				return
			default:
			}
			expired.Add(int64(c.CleanupTimeouts()))
			goruntime.Gosched()
		}
	}()

	completions := make(map[uuid.UUID]channel.Completion, target+target/10)
	dupes := 0
	var consumerErr error
	consumerDone := make(chan struct{})
	go func() {
		defer close(consumerDone)
		for {
			comp, err := c.NextCompletion(bg, -1)
			if err != nil {
				if !errors.Is(err, channel.ErrClosed) {
					consumerErr = err
				}
				return
			}
			if _, seen := completions[comp.EventID]; seen {
				dupes++
			}
			completions[comp.EventID] = comp
		}
	}()

	start := time.Now()
	wg.Wait()
	ts.Recv(t, shutdownDone, "Shutdown")
	ts.Recv(t, consumerDone, "the consumer")
	close(stopCleanup)
	<-cleanupDone
	t.Logf("%d events dispatched in %v; shutdown began at %d; %d expired by cleanup; %d late completes",
		accepted.Load(), time.Since(start), shutdownAt.Load(), expired.Load(), late.Load())

	for _, err := range append(prodErr, pollErr...) {
		require.NoError(t, err)
	}
	require.NoError(t, consumerErr)
	require.Zero(t, dupes, "an event produced more than one completion")

	// exactly once: every accepted id has one completion, and nothing else does
	// (plain loops: testify per element would dominate the run time)
	all := make(map[uuid.UUID]bool, len(completions))
	for _, out := range prodOut {
		for _, d := range out {
			if _, dup := all[d.id]; dup {
				t.Fatalf("Enqueue returned the id %s twice", d.id)
			}
			all[d.id] = d.short
		}
	}
	require.Len(t, all, int(accepted.Load()))
	require.GreaterOrEqual(t, len(all), target)
	missing := 0
	for id := range all {
		if _, okc := completions[id]; !okc {
			missing++
		}
	}
	require.Zero(t, missing, "accepted events without a completion")
	for id := range completions {
		if _, known := all[id]; !known {
			t.Fatalf("completion for an id never dispatched: %s", id)
		}
	}
	require.Len(t, completions, len(all))

	// the first end stands: our accepted results are what the stream says,
	// our late ones lost to a timeout or a cancellation
	byStatus := map[channel.CompletionStatus]uint64{}
	for _, comp := range completions {
		byStatus[comp.Status]++
		if comp.Status == channel.StatusTimeout && (!all[comp.EventID] || comp.Error.ErrorType != "ffi_timeout") {
			t.Fatalf("unexpected timeout completion %+v (only events with a tiny timeout_ms can time out)", comp)
		}
	}
	var pollCount int64
	for _, out := range pollOut {
		pollCount += int64(len(out))
		for _, o := range out {
			comp := completions[o.id]
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

	s := c.Stats()
	assert.EqualValues(t, accepted.Load(), s.Dispatched)
	assert.Equal(t, s.Dispatched, s.Completed+s.Failed+s.TimedOut+s.Cancelled)
	assert.Equal(t, s.Dispatched, s.Delivered)
	assert.Zero(t, s.Queued)
	assert.Zero(t, s.Pending)
	assert.Zero(t, s.Undelivered)
	assert.Zero(t, s.InFlight)
	assert.Zero(t, s.Discarded)
	assert.EqualValues(t, polled.Load(), s.Polled)
	assert.EqualValues(t, pollCount, s.Polled)
	assert.EqualValues(t, late.Load(), s.LateCompletions)
	assert.EqualValues(t, expired.Load(), s.TimedOut)
	assert.EqualValues(t, rejectedFull.Load(), s.RejectedFull)
	assert.Equal(t, byStatus[channel.StatusCompleted], s.Completed)
	assert.Equal(t, byStatus[channel.StatusFailed], s.Failed)
	assert.Equal(t, byStatus[channel.StatusTimeout], s.TimedOut)
	assert.Equal(t, byStatus[channel.StatusCancelled], s.Cancelled)
	assert.Equal(t, "closed", s.State)
	t.Logf("completed %d failed %d timed_out %d cancelled %d late %d (bogus %d) invalid %d rejected_full %d",
		s.Completed, s.Failed, s.TimedOut, s.Cancelled, s.LateCompletions, bogusIDs.Load(), invalid.Load(), s.RejectedFull)
}
