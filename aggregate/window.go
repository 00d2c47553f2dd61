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
	// open window holds, and the MinOffset of its KindClose.
	minOffset int64

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

// seriesOut is the window's totals, one Series per tag set, sorted by tags so
// that the output does not depend on arrival order.
func (w *window) seriesOut() []Series {
	out := make([]Series, len(w.series))
	for i := range w.series {
		out[i] = w.series[i].series()
	}
	slices.SortFunc(out, func(a, b Series) int { return compareTags(a.Tags, b.Tags) })
	return out
}

// dropTotals frees what the window kept for corrections.
func (w *window) dropTotals() {
	w.series = nil
	w.index = nil
}
