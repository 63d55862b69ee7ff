package runtime

import (
	"errors"
	"fmt"
	"sync"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/readyfd"
)

// ErrReadyClosed is ReadyFD's error once Close has run (the C layer reports
// it as TASKER_EBADF: the handle is being destroyed).
var ErrReadyClosed = errors.New("the dispatcher is closed")

// readyFDs holds a dispatcher's readiness descriptors, opened on first use
// (a channel nobody waits on through a descriptor costs no descriptor and no
// system call).
type readyFDs struct {
	mu     sync.Mutex
	fds    [2]*readyfd.FD
	closed bool
}

// ReadyFD returns the readiness descriptor of s (what tasker_event_fd and
// tasker_completion_fd hand out): level-triggered, readable when a
// zero-timeout Poll (channel.StreamEvents) or NextCompletion
// (channel.StreamCompletions) would return something, an event, a
// completion or ErrClosed, updated right after each change (see
// channel.WatchReady). The first call opens it; later calls return the
// same descriptor. The dispatcher owns it and closes it in Close, after
// making it readable; callers only wait on it. After Close: ErrReadyClosed.
// Safe for concurrent use.
func (d *Dispatcher) ReadyFD(s channel.Stream) (int, error) {
	if s != channel.StreamEvents && s != channel.StreamCompletions {
		return -1, fmt.Errorf("%w: unknown stream %d", channel.ErrInvalid, s)
	}
	r := &d.ready
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return -1, ErrReadyClosed
	}
	if f := r.fds[s]; f != nil {
		return f.Fd(), nil
	}
	f, err := readyfd.New()
	if err != nil {
		// no descriptor left (EMFILE/ENFILE) or no memory: not a bug, but
		// there is no better status in ABI version 1
		return -1, fmt.Errorf("%w: %s readiness: %v", channel.ErrInternal, s, err)
	}
	d.ch.WatchReady(s, f.Set)
	r.fds[s] = f
	return f.Fd(), nil
}

// closeReadyFDs makes every opened descriptor readable, detaches it from
// the channel (so that no later state change writes to a closed descriptor
// number, which the process may have reused) and closes it. A dup() a
// waiter made stays readable for ever.
func (d *Dispatcher) closeReadyFDs() {
	r := &d.ready
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	for s, f := range r.fds {
		if f == nil {
			continue
		}
		d.ch.WatchReady(channel.Stream(s), nil)
		f.Set(true)
		_ = f.Close()
		r.fds[s] = nil
	}
}
