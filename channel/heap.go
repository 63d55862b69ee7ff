package channel

// deadlineHeap is a min-heap of pending FFI events ordered by deadline. Each
// entry records its index so that a completed event is removed in O(log n):
// the heap never holds an ended event, so its size is the FFI pending count.
type deadlineHeap []*entry

func (h deadlineHeap) less(i, j int) bool { return h[i].deadline < h[j].deadline }

func (h deadlineHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

func (h *deadlineHeap) push(e *entry) {
	e.heapIdx = len(*h)
	*h = append(*h, e)
	h.up(e.heapIdx)
}

func (h *deadlineHeap) remove(e *entry) {
	i := e.heapIdx
	n := len(*h) - 1
	if i != n {
		h.swap(i, n)
	}
	(*h)[n] = nil
	*h = (*h)[:n]
	e.heapIdx = -1
	if i != n {
		if !h.down(i) {
			h.up(i)
		}
	}
	if cap(*h) > 4096 && len(*h) < cap(*h)/4 {
		*h = append(deadlineHeap(nil), *h...)
	}
}

func (h deadlineHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h deadlineHeap) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
