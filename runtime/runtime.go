// Package runtime is the goroutine dispatcher around a channel.Channel: it
// routes dispatched events to Go handlers or to FFI workers, runs Go handlers
// in goroutines under the channel's concurrency bound with a timeout and
// panic recovery, runs post-handler callbacks, runs the reaper, and shuts all
// of it down.
//
// Every event ends in the channel (package channel holds the queues, the
// pending map and the completion stream under one lock); this package owns
// only goroutines. A Dispatcher's methods are safe for concurrent use.
package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/wire"
)

// Handler runs one step in Go. ctx is cancelled at the event's timeout and
// at the shutdown deadline; a handler should return soon after. A returned
// error becomes a handler_error failure (retryable unless the error has a
// method Retryable() bool that says otherwise); a panic becomes a
// handler_panic failure (not retryable).
type Handler interface {
	Handle(ctx context.Context, ev *channel.Event) (channel.Result, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, ev *channel.Event) (channel.Result, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, ev *channel.Event) (channel.Result, error) {
	return f(ctx, ev)
}

// Callback is a post-handler callback. It runs on the dispatcher's callback
// goroutine, after its completion is in the stream, in stream order; never on
// a caller's thread. A panic is recovered and counted.
type Callback func(channel.Completion)

type options struct {
	handlers  map[string]Handler
	callbacks []Callback
	grace     time.Duration
	sources   map[string]string
	source    Source
}

// Option configures a Dispatcher.
type Option func(*options)

// WithHandler routes events whose handler name is name to h, run in Go.
// Every other handler name goes to FFI workers (Poll).
func WithHandler(name string, h Handler) Option {
	return func(o *options) { o.handlers[name] = h }
}

// WithCallback adds a post-handler callback. Callbacks are bounded: they run
// one at a time from a queue of completion_buffer_size entries; when a slow
// callback lets that queue fill, later callbacks are dropped (and counted in
// Stats as callbacks_dropped) rather than stalling the completion stream.
func WithCallback(cb Callback) Option {
	return func(o *options) { o.callbacks = append(o.callbacks, cb) }
}

// WithShutdownGrace sets how long Shutdown waits, after the last event has
// ended, for Go handler goroutines and a running callback to return
// (default 1s). Past it, Shutdown returns and they finish on their own.
func WithShutdownGrace(d time.Duration) Option {
	return func(o *options) { o.grace = d }
}

// Dispatcher is the goroutine dispatcher. Make one with New; end it with
// Shutdown (or Close).
type Dispatcher struct {
	cfg       Config
	ch        *channel.Channel
	handlers  map[string]Handler
	callbacks []Callback
	grace     time.Duration
	sources   map[string]string // config key -> where its value came from; read-only

	root       context.Context
	cancelRoot context.CancelFunc
	stop       chan struct{} // closed when shutdown has ended every event
	stopOnce   sync.Once
	loops      sync.WaitGroup // go-handler loop and reaper
	handlersWG sync.WaitGroup

	cbq       chan channel.Completion
	cbDone    chan struct{}
	cbDrop    atomic.Bool
	cbRun     atomic.Uint64
	cbPanic   atomic.Uint64
	cbDropped atomic.Uint64

	// the source, when one is attached (source.go); fixed by New
	src     Source
	srcLink *SourceLink
	srcStop context.CancelFunc // stop reading: Shutdown began
	srcDone chan struct{}      // closed when Source.Run has returned

	ready readyFDs // readiness descriptors (readyfd.go)
}

// sourceGrace bounds how long Shutdown waits for a source's Run to return
// after every event has ended (a source bounds its own final writes; this
// is the backstop).
var sourceGrace = 30 * time.Second

// New makes a dispatcher and starts its goroutines: the Go-handler loop
// (when handlers are registered), the reaper (when cleanup_interval_ms > 0),
// the callback goroutine (when callbacks are registered) and the source
// (WithSource, or the config's "source" key; it connects in the
// background: New never waits for it).
func New(cfg Config, opts ...Option) (*Dispatcher, error) {
	o := options{handlers: map[string]Handler{}, grace: time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	for name, h := range o.handlers {
		if name == "" || h == nil {
			return nil, fmt.Errorf("%w: handler names must be non-empty and handlers non-nil", channel.ErrInvalid)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.source == nil && cfg.Source != nil {
		s, err := openSource(cfg.Source)
		if err != nil {
			return nil, err
		}
		o.source = s
	}
	ch, err := channel.New(cfg.Config)
	if err != nil {
		return nil, err
	}
	d := &Dispatcher{
		cfg:       cfg,
		ch:        ch,
		handlers:  o.handlers,
		callbacks: o.callbacks,
		grace:     o.grace,
		sources:   o.sources,
		stop:      make(chan struct{}),
	}
	d.root, d.cancelRoot = context.WithCancel(context.Background())
	if len(d.callbacks) > 0 {
		d.cbq = make(chan channel.Completion, cfg.CompletionBufferSize)
		d.cbDone = make(chan struct{})
		ch.SetEndHook(func(c *channel.Completion) {
			select {
			case d.cbq <- *c:
			default:
				d.cbDropped.Add(1)
			}
		})
		go d.callbackLoop()
	}
	if o.source != nil {
		d.startSource(o.source)
	}
	if len(d.handlers) > 0 {
		d.loops.Add(1)
		go d.goLoop()
	}
	if cfg.CleanupIntervalMs > 0 {
		d.loops.Add(1)
		go d.reaper(cfg.CleanupInterval())
	}
	return d, nil
}

// SetWaker installs fn on the dispatcher's channel (channel.Channel.SetWaker):
// called after every state change that lets a zero-timeout Poll or
// NextCompletion return something, outside the channel's lock, for a
// stream whose count in waiting is not 0. The C ABI uses it to wake threads
// parked outside Go. Call before the dispatcher is used.
func (d *Dispatcher) SetWaker(fn func(events, completions, all bool), waiting channel.OutsideWaiters) {
	d.ch.SetWaker(fn, waiting)
}

// Config returns the dispatcher's config.
func (d *Dispatcher) Config() Config { return d.cfg }

// Dispatch queues ev: to a Go handler if one is registered under
// ev.Handler, else for FFI workers. See channel.Channel.Enqueue for the
// defaults it fills in and its errors (ErrInvalid, ErrTooBig, ErrFull after
// waiting up to timeout for room, ErrShutdown).
func (d *Dispatcher) Dispatch(ctx context.Context, ev channel.Event, timeout time.Duration) (uuid.UUID, error) {
	return d.ch.Enqueue(ctx, ev, d.route(ev.Handler), timeout)
}

// DispatchJSON parses a dispatch document (wire.ParseDispatchInto) and
// dispatches it; a document that does not parse counts in rejected_invalid.
func (d *Dispatcher) DispatchJSON(ctx context.Context, doc []byte, timeout time.Duration) (uuid.UUID, error) {
	return d.ch.EnqueueJSON(ctx, doc, wire.ParseDispatchInto, d.route, timeout)
}

// RejectDispatch counts in rejected_invalid a dispatch refused before its
// document was read (the C layer checks the length first so that an
// oversized buffer is never touched) and returns err.
func (d *Dispatcher) RejectDispatch(err error) error {
	d.ch.RecordRejected()
	return err
}

// route sends a handler name to a Go handler when one is registered under
// it, else to FFI workers.
func (d *Dispatcher) route(handler string) channel.Kind {
	if _, ok := d.handlers[handler]; ok {
		return channel.KindGo
	}
	return channel.KindFFI
}

// Poll takes one event for an FFI worker (channel.Channel.Poll).
func (d *Dispatcher) Poll(ctx context.Context, timeout time.Duration) (channel.Event, error) {
	return d.ch.Poll(ctx, timeout)
}

// PollInto is Poll storing the event in *dst (left alone on an error).
func (d *Dispatcher) PollInto(ctx context.Context, timeout time.Duration, dst *channel.Event) error {
	return d.ch.PollInto(ctx, timeout, dst)
}

// PollBatch takes up to max events for an FFI worker, waiting only for the first.
func (d *Dispatcher) PollBatch(ctx context.Context, max int, timeout time.Duration) ([]channel.Event, error) {
	return d.ch.PollBatch(ctx, max, timeout)
}

// PollBatchAppend is PollBatch appending to dst (channel.Channel.PollBatchAppend).
func (d *Dispatcher) PollBatchAppend(ctx context.Context, max int, timeout time.Duration, dst []channel.Event) ([]channel.Event, error) {
	return d.ch.PollBatchAppend(ctx, max, timeout, dst)
}

// Complete ends a pending FFI event with r. Never waits.
func (d *Dispatcher) Complete(id uuid.UUID, r channel.Result) error {
	return d.ch.Complete(id, r)
}

// CompleteJSON parses a result document (wire.ParseResult) and completes
// the event. A document that does not parse leaves the event pending.
func (d *Dispatcher) CompleteJSON(id uuid.UUID, doc []byte) error {
	return d.ch.CompleteJSON(id, doc, wire.ParseResult)
}

// Checkpoint ends the current run of a pending FFI event without a
// completion and sends it back to the queue with cp (channel.Checkpoint).
// Never waits.
func (d *Dispatcher) Checkpoint(id uuid.UUID, cp channel.Checkpoint) error {
	return d.ch.Checkpoint(id, cp)
}

// CheckpointJSON parses a checkpoint document (wire.ParseCheckpoint) and
// applies it. A document that does not parse changes nothing.
func (d *Dispatcher) CheckpointJSON(id uuid.UUID, doc []byte) error {
	return d.ch.CheckpointJSON(id, doc, wire.ParseCheckpoint)
}

// CleanupTimeouts ends every pending FFI event past its deadline with an
// ffi_timeout result; returns how many. Never waits.
func (d *Dispatcher) CleanupTimeouts() int { return d.ch.CleanupTimeouts() }

// NextCompletion takes the next completion from the stream.
func (d *Dispatcher) NextCompletion(ctx context.Context, timeout time.Duration) (channel.Completion, error) {
	return d.ch.NextCompletion(ctx, timeout)
}

// NextCompletionInto is NextCompletion storing the completion in *dst (left
// alone on an error).
func (d *Dispatcher) NextCompletionInto(ctx context.Context, timeout time.Duration, dst *channel.Completion) error {
	return d.ch.NextCompletionInto(ctx, timeout, dst)
}

// Stats returns the channel's snapshot plus the dispatcher's counters
// (read just after the snapshot, without the channel's lock).
func (d *Dispatcher) Stats() Stats {
	s := Stats{
		Stats:             d.ch.Stats(),
		CallbacksRun:      d.cbRun.Load(),
		CallbacksPanicked: d.cbPanic.Load(),
		CallbacksDropped:  d.cbDropped.Load(),
		ConfigSources:     d.sources,
	}
	if d.src != nil {
		ss := d.src.Stats()
		s.Source = &ss
	}
	return s
}

// Shutdown stops intake, lets workers and Go handlers drain until now+drain
// (drain < 0: no deadline), cancels what is left (channel.Channel.Shutdown),
// then cancels the context of Go handlers still running and stops the
// dispatcher's goroutines. It returns once every event has ended and the
// dispatcher's own goroutines have exited; Go handlers and a running
// callback get up to the shutdown grace to return. Idempotent; a later call
// may bring the deadline closer, never push it back.
func (d *Dispatcher) Shutdown(drain time.Duration) {
	start := time.Now()
	if d.srcStop != nil {
		d.srcStop() // the source stops reading before intake closes
	}
	d.ch.Shutdown(drain)
	d.stopOnce.Do(func() {
		d.cancelRoot()
		close(d.stop)
		if d.cbq != nil {
			close(d.cbq) // no event can end any more: the hook is never called again
		}
	})
	d.loops.Wait()
	if d.cbq != nil {
		// queued callbacks may run until the drain deadline; then the rest are dropped
		var deadline <-chan time.Time
		if drain >= 0 {
			t := time.NewTimer(max(drain-time.Since(start), 0))
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-d.cbDone:
		case <-deadline:
			d.cbDrop.Store(true)
			waitOrGrace(d.cbDone, d.grace)
		}
	}
	if d.srcDone != nil {
		// every event has ended: the source writes what it took and returns
		waitOrGrace(d.srcDone, sourceGrace)
	}
	idle := make(chan struct{})
	go func() { d.handlersWG.Wait(); close(idle) }()
	waitOrGrace(idle, d.grace)
}

func waitOrGrace(done <-chan struct{}, grace time.Duration) {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// Close shuts down with no drain and discards completions not yet taken
// (what tasker_destroy does), then closes the readiness descriptors.
func (d *Dispatcher) Close() {
	d.Shutdown(0)
	d.ch.Discard()
	d.closeReadyFDs()
}

// ---- goroutines ----

func (d *Dispatcher) reaper(every time.Duration) {
	defer d.loops.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			d.ch.CleanupTimeouts()
		}
	}
}

// goLoop starts Go handlers: it takes one event at a time, within the
// channel's running bound (the semaphore), and runs it in a goroutine. It
// exits when the channel is closed and no Go event is queued; events it never
// took are cancelled by the channel, so none is skipped silently.
func (d *Dispatcher) goLoop() {
	defer d.loops.Done()
	for {
		t, err := d.ch.TakeGo(d.root, -1)
		if err != nil {
			if errors.Is(err, channel.ErrClosed) || d.root.Err() != nil {
				return
			}
			continue
		}
		d.handlersWG.Add(1)
		go d.run(t)
	}
}

func (d *Dispatcher) run(t *channel.GoTask) {
	defer d.handlersWG.Done()
	ev := *t.Event() // the handler gets its own copy
	h := d.handlers[ev.Handler]
	timeout := time.Duration(ev.TimeoutMs) * time.Millisecond
	ctx, cancel := context.WithTimeout(d.root, timeout)
	defer cancel()
	timedOut := channel.Result{Error: &channel.ErrorInfo{
		Message:   fmt.Sprintf("handler %q did not return within %d ms", ev.Handler, ev.TimeoutMs),
		ErrorType: channel.ErrorTypeHandlerTimeout,
		Retryable: true,
	}}
	// At the deadline the event ends as a timeout at once, whether or not
	// the handler honours ctx; the goroutine keeps its slot until it returns.
	stop := context.AfterFunc(ctx, func() {
		if ctx.Err() == context.DeadlineExceeded {
			d.ch.FinishGo(t, channel.StatusTimeout, timedOut, false)
		}
	})
	status, res := invoke(ctx, h, &ev, d.cfg.MaxPayloadBytes)
	stop()
	if ctx.Err() == context.DeadlineExceeded {
		// Returned at or after the deadline: a timeout, whichever of this
		// goroutine and the AfterFunc reaches the channel first.
		status, res = channel.StatusTimeout, timedOut
	}
	d.ch.FinishGo(t, status, res, true)
}

// invoke runs h, turning an error, a panic or an invalid result into a failure.
func invoke(ctx context.Context, h Handler, ev *channel.Event, maxBytes int) (status channel.CompletionStatus, res channel.Result) {
	defer func() {
		if p := recover(); p != nil {
			meta, _ := json.Marshal(map[string]string{"panic": validUTF8(fmt.Sprint(p)), "stack": validUTF8(string(debug.Stack()))})
			status, res = channel.StatusFailed, channel.Result{
				Error: &channel.ErrorInfo{
					Message:   validUTF8(fmt.Sprintf("handler %q panicked: %v", ev.Handler, p)),
					ErrorType: channel.ErrorTypeHandlerPanic,
					Retryable: false,
				},
				Metadata: meta,
			}
		}
	}()
	r, err := h.Handle(ctx, ev)
	if err != nil {
		retryable := true
		var re interface{ Retryable() bool }
		if errors.As(err, &re) {
			retryable = re.Retryable()
		}
		return channel.StatusFailed, channel.Result{Error: &channel.ErrorInfo{
			Message: validUTF8(err.Error()), ErrorType: channel.ErrorTypeHandlerError, Retryable: retryable,
		}}
	}
	if err := channel.ValidateResult(&r, maxBytes); err != nil {
		return channel.StatusFailed, channel.Result{Error: &channel.ErrorInfo{
			Message:   validUTF8(fmt.Sprintf("handler %q returned an invalid result: %v", ev.Handler, err)),
			ErrorType: channel.ErrorTypeHandlerError, Retryable: true, // docs/ABI.md: every handler_error is retryable
		}}
	}
	if r.Success {
		return channel.StatusCompleted, r
	}
	return channel.StatusFailed, r
}

// validUTF8 replaces invalid UTF-8 (from a handler's error text or panic
// value) so that every completion document is valid JSON text.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func (d *Dispatcher) callbackLoop() {
	defer close(d.cbDone)
	for c := range d.cbq {
		if d.cbDrop.Load() {
			d.cbDropped.Add(1)
			continue
		}
		for _, cb := range d.callbacks {
			d.runCallback(cb, c)
		}
	}
}

func (d *Dispatcher) runCallback(cb Callback, c channel.Completion) {
	defer func() {
		if recover() != nil {
			d.cbPanic.Add(1)
		}
	}()
	cb(c)
	d.cbRun.Add(1)
}
