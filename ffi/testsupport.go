package main

// Go-typed wrappers around the exports, for the tests in this package
// (test files cannot use cgo). They are small and never called by the
// library itself.

/*
#include <stdlib.h>
#include "../include/tasker.h"
#include "shim.h"
*/
import "C"

import (
	"unsafe"

	"github.com/tasker-systems/libtasker/runtime"
)

// callResult is what a wrapped call returned.
type callResult struct {
	status  int
	out     string // the output buffer, copied, when the call wrote one
	outNil  bool   // whether the out-pointer was NULL after the call
	outLen  int
	lastErr string
}

func lastError() string {
	var buf [4096]C.char
	n := C.tasker_last_error(&buf[0], C.size_t(len(buf)))
	return C.GoStringN(&buf[0], C.int(min(int(n), len(buf)-1)))
}

func takeOut(r *callResult, p *C.char, n C.size_t) {
	r.outNil = p == nil
	r.outLen = int(n)
	if p != nil {
		r.out = C.GoStringN(p, C.int(n))
		C.tasker_free(unsafe.Pointer(p))
	}
}

// registerBroken puts a zero Dispatcher (never made by New) into the
// registry: every method of it panics (nil channel), which provokes the
// recovery of rule 12.
func registerBroken() uint64 { return handles.add(new(runtime.Dispatcher)) }

// parkLayout returns shim.c's sizeof(struct park_slot) and the offsets of
// events.seq, events.waiters, events.receivers, completions.seq and
// completions.receivers, and the same numbers of the Go mirror (park.go).
func parkLayout() (c, goside [6]uintptr) {
	for i := range c {
		c[i] = uintptr(C.tshim_park_layout(C.int(i)))
	}
	var p parkSlot
	ev, co := unsafe.Offsetof(p.events), unsafe.Offsetof(p.completions)
	goside = [6]uintptr{unsafe.Sizeof(p), ev + unsafe.Offsetof(p.events.seq), ev + unsafe.Offsetof(p.events.waiters),
		ev + unsafe.Offsetof(p.events.receivers), co + unsafe.Offsetof(p.completions.seq),
		co + unsafe.Offsetof(p.completions.receivers)}
	return c, goside
}

func callNew(cfg string) (uint64, callResult) {
	var h C.tasker_t
	cs := C.CString(cfg)
	defer C.free(unsafe.Pointer(cs))
	st := C.tasker_new(cs, &h)
	return uint64(h), callResult{status: int(st), lastErr: lastError()}
}

func callDestroy(h uint64) callResult {
	return callResult{status: int(C.tasker_destroy(C.tasker_t(h))), lastErr: lastError()}
}

func callDispatch(h uint64, doc string, timeoutMs int32) (string, callResult) {
	var id [37]C.char
	p := C.CString(doc)
	defer C.free(unsafe.Pointer(p))
	st := C.tasker_dispatch(C.tasker_t(h), p, C.size_t(len(doc)), C.int32_t(timeoutMs), &id[0])
	return C.GoString(&id[0]), callResult{status: int(st), lastErr: lastError()}
}

func callPoll(h uint64, timeoutMs int32) callResult {
	garbage := C.malloc(1)
	defer C.free(garbage)
	p := (*C.char)(garbage) // must be reset to NULL unless the call succeeds
	var n C.size_t = 99
	st := C.tasker_poll(C.tasker_t(h), C.int32_t(timeoutMs), &p, &n)
	r := callResult{status: int(st), lastErr: lastError()}
	takeOut(&r, p, n)
	return r
}

func callPollBatch(h uint64, max uint32, timeoutMs int32) (int, callResult) {
	var p *C.char
	var n C.size_t
	var count C.uint32_t = 7
	st := C.tasker_poll_batch(C.tasker_t(h), C.uint32_t(max), C.int32_t(timeoutMs), &p, &n, &count)
	r := callResult{status: int(st), lastErr: lastError()}
	takeOut(&r, p, n)
	return int(count), r
}

func callComplete(h uint64, id, doc string) callResult { return callCompleteRaw(h, []byte(id), doc) }

// bytesUpTo copies b into exactly len(b) bytes of C memory (no NUL added)
// and returns what cBytesUpTo reads there with max = limit, copied.
func bytesUpTo(b []byte, limit int) []byte {
	p := C.malloc(C.size_t(max(len(b), 1)))
	defer C.free(p)
	copy(unsafe.Slice((*byte)(p), len(b)), b)
	return append([]byte(nil), cBytesUpTo((*C.char)(p), limit)...)
}

// cUUIDAt is cUUID on the bytes at p (C memory or an mmap'd page).
func cUUIDAt(p unsafe.Pointer) ([16]byte, bool) { return cUUID((*C.char)(p)) }

// callCompleteRaw calls tasker_complete with an event id of any bytes (a
// NUL is appended).
func callCompleteRaw(h uint64, id []byte, doc string) callResult {
	ci := C.CBytes(append(append([]byte(nil), id...), 0))
	defer C.free(ci)
	cd := C.CString(doc)
	defer C.free(unsafe.Pointer(cd))
	st := C.tasker_complete(C.tasker_t(h), (*C.char)(ci), cd, C.size_t(len(doc)))
	return callResult{status: int(st), lastErr: lastError()}
}

func callCheckpoint(h uint64, id, doc string) callResult {
	ci := C.CString(id)
	defer C.free(unsafe.Pointer(ci))
	cd := C.CString(doc)
	defer C.free(unsafe.Pointer(cd))
	st := C.tasker_checkpoint(C.tasker_t(h), ci, cd, C.size_t(len(doc)))
	return callResult{status: int(st), lastErr: lastError()}
}

func callCleanup(h uint64) (int, callResult) {
	var n C.uint32_t = 5
	st := C.tasker_cleanup_timeouts(C.tasker_t(h), &n)
	return int(n), callResult{status: int(st), lastErr: lastError()}
}

func callNext(h uint64, timeoutMs int32) callResult {
	var p *C.char
	var n C.size_t
	st := C.tasker_next_completion(C.tasker_t(h), C.int32_t(timeoutMs), &p, &n)
	r := callResult{status: int(st), lastErr: lastError()}
	takeOut(&r, p, n)
	return r
}

func callShutdown(h uint64, drainMs int32) callResult {
	return callResult{status: int(C.tasker_shutdown(C.tasker_t(h), C.int32_t(drainMs))), lastErr: lastError()}
}

func callStats(h uint64) callResult {
	var p *C.char
	var n C.size_t
	st := C.tasker_stats(C.tasker_t(h), &p, &n)
	r := callResult{status: int(st), lastErr: lastError()}
	takeOut(&r, p, n)
	return r
}

// outStores makes rounds of output and outputInPlace calls whose out-variable
// is a word of C memory set to old before each call: what an uninitialized
// C variable may hold (TestOutStoresLeaveTheOldCValueAlone). old is written
// as a uintptr, not with setOut: that would put a value that is no valid
// pointer in a Go pointer variable, which the collector may scan.
func outStores(old uintptr, rounds int) {
	out := (**C.char)(C.malloc(C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(out))
	dst := (*C.char)(C.malloc(64))
	defer C.free(unsafe.Pointer(dst))
	var n C.size_t
	doc := []byte(`{"ok":true}`)
	for i := 0; i < rounds; i++ {
		*(*uintptr)(unsafe.Pointer(out)) = old
		copy(unsafe.Slice((*byte)(unsafe.Pointer(dst)), 64), doc)
		outputInPlace(dst, len(doc), out, &n)
		*(*uintptr)(unsafe.Pointer(out)) = old
		output(doc, out, &n)
		C.free(unsafe.Pointer(*out))
	}
}
