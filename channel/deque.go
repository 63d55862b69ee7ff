package channel

import "unsafe"

// deque is a growable ring buffer used for the FIFO queues and the
// completion stream. Not safe for concurrent use: the Channel's mutex guards it.
type deque[T any] struct {
	buf        []T
	head, size int
}

func (d *deque[T]) len() int { return d.size }

func (d *deque[T]) push(v T) {
	if d.size == len(d.buf) {
		d.grow(d.size + 1)
	}
	d.buf[(d.head+d.size)%len(d.buf)] = v
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
	n := max(2*len(d.buf), 16)
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
		nb[i] = d.buf[(d.head+i)%len(d.buf)]
	}
	d.buf, d.head = nb, 0
}

// front returns a pointer to the oldest element; the deque must not be empty.
func (d *deque[T]) front() *T { return &d.buf[d.head] }

// at returns a pointer to the i-th oldest element.
func (d *deque[T]) at(i int) *T { return &d.buf[(d.head+i)%len(d.buf)] }

// back returns a pointer to the newest element; the deque must not be empty.
func (d *deque[T]) back() *T { return &d.buf[(d.head+d.size-1)%len(d.buf)] }

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
	d.head = (d.head + 1) % len(d.buf)
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
