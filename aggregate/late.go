package aggregate

import (
	"cmp"
	"slices"

	"github.com/futureagi/prism-exporter/schemas"
)

// lateGroup collects the late (and replayed) records of one tenant window
// until the next Advance, so that many late records of one window go out as
// one batch with one corrected total instead of one each.
type lateGroup struct {
	tenant        *tenant
	start, length int64

	logs      []*schemas.Event
	minOffset int64
	// win is the closed window whose totals a record of the current chunk
	// corrected; the chunk then carries them. A chunk whose records
	// corrected nothing (totals gone, or replayed) carries no Series, only
	// their records' partials.
	win *window
	// records are the partials of the chunk's records that went out under
	// keys of their own.
	records []*Partial
}

// addLate buffers a late or replayed record's log. corrected is the retained
// window whose totals the record updated, or nil; own is the record's
// partial under its own key, or nil. A full chunk goes out at once so that a
// burst of late records cannot grow without bound.
func (a *Aggregator) addLate(t *tenant, start, length, offset int64, ev *schemas.Event, corrected *window, own *Partial, emit func(Batch)) {
	g := t.lateGroup(start, length)
	if g == nil {
		g = &lateGroup{tenant: t, start: start, length: length}
		t.late = append(t.late, g)
		a.pendingLate = append(a.pendingLate, g)
	}
	if len(g.logs) == 0 || offset < g.minOffset {
		g.minOffset = offset
	}
	g.logs = append(g.logs, ev)
	a.stats.BufferedLogs++
	if corrected != nil {
		g.win = corrected
	}
	if own != nil {
		g.records = append(g.records, own)
	}
	if len(g.logs) >= a.cfg.ChunkSize {
		a.emitLateChunk(g, emit)
	}
}

func (a *Aggregator) emitLateChunk(g *lateGroup, emit func(Batch)) {
	b := Batch{
		Kind:      KindLate,
		Tenant:    g.tenant.name,
		Partition: a.cfg.Partition,
		Window:    windowOf(g.start, g.length),
		Logs:      g.logs,
		MinOffset: g.minOffset,
	}
	if g.win != nil {
		// The whole window's totals as they stand now, never a delta:
		// Datadog keeps the last value per series and timestamp. A window
		// that opened in this run sends its whole Partial again too, under
		// the same key.
		b.Series, b.Partial = g.win.totals(a.cfg.Partition, a.sk, !g.win.lateOpened)
	}
	b.RecordPartials = g.records
	a.stats.BufferedLogs -= len(g.logs)
	g.logs = nil
	g.win = nil
	g.records = nil
	emit(b)
}

// emitLate hands on every pending late group, in the order windows close (end,
// tenant, start), and forgets the groups.
func (a *Aggregator) emitLate(emit func(Batch)) {
	if len(a.pendingLate) == 0 {
		return
	}
	slices.SortFunc(a.pendingLate, func(x, y *lateGroup) int {
		if c := cmp.Compare(x.start+x.length, y.start+y.length); c != 0 {
			return c
		}
		if c := cmp.Compare(x.tenant.name, y.tenant.name); c != 0 {
			return c
		}
		if c := cmp.Compare(x.start, y.start); c != 0 {
			return c
		}
		return cmp.Compare(x.length, y.length)
	})
	// The groups stay listed while their chunks go out, so that MinOffset
	// read from inside emit still sees the ones not yet emitted.
	for _, g := range a.pendingLate {
		if len(g.logs) > 0 {
			a.emitLateChunk(g, emit)
		}
	}
	groups := a.pendingLate
	for _, g := range groups {
		clear(g.tenant.late)
		g.tenant.late = g.tenant.late[:0]
	}
	for _, g := range groups {
		a.forgetIfIdle(g.tenant)
	}
	clear(groups)
	a.pendingLate = groups[:0]
}

// lateMin is the lowest offset among late records not yet emitted.
func (a *Aggregator) lateMin() (int64, bool) {
	var m int64
	ok := false
	for _, g := range a.pendingLate {
		if len(g.logs) > 0 && (!ok || g.minOffset < m) {
			m, ok = g.minOffset, true
		}
	}
	return m, ok
}
