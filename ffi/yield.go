package main

import "C"

import goruntime "runtime"

// tgo_yield lets the Go scheduler run once on the calling thread's
// processor (runtime.Gosched), which advances that processor's scheduling
// tick. The shim calls it every few milliseconds per thread (shim.c,
// maybe_yield): a thread that only makes calls from C never passes
// through the scheduler, and the Go runtime's monitor treats a processor
// whose tick stood still for 10 ms as stuck and keeps taking it away.
// Called only by shim.c, never with a lock held.
//
//export tgo_yield
func tgo_yield() { goruntime.Gosched() }
