package main

import (
	"sync"
	"sync/atomic"

	"github.com/tasker-systems/libtasker/runtime"
)

// registry maps C handles to dispatchers. Handles are uint64, start at 1
// (0 is never valid) and are never reused within a process. Lookups are
// lock-free (a copy-on-write map behind an atomic pointer), so the hot path
// of every call costs one atomic load and one map read; new and destroy,
// which are rare, copy the map under a mutex.
type registry struct {
	mu   sync.Mutex
	next uint64
	m    atomic.Pointer[map[uint64]*runtime.Dispatcher]
}

var handles = newRegistry()

func newRegistry() *registry {
	r := &registry{}
	m := map[uint64]*runtime.Dispatcher{}
	r.m.Store(&m)
	return r
}

func (r *registry) get(h uint64) (*runtime.Dispatcher, bool) {
	d, ok := (*r.m.Load())[h]
	return d, ok
}

func (r *registry) add(d *runtime.Dispatcher) uint64 {
	h := r.reserve()
	r.publish(h, d)
	return h
}

// reserve returns the next handle without making it resolvable: a handle
// is never reused, so it belongs to the caller until publish.
func (r *registry) reserve() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	return r.next
}

// publish makes a reserved handle resolve to d.
func (r *registry) publish(h uint64, d *runtime.Dispatcher) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.m.Load()
	m := make(map[uint64]*runtime.Dispatcher, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[h] = d
	r.m.Store(&m)
}

// remove takes h out of the registry and returns what it held; only one of
// several concurrent removers gets it.
func (r *registry) remove(h uint64) (*runtime.Dispatcher, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.m.Load()
	d, ok := old[h]
	if !ok {
		return nil, false
	}
	m := make(map[uint64]*runtime.Dispatcher, len(old))
	for k, v := range old {
		if k != h {
			m[k] = v
		}
	}
	r.m.Store(&m)
	return d, true
}
