package channel

import "sync"

// entries recycles the entries of ended FFI events: without it, the entry
// (288 bytes with pointers) was two thirds of what a round trip allocated,
// and the garbage collections it caused cost the C round trip about 7% of
// its time (tests/bench/NOTES.md, 28).
//
// Recycling is safe because an FFI entry has no holder outside the
// Channel's indexes: take copies FFI events out before it unlocks, and
// recycle is called only once an ended entry has left every index
// (queue, pending list, deadline heap and live). Go entries (a GoTask keeps
// its entry after the event ended) and source entries are never recycled.
var entries = sync.Pool{New: func() any { return &entry{heapIdx: -1} }}

// recycleMax bounds how many entries one batch of ends (a cleanup, a
// shutdown) recycles: more than a steady stream of dispatches reuses, and
// recycling 100,000 at once made tasker_cleanup_timeouts a third slower
// (zeroing them, growing the pool). The rest go to the collector.
const recycleMax = 256

// newEntry returns a zero entry (heapIdx -1) from entries. Any caller.
func newEntry() *entry { return entries.Get().(*entry) }

// recycleLocked returns e to entries if it is an FFI entry not fed by a
// source. The caller holds mu, e has ended (or was never queued) and is in
// no index, and nothing may touch e after this call.
func recycle(e *entry) {
	if e.kind != KindFFI || e.src {
		return
	}
	*e = entry{heapIdx: -1} // drops the event's payload, result and checkpoint
	entries.Put(e)
}
