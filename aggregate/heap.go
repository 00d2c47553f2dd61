package aggregate

// indexedHeap is a binary min-heap whose items know their place in it, so
// that any one can leave at once (a window evicted before it expires does
// not pin its totals until then). Used for the combiner's windows (by end).
// Generic over a pointer type, so nothing is boxed in an interface.
type indexedHeap[T any] struct {
	items []T
	less  func(a, b T) bool
	place func(T) *int // the item's index field; -1 when not in the heap
}

func (h *indexedHeap[T]) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	*h.place(h.items[i]) = i
	*h.place(h.items[j]) = j
}

func (h *indexedHeap[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.items[i], h.items[p]) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *indexedHeap[T]) down(i int) {
	for n := len(h.items); ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h.less(h.items[l], h.items[m]) {
			m = l
		}
		if r < n && h.less(h.items[r], h.items[m]) {
			m = r
		}
		if m == i {
			return
		}
		h.swap(i, m)
		i = m
	}
}

func (h *indexedHeap[T]) push(x T) {
	*h.place(x) = len(h.items)
	h.items = append(h.items, x)
	h.up(len(h.items) - 1)
}

// peek returns the least item, or false when the heap is empty.
func (h *indexedHeap[T]) peek() (T, bool) {
	if len(h.items) == 0 {
		var zero T
		return zero, false
	}
	return h.items[0], true
}

func (h *indexedHeap[T]) len() int { return len(h.items) }

// remove takes x out of the heap and sets its place to -1.
func (h *indexedHeap[T]) remove(x T) {
	i, last := *h.place(x), len(h.items)-1
	if i != last {
		h.swap(i, last)
	}
	var zero T
	h.items[last] = zero
	h.items = h.items[:last]
	if i != last {
		h.down(i)
		h.up(i)
	}
	*h.place(x) = -1
}
