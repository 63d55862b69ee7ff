package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The direct hand-off under the race detector: the channel's waker hands
// documents to threads parked in tasker_poll, tasker_poll_batch and
// tasker_next_completion from whatever goroutine made the change — a dispatch, a complete, the
// reaper timing an event out (cleanup every 2 ms, events with 1-4 ms
// timeouts), shutdown's drain — while the parked calls give up after
// 1-3 ms. Every event is handed out at most once and ends exactly once,
// and every completion is taken exactly once; a document taken for a
// receiver that timed out meanwhile would show up missing.
func TestHandOff_RaceStress(t *testing.T) {
	const events = 3000
	h, r := callNew(`{"cleanup_interval_ms":2,"dispatch_buffer_size":32,"max_concurrent_handlers":8,"completion_buffer_size":32}`)
	require.Equal(t, 0, r.status, r.lastErr)
	defer callDestroy(h)

	type doc struct {
		EventID   string `json:"event_id"`
		TimeoutMs int    `json:"timeout_ms"`
	}
	parse := func(s string) doc {
		var m doc
		if err := json.Unmarshal([]byte(s), &m); err != nil || len(m.EventID) != 36 {
			panic(fmt.Sprintf("no event_id in %q: %v", s, err))
		}
		return m
	}
	idOf := func(s string) string { return parse(s).EventID }
	var mu sync.Mutex
	polled := map[string]int{}
	ended := map[string]int{}
	var stop atomic.Bool
	var wg sync.WaitGroup

	for w := range 4 { // pollers: parked receivers with short timeouts
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for !stop.Load() {
				wait := int32(1 + rng.IntN(3))
				var p callResult
				if w == 3 { // one of them takes batches: handed an array
					var n int
					n, p = callPollBatch(h, 4, wait)
					if p.status == 0 {
						var arr []json.RawMessage
						if !assert.NoError(t, json.Unmarshal([]byte(p.out), &arr)) || !assert.Len(t, arr, n) {
							return
						}
						p.out = string(arr[0])
						for _, raw := range arr[1:] { // the rest are completed at once
							id := idOf(string(raw))
							mu.Lock()
							polled[id]++
							mu.Unlock()
							c := callComplete(h, id, `{"success":true}`)
							assert.Contains(t, []int{0, -3}, c.status, c.lastErr)
						}
					}
				} else {
					p = callPoll(h, wait)
				}
				switch p.status {
				case 1: // EMPTY
					continue
				case 2: // CLOSED
					return
				}
				if !assert.Equal(t, 0, p.status, p.lastErr) {
					return
				}
				ev := parse(p.out)
				id := ev.EventID
				mu.Lock()
				polled[id]++
				mu.Unlock()
				if ev.TimeoutMs <= 4 && rng.IntN(2) == 0 {
					continue // left to the reaper
				}
				c := callComplete(h, id, `{"success":true}`)
				assert.Contains(t, []int{0, -3}, c.status, c.lastErr) // OK, or ENOENT: timed out first
			}
		}()
	}
	drained := make(chan struct{})
	go func() { // the completion stream, also as a parked receiver
		defer close(drained)
		for {
			c := callNext(h, 2)
			switch c.status {
			case 1:
				continue
			case 2:
				return
			}
			if !assert.Equal(t, 0, c.status, c.lastErr) {
				return
			}
			mu.Lock()
			ended[idOf(c.out)]++
			mu.Unlock()
		}
	}()

	ids := make([]string, 0, events)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range events {
		doc := evDoc
		if i%3 == 0 {
			doc = fmt.Sprintf(`{"task_uuid":"0190a0a0-0000-7000-8000-000000000001","step_uuid":"0190a0a0-0000-7000-8000-000000000002","handler":"h","payload":{},"timeout_ms":%d}`, 1+rng.IntN(4))
		}
		id, r := callDispatch(h, doc, 10000)
		require.Equal(t, 0, r.status, r.lastErr)
		ids = append(ids, id)
	}
	require.Equal(t, 0, callShutdown(h, 10000).status) // drains: every event ends
	stop.Store(true)
	wg.Wait()
	<-drained

	mu.Lock()
	defer mu.Unlock()
	for id, n := range polled {
		assert.Equal(t, 1, n, "event %s handed out %d times", id, n)
	}
	missing := 0
	for _, id := range ids {
		if n := ended[id]; n != 1 {
			missing++
			assert.Equal(t, 1, n, "event %s ended %d times", id, n)
			if missing > 5 {
				break
			}
		}
	}
	assert.Len(t, ended, events, "completions taken")
}
