package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/channel"
	ts "github.com/tasker-systems/libtasker/internal/testsupport"
	rt "github.com/tasker-systems/libtasker/runtime"
)

// fakeSource is a test double of a source: the test feeds through its link;
// Run records every completion handed to it until the link is closed.
type fakeSource struct {
	linkc   chan *rt.SourceLink
	link    *rt.SourceLink
	stopped chan struct{} // closed when stop is done
	mu      sync.Mutex
	got     []channel.Completion
	seen    map[uuid.UUID]int
	ran     chan struct{} // closed when Run returns
	hold    chan struct{} // when set, Run takes no completion until it is closed
}

func newFakeSource() *fakeSource {
	return &fakeSource{linkc: make(chan *rt.SourceLink, 1), stopped: make(chan struct{}), seen: map[uuid.UUID]int{}, ran: make(chan struct{})}
}

func (f *fakeSource) Run(stop context.Context, link *rt.SourceLink) {
	defer close(f.ran)
	f.linkc <- link
	go func() { <-stop.Done(); close(f.stopped) }()
	if f.hold != nil {
		<-f.hold
	}
	for {
		cs, err := link.Completions(context.Background(), 4, -1)
		if errors.Is(err, channel.ErrClosed) {
			return
		}
		f.mu.Lock()
		for _, c := range cs {
			f.got = append(f.got, c)
			f.seen[c.EventID]++
		}
		f.mu.Unlock()
	}
}

func (f *fakeSource) Stats() rt.SourceStats { return rt.SourceStats{State: "connected"} }

func (f *fakeSource) completions() []channel.Completion {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]channel.Completion(nil), f.got...)
}

func (f *fakeSource) feed(t *testing.T, handler string) uuid.UUID {
	t.Helper()
	e := ev(handler)
	e.EventID = uuid.New()
	require.NoError(t, f.link.Feed(e))
	return e.EventID
}

func withFake(t *testing.T, mod func(*rt.Config), opts ...rt.Option) (*rt.Dispatcher, *fakeSource) {
	t.Helper()
	f := newFakeSource()
	d := newDisp(t, mod, append(opts, rt.WithSource(f))...)
	f.link = ts.Recv(t, ts.Async(func() *rt.SourceLink { return <-f.linkc }), "Run to start")
	return d, f
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Each source event's completion reaches the source exactly once, whoever
// ran it (FFI worker, Go handler, cleanup); local dispatches never reach it
// and are the only ones in the local stream and in post-handler callbacks
// (docs/QUEUE.md rules 7 and 10).
func TestSource_CompletionsOnlyToTheirSource(t *testing.T) {
	var cbMu sync.Mutex
	var callbacks []uuid.UUID
	d, f := withFake(t, func(c *rt.Config) { c.MaxConcurrentHandlers = 20; c.CompletionBufferSize = 40 },
		rt.WithHandler("go", rt.HandlerFunc(func(context.Context, *channel.Event) (channel.Result, error) { return ok(), nil })),
		rt.WithCallback(func(c channel.Completion) { cbMu.Lock(); callbacks = append(callbacks, c.EventID); cbMu.Unlock() }))
	src := map[uuid.UUID]bool{}
	local := map[uuid.UUID]bool{}
	for range 5 {
		src[f.feed(t, "ffi")] = true
		local[dispatch(t, d, ev("ffi"))] = true
	}
	src[f.feed(t, "go")] = true
	local[dispatch(t, d, ev("go"))] = true
	timed := ev("ffi")
	timed.EventID, timed.TimeoutMs = uuid.New(), 1
	require.NoError(t, f.link.Feed(timed))
	src[timed.EventID] = true
	for range 11 {
		e, err := d.Poll(bg, wait)
		require.NoError(t, err)
		if e.EventID == timed.EventID {
			continue // left to time out
		}
		require.NoError(t, d.Complete(e.EventID, ok()))
	}
	time.Sleep(5 * time.Millisecond)
	d.CleanupTimeouts()
	for range len(local) {
		c := next(t, d)
		assert.True(t, local[c.EventID], "a source event's completion reached the local stream")
		delete(local, c.EventID)
	}
	_, err := d.NextCompletion(bg, 20*time.Millisecond)
	assert.ErrorIs(t, err, channel.ErrEmpty)
	waitUntil(t, "7 source completions", func() bool { return len(f.completions()) == 7 })
	for _, c := range f.completions() {
		assert.True(t, src[c.EventID], "a local event's completion reached the source")
	}
	d.Shutdown(0)
	ts.Recv(t, ts.Async(func() bool { <-f.ran; return true }), "Run to return")
	f.mu.Lock()
	for id := range src {
		assert.Equal(t, 1, f.seen[id], "source event %s handed %d times", id, f.seen[id])
	}
	f.mu.Unlock()
	cbMu.Lock()
	for _, id := range callbacks {
		assert.False(t, src[id], "a source event's completion reached a post-handler callback")
	}
	assert.Len(t, callbacks, 6)
	cbMu.Unlock()
	s := d.Stats()
	assert.Equal(t, uint64(7), s.SourceFed)
	assert.Equal(t, uint64(7), s.SourceHanded)
	assert.Equal(t, s.Completed+s.Failed+s.TimedOut+s.Cancelled, s.Delivered+uint64(s.Undelivered)+s.Discarded+s.SourceHanded+uint64(s.SourceUntaken))
	require.NotNil(t, s.Source)
	assert.Equal(t, "connected", s.Source.State)
	doc := ts.DecodeObject(t, must(json.Marshal(s)))
	assert.Equal(t, "connected", doc["source_state"])
	assert.Equal(t, "closed", doc["state"])
	assert.Contains(t, doc, "callbacks_run")
}

// Room (docs/QUEUE.md rule 6): dispatch-queue room and running slots not
// claimed by running or queued events; a source completion not yet taken
// holds room under completion_buffer_size like an undelivered local one.
func TestSource_RoomIsReportedRight(t *testing.T) {
	f := newFakeSource()
	hold := make(chan struct{}) // the source takes no completion until told to
	f.hold = hold
	d := newDisp(t, func(c *rt.Config) { c.MaxConcurrentHandlers = 3; c.CompletionBufferSize = 3; c.DispatchBufferSize = 5 }, rt.WithSource(f))
	link := ts.Recv(t, ts.Async(func() *rt.SourceLink { return <-f.linkc }), "Run to start")
	f.link = link
	assert.Equal(t, 3, link.Room())
	f.feed(t, "a")
	f.feed(t, "a")
	assert.Equal(t, 1, link.Room())
	e, err := d.Poll(bg, 0)
	require.NoError(t, err)
	assert.Equal(t, 1, link.Room(), "one running + one queued of 3 slots")
	f.feed(t, "a")
	assert.Equal(t, 0, link.Room())
	for len(link.RoomChanged()) > 0 {
		<-link.RoomChanged()
	}
	require.NoError(t, d.Complete(e.EventID, ok()))
	assert.Equal(t, 0, link.Room(), "the untaken completion holds its room under completion_buffer_size")
	close(hold) // the source takes it
	waitUntil(t, "the completion taken", func() bool { return link.Room() == 1 })
	select {
	case <-link.RoomChanged():
	default:
		t.Fatal("room grew without a RoomChanged signal")
	}
	// a local completion left in the stream holds room too
	dispatch(t, d, ev("a"))
	assert.Equal(t, 0, link.Room(), "dispatch-queue and slots: 2 source + 1 local queued")
	d.Shutdown(0)
	assert.Equal(t, 0, link.Room(), "no room once shutdown began")
}

// Shutdown (docs/QUEUE.md rule 7): stop is done first (reading stops, Feed is
// ESHUTDOWN); events ending before the deadline reach the source as usual;
// events still queued or running at the deadline reach it as cancelled;
// the local stream sees none of them; Shutdown returns after Run.
func TestSource_ShutdownHandsUnfinishedEvents(t *testing.T) {
	d, f := withFake(t, nil)
	done := f.feed(t, "a")
	running := f.feed(t, "a")
	queued := f.feed(t, "a")
	e1, err := d.Poll(bg, 0)
	require.NoError(t, err)
	e2, err := d.Poll(bg, 0)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{done, running}, []uuid.UUID{e1.EventID, e2.EventID})
	go func() {
		<-f.stopped
		assert.ErrorIs(t, f.link.Feed(ev("a")), channel.ErrShutdown)
		assert.NoError(t, d.Complete(done, ok()))
	}()
	d.Shutdown(300 * time.Millisecond)
	select {
	case <-f.ran:
	default:
		t.Fatal("Shutdown returned before the source's Run")
	}
	byID := map[uuid.UUID]channel.Completion{}
	for _, c := range f.completions() {
		byID[c.EventID] = c
	}
	require.Len(t, byID, 3)
	assert.Equal(t, channel.StatusCompleted, byID[done].Status)
	assert.Equal(t, channel.StatusCancelled, byID[running].Status)
	assert.Equal(t, channel.StatusCancelled, byID[queued].Status)
	_, err = d.NextCompletion(bg, 0)
	assert.ErrorIs(t, err, channel.ErrClosed, "the local stream saw a source event")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
