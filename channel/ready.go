package channel

// Readiness: what a caller that cannot block in Poll or NextCompletion (an
// event loop, a fiber scheduler) waits on. The channel tells a watcher, with
// its lock held, every time the answer of a zero-timeout call changes
// between "something" and ErrEmpty; package runtime turns that into a file
// descriptor (tasker_event_fd, tasker_completion_fd).

// Stream names what a readiness watcher follows.
type Stream uint8

const (
	// StreamEvents is ready while Poll(ctx, 0) (and PollBatch) would return
	// an event or ErrClosed: an FFI event is queued and the bounds of rule 3
	// let one start, or shutdown began and no FFI event is queued.
	StreamEvents Stream = iota
	// StreamCompletions is ready while NextCompletion(ctx, 0) would return a
	// completion or ErrClosed: the stream is not empty, or shutdown began
	// and every event has ended.
	StreamCompletions
)

// String names the stream.
func (s Stream) String() string {
	if s == StreamEvents {
		return "events"
	}
	return "completions"
}

type readyWatch struct {
	fn   func(ready bool)
	last bool
}

// WatchReady installs fn as the readiness watcher of s, replacing any
// other; nil removes it. fn is called at once with the current readiness,
// then after every state change that flips it, always with the channel's
// lock held (so in the same critical section as the change: a waiter that
// sees "ready" and then calls Poll(ctx, 0) finds the event unless another
// caller took it first). fn must not block and must not call back into the
// channel. Once WatchReady(s, nil) has returned, the old fn is never called
// again.
func (c *Channel) WatchReady(s Stream, fn func(ready bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &c.ready[s]
	w.fn = fn
	if fn != nil {
		w.last = c.readyLocked(s)
		fn(w.last)
	}
}

// Ready reports whether a zero-timeout Poll (StreamEvents) or
// NextCompletion (StreamCompletions) would return something now.
func (c *Channel) Ready(s Stream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readyLocked(s)
}

// readyLocked mirrors the conditions of take (KindFFI) and NextCompletion.
func (c *Channel) readyLocked(s Stream) bool {
	if s == StreamEvents {
		q := c.queues[KindFFI].len()
		return (q > 0 && c.budgetLocked() > 0) || (q == 0 && c.closing)
	}
	return c.stream.len() > 0 || (c.closing && c.allEndedLocked())
}

// notifyReadyLocked tells each watcher about a changed readiness. Called at
// the end of kickLocked, which follows every state change.
func (c *Channel) notifyReadyLocked() {
	for s := range c.ready {
		w := &c.ready[s]
		if w.fn == nil {
			continue
		}
		if r := c.readyLocked(Stream(s)); r != w.last {
			w.last = r
			w.fn(r)
		}
	}
}
