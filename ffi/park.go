package main

/*
#include <stdint.h>
#include "shim.h"
*/
import "C"

import (
	"sync/atomic"
	"unsafe"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/runtime"
)

// parkStream and parkSlot mirror struct park_stream and struct park_slot of
// shim.c (waiting outside Go, "the direct hand-off"): a thread that waits
// in tasker_poll, tasker_poll_batch, tasker_next_completion or an _into
// form lists a receiver there and sleeps on it. The channel's waker
// (attachPark) calls wake below, outside the channel's lock, whenever a try
// may now succeed. The layouts must match field for field
// (TestParkSlotLayout checks).
type parkStream struct {
	seq, waiters, receivers uint32
}

type parkSlot struct {
	events, completions parkStream
	_                   [64 - 6*4]byte // one cache line, as in C
}

// The stream numbers shared with shim.c (STREAM_EVENTS, STREAM_COMPLETIONS).
const (
	streamEvents      = 0
	streamCompletions = 1
)

// wake tells the waiters of one stream of handle h that a try may now
// succeed. Called after the state change, with no channel lock held; it
// never waits for anything but the receiver list's short C mutex.
//
// It bumps the stream's change count, then claims the oldest receiver of h
// and hands it a document taken now on its behalf (handOff): that thread
// returns without entering Go. Nobody else is woken: the take's own state
// change wakes the next receiver if more is there. After shutdown began
// (all), every receiver is told to try again instead: each has a new
// answer.
//
// The order matters: seq is bumped before receivers is read, and a waiter
// is counted in receivers before it reads seq (shim.c parked_take), so
// either this sees the waiter or the waiter sees the new seq and tries
// again.
func (p *parkSlot) wake(h uint64, stream int, all bool, d *runtime.Dispatcher) {
	s := &p.events
	if stream == streamCompletions {
		s = &p.completions
	}
	if atomic.LoadUint32(&s.waiters) == 0 {
		return
	}
	atomic.AddUint32(&s.seq, 1)
	if atomic.LoadUint32(&s.receivers) == 0 {
		return
	}
	if all {
		C.tshim_rx_retry_all(unsafe.Pointer(p), C.int(stream))
		return
	}
	var max C.uint32_t
	if r := C.tshim_rx_claim(unsafe.Pointer(p), C.int(stream), C.uint64_t(h), &max); r != nil {
		handOff(r, stream, uint32(max), d)
	}
}

// handOff takes, without waiting, what the claimed receiver r waits for
// (one event, up to max events as an array, or one completion) and
// delivers it (shim.c copies it into the receiver's buffer or into
// malloc'd memory before it returns); if there is none any more (another
// caller took it, or the channel closed), it tells r to try again. r gets
// exactly one delivery, whatever happens here: a panic on the way still
// releases it (and goes on up).
func handOff(r unsafe.Pointer, stream int, max uint32, d *runtime.Dispatcher) {
	delivered := false
	defer func() {
		if !delivered {
			C.tshim_rx_deliver(r, nil, 0, 0)
		}
	}()
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	var doc []byte
	var err error
	count := 1
	switch {
	case stream == streamCompletions:
		doc, err = nextCompletionJSON(d, (*bp)[:0], 0)
	case max > 0:
		doc, count, err = pollBatchJSON(d, (*bp)[:0], max, 0)
	default:
		doc, err = pollJSON(d, (*bp)[:0], 0)
	}
	if err != nil || count == 0 {
		return
	}
	delivered = true
	C.tshim_rx_deliver(r, (*C.char)(unsafe.Pointer(&doc[0])), C.size_t(len(doc)), C.uint32_t(count))
	if cap(doc) <= 1<<16 {
		*bp = doc[:0] // keep a grown buffer, but not a huge one
	}
}

// attachPark installs d's waker (runtime.Dispatcher.SetWaker): it hands
// documents of d to the receivers of h in h's park slot. Slots are static
// and shared by handles that are equal modulo their number; receivers are
// matched by handle. The slot's waiters counts are the channel's
// OutsideWaiters: a parked_take (shim.c) counts itself before its first try
// and leaves the count when it returns, as they require; a count shared
// with another handle only makes the channel call the waker for nothing.
func attachPark(h uint64, d *runtime.Dispatcher) {
	p := (*parkSlot)(C.tshim_park_slot(C.uint64_t(h)))
	d.SetWaker(func(events, completions, all bool) {
		if events {
			p.wake(h, streamEvents, all, d)
		}
		if completions {
			p.wake(h, streamCompletions, all, d)
		}
	}, channel.OutsideWaiters{Events: &p.events.waiters, Completions: &p.completions.waiters})
}
