package aggregate

// tenant is one tenant's state on this partition. It exists while it has an
// open window, a pending late group or retained totals.
type tenant struct {
	name string
	open []*window // usually one or two
	// closed holds the tenant's RetainClosed most recently closed windows in
	// closing order, also once their totals expired: eviction is by count
	// alone, so "retained" means "among the last RetainClosed closed and not
	// expired" whatever the order of expiry.
	closed []*window
	late   []*lateGroup // groups waiting for the next Advance
}

func (t *tenant) openWindow(start, length int64) *window {
	for _, w := range t.open {
		if w.start == start && w.length == length {
			return w
		}
	}
	return nil
}

func (t *tenant) closedWindow(start, length int64) *window {
	for _, w := range t.closed {
		if w.start == start && w.length == length {
			return w
		}
	}
	return nil
}

func (t *tenant) removeOpen(w *window) {
	for i, o := range t.open {
		if o == w {
			last := len(t.open) - 1
			t.open[i] = t.open[last]
			t.open[last] = nil
			t.open = t.open[:last]
			return
		}
	}
}

func (t *tenant) lateGroup(start, length int64) *lateGroup {
	for _, g := range t.late {
		if g.start == start && g.length == length {
			return g
		}
	}
	return nil
}

// idle reports whether the tenant holds nothing and can be forgotten.
func (t *tenant) idle() bool {
	if len(t.open) > 0 || len(t.late) > 0 {
		return false
	}
	for _, w := range t.closed {
		if w.retained() {
			return false
		}
	}
	return true
}
