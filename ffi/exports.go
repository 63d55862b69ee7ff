// Command ffi is libtasker's C ABI, built with
//
//	go build -buildmode=c-shared -o build/libtasker.so ./ffi
//
// It converts C arguments to Go values, calls package runtime, converts the
// results back and maps errors to status codes; nothing else. The public
// tasker_* symbols are defined by the C shim (shim.c), which checks for a
// forked child before entering Go and keeps the thread-local last error; the
// Go exports below are named tgo_* and are hidden from the library's dynamic
// symbol table by the linker version script.
package main

/*
#cgo CFLAGS: -O2 -Wall -Wextra
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "shim.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/google/uuid"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/cabi"
	"github.com/tasker-systems/libtasker/internal/wire"
	"github.com/tasker-systems/libtasker/runtime"
)

func main() {}

// ---- conversions ----

// fail returns err's status and, for a failure (a negative status),
// records it as the calling thread's last error. EMPTY and CLOSED are
// answers, not failures: they leave the last error as it was (docs/ABI.md).
func fail(fn string, err error) C.int {
	st := cabi.Status(err)
	if st < 0 {
		setError(fmt.Sprintf("%s: %v", fn, err))
	}
	return C.int(st)
}

func setError(msg string) {
	if msg == "" {
		return
	}
	C.tshim_set_error((*C.char)(unsafe.Pointer(unsafe.StringData(msg))), C.size_t(len(msg)))
}

// guard turns a panic into TASKER_EINTERNAL (rule 12). Use as
// `defer guard("tasker_x", &st, cleanup)`; cleanup resets out-pointers.
func guard(fn string, st *C.int, cleanup func()) {
	if p := recover(); p != nil {
		if cleanup != nil {
			func() {
				defer func() { _ = recover() }()
				cleanup()
			}()
		}
		*st = fail(fn, fmt.Errorf("%w: recovered panic: %v", channel.ErrInternal, p))
	}
}

// lookup resolves a handle.
func lookup(h C.uint64_t) (*runtime.Dispatcher, error) {
	if d, ok := handles.get(uint64(h)); ok {
		return d, nil
	}
	return nil, badHandle(h)
}

func badHandle(h C.uint64_t) error {
	if h == 0 {
		return fmt.Errorf("%w: handle 0 is never valid", cabi.ErrBadHandle)
	}
	return fmt.Errorf("%w: handle %d is unknown or destroyed", cabi.ErrBadHandle, uint64(h))
}

// timeout converts the ABI's timeout_ms (0 never waits, > 0 waits, -1 waits
// until something arrives or shutdown) to the Go convention.
func timeout(ms C.int32_t) (time.Duration, error) {
	switch {
	case ms == -1:
		return -1, nil
	case ms < -1:
		return 0, fmt.Errorf("%w: timeout_ms = %d (use 0 for no wait, a positive number of ms, or -1 to wait without limit)",
			channel.ErrInvalid, int32(ms))
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// input views a borrowed C buffer of n bytes without copying. It checks NULL
// and max (when > 0) first, so that an oversized length is never touched.
func input(what string, p *C.char, n C.size_t, max int) ([]byte, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: %s is NULL", channel.ErrInvalid, what)
	}
	if max > 0 && uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %s: %d bytes is larger than max_payload_bytes (%d)", channel.ErrTooBig, what, uint64(n), max)
	}
	if n == 0 {
		return []byte{}, nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)), nil
}

// outputInPlace hands out a document of n bytes already built in the
// buffer dst, which has room for its NUL: no malloc, no copy, no free.
func outputInPlace(dst *C.char, size int, out **C.char, n *C.size_t) {
	*(*byte)(unsafe.Add(unsafe.Pointer(dst), size)) = 0
	setOut(out, dst)
	*n = C.size_t(size)
}

// output copies b into a malloc'd, NUL-terminated buffer owned by the caller
// (freed with tasker_free).
func output(b []byte, out **C.char, n *C.size_t) {
	p := (*C.char)(C.malloc(C.size_t(len(b) + 1)))
	if p == nil {
		panic("malloc failed")
	}
	buf := unsafe.Slice((*byte)(unsafe.Pointer(p)), len(b)+1)
	copy(buf, b)
	buf[len(b)] = 0
	setOut(out, p)
	*n = C.size_t(len(b))
}

// setOut stores v in *out, a char * of C's (the caller's out-variable), as
// a plain machine store. Never `*out = v`: the compiler puts the garbage
// collector's write barrier on every store through a pointer to a pointer,
// and while the collector marks, that barrier reads the old value of *out
// and marks it as if it were a Go pointer. C memory is not Go's to read
// that way: an out-variable left uninitialized holds old stack contents,
// and one that looked like a pointer into the Go heap made the collector
// mark a free object, which corrupted the heap (a crash in one run out of
// 20 to 80 with GOMAXPROCS=3: tests/bench/NOTES.md, item 13). shim.c also
// initializes its out-variables, but this store must not depend on it.
func setOut(out **C.char, v *C.char) {
	*(*uintptr)(unsafe.Pointer(out)) = uintptr(unsafe.Pointer(v))
}

// clearOutInto is clearOut for a call that may have written into the
// caller's buffer dst: that one is the caller's, never freed.
func clearOutInto(dst *C.char, out **C.char, n *C.size_t) func() {
	return func() {
		if out != nil && *out == dst {
			setOut(out, nil)
		}
		clearOut(out, n)()
	}
}

func clearOut(out **C.char, n *C.size_t) func() {
	return func() {
		if out != nil && *out != nil {
			C.free(unsafe.Pointer(*out))
			setOut(out, nil)
		}
		if n != nil {
			*n = 0
		}
	}
}

var bg = context.Background()

// bufs recycles the Go buffers documents are built in before output copies
// them to C memory.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// produce is the shape of every call that hands out one document: check
// the out-pointers, resolve the handle, let get build the document (get
// also checks its own arguments; an error from it, EMPTY and CLOSED
// included, is the call's status), copy it out.
func produce(fn string, h C.uint64_t, out **C.char, n *C.size_t,
	get func(d *runtime.Dispatcher, buf []byte) ([]byte, error)) C.int {
	return produceInto(fn, h, nil, 0, out, n, get)
}

// produceInto is produce with a buffer (dst, dstCap; dst may be nil): the
// caller's buffer of a *_into call, or the one shim.c's take_malloced
// mallocs for tasker_poll and tasker_next_completion. get builds the
// document straight in it, with no Go buffer and no copy (outputInPlace).
// One that outgrows it moves to Go memory (append does that) and is
// malloc'd by output, leaving dst partly written: the header allows that
// (on TASKER_ETOOBIG only buf[0] is promised, '\0', which shim.c writes
// again).
func produceInto(fn string, h C.uint64_t, dst *C.char, dstCap C.size_t, out **C.char, n *C.size_t,
	get func(d *runtime.Dispatcher, buf []byte) ([]byte, error)) C.int {
	if out == nil || n == nil {
		return fail(fn, fmt.Errorf("%w: the output pointer and len must not be NULL", channel.ErrInvalid))
	}
	d, err := lookup(h)
	if err != nil {
		return fail(fn, err)
	}
	var buf []byte
	var pooled *[]byte
	if dst != nil && dstCap > 1 {
		buf = unsafe.Slice((*byte)(unsafe.Pointer(dst)), int(dstCap)-1)[:0] // its NUL goes after it
	} else {
		pooled = bufs.Get().(*[]byte)
		defer bufs.Put(pooled)
		buf = (*pooled)[:0]
	}
	doc, err := get(d, buf)
	if err != nil {
		return fail(fn, err)
	}
	if pooled == nil && len(doc) > 0 && unsafe.SliceData(doc) == (*byte)(unsafe.Pointer(dst)) {
		outputInPlace(dst, len(doc), out, n)
		return 0
	}
	output(doc, out, n) // built in the pool's buffer, or it outgrew dst
	if pooled != nil && cap(doc) <= 1<<16 {
		*pooled = doc // keep a grown buffer, but not a huge one
	}
	return 0
}

// pollJSON, pollBatchJSON and nextCompletionJSON take what tasker_poll,
// tasker_poll_batch and tasker_next_completion hand out, as the document
// appended to buf: the exports below and the hand-off to a parked thread
// (park.go) use the same three.
func pollJSON(d *runtime.Dispatcher, buf []byte, wait time.Duration) ([]byte, error) {
	var ev channel.Event
	if err := d.PollInto(bg, wait, &ev); err != nil {
		return nil, err
	}
	return wire.AppendEventJSON(buf, &ev), nil
}

// pollBatchJSON takes up to max events (at most 1<<20) as one JSON array
// and returns how many.
func pollBatchJSON(d *runtime.Dispatcher, buf []byte, max uint32, wait time.Duration) ([]byte, int, error) {
	bp := batches.Get().(*[]channel.Event)
	defer batches.Put(bp)
	evs, err := d.PollBatchAppend(bg, int(min(max, 1<<20)), wait, (*bp)[:0])
	if err != nil {
		return nil, 0, err
	}
	buf = wire.AppendEventsJSON(buf, evs)
	clear(evs) // the pool keeps no event's payload alive
	if cap(evs) <= 1024 {
		*bp = evs // keep a grown slice, but not a huge one
	}
	return buf, len(evs), nil
}

// batches holds the slices pollBatchJSON takes events into.
var batches = sync.Pool{New: func() any { s := make([]channel.Event, 0, 64); return &s }}

func nextCompletionJSON(d *runtime.Dispatcher, buf []byte, wait time.Duration) ([]byte, error) {
	var c channel.Completion
	if err := d.NextCompletionInto(bg, wait, &c); err != nil {
		return nil, err
	}
	return wire.AppendCompletionJSON(buf, &c), nil
}

// ---- exports (called only by shim.c, which has already checked for fork
// and reset the out-pointers) ----

// getenv reads an environment variable with C's getenv: Go's os.Getenv
// sees a copy of the environment made when the library was loaded, and the
// caller (Python's os.environ, Ruby's ENV, C's setenv) may have changed it
// since. For tasker_config (TASKER_CONFIG_*, ${VAR}).
func getenv(name string) (string, bool) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	v := C.getenv(cs)
	if v == nil {
		return "", false
	}
	return C.GoString(v), true
}

//export tgo_new
func tgo_new(configJSON *C.char, out *C.uint64_t) (st C.int) {
	const fn = "tasker_new"
	defer guard(fn, &st, nil)
	if out == nil {
		return fail(fn, fmt.Errorf("%w: out is NULL", channel.ErrInvalid))
	}
	var doc []byte
	if configJSON != nil {
		doc = unsafe.Slice((*byte)(unsafe.Pointer(configJSON)), int(C.strlen(configJSON)))
	}
	cfg, sources, err := runtime.ParseConfigEnv(doc, getenv)
	if err != nil {
		return fail(fn, err)
	}
	d, err := runtime.New(cfg, runtime.WithConfigSources(sources))
	if err != nil {
		return fail(fn, err)
	}
	// The park slot is attached before the handle exists for anyone: the
	// first poll that waits already finds its waker installed.
	h := handles.reserve()
	attachPark(h, d)
	handles.publish(h, d)
	*out = C.uint64_t(h)
	return 0
}

//export tgo_destroy
func tgo_destroy(h C.uint64_t) (st C.int) {
	const fn = "tasker_destroy"
	defer guard(fn, &st, nil)
	// Take the handle out first: only one destroy wins, and calls that start
	// from now on get EBADF. Calls already inside see the shutdown below.
	d, ok := handles.remove(uint64(h))
	if !ok {
		return fail(fn, badHandle(h))
	}
	d.Close()
	return 0
}

//export tgo_dispatch
func tgo_dispatch(h C.uint64_t, eventJSON *C.char, n C.size_t, timeoutMs C.int32_t, idOut *C.char) (st C.int) {
	const fn = "tasker_dispatch"
	defer guard(fn, &st, func() {
		if idOut != nil {
			*idOut = 0
		}
	})
	d, err := lookup(h)
	if err != nil {
		return fail(fn, err)
	}
	wait, err := timeout(timeoutMs)
	if err != nil {
		return fail(fn, err)
	}
	doc, err := input("event_json", eventJSON, n, d.Config().MaxPayloadBytes)
	if errors.Is(err, channel.ErrTooBig) {
		err = d.RejectDispatch(err) // counted like one that reached the parser
	}
	if err != nil {
		return fail(fn, err)
	}
	id, err := d.DispatchJSON(bg, doc, wait)
	if err != nil {
		return fail(fn, err)
	}
	if idOut != nil {
		buf := unsafe.Slice((*byte)(unsafe.Pointer(idOut)), 37)
		buf[len(wire.AppendUUIDText(buf[:0], id))] = 0 // 36 bytes: no allocation
	}
	return 0
}

// tgo_poll takes one event. dst/dstCap: the caller's buffer of
// tasker_poll_into, or the buffer shim.c malloc'd for tasker_poll; a
// document that fits is written there and *out set to dst, else *out is
// malloc'd (shim.c keeps it for tasker_poll_into) and dst may be partly
// written (produceInto).
//
//export tgo_poll
func tgo_poll(h C.uint64_t, timeoutMs C.int32_t, dst *C.char, dstCap C.size_t, out **C.char, n *C.size_t) (st C.int) {
	const fn = "tasker_poll"
	defer guard(fn, &st, clearOutInto(dst, out, n))
	return produceInto(fn, h, dst, dstCap, out, n, func(d *runtime.Dispatcher, buf []byte) ([]byte, error) {
		wait, err := timeout(timeoutMs)
		if err != nil {
			return nil, err
		}
		return pollJSON(d, buf, wait)
	})
}

//export tgo_poll_batch
func tgo_poll_batch(h C.uint64_t, max C.uint32_t, timeoutMs C.int32_t, out **C.char, n *C.size_t, count *C.uint32_t) (st C.int) {
	const fn = "tasker_poll_batch"
	defer guard(fn, &st, func() {
		clearOut(out, n)()
		if count != nil {
			*count = 0
		}
	})
	if count == nil {
		return fail(fn, fmt.Errorf("%w: count must not be NULL", channel.ErrInvalid))
	}
	taken := 0
	st = produce(fn, h, out, n, func(d *runtime.Dispatcher, buf []byte) ([]byte, error) {
		if max == 0 {
			return nil, fmt.Errorf("%w: max must be >= 1", channel.ErrInvalid)
		}
		wait, err := timeout(timeoutMs)
		if err != nil {
			return nil, err
		}
		doc, k, err := pollBatchJSON(d, buf, uint32(max), wait)
		taken = k
		return doc, err
	})
	*count = C.uint32_t(taken)
	return st
}

// pendingEvent resolves the handle and the event id of complete and
// checkpoint: a NUL-terminated 36-character UUID, of which at most 64
// bytes are read.
func pendingEvent(h C.uint64_t, eventID *C.char) (*runtime.Dispatcher, uuid.UUID, error) {
	if eventID == nil {
		return nil, uuid.Nil, fmt.Errorf("%w: event_id is NULL", channel.ErrInvalid)
	}
	d, err := lookup(h)
	if err != nil {
		return nil, uuid.Nil, err
	}
	if id, ok := cUUID(eventID); ok {
		return d, id, nil
	}
	// Not a well-formed id: read it again, the slow way, for the message.
	idBytes := cBytesUpTo(eventID, 64)
	if len(idBytes) != 36 {
		return nil, uuid.Nil, errEventIDShape
	}
	id, err := uuid.ParseBytes(idBytes)
	if err != nil {
		if !utf8.Valid(idBytes) { // a valid UUID is ASCII: checked only on failure, for the message
			return nil, uuid.Nil, errEventIDShape
		}
		return nil, uuid.Nil, fmt.Errorf("%w: event_id %q is not a UUID: %v", channel.ErrInvalid, idBytes, err)
	}
	return d, id, nil
}

var errEventIDShape = fmt.Errorf("%w: event_id must be a NUL-terminated 36-character UUID string", channel.ErrInvalid)

// cUUID parses s as a NUL-terminated UUID in its 36-character text form
// (hex digits of either case, dashes at 8, 13, 18 and 23): what
// uuid.ParseBytes accepts of cBytesUpTo(s, 64) when that is 36 bytes long,
// in one pass. It reads a byte only when every byte before it belongs to
// the form (so never past a NUL, and at most 37 bytes); ok is false when s
// is anything else, and the caller then reads it again for the message.
func cUUID(s *C.char) (u uuid.UUID, ok bool) {
	p := unsafe.Pointer(s)
	at := func(i int) byte { return *(*byte)(unsafe.Add(p, i)) }
	i, j := 0, 0
	for g, bytes := range [5]int{4, 2, 2, 2, 6} { // xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
		if g > 0 {
			if at(i) != '-' {
				return uuid.Nil, false
			}
			i++
		}
		for range bytes {
			hi := hexValue[at(i)]
			if hi > 0xf {
				return uuid.Nil, false
			}
			lo := hexValue[at(i+1)]
			if lo > 0xf {
				return uuid.Nil, false
			}
			u[j] = hi<<4 | lo
			i, j = i+2, j+1
		}
	}
	if at(36) != 0 {
		return uuid.Nil, false
	}
	return u, true
}

// hexValue maps a byte to its value as a hex digit, or 0xff.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c], t[c-'a'+'A'] = c-'a'+10, c-'a'+10
	}
	return t
}()

// cBytesUpTo is strnlen(s, max) without a call into C (each call from Go
// into C pays the scheduler's system-call bookkeeping both ways): the bytes
// of s before its NUL, or its first max bytes when none comes first. It
// reads no byte past the NUL or past max.
func cBytesUpTo(s *C.char, max int) []byte {
	p := unsafe.Pointer(s)
	n := 0
	for n < max && *(*byte)(unsafe.Add(p, n)) != 0 {
		n++
	}
	return unsafe.Slice((*byte)(p), n)
}

//export tgo_complete
func tgo_complete(h C.uint64_t, eventID *C.char, resultJSON *C.char, n C.size_t) (st C.int) {
	const fn = "tasker_complete"
	defer guard(fn, &st, nil)
	d, id, err := pendingEvent(h, eventID)
	if err != nil {
		return fail(fn, err)
	}
	doc, err := input("result_json", resultJSON, n, d.Config().MaxPayloadBytes)
	if err != nil {
		return fail(fn, err)
	}
	if err := d.CompleteJSON(id, doc); err != nil {
		return fail(fn, err)
	}
	return 0
}

//export tgo_checkpoint
func tgo_checkpoint(h C.uint64_t, eventID *C.char, checkpointJSON *C.char, n C.size_t) (st C.int) {
	const fn = "tasker_checkpoint"
	defer guard(fn, &st, nil)
	d, id, err := pendingEvent(h, eventID)
	if err != nil {
		return fail(fn, err)
	}
	doc, err := input("checkpoint_json", checkpointJSON, n, d.Config().MaxPayloadBytes)
	if err != nil {
		return fail(fn, err)
	}
	if err := d.CheckpointJSON(id, doc); err != nil {
		return fail(fn, err)
	}
	return 0
}

//export tgo_cleanup_timeouts
func tgo_cleanup_timeouts(h C.uint64_t, expired *C.uint32_t) (st C.int) {
	const fn = "tasker_cleanup_timeouts"
	defer guard(fn, &st, nil)
	d, err := lookup(h)
	if err != nil {
		return fail(fn, err)
	}
	k := d.CleanupTimeouts()
	if expired != nil {
		*expired = C.uint32_t(min(k, 1<<32-1))
	}
	return 0
}

// tgo_next_completion takes one completion; dst/dstCap as for tgo_poll.
//
//export tgo_next_completion
func tgo_next_completion(h C.uint64_t, timeoutMs C.int32_t, dst *C.char, dstCap C.size_t, out **C.char, n *C.size_t) (st C.int) {
	const fn = "tasker_next_completion"
	defer guard(fn, &st, clearOutInto(dst, out, n))
	return produceInto(fn, h, dst, dstCap, out, n, func(d *runtime.Dispatcher, buf []byte) ([]byte, error) {
		wait, err := timeout(timeoutMs)
		if err != nil {
			return nil, err
		}
		return nextCompletionJSON(d, buf, wait)
	})
}

//export tgo_shutdown
func tgo_shutdown(h C.uint64_t, drainMs C.int32_t) (st C.int) {
	const fn = "tasker_shutdown"
	defer guard(fn, &st, nil)
	d, err := lookup(h)
	if err != nil {
		return fail(fn, err)
	}
	drain, err := timeout(drainMs)
	if err != nil {
		return fail(fn, fmt.Errorf("drain_timeout_ms: %w", err))
	}
	d.Shutdown(drain)
	return 0
}

//export tgo_stats
func tgo_stats(h C.uint64_t, out **C.char, n *C.size_t) (st C.int) {
	const fn = "tasker_stats"
	defer guard(fn, &st, clearOut(out, n))
	return produce(fn, h, out, n, func(d *runtime.Dispatcher, buf []byte) ([]byte, error) {
		b, err := json.Marshal(d.Stats()) // plain fields only: cannot fail
		return append(buf, b...), err
	})
}
