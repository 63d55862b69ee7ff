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
)

// parkStream and parkSlot mirror struct park_stream and struct park_slot of
// shim.c (the C side of waiting outside Go): a thread that waits in
// tasker_poll, tasker_poll_batch or tasker_next_completion sleeps on seq
// there, and the channel's waker (attachPark) calls wake below, outside the
// channel's lock, whenever a try may now succeed. The layouts must match
// field for field (TestParkSlotLayout checks).
type parkStream struct {
	seq, waiters, sleepers uint32
}

type parkSlot struct {
	events, completions parkStream
	live                uint32
	_                   [64 - 7*4]byte // one cache line, as in C
}

const (
	futexWakePrivate = 1 | 128 // FUTEX_WAKE | FUTEX_PRIVATE_FLAG
	wakeAll          = 1<<31 - 1
)

// wake bumps the eventcount of a stream somebody waits on and, if one of
// them sleeps, wakes one (every one when two live handles share the slot:
// a wake-up must not go to another handle's waiter; and when all is set:
// after shutdown began every waiter has a new answer). Called after the
// state change, with no lock held; it never blocks. The order matters:
// seq is bumped before sleepers is read, and a waiter raises sleepers
// before the futex reads seq (shim.c park_wait), so either this sees the
// sleeper or the sleeper sees the new seq.
func (p *parkSlot) wake(s *parkStream, all bool) {
	if atomic.LoadUint32(&s.waiters) == 0 {
		return
	}
	atomic.AddUint32(&s.seq, 1)
	if atomic.LoadUint32(&s.sleepers) == 0 {
		return
	}
	n := 1
	if all || atomic.LoadUint32(&p.live) > 1 {
		n = wakeAll
	}
	syscall.RawSyscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(&s.seq)), futexWakePrivate, uintptr(n), 0, 0, 0)
}

// attachPark counts h as live in its park slot and returns the waker to
// install on its channel (runtime.Dispatcher.SetWaker). Undo with
// detachPark once h is destroyed.
func attachPark(h uint64) func(events, completions, all bool) {
	p := (*parkSlot)(C.tshim_park_attach(C.uint64_t(h)))
	return func(events, completions, all bool) {
		if events {
			p.wake(&p.events, all)
		}
		if completions {
			p.wake(&p.completions, all)
		}
	}
}

func detachPark(h uint64) { C.tshim_park_detach(C.uint64_t(h)) }
