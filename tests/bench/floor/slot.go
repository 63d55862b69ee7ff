package main

/*
#include <stddef.h>
*/
import "C"

import (
	"unsafe"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/wire"
)

// The one-slot floor: the four calls of a C round trip (tasker_dispatch,
// tasker_poll_into, tasker_complete, tasker_next_completion_into) doing the
// library's JSON work with the library's codec, with one event slot where
// the library has its channel: no queue, lock, id map, pending list,
// deadline heap, stats, handle lookup or error bookkeeping. What the
// library's round trip costs beyond it is the channel's and the export
// layer's own work. One thread only (floor.c, mode slot); not a library.
var slot struct {
	ev   channel.Event
	comp channel.Completion
	buf  []byte
	n    uint64
}

func init() { slot.buf = make([]byte, 0, 4096) }

// slotCopy writes doc and a NUL into the caller's buffer of capacity cap.
func slotCopy(doc []byte, dst *C.char, capacity C.size_t, n *C.size_t) C.int {
	if C.size_t(len(doc)) >= capacity {
		return -1
	}
	out := unsafe.Slice((*byte)(unsafe.Pointer(dst)), len(doc)+1)
	out[copy(out, doc)] = 0
	*n = C.size_t(len(doc))
	return 0
}

//export bench_slot_dispatch
func bench_slot_dispatch(doc *C.char, n C.size_t, idOut *C.char) C.int {
	slot.ev = channel.Event{}
	if err := wire.ParseDispatchInto(unsafe.Slice((*byte)(unsafe.Pointer(doc)), int(n)), 1<<20, &slot.ev); err != nil {
		return -1
	}
	slot.n++
	var id uuid.UUID // a counter in a version-7 layout: ids need not be random here
	id[6], id[8] = 0x70, 0x80
	for i := range 8 {
		id[15-i] = byte(slot.n >> (8 * i))
	}
	slot.ev.EventID, slot.ev.CorrelationID = id, id
	slot.ev.DispatchedAt = channel.Now()
	out := unsafe.Slice((*byte)(unsafe.Pointer(idOut)), 37)
	out[len(wire.AppendUUIDText(out[:0], id))] = 0
	return 0
}

//export bench_slot_poll_into
func bench_slot_poll_into(dst *C.char, capacity C.size_t, n *C.size_t) C.int {
	slot.ev.PolledAt = channel.Now()
	slot.buf = wire.AppendEventJSON(slot.buf[:0], &slot.ev)
	return slotCopy(slot.buf, dst, capacity, n)
}

//export bench_slot_complete
func bench_slot_complete(id *C.char, doc *C.char, n C.size_t) C.int {
	u, err := uuid.ParseBytes(unsafe.Slice((*byte)(unsafe.Pointer(id)), 36))
	if err != nil || u != slot.ev.EventID {
		return -1
	}
	r, err := wire.ParseResult(unsafe.Slice((*byte)(unsafe.Pointer(doc)), int(n)), 1<<20)
	if err != nil {
		return -1
	}
	ev := &slot.ev
	slot.comp = channel.Completion{EventID: ev.EventID, TaskUUID: ev.TaskUUID, StepUUID: ev.StepUUID,
		CorrelationID: ev.CorrelationID, Handler: ev.Handler, Status: channel.StatusCompleted,
		Success: r.Success, Result: r.Result, Error: r.Error, Metadata: r.Metadata,
		DispatchedAt: ev.DispatchedAt, PolledAt: ev.PolledAt, CompletedAt: channel.Now()}
	return 0
}

//export bench_slot_next_into
func bench_slot_next_into(dst *C.char, capacity C.size_t, n *C.size_t) C.int {
	slot.buf = wire.AppendCompletionJSON(slot.buf[:0], &slot.comp)
	return slotCopy(slot.buf, dst, capacity, n)
}
