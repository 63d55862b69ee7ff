package main

import (
	"os"
	goruntime "runtime"
)

// One processor (P) more than the Go runtime would pick, unless the
// process sets GOMAXPROCS itself.
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
// in a system call alone for 10 ms, and the shim's yield (yield.go) covers
// what happens after that. One spare P covers the common case of two
// threads using the library at once; with more, fewer Ps are taken than
// without it.
//
// Measured, GOMAXPROCS 2 against 3 on the 2-core machine, alternating runs
// (medians; tests/bench/NOTES.md): idle-worker latency p90/p99 C 48/144 ->
// 24/98 µs, Python p99 172 -> 125, Ruby p99 166 -> 135; single-thread round
// trip 357,227 -> 350,027 events/s (-2%, within the spread), instructions
// per round trip unchanged (30,627 -> 30,678).
//
// Setting it turns off the runtime's own updates of GOMAXPROCS when the
// container's CPU limit changes (Go 1.25); a process that needs those sets
// GOMAXPROCS in its environment, and then this does nothing.
func init() {
	if n, cur := procsWanted(os.Getenv("GOMAXPROCS"), goruntime.GOMAXPROCS(0)); n != cur {
		goruntime.GOMAXPROCS(n)
	}
}

// procsWanted is the GOMAXPROCS the library sets, given the environment's
// GOMAXPROCS and the runtime's current value: one more, unless the
// environment chose.
func procsWanted(env string, current int) (want, cur int) {
	if env != "" {
		return current, current
	}
	return current + 1, current
}
