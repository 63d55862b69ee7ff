package channel

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// The id index against a Go map: random puts and deletes of ids drawn from
// a small pool (so deletes hit present and absent ids, and ids come back),
// every id of the pool looked up after each step. Three kinds of keys:
// random ids under a random hash key; ids that differ only in their first
// half under the zero hash key, where every id has the same hash, so lands
// in one probe run (the worst case for removal, which must move the run
// back without breaking any lookup) and is told apart only by the id in
// its entry; and ids that differ in a few low bits of each half.
func TestIDIndex_MatchesAMap(t *testing.T) {
	pools := map[string]func(r *rand.Rand, i int) uuid.UUID{
		"random": func(r *rand.Rand, _ int) uuid.UUID {
			var u uuid.UUID
			binary.LittleEndian.PutUint64(u[:8], r.Uint64())
			binary.LittleEndian.PutUint64(u[8:], r.Uint64())
			return u
		},
		"one run": func(_ *rand.Rand, i int) uuid.UUID {
			var u uuid.UUID // second half zero: under the zero key every hash is 0
			binary.LittleEndian.PutUint64(u[:8], uint64(i+1))
			return u
		},
		"low bits": func(_ *rand.Rand, i int) uuid.UUID {
			var u uuid.UUID
			u[0], u[8] = byte(i), byte(i>>8)
			return u
		},
	}
	for name, mk := range pools {
		for _, key := range [][2]uint64{{0, 0}, {0x9e3779b97f4a7c15, 0xbf58476d1ce4e5b9}} {
			t.Run(fmt.Sprintf("%s/key %x", name, key[0]), func(t *testing.T) {
				r := rand.New(rand.NewPCG(key[0], 7))
				pool := make([]uuid.UUID, 120)
				for i := range pool {
					pool[i] = mk(r, i)
				}
				x := newIDIndex(key[0], key[1])
				model := map[uuid.UUID]*entry{}
				for step := range 2000 {
					id := pool[r.IntN(len(pool))]
					// phases of growth and of draining, so the table grows,
					// fills runs and empties them again
					puts := 6
					if step/400%2 == 1 {
						puts = 3
					}
					if r.IntN(10) < puts {
						if model[id] == nil {
							e := &entry{}
							e.ev.EventID = id // the index reads the id from the entry
							x.put(id, e)
							model[id] = e
						}
					} else {
						x.del(id)
						delete(model, id)
					}
					require.Equal(t, len(model), x.len(), "step %d", step)
					require.LessOrEqual(t, 4*x.len(), 3*len(x.slots), "step %d: more than three quarters full", step)
					for _, p := range pool {
						require.Same(t, model[p], x.get(p), "step %d: id %s", step, p)
					}
				}
				x.reset(len(model))
				size := len(x.slots)
				for id, e := range model {
					x.put(id, e)
				}
				require.Equal(t, size, len(x.slots), "reset sized the table for %d ids: no growth", len(model))
				for _, p := range pool {
					require.Same(t, model[p], x.get(p), "after reset: id %s", p)
				}
			})
		}
	}
}

// reset sizes the table for the ids about to be put back: none of them
// makes it grow, and it is no larger than one doubling beyond that.
func TestIDIndex_ResetSizesForItsIDs(t *testing.T) {
	for n := range 300 {
		x := newIDIndex(1, 2)
		x.reset(n)
		size := len(x.slots)
		for i := range n {
			e := &entry{}
			e.ev.EventID = uuid.UUID{byte(i), byte(i >> 8), 1}
			x.put(e.ev.EventID, e)
		}
		require.Equal(t, size, len(x.slots), "%d ids", n)
		require.True(t, size == minIndexSlots || 4*n > 3*size/2, "%d ids in %d slots: larger than needed", n, size)
	}
}
