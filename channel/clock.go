package channel

import (
	"sync/atomic"
	"time"
)

// Now returns the current time as the channel stamps events, wall and
// monotonic, reading only the monotonic clock. time.Now reads two clocks,
// and on a virtual machine each read is a slow one (kvm-clock here:
// time.Now 53 ns, time.Since 29 ns); a round trip stamps three times
// (dispatched_at, polled_at, completed_at). Code that builds the same
// documents (the benchmark floors) calls it too, to pay for the same clock.
//
// The wall reading is an anchor's (a time.Now at most anchorAge old) plus
// the monotonic time since that anchor. The kernel slews both clocks alike,
// so this equals the wall clock except after a step of it (settimeofday, an
// NTP step, a leap second): then its readings keep the old offset until
// the next anchor, at most anchorAge later. Durations between two readings
// (deadlines, execution times, ages) use the monotonic readings, as with
// time.Now. Safe for concurrent use; never blocks.
func Now() time.Time {
	if a := anchor.Load(); a != nil {
		if d := time.Since(*a); d >= 0 && d < anchorAge {
			return a.Add(d) // keeps the monotonic reading: a's plus d
		}
	}
	t := time.Now()
	anchor.Store(&t)
	return t
}

// anchorAge bounds how long a step of the wall clock goes unseen by Now.
const anchorAge = 100 * time.Millisecond

// anchor is Now's last time.Now reading (nil until the first call).
var anchor atomic.Pointer[time.Time]
