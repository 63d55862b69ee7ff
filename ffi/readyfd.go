package main

/*
#include <stdint.h>
*/
import "C"

import (
	"errors"
	"fmt"

	"github.com/tasker-systems/libtasker/channel"
	"github.com/tasker-systems/libtasker/internal/cabi"
	"github.com/tasker-systems/libtasker/runtime"
)

// readyFD is tasker_event_fd and tasker_completion_fd: resolve the handle,
// hand out the dispatcher's readiness descriptor for s.
func readyFD(fn string, h C.uint64_t, s channel.Stream, out *C.int) C.int {
	if out == nil {
		return fail(fn, fmt.Errorf("%w: fd is NULL", channel.ErrInvalid))
	}
	d, err := lookup(h)
	if err != nil {
		return fail(fn, err)
	}
	fd, err := d.ReadyFD(s)
	if errors.Is(err, runtime.ErrReadyClosed) { // destroy won the race
		err = fmt.Errorf("%w: handle %d is being destroyed", cabi.ErrBadHandle, uint64(h))
	}
	if err != nil {
		return fail(fn, err)
	}
	*out = C.int(fd)
	return 0
}

func resetFD(out *C.int) {
	if out != nil {
		*out = -1
	}
}

//export tgo_event_fd
func tgo_event_fd(h C.uint64_t, out *C.int) (st C.int) {
	const fn = "tasker_event_fd"
	defer guard(fn, &st, func() { resetFD(out) })
	return readyFD(fn, h, channel.StreamEvents, out)
}

//export tgo_completion_fd
func tgo_completion_fd(h C.uint64_t, out *C.int) (st C.int) {
	const fn = "tasker_completion_fd"
	defer guard(fn, &st, func() { resetFD(out) })
	return readyFD(fn, h, channel.StreamCompletions, out)
}
