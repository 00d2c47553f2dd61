package aggregate

// windowHeap orders a Combiner's windows by end (then tenant, start,
// length): the order they expire in, and the order MaxBytes evicts them in.
// Each window knows its index so that any one can leave at once.
type windowHeap []*cwindow

func (h windowHeap) less(i, j int) bool { return compareWindows(h[i], h[j]) < 0 }

func (h windowHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

func (h windowHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h windowHeap) down(i int) {
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && h.less(l, m) {
			m = l
		}
		if r < len(h) && h.less(r, m) {
			m = r
		}
		if m == i {
			return
		}
		h.swap(i, m)
		i = m
	}
}

func (h *windowHeap) push(w *cwindow) {
	w.heapIdx = len(*h)
	*h = append(*h, w)
	h.up(w.heapIdx)
}

func (h windowHeap) peek() *cwindow {
	if len(h) == 0 {
		return nil
	}
	return h[0]
}

// remove takes w out of the heap and marks it dropped (heapIdx -1).
func (h *windowHeap) remove(w *cwindow) {
	s := *h
	i, last := w.heapIdx, len(s)-1
	if i != last {
		s.swap(i, last)
	}
	s[last] = nil
	s = s[:last]
	*h = s
	if i != last {
		s.down(i)
		s.up(i)
	}
	w.heapIdx = -1
}
