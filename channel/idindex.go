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
// array of 16-byte slots, at most three quarters full, each holding its
// id's hash and the entry (nil: empty). A lookup compares hashes and reads
// the id from the entry only when they are equal; growing and removing
// move slots by their hash alone. A removal moves the slots of the probe
// run after it back (no tombstones), so every lookup ends at the first
// empty slot. The hash is keyed per channel from crypto/rand: ids given by
// the caller (a dispatch may carry its own event_id) cannot be chosen to
// fall into one run without knowing the key.
//
// It replaced a map[uuid.UUID]*entry: a dispatch, a complete and the
// duplicate check of the next dispatch each made one map operation, and
// the map's code was about a ninth of the instructions, and more of the
// instruction-cache lines, that the channel adds to a round trip
// (tests/bench/NOTES.md, 35). It takes less memory than the map: 21-43
// bytes per id (a first version with 24-byte slots at most half full cost
// 50 bytes per pending event more than the map in `bench memory`).
type idIndex struct {
	slots  []idSlot // len is 0 or a power of two >= minIndexSlots; n <= 3/4 of it
	n      int      // slots in use
	k0, k1 uint64   // the hash key
}

type idSlot struct {
	h uint64 // hash of e.ev.EventID
	e *entry // nil: an empty slot
}

// minIndexSlots is the smallest table: a channel with a few events in
// flight never grows it.
const minIndexSlots = 16

func newIDIndex(k0, k1 uint64) idIndex { return idIndex{k0: k0, k1: k1} }

// hash is id's keyed hash.
func (x *idIndex) hash(id *uuid.UUID) uint64 {
	h, l := bits.Mul64(binary.LittleEndian.Uint64(id[:8])^x.k0, binary.LittleEndian.Uint64(id[8:])^x.k1)
	return h ^ l
}

func (x *idIndex) len() int { return x.n }

// find returns the slot of id, or the empty slot that ends its probe run;
// len(x.slots) > 0.
func (x *idIndex) find(id *uuid.UUID, h uint64) int {
	mask := uint64(len(x.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.e == nil || s.h == h && s.e.ev.EventID == *id {
			return int(i)
		}
	}
}

// get returns the entry of id, or nil.
func (x *idIndex) get(id uuid.UUID) *entry {
	if x.n == 0 {
		return nil
	}
	return x.slots[x.find(&id, x.hash(&id))].e
}

// put adds id -> e; id must not be in the index (the caller has checked).
func (x *idIndex) put(id uuid.UUID, e *entry) {
	if 4*(x.n+1) > 3*len(x.slots) {
		x.resize(max(2*len(x.slots), minIndexSlots))
	}
	x.insert(idSlot{x.hash(&id), e})
	x.n++
}

// insert places a slot whose id is absent in the first empty slot of its run.
func (x *idIndex) insert(s idSlot) {
	mask := uint64(len(x.slots) - 1)
	i := s.h & mask
	for x.slots[i].e != nil {
		i = (i + 1) & mask
	}
	x.slots[i] = s
}

// del removes id if it is in the index.
func (x *idIndex) del(id uuid.UUID) {
	if x.n == 0 {
		return
	}
	i := x.find(&id, x.hash(&id))
	if x.slots[i].e == nil {
		return
	}
	// Empty slot i, then move back every later slot of the run whose home
	// is not in (i, j]: a lookup for it would otherwise stop at the hole.
	mask := len(x.slots) - 1
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		s := &x.slots[j]
		if s.e == nil {
			break
		}
		if home := int(s.h) & mask; (j-home)&mask >= (j-i)&mask {
			x.slots[i] = *s
			i = j
		}
	}
	x.slots[i] = idSlot{}
	x.n--
}

// resize moves every slot to a table of size slots (a power of two, with
// room under the load bound).
func (x *idIndex) resize(size int) {
	old := x.slots
	x.slots = make([]idSlot, size)
	for i := range old {
		if old[i].e != nil {
			x.insert(old[i])
		}
	}
}

// reset empties the index and sizes it for n keys, freeing a table grown
// for more: for rebuilding it after most of its events ended at once.
func (x *idIndex) reset(n int) {
	size := minIndexSlots
	for 3*size < 4*n {
		size *= 2
	}
	x.slots, x.n = make([]idSlot, size), 0
}
