package runtime

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/strictjson"
)

// Source is something outside the process that feeds events in and takes
// back exactly the completions of its own events: the seam for durable
// queues (source/postgres is the first; docs/QUEUE.md is its contract).
//
// The dispatcher calls Run once, in its own goroutine, when it is made
// (New with WithSource), and:
//
//   - while stop is not done, the source may feed events with
//     link.Feed, at most link.Room() at a time (rule 6 of docs/QUEUE.md: room
//     in the dispatch queue and running slots not already claimed);
//     link.RoomChanged() tells it when to look again;
//   - it takes the completions of its events with link.Completions (or,
//     with the checkpoints of its events to persist, link.Work). Each
//     completion of an event it fed is handed to it exactly once, in the
//     order the events ended; never dropped, never in the local completion
//     stream (tasker_next_completion), never to post-handler callbacks.
//     Events dispatched locally are never handed to it;
//   - stop is done when Shutdown begins: the source stops feeding (Feed
//     returns channel.ErrShutdown from then on). Workers drain until the
//     deadline; events still queued or running then end as
//     channel.StatusCancelled, which tells the source "release it, write
//     no result". Completions then returns channel.ErrClosed once every
//     source event has ended and its completion was taken; Run should
//     finish its writes and return. Shutdown waits for Run to return.
//
// Bounds: a source event takes a running slot like any other, and its
// completion counts against completion_buffer_size until the source takes
// it (see channel/source.go); it never sits in the local stream.
//
// Stats is called from any goroutine, at any time, also before Run.
type Source interface {
	Run(stop context.Context, link *SourceLink)
	Stats() SourceStats
}

// SourceStats are the source_* keys of tasker_stats (docs/QUEUE.md rule 9).
type SourceStats struct {
	State        string  `json:"source_state"` // connecting, connected, reconnecting, stopped
	Read         uint64  `json:"source_read"`
	Acked        uint64  `json:"source_acked"`
	Released     uint64  `json:"source_released"`
	LeaseLost    uint64  `json:"source_lease_lost"`
	DeadLettered uint64  `json:"source_dead_lettered"`
	Heartbeats   uint64  `json:"source_heartbeats"`
	Errors       uint64  `json:"source_errors"`
	LastError    *string `json:"source_last_error"`
}

// SourceLink is a source's view of its dispatcher. Its methods are safe
// for concurrent use.
type SourceLink struct {
	d    *Dispatcher
	wake chan struct{}
	stop context.Context // done once Shutdown told the source to stop; never changes after startSource
}

// Room is how many events the source may feed now: the smaller of the
// dispatch queue's free room and the running slots not claimed by running
// or queued events (0 once shutdown began).
func (l *SourceLink) Room() int { return l.d.ch.SourceRoom() }

// RoomChanged is signalled (capacity 1, never blocking the channel)
// whenever Room may have grown; a signal may be stale: check Room again.
func (l *SourceLink) RoomChanged() <-chan struct{} { return l.wake }

// Feed queues ev without waiting, routed like a dispatch (a Go handler
// registered under ev.Handler, else FFI workers). Set ev.EventID (unique)
// before feeding, so the completion can be matched to what the source
// holds even when it comes back before Feed returns. Errors:
// channel.ErrFull, channel.ErrShutdown, channel.ErrInvalid or
// channel.ErrTooBig (nothing queued).
func (l *SourceLink) Feed(ev channel.Event) error {
	if l.stop.Err() != nil {
		// the source was told to stop a moment before the channel closes
		// its intake: refuse already, so that nothing fed after stop lands
		return fmt.Errorf("%w: the source was told to stop", channel.ErrShutdown)
	}
	_, err := l.d.ch.FeedSource(ev, l.d.route(ev.Handler))
	return err
}

// Completions takes up to max completions of the source's events, waiting
// up to timeout (< 0: without limit) for the first: channel.ErrEmpty when
// none came, channel.ErrClosed once shutdown began and every source event
// has ended and was taken.
func (l *SourceLink) Completions(ctx context.Context, max int, timeout time.Duration) ([]channel.Completion, error) {
	return l.d.ch.TakeSourceCompletions(ctx, max, timeout)
}

// Work is Completions for a source that also persists checkpoints
// (channel.Channel.TakeSourceWork): it returns the checkpoints of the
// source's events waiting to be persisted and up to max completions. Each
// checkpoint handed out must be answered with one CheckpointSaved; until
// then its event stays running and is not handed to a worker again. A
// source uses either Work or Completions, not both.
func (l *SourceLink) Work(ctx context.Context, max int, timeout time.Duration) (channel.SourceWork, error) {
	return l.d.ch.TakeSourceWork(ctx, max, timeout)
}

// CheckpointSaved tells the channel that the checkpoint of source event id
// was persisted (held: the event goes back to the queue) or could not be
// because the lease was lost (!held: the event ends as cancelled, write no
// result). channel.ErrNotPending when the event ended meanwhile (drain
// deadline). Never waits.
func (l *SourceLink) CheckpointSaved(id uuid.UUID, held bool) error {
	return l.d.ch.SourceCheckpointSaved(id, held)
}

// MaxPayloadBytes is the channel's max_payload_bytes.
func (l *SourceLink) MaxPayloadBytes() int { return l.d.cfg.MaxPayloadBytes }

// NewEventID returns a fresh event id (UUIDv7) for Feed.
func (l *SourceLink) NewEventID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// WithSource attaches a source (at most one per dispatcher).
func WithSource(s Source) Option {
	return func(o *options) { o.source = s }
}

// ---- sources named in the config document ----

// SourceFactory makes a Source from its part of the config document (the
// object under "source" -> "<kind>"). It must check the document strictly
// (channel.ErrInvalid naming the key) and must not connect anywhere: the
// source connects in Run.
type SourceFactory func(doc []byte) (Source, error)

var sourceKinds = struct {
	sync.RWMutex
	m map[string]SourceFactory
}{m: map[string]SourceFactory{}}

// RegisterSource makes kind usable as {"source": {"<kind>": {...}}} in the
// config document. Source packages call it from init (source/postgres
// registers "postgres"); a second registration of a kind panics.
func RegisterSource(kind string, f SourceFactory) {
	sourceKinds.Lock()
	defer sourceKinds.Unlock()
	if _, dup := sourceKinds.m[kind]; dup {
		panic("runtime: source kind " + kind + " registered twice")
	}
	sourceKinds.m[kind] = f
}

var sourceKeys = struct {
	sync.RWMutex
	m map[string][]string
}{m: map[string][]string{}}

// RegisterSourceKeys lists the keys of a kind's document, so that
// tasker_stats' config_sources can show "default" for those not given
// ("source.<kind>.<key>"). Source packages call it from init.
func RegisterSourceKeys(kind string, keys []string) {
	sourceKeys.Lock()
	defer sourceKeys.Unlock()
	sourceKeys.m[kind] = append([]string(nil), keys...)
}

func sourceKindKeys(kind string) []string {
	sourceKeys.RLock()
	defer sourceKeys.RUnlock()
	return sourceKeys.m[kind]
}

func sourceKindNames() string {
	sourceKinds.RLock()
	defer sourceKinds.RUnlock()
	names := make([]string, 0, len(sourceKinds.m))
	for k := range sourceKinds.m {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none are linked in"
	}
	return strings.Join(names, ", ")
}

// openSource parses the value of the config's "source" key: an object with
// exactly one key, a registered kind, whose value is that kind's document.
func openSource(doc []byte) (Source, error) {
	var kind string
	var body []byte
	n := 0
	err := strictjson.ScanObject(doc, func(key string, raw []byte) error {
		n++
		kind, body = key, raw
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: config: key \"source\": %v", channel.ErrInvalid, err)
	}
	if n != 1 {
		return nil, fmt.Errorf("%w: config: key \"source\": want an object with exactly one key naming the kind of source (%s), got %d keys",
			channel.ErrInvalid, sourceKindNames(), n)
	}
	sourceKinds.RLock()
	f := sourceKinds.m[kind]
	sourceKinds.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("%w: config: key \"source\": unknown kind of source %q (known: %s)", channel.ErrInvalid, kind, sourceKindNames())
	}
	if len(body) == 0 || body[0] != '{' {
		return nil, fmt.Errorf("%w: config: key \"source.%s\": expected an object", channel.ErrInvalid, kind)
	}
	return f(body)
}

// ---- the dispatcher's side ----

// startSource attaches s to d's channel and runs it.
func (d *Dispatcher) startSource(s Source) {
	d.src = s
	stop, cancel := context.WithCancel(context.Background())
	d.srcStop = cancel
	d.srcLink = &SourceLink{d: d, wake: make(chan struct{}, 1), stop: stop}
	d.ch.SetSourceWake(d.srcLink.wake)
	d.srcDone = make(chan struct{})
	go func() {
		defer close(d.srcDone)
		s.Run(stop, d.srcLink)
	}()
}
