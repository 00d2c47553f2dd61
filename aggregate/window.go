package aggregate

import (
	"slices"
	"time"
)

// linearTagSets is how many tag sets a window finds by a linear scan before
// it builds a map: most windows hold a handful, and a map of TagSet keys costs
// hundreds of bytes even when nearly empty.
const linearTagSets = 8

// firstLogsCap is the log buffer's first capacity for a tenant that has not
// yet filled a chunk: with thousands of quiet tenants, most hold few logs.
const firstLogsCap = 4

// window is one tenant window's share in the current segment: its totals
// per tag set. Times are Unix nanoseconds.
type window struct {
	tenant             string
	start, length, end int64

	series   []seriesAcc
	index    map[TagSet]int32 // nil until series outgrow linearTagSets
	distinct int              // tag sets counting against the cap: all but Other
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

// partial is the window's share as a Partial on source, one Series per tag
// set, sorted by tags so that the output does not depend on arrival order.
// Building it costs the latencies' copy: one allocation with the Partial
// for up to linearTagSets tag sets, and one for the bins of all the
// window's sketches.
func (w *window) partial(source int64, sk sketches) *Partial {
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
	p, lats := newPartial(len(order))
	p.Latencies = lats
	w.partialLatencies(order, lats, sk.bins)
	for i, j := range order {
		out[i] = w.series[j].seriesWith(&lats[i], sk.mapping)
	}
	p.Tenant = w.tenant
	p.Window = windowOf(w.start, w.length)
	p.Source = source
	p.Series = out
	return p
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

func windowOf(start, length int64) Window {
	return Window{Start: time.Unix(0, start).UTC(), Length: time.Duration(length)}
}
