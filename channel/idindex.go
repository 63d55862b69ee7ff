package channel

import (
	"encoding/binary"
	"math/bits"

	"github.com/google/uuid"
)

// idIndex maps the id of every queued and pending event to its entry
// (Channel.live). Guarded by the Channel's mu, like the rest of its state.
//
// It is an open-addressing table with linear probing: a power-of-two
// array of slots, at most half full, each slot holding its key's two
// halves and the entry (nil: empty). A removal moves the slots of the
// probe run after it back (no tombstones), so every lookup ends at the
// first empty slot. The hash is keyed per channel from crypto/rand: ids
// given by the caller (a dispatch may carry its own event_id) cannot be
// chosen to fall into one run without knowing the key.
//
// It replaced a map[uuid.UUID]*entry: a dispatch, a complete and the
// duplicate check of the next dispatch each made one map operation, and
// the map's code was about a ninth of the instructions, and more of the
// instruction-cache lines, that the channel adds to a round trip
// (tests/bench/NOTES.md, 34).
type idIndex struct {
	slots  []idSlot // len is 0 or a power of two >= minIndexSlots
	n      int      // slots in use
	k0, k1 uint64   // the hash key
}

type idSlot struct {
	lo, hi uint64 // the id's bytes 0-7 and 8-15, little-endian
	e      *entry
}

// minIndexSlots is the smallest table: a channel with a few events in
// flight never grows it.
const minIndexSlots = 16

func newIDIndex(k0, k1 uint64) idIndex { return idIndex{k0: k0, k1: k1} }

func idHalves(id *uuid.UUID) (lo, hi uint64) {
	return binary.LittleEndian.Uint64(id[:8]), binary.LittleEndian.Uint64(id[8:])
}

// home is the slot a key's probe run starts at; len(x.slots) > 0.
func (x *idIndex) home(lo, hi uint64) int {
	h, l := bits.Mul64(lo^x.k0, hi^x.k1)
	return int((h ^ l) & uint64(len(x.slots)-1))
}

func (x *idIndex) len() int { return x.n }

// get returns the entry of id, or nil.
func (x *idIndex) get(id uuid.UUID) *entry {
	if x.n == 0 {
		return nil
	}
	lo, hi := idHalves(&id)
	mask := len(x.slots) - 1
	for i := x.home(lo, hi); ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.e == nil {
			return nil
		}
		if s.lo == lo && s.hi == hi {
			return s.e
		}
	}
}

// put adds id → e; id must not be in the index (the caller has checked).
func (x *idIndex) put(id uuid.UUID, e *entry) {
	if 2*(x.n+1) > len(x.slots) {
		x.resize(max(2*len(x.slots), minIndexSlots))
	}
	lo, hi := idHalves(&id)
	x.insert(lo, hi, e)
	x.n++
}

// insert places a key known to be absent in the first empty slot of its run.
func (x *idIndex) insert(lo, hi uint64, e *entry) {
	mask := len(x.slots) - 1
	i := x.home(lo, hi)
	for x.slots[i].e != nil {
		i = (i + 1) & mask
	}
	x.slots[i] = idSlot{lo, hi, e}
}

// del removes id if it is in the index.
func (x *idIndex) del(id uuid.UUID) {
	if x.n == 0 {
		return
	}
	lo, hi := idHalves(&id)
	mask := len(x.slots) - 1
	i := x.home(lo, hi)
	for {
		s := &x.slots[i]
		if s.e == nil {
			return
		}
		if s.lo == lo && s.hi == hi {
			break
		}
		i = (i + 1) & mask
	}
	// Empty slot i, then move back every later slot of the run whose home
	// is not in (i, j]: a lookup for it would otherwise stop at the hole.
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		s := &x.slots[j]
		if s.e == nil {
			break
		}
		if h := x.home(s.lo, s.hi); (j-h)&mask >= (j-i)&mask {
			x.slots[i] = *s
			i = j
		}
	}
	x.slots[i] = idSlot{}
	x.n--
}

// resize moves every key to a table of size slots (a power of two, more
// than twice the keys).
func (x *idIndex) resize(size int) {
	old := x.slots
	x.slots = make([]idSlot, size)
	for i := range old {
		if s := &old[i]; s.e != nil {
			x.insert(s.lo, s.hi, s.e)
		}
	}
}

// reset empties the index and sizes it for n keys, freeing a table grown
// for more: for rebuilding it after most of its events ended at once.
func (x *idIndex) reset(n int) {
	size := minIndexSlots
	for size < 2*n {
		size *= 2
	}
	x.slots, x.n = make([]idSlot, size), 0
}
