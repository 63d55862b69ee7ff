package main

/*
#include <stdint.h>
#include "shim.h"
*/
import "C"

import (
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/tasker-systems/libtasker/internal/wire"
	"github.com/tasker-systems/libtasker/runtime"
)

// parkStream and parkSlot mirror struct park_stream and struct park_slot of
// shim.c (the C side of waiting outside Go): a thread that waits in
// tasker_poll_batch sleeps on seq there; one that waits in tasker_poll or
// tasker_next_completion (and their *_into) lists a receiver for a direct
// hand-off. The channel's waker (attachPark) calls wake below, outside the
// channel's lock, whenever a try may now succeed. The layouts must match
// field for field (TestParkSlotLayout checks).
type parkStream struct {
	seq, waiters, sleepers, receivers uint32
}

type parkSlot struct {
	events, completions parkStream
	live                uint32
	_                   [64 - 9*4]byte // one cache line, as in C
}

// The stream numbers shared with shim.c (its KEPT_EVENT, KEPT_COMPLETION).
const (
	streamEvents      = 0
	streamCompletions = 1
)

const (
	futexWakePrivate = 1 | 128 // FUTEX_WAKE | FUTEX_PRIVATE_FLAG
	wakeAll          = 1<<31 - 1
)

// wake tells the waiters of one stream of handle h that a try may now
// succeed. Called after the state change, with no channel lock held; it
// never waits for anything but the receiver list's short C mutex.
//
// It bumps the stream's eventcount, then:
//   - if a receiver of h is listed (a thread sleeping in tasker_poll or
//     tasker_next_completion), claims the oldest and hands it a document
//     taken now on its behalf (handOff): that thread returns without
//     entering Go. Nobody else is woken: the take's own state change wakes
//     the next waiter if more is there.
//   - otherwise wakes one sleeper of seq (tasker_poll_batch); every one
//     when two live handles share the slot (a wake-up must not go to
//     another handle's waiter).
//
// After shutdown began (all), every receiver and every sleeper is woken to
// try again: each has a new answer.
//
// The order matters: seq is bumped before receivers and sleepers are read,
// and a waiter raises them before it reads seq (shim.c), so either this
// sees the waiter or the waiter sees the new seq and tries again.
func (p *parkSlot) wake(h uint64, stream int, all bool, d *runtime.Dispatcher) {
	s := &p.events
	if stream == streamCompletions {
		s = &p.completions
	}
	if atomic.LoadUint32(&s.waiters) == 0 {
		return
	}
	atomic.AddUint32(&s.seq, 1)
	if atomic.LoadUint32(&s.receivers) > 0 {
		if all {
			C.tshim_rx_retry_all(unsafe.Pointer(p), C.int(stream))
		} else if r := C.tshim_rx_claim(unsafe.Pointer(p), C.int(stream), C.uint64_t(h)); r != nil {
			handOff(r, stream, d)
			return
		}
	}
	if atomic.LoadUint32(&s.sleepers) == 0 {
		return
	}
	n := 1
	if all || atomic.LoadUint32(&p.live) > 1 {
		n = wakeAll
	}
	syscall.RawSyscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(&s.seq)), futexWakePrivate, uintptr(n), 0, 0, 0)
}

// handOff takes one document of stream for the claimed receiver r, without
// waiting, and delivers it (shim.c copies it into the receiver's buffer or
// into malloc'd memory before it returns); if there is none any more
// (another caller took it, or the channel closed), it tells r to try again.
// r gets exactly one delivery, whatever happens here: a panic on the way
// still releases it (and goes on up).
func handOff(r unsafe.Pointer, stream int, d *runtime.Dispatcher) {
	delivered := false
	defer func() {
		if !delivered {
			C.tshim_rx_deliver(r, nil, 0)
		}
	}()
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	var doc []byte
	if stream == streamEvents {
		if ev, err := d.Poll(bg, 0); err == nil {
			doc = wire.AppendEventJSON((*bp)[:0], &ev)
		}
	} else if c, err := d.NextCompletion(bg, 0); err == nil {
		doc = wire.AppendCompletionJSON((*bp)[:0], &c)
	}
	if doc == nil {
		return
	}
	delivered = true
	C.tshim_rx_deliver(r, (*C.char)(unsafe.Pointer(&doc[0])), C.size_t(len(doc)))
	if cap(doc) <= 1<<16 {
		*bp = doc[:0] // keep a grown buffer, but not a huge one
	}
}

// attachPark counts h as live in its park slot and returns the waker to
// install on d's channel (runtime.Dispatcher.SetWaker); it hands documents
// of d to receivers of h. Undo with detachPark once h is destroyed.
func attachPark(h uint64, d *runtime.Dispatcher) func(events, completions, all bool) {
	p := (*parkSlot)(C.tshim_park_attach(C.uint64_t(h)))
	return func(events, completions, all bool) {
		if events {
			p.wake(h, streamEvents, all, d)
		}
		if completions {
			p.wake(h, streamCompletions, all, d)
		}
	}
}

func detachPark(h uint64) { C.tshim_park_detach(C.uint64_t(h)) }
