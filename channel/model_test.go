package channel_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/tasker-systems/libtasker/channel"
)

// modelEnd is one expected completion.
type modelEnd struct {
	id     uuid.UUID
	status channel.CompletionStatus
}

// model is the reference: what the channel must hold after each action.
type model struct {
	c                    *channel.Channel
	dispatchCap, maxConc int
	completionCap        int

	queue   []uuid.UUID // FIFO
	short   map[uuid.UUID]bool
	pending []uuid.UUID // start order
	polled  map[uuid.UUID]time.Time
	ended   []uuid.UUID // every id that has ended, for late completes and reuse
	// stream: groups of completions; inside one group (one cleanup, or the
	// shutdown) the order is free, between groups it is fixed (rule 4)
	stream [][]modelEnd

	dispatched, rejectedFull, rejectedInvalid, late, pollCount, delivered uint64
	byStatus                                                              map[channel.CompletionStatus]uint64
}

func (m *model) streamLen() int {
	n := 0
	for _, g := range m.stream {
		n += len(g)
	}
	return n
}

// budget is how many events rule 3 lets start now.
func (m *model) budget() int {
	return min(m.maxConc-len(m.pending), m.completionCap-len(m.pending)-m.streamLen())
}

func (m *model) live(id uuid.UUID) bool {
	return slices.Contains(m.queue, id) || slices.Contains(m.pending, id)
}

func (m *model) end(g []modelEnd) {
	for _, e := range g {
		m.pending = slices.DeleteFunc(m.pending, func(x uuid.UUID) bool { return x == e.id })
		m.queue = slices.DeleteFunc(m.queue, func(x uuid.UUID) bool { return x == e.id })
		delete(m.polled, e.id)
		m.ended = append(m.ended, e.id)
		m.byStatus[e.status]++
	}
	if len(g) > 0 {
		m.stream = append(m.stream, g)
	}
}

func (m *model) expectErr(t *rapid.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func (m *model) take(t *rapid.T, max int, evs []channel.Event, err error) {
	t.Helper()
	n := min(max, len(m.queue), m.budget())
	if n <= 0 {
		m.expectErr(t, err, channel.ErrEmpty, "poll with nothing startable")
		return
	}
	if err != nil {
		t.Fatalf("poll: want %d events, got %v", n, err)
	}
	if len(evs) != n {
		t.Fatalf("poll: want %d events (queue %d, budget %d), got %d", n, len(m.queue), m.budget(), len(evs))
	}
	for i, e := range evs {
		if e.EventID != m.queue[i] {
			t.Fatalf("poll: event %d is %s, want %s (FIFO)", i, e.EventID, m.queue[i])
		}
		m.polled[e.EventID] = e.PolledAt
	}
	m.pending = append(m.pending, m.queue[:n]...)
	m.queue = slices.Clone(m.queue[n:])
	m.pollCount += uint64(n)
}

func (m *model) check(t *rapid.T) {
	s := m.c.Stats()
	got := []any{s.Queued, s.Pending, s.Undelivered, s.Dispatched, s.RejectedFull, s.RejectedInvalid, s.LateCompletions,
		s.Polled, s.Delivered, s.Completed, s.Failed, s.TimedOut, s.Cancelled}
	want := []any{len(m.queue), len(m.pending), m.streamLen(), m.dispatched, m.rejectedFull, m.rejectedInvalid, m.late,
		m.pollCount, m.delivered, m.byStatus[channel.StatusCompleted], m.byStatus[channel.StatusFailed],
		m.byStatus[channel.StatusTimeout], m.byStatus[channel.StatusCancelled]}
	if !slices.Equal(fmtAll(got), fmtAll(want)) {
		t.Fatalf("stats (queued pending undelivered dispatched rejected_full rejected_invalid late polled delivered completed failed timed_out cancelled):\n got %v\nwant %v", got, want)
	}
	// rule 3, as the channel itself reports it. Cancelling at the shutdown
	// deadline pushes every queued event into the stream as well, so after
	// shutdown only the looser memory bound holds.
	if s.State == "running" && (s.Pending > m.maxConc || s.Pending+s.Undelivered > m.completionCap || s.Queued > m.dispatchCap) {
		t.Fatalf("rule 3 bounds broken: %+v", s)
	}
	if s.Undelivered > m.dispatchCap+m.completionCap {
		t.Fatalf("stream larger than dispatch_buffer_size + completion_buffer_size: %+v", s)
	}
	if s.Dispatched != uint64(s.Queued+s.Pending)+s.Completed+s.Failed+s.TimedOut+s.Cancelled {
		t.Fatalf("dispatched does not add up: %+v", s)
	}
}

func fmtAll(xs []any) []uint64 {
	out := make([]uint64, len(xs))
	for i, x := range xs {
		switch v := x.(type) {
		case int:
			out[i] = uint64(v)
		case uint64:
			out[i] = v
		}
	}
	return out
}

// TestModel_Channel runs random sequences of dispatch, poll, poll_batch,
// complete (valid, invalid, not pending), cleanup and next_completion
// against the model above, then shuts down and checks the rest of the
// stream.
func TestModel_Channel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := &model{
			dispatchCap: rapid.IntRange(1, 6).Draw(t, "dispatch_buffer_size"),
			maxConc:     rapid.IntRange(1, 4).Draw(t, "max_concurrent_handlers"),
			short:       map[uuid.UUID]bool{},
			polled:      map[uuid.UUID]time.Time{},
			byStatus:    map[channel.CompletionStatus]uint64{},
		}
		m.completionCap = m.maxConc + rapid.IntRange(0, 3).Draw(t, "extra completion room")
		m.c = newChan(t, func(cfg *channel.Config) {
			cfg.DispatchBufferSize = m.dispatchCap
			cfg.MaxConcurrentHandlers = m.maxConc
			cfg.CompletionBufferSize = m.completionCap
			cfg.HandlerTimeoutMs = 3_600_000
		})
		c := m.c

		t.Repeat(map[string]func(*rapid.T){
			"": m.check,
			"dispatch": func(t *rapid.T) {
				e := ev("h")
				short := rapid.Bool().Draw(t, "short timeout")
				if short {
					e.TimeoutMs = 1
				}
				switch rapid.IntRange(0, 3).Draw(t, "id kind") {
				case 1:
					e.EventID = uuid.New()
				case 2:
					if len(m.ended) == 0 {
						t.Skip("no ended id to reuse")
					}
					e.EventID = rapid.SampledFrom(m.ended).Draw(t, "reused id")
				case 3:
					live := append(slices.Clone(m.queue), m.pending...)
					if len(live) == 0 {
						t.Skip("no live id")
					}
					e.EventID = rapid.SampledFrom(live).Draw(t, "live id")
				}
				id, err := c.Enqueue(bg, e, channel.KindFFI, 0)
				switch {
				case e.EventID != uuid.Nil && m.live(e.EventID):
					m.expectErr(t, err, channel.ErrInvalid, "dispatch of a live id")
					m.rejectedInvalid++
				case len(m.queue) >= m.dispatchCap:
					m.expectErr(t, err, channel.ErrFull, "dispatch into a full queue")
					m.rejectedFull++
				default:
					if err != nil {
						t.Fatalf("dispatch: %v", err)
					}
					if e.EventID != uuid.Nil && id != e.EventID {
						t.Fatalf("dispatch returned %s for explicit id %s", id, e.EventID)
					}
					m.queue = append(m.queue, id)
					m.short[id] = short
					m.dispatched++
				}
			},
			"poll": func(t *rapid.T) {
				e, err := c.Poll(bg, 0)
				m.take(t, 1, []channel.Event{e}, err)
			},
			"pollBatch": func(t *rapid.T) {
				max := rapid.IntRange(1, 5).Draw(t, "max")
				evs, err := c.PollBatch(bg, max, 0)
				m.take(t, max, evs, err)
			},
			"completeValid": func(t *rapid.T) {
				if len(m.pending) == 0 {
					t.Skip("nothing pending")
				}
				id := rapid.SampledFrom(m.pending).Draw(t, "pending id")
				r, st := ok(), channel.StatusCompleted
				if rapid.Bool().Draw(t, "fail") {
					r, st = failed("x"), channel.StatusFailed
				}
				if err := c.Complete(id, r); err != nil {
					t.Fatalf("complete of pending %s: %v", id, err)
				}
				m.end([]modelEnd{{id, st}})
			},
			"completeInvalid": func(t *rapid.T) {
				if len(m.pending) == 0 {
					t.Skip("nothing pending")
				}
				id := rapid.SampledFrom(m.pending).Draw(t, "pending id")
				bad := rapid.SampledFrom([]channel.Result{
					{}, {Success: true, Error: &channel.ErrorInfo{Message: "m"}}, {Success: true, Result: []byte("{")},
				}).Draw(t, "bad result")
				m.expectErr(t, c.Complete(id, bad), channel.ErrInvalid, "invalid result")
			},
			"completeNotPending": func(t *rapid.T) {
				var id uuid.UUID
				switch rapid.IntRange(0, 2).Draw(t, "which") {
				case 0:
					id = uuid.New()
				case 1:
					if len(m.queue) == 0 {
						t.Skip("nothing queued")
					}
					id = rapid.SampledFrom(m.queue).Draw(t, "queued id")
				case 2:
					var gone []uuid.UUID
					for _, x := range m.ended {
						if !m.live(x) {
							gone = append(gone, x)
						}
					}
					if len(gone) == 0 {
						t.Skip("nothing ended")
					}
					id = rapid.SampledFrom(gone).Draw(t, "ended id")
				}
				m.expectErr(t, c.Complete(id, ok()), channel.ErrNotPending, "complete of a non-pending event")
				m.late++
			},
			"cleanup": func(t *rapid.T) {
				// every pending event with a 1 ms timeout must be expired by
				// now; the others have an hour left
				var exp []modelEnd
				var last time.Time
				for _, id := range m.pending {
					if m.short[id] {
						exp = append(exp, modelEnd{id, channel.StatusTimeout})
						if p := m.polled[id]; p.After(last) {
							last = p
						}
					}
				}
				if len(exp) > 0 {
					time.Sleep(time.Until(last.Add(3 * time.Millisecond)))
				}
				if n := c.CleanupTimeouts(); n != len(exp) {
					t.Fatalf("cleanup expired %d, want %d", n, len(exp))
				}
				m.end(exp)
			},
			"next": func(t *rapid.T) {
				comp, err := c.NextCompletion(bg, 0)
				if len(m.stream) == 0 {
					m.expectErr(t, err, channel.ErrEmpty, "next completion of an empty stream")
					return
				}
				if err != nil {
					t.Fatalf("next completion: %v", err)
				}
				m.popStream(t, comp)
			},
		})

		// shutdown with no drain: every queued and pending event is cancelled
		var rest []modelEnd
		for _, id := range append(slices.Clone(m.queue), m.pending...) {
			rest = append(rest, modelEnd{id, channel.StatusCancelled})
		}
		c.Shutdown(0)
		m.end(rest)
		m.check(t)
		for len(m.stream) > 0 {
			comp, err := c.NextCompletion(bg, 0)
			if err != nil {
				t.Fatalf("next completion after shutdown, %d left: %v", m.streamLen(), err)
			}
			m.popStream(t, comp)
		}
		m.expectErr(t, func() error { _, err := c.NextCompletion(bg, 0); return err }(), channel.ErrClosed, "stream after shutdown")
		m.check(t)
	})
}

// popStream checks that comp is one of the completions of the first group.
func (m *model) popStream(t *rapid.T, comp channel.Completion) {
	t.Helper()
	g := m.stream[0]
	i := slices.IndexFunc(g, func(e modelEnd) bool { return e.id == comp.EventID })
	if i < 0 {
		t.Fatalf("stream order: got %s (%s), want one of %v", comp.EventID, comp.Status, g)
	}
	if g[i].status != comp.Status {
		t.Fatalf("event %s: status %s, want %s", comp.EventID, comp.Status, g[i].status)
	}
	g = slices.Delete(g, i, i+1)
	if len(g) == 0 {
		m.stream = m.stream[1:]
	} else {
		m.stream[0] = g
	}
	m.delivered++
}
