package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/channel"
)

// fakeLink is a minimal stand-in for the dispatcher, with the semantics the
// Link interface documents: a bounded queue, a running bound, completions
// handed only to the source, shutdown with a drain deadline.
type fakeLink struct {
	mu       sync.Mutex
	cond     *sync.Cond
	queueCap int
	slots    int
	queued   []channel.Event
	running  map[uuid.UUID]channel.Event
	done     []channel.Completion
	closing  bool
	roomCh   chan struct{}
}

func newFakeLink(queueCap, slots int) *fakeLink {
	l := &fakeLink{queueCap: queueCap, slots: slots, running: map[uuid.UUID]channel.Event{}, roomCh: make(chan struct{}, 1)}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *fakeLink) roomLocked() int {
	return min(l.queueCap-len(l.queued), l.slots-len(l.running)-len(l.queued)-len(l.done))
}

func (l *fakeLink) Room() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.roomLocked()
}

func (l *fakeLink) RoomChanged() <-chan struct{} { return l.roomCh }

func (l *fakeLink) changed() {
	l.cond.Broadcast()
	if l.roomLocked() > 0 {
		select {
		case l.roomCh <- struct{}{}:
		default:
		}
	}
}

func (l *fakeLink) Feed(ev channel.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return channel.ErrShutdown
	}
	if len(l.queued) >= l.queueCap {
		return channel.ErrFull
	}
	ev.DispatchedAt = time.Now()
	l.queued = append(l.queued, ev)
	l.changed()
	return nil
}

// poll takes the oldest queued event (waits up to d).
func (l *fakeLink) poll(d time.Duration) (channel.Event, bool) {
	deadline := time.Now().Add(d)
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.queued) == 0 || len(l.running) >= l.slots {
		if time.Now().After(deadline) {
			return channel.Event{}, false
		}
		go func() { time.Sleep(10 * time.Millisecond); l.cond.Broadcast() }()
		l.cond.Wait()
	}
	ev := l.queued[0]
	l.queued = l.queued[1:]
	ev.PolledAt = time.Now()
	l.running[ev.EventID] = ev
	l.changed()
	return ev, true
}

func (l *fakeLink) complete(id uuid.UUID, r channel.Result) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev, ok := l.running[id]
	if !ok {
		return false
	}
	delete(l.running, id)
	st := channel.StatusCompleted
	if !r.Success {
		st = channel.StatusFailed
	}
	l.done = append(l.done, channel.Completion{EventID: id, TaskUUID: ev.TaskUUID, StepUUID: ev.StepUUID, CorrelationID: ev.CorrelationID,
		Handler: ev.Handler, Status: st, Success: r.Success, Result: r.Result, Error: r.Error, Metadata: r.Metadata,
		DispatchedAt: ev.DispatchedAt, PolledAt: ev.PolledAt, CompletedAt: time.Now()})
	l.changed()
	return true
}

// shutdown stops intake, waits up to drain for queued and running events
// to end, then ends the rest as cancelled.
func (l *fakeLink) shutdown(drain time.Duration) {
	deadline := time.Now().Add(drain)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closing = true
	for len(l.queued)+len(l.running) > 0 && time.Now().Before(deadline) {
		go func() { time.Sleep(10 * time.Millisecond); l.cond.Broadcast() }()
		l.cond.Wait()
	}
	for _, ev := range l.queued {
		l.done = append(l.done, channel.Completion{EventID: ev.EventID, Status: channel.StatusCancelled})
	}
	for id := range l.running {
		l.done = append(l.done, channel.Completion{EventID: id, Status: channel.StatusCancelled})
	}
	l.queued, l.running = nil, map[uuid.UUID]channel.Event{}
	l.changed()
}

func (l *fakeLink) Completions(ctx context.Context, max int, timeout time.Duration) ([]channel.Completion, error) {
	deadline := time.Now().Add(timeout)
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.done) == 0 {
		if l.closing && len(l.queued)+len(l.running) == 0 {
			return nil, channel.ErrClosed
		}
		if timeout >= 0 && !time.Now().Before(deadline) {
			return nil, channel.ErrEmpty
		}
		go func() { time.Sleep(10 * time.Millisecond); l.cond.Broadcast() }()
		l.cond.Wait()
	}
	n := min(max, len(l.done))
	out := append([]channel.Completion(nil), l.done[:n]...)
	l.done = l.done[n:]
	l.changed()
	return out, nil
}
