package channel_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	goruntime "runtime"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/channel"
)

// TestRecycledEntries_EveryTakenEventIsTheOneDispatched: ended FFI entries
// are recycled (entries.go), so an event handed out must be copied before
// its entry can end. Here racers complete each event the moment it is
// polled, from other goroutines, while pollers (Poll and PollBatch) take
// it; a cleanup loop ends events with 1 ms timeouts; dispatches keep
// reusing the recycled entries. Every event a poller got and every
// completion must carry the task, step and payload of its own dispatch.
// Run under -race: a copy made after the unlock is a race with the
// recycling even when the contents happen to survive.
func TestRecycledEntries_EveryTakenEventIsTheOneDispatched(t *testing.T) {
	n := 20_000
	if testing.Short() {
		n = 4_000
	}
	c := newChan(t, func(cfg *channel.Config) {
		cfg.DispatchBufferSize, cfg.CompletionBufferSize, cfg.MaxConcurrentHandlers = 64, n, 64
	})
	payload := func(id uuid.UUID) []byte { return []byte(`{"id":"` + id.String() + `"}`) }
	// task and step are derived from the id so that a mix-up of two events
	// shows in every field.
	task := func(id uuid.UUID) uuid.UUID { id[0] ^= 0xff; return id }
	step := func(id uuid.UUID) uuid.UUID { id[1] ^= 0xff; return id }
	check := func(what string, id, tk, st uuid.UUID, p []byte, handler string) error {
		switch {
		case tk != task(id) || st != step(id):
			return errors.New(what + " " + id.String() + ": task or step of another event")
		case p != nil && !bytes.Equal(p, payload(id)):
			return errors.New(what + " " + id.String() + ": payload of another event: " + string(p))
		case handler != "h":
			return errors.New(what + " " + id.String() + ": handler " + handler)
		}
		return nil
	}

	var (
		mu       sync.Mutex
		problems []string
		polled   atomic.Int64
	)
	report := func(err error) {
		if err != nil {
			mu.Lock()
			problems = append(problems, err.Error())
			mu.Unlock()
		}
	}
	toRacers := make(chan uuid.UUID, 1024)
	var wg sync.WaitGroup
	// the producer: every fifth event may time out within 1 ms
	wg.Go(func() {
		defer close(toRacers)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range n {
			id := fastID(r)
			e := channel.Event{EventID: id, TaskUUID: task(id), StepUUID: step(id), Handler: "h", Payload: payload(id)}
			if i%5 == 0 {
				e.TimeoutMs = 1
			}
			if _, err := c.Enqueue(bg, e, channel.KindFFI, wait); err != nil {
				report(err)
				return
			}
			toRacers <- id
		}
	})
	// racers: complete each event as soon as it is pending
	for range 2 {
		wg.Go(func() {
			for id := range toRacers {
				for {
					err := c.Complete(id, ok())
					if err == nil || !strings.Contains(err.Error(), "queued, never polled") {
						break
					}
					goruntime.Gosched()
				}
			}
		})
	}
	// pollers, one with single polls and one with batches
	var stopPolling atomic.Bool
	poll := func(batch bool) {
		for !stopPolling.Load() {
			var evs []channel.Event
			if batch {
				evs, _ = c.PollBatch(bg, 8, 0)
			} else if e, err := c.Poll(bg, 0); err == nil {
				evs = []channel.Event{e}
			}
			for _, e := range evs {
				report(check("polled", e.EventID, e.TaskUUID, e.StepUUID, e.Payload, e.Handler))
				polled.Add(1)
				_ = c.Complete(e.EventID, ok()) // usually late: a racer was first
			}
			if len(evs) == 0 {
				goruntime.Gosched()
			}
		}
	}
	var pollers sync.WaitGroup
	pollers.Go(func() { poll(false) })
	pollers.Go(func() { poll(true) })
	pollers.Go(func() {
		for !stopPolling.Load() {
			c.CleanupTimeouts()
			goruntime.Gosched()
		}
	})

	ended := map[uuid.UUID]bool{}
	for len(ended) < n {
		comp, err := c.NextCompletion(bg, wait)
		require.NoError(t, err, "after %d of %d completions", len(ended), n)
		report(check("completion", comp.EventID, comp.TaskUUID, comp.StepUUID, nil, comp.Handler))
		if ended[comp.EventID] {
			report(errors.New("second completion of " + comp.EventID.String()))
		}
		ended[comp.EventID] = true
	}
	stopPolling.Store(true)
	pollers.Wait()
	wg.Wait()
	require.Empty(t, problems)
	require.Equal(t, int64(n), polled.Load(), "every event was polled once (a 1 ms timeout starts at poll)")
}
