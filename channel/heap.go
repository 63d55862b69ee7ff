package channel

// deadlineHeap is a min-heap of pending FFI events ordered by deadline. Each
// item carries its deadline inline, so that sifting compares without
// touching the entries (with 100,000 pending events, chasing each entry's
// pointer was most of a cleanup's time), and each entry records its index,
// so that a completed event is removed in O(log n): the heap never holds an
// ended event, and its size is the FFI pending count.
type deadlineHeap []heapItem

type heapItem struct {
	deadline int64 // nanoseconds since Channel.epoch
	e        *entry
}

func (h deadlineHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].e.heapIdx = i
	h[j].e.heapIdx = j
}

func (h *deadlineHeap) push(e *entry) {
	e.heapIdx = len(*h)
	*h = append(*h, heapItem{int64(e.deadline), e})
	h.up(e.heapIdx)
}

// min returns the entry with the earliest deadline and that deadline; the
// heap must not be empty.
func (h deadlineHeap) min() (*entry, int64) { return h[0].e, h[0].deadline }

func (h *deadlineHeap) remove(e *entry) {
	i := e.heapIdx
	n := len(*h) - 1
	if i != n {
		h.swap(i, n)
	}
	(*h)[n] = heapItem{}
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
		if h[j].deadline >= h[i].deadline {
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
		if r := l + 1; r < n && h[r].deadline < h[l].deadline {
			j = r
		}
		if h[j].deadline >= h[i].deadline {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
