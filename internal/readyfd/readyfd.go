// Package readyfd is a level-triggered readiness file descriptor: a file
// descriptor that a poll(2)/epoll/select caller sees readable exactly while
// its owner says "ready". On Linux it is an eventfd; elsewhere a pipe.
//
// The owner calls Set(true) and Set(false) on every change of its condition
// (from one goroutine at a time: the channel calls it under its watchers'
// lock, see channel.WatchReady); Set(true) always writes (a new edge for an
// edge-triggered waiter), Set(false) makes a system call only when the
// descriptor is readable. The descriptor is opened
// close-on-exec and non-blocking. Whoever waits on it must never read, write
// or close it: reading would clear the readiness behind the owner's back.
package readyfd

import (
	"fmt"
	"sync"
	"syscall"
)

// FD is one readiness descriptor. The zero value is not usable; make one
// with New.
type FD struct {
	mu     sync.Mutex
	rfd    int // the descriptor handed out (waited on)
	wfd    int // where readiness is written (== rfd for an eventfd)
	ready  bool
	closed bool
}

// New opens a readiness descriptor, initially not readable.
func New() (*FD, error) {
	r, w, err := open()
	if err != nil {
		return nil, fmt.Errorf("readiness fd: %w", err)
	}
	return &FD{rfd: r, wfd: w}, nil
}

// Fd is the descriptor to wait on (valid until Close).
func (f *FD) Fd() int { return f.rfd }

// Ready reports the state last Set.
func (f *FD) Ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

// Set makes the descriptor readable (true) or not (false), and does
// nothing after Close. Set(false) makes a system call only when the
// descriptor is readable. Set(true) always writes, also when it is already
// readable: the write is a new edge for an edge-triggered waiter (EPOLLET),
// which the caller owes it after a change it could not show (the channel
// was briefly not ready and is ready again; see channel.WatchReady).
func (f *FD) Set(ready bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	if ready {
		raise(f.wfd)
	} else if f.ready {
		drain(f.rfd)
	}
	f.ready = ready
}

// Close closes the descriptor(s). Idempotent. The descriptor is left in
// the state last Set: a dup() of it made by a waiter stays as readable as
// it was.
func (f *FD) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	err := syscall.Close(f.rfd)
	if f.wfd != f.rfd {
		if e := syscall.Close(f.wfd); err == nil {
			err = e
		}
	}
	return err
}

// retry runs a system call again while it is interrupted by a signal (the
// Go runtime's SIGURG among them).
func retry(call func() error) error {
	for {
		err := call()
		if err != syscall.EINTR {
			return err
		}
	}
}
