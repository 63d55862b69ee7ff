package main

import (
	"sync"
	"sync/atomic"

	"github.com/tasker-systems/libtasker/runtime"
)

// registry maps C handles to dispatchers. Handles are uint64, start at 1 (0
// is never valid) and are never reused within a process: they count up.
//
// Because handles are dense and increasing, the registry is a table indexed
// by handle, in chunks of chunkSize slots: handle h lives in slot
// h%chunkSize of chunk h/chunkSize. Every operation is O(1) (add amortized):
//
//   - get (every call) is lock-free: two atomic loads (the directory, the
//     slot) and no allocation;
//   - add takes mu, fills the next slot, and allocates a chunk every
//     chunkSize handles; the directory of chunks doubles when full (a copy
//     of one pointer per chunk, so amortized O(1) per add);
//   - remove swaps the slot to nil, so that exactly one of several
//     concurrent removers gets the dispatcher, and frees a chunk once every
//     handle it can hold has been issued and removed.
//
// The directory only grows: a process that has made H handles keeps
// H/chunkSize pointers (8 bytes per 1024 handles ever made).
type registry struct {
	mu   sync.Mutex // serializes add and the chunk bookkeeping of remove
	next uint64     // the last handle issued (guarded by mu)
	dir  atomic.Pointer[[]atomic.Pointer[chunk]]
}

const chunkSize = 1024

type chunk struct {
	slots [chunkSize]atomic.Pointer[runtime.Dispatcher]
	// removed counts the handles of this chunk that have been removed
	// (guarded by registry.mu); at chunkSize the chunk is dropped.
	removed int
}

var handles = newRegistry()

func newRegistry() *registry {
	r := &registry{}
	dir := make([]atomic.Pointer[chunk], 1)
	r.dir.Store(&dir)
	return r
}

// slot returns the slot of h, or nil when h was never issued or its chunk
// has been dropped (every handle in it removed).
func (r *registry) slot(h uint64) *atomic.Pointer[runtime.Dispatcher] {
	dir := *r.dir.Load()
	i := h / chunkSize
	if i >= uint64(len(dir)) {
		return nil
	}
	c := dir[i].Load()
	if c == nil {
		return nil
	}
	return &c.slots[h%chunkSize]
}

func (r *registry) get(h uint64) (*runtime.Dispatcher, bool) {
	s := r.slot(h)
	if s == nil {
		return nil, false
	}
	d := s.Load()
	return d, d != nil
}

// add registers d under a new handle. d must not be nil (a nil slot means
// "no such handle").
func (r *registry) add(d *runtime.Dispatcher) uint64 {
	h := r.reserve()
	r.publish(h, d)
	return h
}

// reserve issues the next handle without making it resolvable (its slot
// stays nil, so get and remove see "no such handle"): a handle is never
// reused, so it belongs to the caller until publish.
func (r *registry) reserve() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	h := r.next
	i := h / chunkSize
	dir := *r.dir.Load()
	if i >= uint64(len(dir)) {
		grown := make([]atomic.Pointer[chunk], 2*len(dir))
		for j := range dir {
			grown[j].Store(dir[j].Load())
		}
		dir = grown
		r.dir.Store(&grown)
	}
	if dir[i].Load() == nil {
		c := new(chunk)
		if i == 0 {
			c.removed = 1 // handle 0 is never issued
		}
		dir[i].Store(c)
	}
	return h
}

// publish makes a reserved handle resolve to d (not nil). Its chunk cannot
// have been dropped: a chunk is dropped only once all of its handles were
// removed, and a reserved, unpublished handle cannot be removed.
func (r *registry) publish(h uint64, d *runtime.Dispatcher) {
	r.slot(h).Store(d)
}

// remove takes h out of the registry and returns what it held; only one of
// several concurrent removers gets it.
func (r *registry) remove(h uint64) (*runtime.Dispatcher, bool) {
	s := r.slot(h)
	if s == nil {
		return nil, false
	}
	d := s.Swap(nil)
	if d == nil {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	dir := *r.dir.Load()
	i := h / chunkSize
	if c := dir[i].Load(); c != nil {
		if c.removed++; c.removed == chunkSize {
			dir[i].Store(nil) // every handle of this chunk issued and removed
		}
	}
	return d, true
}
