// Package goprocs gives a c-shared library's Go runtime one processor (P)
// more than the runtime would pick, unless the process sets GOMAXPROCS.
//
// A C thread that calls into the library keeps its P while it is back in
// C: the runtime treats the time in C as a system call. When every P is
// held that way (two threads on a two-core machine: a producer sleeping
// between dispatches and a worker waiting in tasker_poll), the runtime's
// monitor (sysmon) takes one back on every tick it runs, 20 µs apart, and
// starts a spinning thread to find work for it; the thread that owned it
// then re-enters Go without a P and waits to be handed one. perf sched on
// the Ruby latency benchmark (2,000 events, GOMAXPROCS 2): sysmon never
// slept longer than its minimum, 1,250 takes each starting a thread, 232
// calls that waited for a P. While some P is idle, the monitor leaves a P
// in a system call alone for 10 ms, and the shim's yield (ffi/yield.go)
// covers what happens after that. One spare P covers the common case of
// two threads using the library at once; with more, fewer Ps are taken
// than without it.
//
// Measured, GOMAXPROCS 2 against 3 on the 2-core machine, alternating runs
// (medians; tests/bench/NOTES.md 9 and 16): idle-worker latency C blocking
// p50/p99 11.4/1300 -> 7.8/335 µs, C 1 ms idle 35.5/385 -> 18.7/230;
// Python and Ruby within the spread; the C readiness-fd path's p50 24.7 ->
// 83.2 µs on that VM (its woken thread runs on the other vCPU, now idle).
//
// Setting it turns off the runtime's own updates of GOMAXPROCS when the
// container's CPU limit changes (Go 1.25); a process that needs those sets
// GOMAXPROCS in its environment, and then Apply changes nothing.
//
// libtasker (ffi) and the benchmark's floor library (tests/bench/floor)
// both call Apply, so that the floor is measured under the library's
// scheduler settings.
package goprocs

import (
	"os"
	"runtime"
)

// Want is the GOMAXPROCS a library process runs with, given env (the
// GOMAXPROCS environment variable) and current (the runtime's own choice):
// current+1, or current when env is set (the runtime already obeyed it).
func Want(env string, current int) int {
	if env != "" {
		return current
	}
	return current + 1
}

// Apply sets GOMAXPROCS to Want for this process and returns the runtime's
// choice from before. Call it once, from a package initializer, before the
// library does any work.
func Apply() (runtimeChoice int) {
	runtimeChoice = runtime.GOMAXPROCS(0)
	if n := Want(os.Getenv("GOMAXPROCS"), runtimeChoice); n != runtimeChoice {
		runtime.GOMAXPROCS(n)
	}
	return runtimeChoice
}
