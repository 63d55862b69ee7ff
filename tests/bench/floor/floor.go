// Command floor is a tiny c-shared library used only by `make bench`: it
// measures the cost of crossing into Go and back with no work, from C,
// Python (ctypes) and Ruby (ffi). It is not part of the product.
package main

import "C"

import "github.com/tasker-systems/libtasker/internal/goprocs"

// The floor runs its Go runtime as libtasker does (ffi/procs.go), so that
// "a call into Go after a sleep" is measured under the same scheduler
// settings.
var _ = goprocs.Apply()

//export bench_noop
func bench_noop() C.int { return 0 }

// bench_noop_args takes the shape of a typical tasker call (a handle, a
// pointer and a length) and does nothing with it.
//
//export bench_noop_args
func bench_noop_args(h C.ulonglong, p *C.char, n C.size_t) C.int {
	_, _, _ = h, p, n
	return 0
}

func main() {}
