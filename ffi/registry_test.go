package main

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/libtasker/runtime"
)

// The registry keeps its promises with many live handles: every live handle
// resolves to its own dispatcher, removed ones are gone, new handles are
// fresh, and removing one handle concurrently from many goroutines hands it
// to exactly one of them, also while others add and look up.
func TestRegistry_ManyLiveHandles(t *testing.T) {
	r := newRegistry()
	const n = 20_000
	ds := make([]*runtime.Dispatcher, n)
	hs := make([]uint64, n)
	seen := map[uint64]bool{}
	for i := range ds {
		ds[i] = new(runtime.Dispatcher) // distinct pointers; never used
		hs[i] = r.add(ds[i])
		require.NotZero(t, hs[i])
		require.False(t, seen[hs[i]], "handle %d reused", hs[i])
		seen[hs[i]] = true
	}
	for i := 0; i < n; i += 2 { // remove every other one
		d, ok := r.remove(hs[i])
		require.True(t, ok)
		require.Same(t, ds[i], d)
		_, ok = r.remove(hs[i])
		require.False(t, ok, "a second remove of %d", hs[i])
	}
	for i := range hs {
		d, ok := r.get(hs[i])
		if i%2 == 0 {
			require.False(t, ok, "removed handle %d still resolves", hs[i])
		} else {
			require.True(t, ok)
			require.Same(t, ds[i], d, "handle %d", hs[i])
		}
	}
	// new handles after removals are never old ones
	for range 5000 {
		h := r.add(new(runtime.Dispatcher))
		require.False(t, seen[h], "handle %d reused", h)
		seen[h] = true
	}
	_, ok := r.get(0)
	assert.False(t, ok, "handle 0")
	_, ok = r.get(^uint64(0))
	assert.False(t, ok, "a handle never issued")
	_, ok = r.remove(1 << 40)
	assert.False(t, ok, "removing a handle never issued")
}

// Concurrent removers of one handle: exactly one gets it, while other
// goroutines add handles (growing the registry) and look up live ones.
func TestRegistry_ConcurrentRemoveOneWins(t *testing.T) {
	r := newRegistry()
	live := new(runtime.Dispatcher)
	hl := r.add(live)
	for round := range 200 {
		d := new(runtime.Dispatcher)
		h := r.add(d)
		var wg sync.WaitGroup
		wins := make([]bool, 8)
		for i := range wins {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, ok := r.remove(h)
				if ok && got != d {
					panic(fmt.Sprintf("round %d: remove returned another dispatcher", round))
				}
				wins[i] = ok
			}()
		}
		wg.Add(2)
		go func() { // growth while removing
			defer wg.Done()
			for range 300 {
				r.add(new(runtime.Dispatcher))
			}
		}()
		go func() {
			defer wg.Done()
			for range 300 {
				if got, ok := r.get(hl); !ok || got != live {
					panic("a live handle did not resolve during growth")
				}
			}
		}()
		wg.Wait()
		n := 0
		for _, w := range wins {
			if w {
				n++
			}
		}
		require.Equal(t, 1, n, "round %d: winners", round)
	}
}

// fill adds n placeholder entries to r and returns a function that removes them.
func fill(r *registry, n int) func() {
	hs := make([]uint64, n)
	for i := range hs {
		hs[i] = r.add(new(runtime.Dispatcher))
	}
	return func() {
		for _, h := range hs {
			r.remove(h)
		}
	}
}

// BenchmarkRegistryAddRemove: one add and one remove with n other handles live.
func BenchmarkRegistryAddRemove(b *testing.B) {
	for _, n := range []int{0, 2_000, 20_000} {
		b.Run(fmt.Sprintf("live=%d", n), func(b *testing.B) {
			r := newRegistry()
			defer fill(r, n)()
			d := new(runtime.Dispatcher)
			for b.Loop() {
				h := r.add(d)
				r.remove(h)
			}
		})
	}
}

// BenchmarkRegistryGet: the lookup every call makes, with 20,000 live handles.
func BenchmarkRegistryGet(b *testing.B) {
	r := newRegistry()
	defer fill(r, 20_000)()
	h := r.add(new(runtime.Dispatcher))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := r.get(h); !ok {
				b.Error("lost")
				return
			}
		}
	})
	b.StopTimer() // the deferred removal is not a lookup
}

// BenchmarkTaskerNew: tasker_new + tasker_destroy through the C exports with
// n other handles live (issue 15: 2 ms per tasker_new at 20,000 before).
func BenchmarkTaskerNew(b *testing.B) {
	for _, n := range []int{0, 2_000, 20_000} {
		b.Run(fmt.Sprintf("live=%d", n), func(b *testing.B) {
			defer fill(handles, n)()
			for b.Loop() {
				h, r := callNew(`{"cleanup_interval_ms":0}`)
				if r.status != 0 {
					b.Fatal(r.lastErr)
				}
				callDestroy(h)
			}
		})
	}
}
