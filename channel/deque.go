package channel

import "unsafe"

// deque is a growable ring buffer used for the FIFO queues and the
// completion stream. Not safe for concurrent use: the Channel's mutex guards it.
// len(buf) is 0 or a power of two, so a position wraps with a mask (a
// division would cost more than the rest of a push).
type deque[T any] struct {
	buf        []T
	head, size int
}

// wrap is position i of the ring; the buffer must not be empty.
func (d *deque[T]) wrap(i int) int { return i & (len(d.buf) - 1) }

func (d *deque[T]) len() int { return d.size }

func (d *deque[T]) push(v T) {
	if d.size == len(d.buf) {
		d.grow(d.size + 1)
	}
	d.buf[d.wrap(d.head+d.size)] = v
	d.size++
}

// reserve makes room for n elements in all, so that the next pushes up to
// n do not allocate.
func (d *deque[T]) reserve(n int) {
	if n > len(d.buf) {
		d.grow(n)
	}
}

func (d *deque[T]) grow(need int) {
	n := max(2*len(d.buf), 16) // a power of two (see wrap)
	for n < need {
		n *= 2
	}
	nb := make([]T, n)
	// Touch every page now: fresh memory is mapped lazily, and the first
	// write would otherwise fault inside complete or cleanup, which must
	// stay cheap.
	var zero T
	step := max(4096/max(int(unsafe.Sizeof(zero)), 1), 1)
	for i := 0; i < n; i += step {
		nb[i] = zero
	}
	for i := 0; i < d.size; i++ {
		nb[i] = d.buf[d.wrap(d.head+i)]
	}
	d.buf, d.head = nb, 0
}

// front returns a pointer to the oldest element; the deque must not be empty.
func (d *deque[T]) front() *T { return &d.buf[d.head] }

// at returns a pointer to the i-th oldest element.
func (d *deque[T]) at(i int) *T { return &d.buf[d.wrap(d.head+i)] }

// back returns a pointer to the newest element; the deque must not be empty.
func (d *deque[T]) back() *T { return &d.buf[d.wrap(d.head+d.size-1)] }

func (d *deque[T]) pop() T {
	var v T
	d.popInto(&v)
	return v
}

// popInto moves the oldest element to *dst (one copy, none through a return
// value); the deque must not be empty.
func (d *deque[T]) popInto(dst *T) {
	var zero T
	*dst = d.buf[d.head]
	d.buf[d.head] = zero // drop references
	d.head = d.wrap(d.head + 1)
	d.size--
	if d.size == 0 {
		d.head = 0
	}
	// The buffer is kept: its size is bounded by the channel's config
	// (queues by dispatch_buffer_size, the stream by completion_buffer_size
	// plus what a shutdown cancels), so memory stays flat.
}

// clear drops every element.
func (d *deque[T]) clear() {
	d.buf, d.head, d.size = nil, 0, 0
}
