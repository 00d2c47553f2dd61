package aggregate

import "cmp"

// closingHeap orders open windows by the order they close in: end, then
// tenant, then start and length (a tenant whose sync interval changed may
// have windows of two lengths). Hand-written rather than container/heap to
// avoid boxing a window in an interface on every push.
type closingHeap []*window

func closesBefore(a, b *window) bool {
	if a.end != b.end {
		return a.end < b.end
	}
	if c := cmp.Compare(a.tenant.name, b.tenant.name); c != 0 {
		return c < 0
	}
	if a.start != b.start {
		return a.start < b.start
	}
	return a.length < b.length
}

func (h *closingHeap) push(w *window) {
	*h = append(*h, w)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !closesBefore(s[i], s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h closingHeap) peek() *window {
	if len(h) == 0 {
		return nil
	}
	return h[0]
}

func (h *closingHeap) pop() *window {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = nil
	s = s[:last]
	*h = s
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && closesBefore(s[l], s[m]) {
			m = l
		}
		if r < len(s) && closesBefore(s[r], s[m]) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	return top
}

// expiryHeap orders retained closed windows by start, i.e. by when their
// totals expire (start + MetricMaxAge). Each window knows its index
// (retainIdx) so that a window evicted by the per-tenant count leaves at once
// instead of pinning its totals until it expires.
type expiryHeap []*window

func (h expiryHeap) less(i, j int) bool { return h[i].start < h[j].start }

func (h expiryHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].retainIdx = i
	h[j].retainIdx = j
}

func (h expiryHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h expiryHeap) down(i int) {
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

func (h *expiryHeap) push(w *window) {
	w.retainIdx = len(*h)
	*h = append(*h, w)
	h.up(w.retainIdx)
}

func (h expiryHeap) peek() *window {
	if len(h) == 0 {
		return nil
	}
	return h[0]
}

// remove takes w out of the heap and marks it not retained.
func (h *expiryHeap) remove(w *window) {
	s := *h
	i, last := w.retainIdx, len(s)-1
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
	w.retainIdx = -1
}
