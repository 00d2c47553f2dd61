package aggregate

import (
	"slices"

	"github.com/futureagi/prism-exporter/schemas"
)

// linearTagSets is how many tag sets a window finds by a linear scan before
// it builds a map: most windows hold a handful, and a map of TagSet keys costs
// hundreds of bytes even when nearly empty.
const linearTagSets = 8

// firstLogsCap is the log buffer's first capacity in a window that has not yet
// filled a chunk: with thousands of quiet tenants, most windows hold few logs.
const firstLogsCap = 4

// window is one tenant window: open while it collects records, then closed
// and, for a while, kept for late corrections. Times are Unix nanoseconds.
type window struct {
	tenant             *tenant
	start, length, end int64

	// minOffset is the lowest offset placed in the window: the offset the
	// open window holds, the MinOffset of its KindClose, and its whole
	// Partial's First.
	minOffset int64
	// through is the highest offset counted in the window: its whole
	// Partial's Through. Once the window stops taking records (evicted,
	// expired), later records of it are past through and go out under keys
	// of their own.
	through int64
	// lateOpened: a late record started the window's totals (it never
	// opened in this run). Its records may have been counted by an earlier
	// run in partials this run cannot rebuild, so it sends no whole
	// Partial: each of its records goes out in a partial of its own.
	lateOpened bool

	series   []seriesAcc
	index    map[TagSet]int32 // nil until series outgrow linearTagSets
	distinct int              // tag sets counting against the cap: all but Other

	logs      []*schemas.Event
	logsMin   int64 // lowest offset among logs
	fullChunk bool  // a full chunk went out: the next buffer is sized for one

	// prev and next link the open windows in creation order (see
	// Aggregator.MinOffset).
	prev, next *window

	// retainIdx is the window's place in the expiry heap while its closed
	// totals are kept for corrections; -1 otherwise.
	retainIdx int
}

// windowStart aligns ts to the Unix epoch in steps of length, flooring also
// for times before 1970 (Go's % truncates toward zero).
func windowStart(ts, length int64) int64 {
	m := ts % length
	if m < 0 {
		m += length
	}
	return ts - m
}

func (w *window) retained() bool { return w.retainIdx >= 0 }

func (w *window) find(tags TagSet) (int, bool) {
	if w.index != nil {
		i, ok := w.index[tags]
		return int(i), ok
	}
	for i := range w.series {
		if w.series[i].tags == tags {
			return i, true
		}
	}
	return 0, false
}

func (w *window) addSeries(tags TagSet) int {
	// The tag strings are the record's own, not copies: schemas.Decode
	// interns or copies them (never slices a fetch buffer), so keeping them
	// pins nothing and windows share one copy of each model name.
	w.series = append(w.series, seriesAcc{tags: tags})
	i := len(w.series) - 1
	switch {
	case w.index != nil:
		w.index[tags] = int32(i)
	case len(w.series) > linearTagSets:
		w.index = make(map[TagSet]int32, 2*len(w.series))
		for j := range w.series {
			w.index[w.series[j].tags] = int32(j)
		}
	}
	return i
}

// bufferLog appends a record's log. The buffer grows by doubling up to the
// chunk size so that a quiet window holds a small slice and a busy one
// allocates once per chunk.
func (w *window) bufferLog(offset int64, ev *schemas.Event, chunk int) {
	if len(w.logs) == 0 || offset < w.logsMin {
		w.logsMin = offset
	}
	if len(w.logs) == cap(w.logs) {
		n := firstLogsCap
		if w.fullChunk {
			n = chunk
		} else if len(w.logs) > 0 {
			n = 2 * len(w.logs)
		}
		grown := make([]*schemas.Event, len(w.logs), min(n, chunk))
		copy(grown, w.logs)
		w.logs = grown
	}
	w.logs = append(w.logs, ev)
}

// takeLogs hands the buffered logs over: the receiver owns the slice, so the
// window starts a new one.
func (w *window) takeLogs() []*schemas.Event {
	logs := w.logs
	w.logs = nil
	return logs
}

// totals is the window's totals, one Series per tag set, sorted by tags so
// that the output does not depend on arrival order; with whole, also the
// window's whole Partial on source (see Partial). The Partial shares the
// Series slice, so that building it costs the latencies' copy: one
// allocation with the Partial for up to linearTagSets tag sets, and one
// for the bins of all the window's sketches.
func (w *window) totals(source int32, sk sketches, whole bool) ([]Series, *Partial) {
	// Sort indexes rather than accumulators or Series: they are about 200
	// bytes each.
	var buf [linearTagSets]int32
	order := buf[:0]
	if len(w.series) > len(buf) {
		order = make([]int32, 0, len(w.series))
	}
	for i := range w.series {
		order = append(order, int32(i))
	}
	slices.SortFunc(order, func(a, b int32) int { return compareTags(w.series[a].tags, w.series[b].tags) })
	out := make([]Series, len(order))
	if !whole {
		bc := sk.bins
		var lat Latencies
		for i, j := range order {
			bc.bins = bc.bins[:0]
			w.series[j].latencies(&lat, bc)
			lat.Bins = bc.bins // read before the next series: no copy
			out[i] = w.series[j].seriesWith(&lat, sk.mapping)
		}
		return out, nil
	}
	p, lats := newPartial(len(order))
	p.Latencies = lats
	w.partialLatencies(order, lats, sk.bins)
	for i, j := range order {
		out[i] = w.series[j].seriesWith(&lats[i], sk.mapping)
	}
	p.Tenant = w.tenant.name
	p.Window = windowOf(w.start, w.length)
	p.Source = source
	p.First, p.Through = w.minOffset, w.through
	p.Series = out
	return out, p
}

// partialLatencies fills lats with the latencies of the series in order,
// with the bins of all their sketches in one new slice.
func (w *window) partialLatencies(order []int32, lats []Latencies, bc *binCollector) {
	var buf [linearTagSets]int
	ends := buf[:0]
	if len(order) > len(buf) {
		ends = make([]int, 0, len(order))
	}
	bc.bins = bc.bins[:0]
	for i, j := range order {
		w.series[j].latencies(&lats[i], bc)
		ends = append(ends, len(bc.bins))
	}
	if len(bc.bins) == 0 {
		return
	}
	bins := slices.Clone(bc.bins)
	start := 0
	for i, end := range ends {
		if end > start {
			lats[i].Bins = bins[start:end:end]
		}
		start = end
	}
}

// partialBlock holds a Partial and its Latencies in one allocation.
type partialBlock[L any] struct {
	p Partial
	l L
}

// newPartial allocates a Partial and its n Latencies, together while n is
// at most linearTagSets: most windows hold a few tag sets.
func newPartial(n int) (*Partial, []Latencies) {
	switch n {
	case 1:
		b := new(partialBlock[[1]Latencies])
		return &b.p, b.l[:]
	case 2:
		b := new(partialBlock[[2]Latencies])
		return &b.p, b.l[:]
	case 3:
		b := new(partialBlock[[3]Latencies])
		return &b.p, b.l[:]
	case 4:
		b := new(partialBlock[[4]Latencies])
		return &b.p, b.l[:]
	case 5:
		b := new(partialBlock[[5]Latencies])
		return &b.p, b.l[:]
	case 6:
		b := new(partialBlock[[6]Latencies])
		return &b.p, b.l[:]
	case 7:
		b := new(partialBlock[[7]Latencies])
		return &b.p, b.l[:]
	case 8:
		b := new(partialBlock[[8]Latencies])
		return &b.p, b.l[:]
	}
	return new(Partial), make([]Latencies, n)
}

// dropTotals frees what the window kept for corrections.
func (w *window) dropTotals() {
	w.series = nil
	w.index = nil
}
