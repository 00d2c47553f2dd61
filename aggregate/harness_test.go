package aggregate

import (
	"fmt"
	"slices"
	"testing"

	"github.com/futureagi/prism-exporter/schemas"
)

// received is one emitted batch as the test saw it.
type received struct {
	b      Batch            // as handed over: its slices are the receiver's
	logs   []*schemas.Event // copies taken on receipt, to catch a reused slice
	series []Series
	// partials are b.Partial and b.RecordPartials encoded on receipt, to
	// catch a partial changed after it was handed over (and to feed the
	// Combiner what the topic would carry).
	partials [][]byte
	op       int // index of the op during which it was emitted
	flush    bool
}

// batchPartials lists a batch's partials: the whole one first.
func batchPartials(b *Batch) []*Partial {
	var ps []*Partial
	if b.Partial != nil {
		ps = append(ps, b.Partial)
	}
	return append(ps, b.RecordPartials...)
}

func (g *received) key() wkey {
	return wkey{g.b.Tenant, g.b.Window.Start.UnixNano(), int64(g.b.Window.Length)}
}

// harness runs a scenario's ops through a real Aggregator and the model side
// by side, checking every batch as it is emitted and the held offsets after
// every call.
type harness struct {
	t     *testing.T
	sc    *scenario
	clock *fakeClock
	a     *Aggregator
	m     *model
	name  string

	recOf     map[*schemas.Event]int
	class     []class // per record; 0 = not added in this run
	addOp     []int
	addNow    []int64      // the clock when each record was added
	emitted   []int        // times each record's log was emitted
	arrival   []int        // records in the order they were added
	unsent    map[int]bool // records whose log was not yet emitted
	lateHeld  map[int]bool // the late and replayed ones among them
	batches   []received
	closed    map[wkey]bool
	wantClose []wkey // closes the model expects from the current call, in order
	lastClose int64
	op        int
	inFlush   bool
}

func newHarness(t *testing.T, sc *scenario, clock *fakeClock, resume Resume, name string) *harness {
	t.Helper()
	cfg := sc.cfg
	cfg.Clock = clock
	a, err := New(cfg, resume)
	if err != nil {
		t.Fatalf("%s: New: %v", name, err)
	}
	h := &harness{
		t: t, sc: sc, clock: clock, a: a, m: newModel(cfg, resume), name: name,
		recOf:    make(map[*schemas.Event]int, len(sc.recs)),
		class:    make([]class, len(sc.recs)),
		addOp:    make([]int, len(sc.recs)),
		addNow:   make([]int64, len(sc.recs)),
		emitted:  make([]int, len(sc.recs)),
		unsent:   map[int]bool{},
		lateHeld: map[int]bool{},
		closed:   map[wkey]bool{},
	}
	for i, r := range sc.recs {
		h.recOf[r.ev] = i
	}
	return h
}

func (h *harness) fatalf(format string, args ...any) {
	h.t.Helper()
	h.t.Fatalf("seed %d %s op %d: %s", h.sc.seed, h.name, h.op, fmt.Sprintf(format, args...))
}

func (h *harness) run(ops []op) {
	h.t.Helper()
	for _, o := range ops {
		h.op++
		now := h.clock.now.UnixNano()
		switch o.kind {
		case opAdd:
			r := h.sc.recs[o.rec]
			c, closes := h.m.add(r.offset, r.ev, r.length, now)
			h.class[o.rec], h.addOp[o.rec], h.addNow[o.rec], h.wantClose = c, h.op, now, closes
			h.arrival = append(h.arrival, o.rec)
			switch c {
			case cSkipped:
			case cCorrected, cDropped, cReplayed:
				h.lateHeld[o.rec] = true
				h.unsent[o.rec] = true
			default:
				h.unsent[o.rec] = true
			}
			if p := h.a.Add(r.offset, r.ev, r.length, h.emit); p != c.placement() {
				h.fatalf("Add(offset %d, ts %v, %v) = %v, model says %v", r.offset, r.ev.Timestamp, r.length, p, c.placement())
			}
		case opAdvance, opIdle:
			h.wantClose = h.m.advance(o.kind == opIdle, now)
			h.a.Advance(o.kind == opIdle, h.emit)
			if len(h.lateHeld) > 0 {
				h.fatalf("Advance left %d late records unemitted", len(h.lateHeld))
			}
		case opFlush:
			h.inFlush = true
			h.a.Flush(h.emit)
			h.inFlush = false
			if len(h.unsent) != 0 {
				h.fatalf("Flush left %d logs unemitted", len(h.unsent))
			}
		case opClock:
			h.clock.now = o.at
		}
		if len(h.wantClose) > 0 {
			h.fatalf("model expected these windows to close too: %v", h.wantClose)
		}
		h.checkHeld()
	}
}

// checkHeld holds MinOffset, Stats and Frontier against the model.
func (h *harness) checkHeld() {
	h.t.Helper()
	var want int64
	wantOK := false
	note := func(o int64) {
		if !wantOK || o < want {
			want, wantOK = o, true
		}
	}
	for _, w := range h.m.wins {
		if w.open {
			note(w.minOffset)
		}
	}
	for i := range h.lateHeld {
		note(h.sc.recs[i].offset)
	}
	got, ok := h.a.MinOffset()
	if got != want || ok != wantOK {
		h.fatalf("MinOffset() = %d, %v; want %d, %v", got, ok, want, wantOK)
	}
	// Implied by the above, and what the committed offset rests on.
	for i := range h.unsent {
		if o := h.sc.recs[i].offset; !ok || o < got {
			h.fatalf("MinOffset() = %d, %v but offset %d is not yet emitted", got, ok, o)
		}
	}
	st := h.a.Stats()
	if st.OpenWindows != h.m.openCount() {
		h.fatalf("Stats.OpenWindows = %d, model has %d open", st.OpenWindows, h.m.openCount())
	}
	if st.BufferedLogs != len(h.unsent) {
		h.fatalf("Stats.BufferedLogs = %d, want %d", st.BufferedLogs, len(h.unsent))
	}
	if f := h.a.Frontier(); h.m.hasF != !f.IsZero() || (h.m.hasF && f.UnixNano() != h.m.f) {
		h.fatalf("Frontier() = %v, model F = %d (set %v)", f, h.m.f, h.m.hasF)
	}
}

func (h *harness) emit(b Batch) {
	g := received{b: b, logs: slices.Clone(b.Logs), series: slices.Clone(b.Series), op: h.op, flush: h.inFlush}
	k := g.key()
	for _, p := range batchPartials(&b) {
		enc, err := p.MarshalBinary()
		if err != nil {
			h.fatalf("%v batch for %v: partial does not encode: %v", b.Kind, k, err)
		}
		var back Partial
		if err := back.UnmarshalBinary(enc); err != nil || !equalPartials(p, &back) {
			h.fatalf("%v batch for %v: partial does not decode to itself: %v", b.Kind, k, err)
		}
		if p.Tenant != b.Tenant || !p.Window.Start.Equal(b.Window.Start) || p.Window.Length != b.Window.Length || p.Source != b.Partition {
			h.fatalf("%v batch for %v: partial for %s %v source %d", b.Kind, k, p.Tenant, p.Window, p.Source)
		}
		g.partials = append(g.partials, enc)
	}
	h.checkPartials(&g)
	h.batches = append(h.batches, g)
	if b.Partition != h.sc.cfg.Partition {
		h.fatalf("batch partition %d, want %d", b.Partition, h.sc.cfg.Partition)
	}
	chunk := h.m.cfg.ChunkSize
	if len(b.Logs) > chunk {
		h.fatalf("%v batch with %d logs, chunk size %d", b.Kind, len(b.Logs), chunk)
	}
	var minOff int64
	hasCorrected := false
	for i, ev := range b.Logs {
		idx, ok := h.recOf[ev]
		if !ok {
			h.fatalf("%v batch carries a log that was never added", b.Kind)
		}
		r := h.sc.recs[idx]
		if keyOf(ev, r.length) != k {
			h.fatalf("%v batch for %v carries a record of %v", b.Kind, k, keyOf(ev, r.length))
		}
		h.emitted[idx]++
		delete(h.unsent, idx)
		if h.emitted[idx] > 1 {
			h.fatalf("log of offset %d emitted %d times", r.offset, h.emitted[idx])
		}
		c := h.class[idx]
		switch b.Kind {
		case KindLogs, KindClose:
			if c != cPlaced {
				h.fatalf("%v batch carries offset %d of class %d", b.Kind, r.offset, c)
			}
		case KindLate:
			if c != cCorrected && c != cDropped && c != cReplayed {
				h.fatalf("late batch carries offset %d of class %d", r.offset, c)
			}
			delete(h.lateHeld, idx)
			hasCorrected = hasCorrected || c == cCorrected
		}
		if i == 0 || r.offset < minOff {
			minOff = r.offset
		}
	}
	for i := 1; i < len(b.Series); i++ {
		if compareTags(b.Series[i-1].Tags, b.Series[i].Tags) >= 0 {
			h.fatalf("%v batch series not sorted by tags: %v then %v", b.Kind, b.Series[i-1].Tags, b.Series[i].Tags)
		}
	}
	switch b.Kind {
	case KindLogs:
		if len(b.Logs) == 0 || (!h.inFlush && len(b.Logs) != chunk) {
			h.fatalf("KindLogs with %d logs (chunk %d, flush %v)", len(b.Logs), chunk, h.inFlush)
		}
		if b.Series != nil || b.MinOffset != minOff {
			h.fatalf("KindLogs: series %v, MinOffset %d want %d", b.Series != nil, b.MinOffset, minOff)
		}
		if w := h.m.wins[k]; w == nil || !w.open {
			h.fatalf("KindLogs for %v, which is not open", k)
		}
	case KindClose:
		if len(h.wantClose) == 0 || h.wantClose[0] != k {
			h.fatalf("KindClose for %v, model expects next %v", k, h.wantClose)
		}
		h.wantClose = h.wantClose[1:]
		if h.closed[k] {
			h.fatalf("window %v closed twice", k)
		}
		h.closed[k] = true
		if k.end() < h.lastClose {
			h.fatalf("window %v closed after one ending at %d", k, h.lastClose)
		}
		h.lastClose = k.end()
		if len(b.Series) == 0 {
			h.fatalf("KindClose for %v without series", k)
		}
		if want := h.m.wins[k].minOffset; b.MinOffset != want {
			h.fatalf("KindClose for %v MinOffset %d, want the window's first %d", k, b.MinOffset, want)
		}
	case KindLate:
		if len(b.Logs) == 0 || b.MinOffset != minOff {
			h.fatalf("KindLate with %d logs, MinOffset %d want %d", len(b.Logs), b.MinOffset, minOff)
		}
		if (len(b.Series) > 0) != hasCorrected {
			h.fatalf("KindLate for %v: series present %v, corrected record present %v", k, len(b.Series) > 0, hasCorrected)
		}
	default:
		h.fatalf("batch of kind %v", b.Kind)
	}
}

// finish checks what must hold after the run: each log emitted once (all of
// them when complete), the last totals emitted per window equal to the
// brute-force totals, the counters, nothing reused, and, when complete,
// nothing held.
func (h *harness) finish(complete bool) {
	h.t.Helper()
	for i := range h.sc.recs {
		want := 1
		if h.class[i] == 0 || h.class[i] == cSkipped {
			want = 0
		}
		if complete && h.emitted[i] != want {
			h.fatalf("record offset %d (class %d) emitted %d times, want %d", h.sc.recs[i].offset, h.class[i], h.emitted[i], want)
		}
	}
	for i := range h.batches {
		g := &h.batches[i]
		if !slices.Equal(g.b.Logs, g.logs) || !slices.Equal(g.b.Series, g.series) {
			h.fatalf("batch %d (%v %v) was changed after it was emitted", i, g.b.Kind, g.key())
		}
		for j, p := range batchPartials(&g.b) {
			if enc, _ := p.MarshalBinary(); string(enc) != string(g.partials[j]) {
				h.fatalf("batch %d (%v %v): partial %d was changed after it was emitted", i, g.b.Kind, g.key(), j)
			}
		}
	}

	// The last series per window, against brute-force totals of the records
	// placed or corrected by the time it was emitted.
	last := map[wkey]*received{}
	for i := range h.batches {
		if g := &h.batches[i]; len(g.b.Series) > 0 {
			last[g.key()] = g
		}
	}
	byWin := map[wkey][]int{}
	for _, i := range h.arrival {
		if c := h.class[i]; c == cPlaced || c == cCorrected {
			k := keyOf(h.sc.recs[i].ev, h.sc.recs[i].length)
			byWin[k] = append(byWin[k], i)
		}
	}
	folded := 0
	for k, idxs := range byWin {
		var all, upTo []*schemas.Event
		for _, i := range idxs {
			all = append(all, h.sc.recs[i].ev)
			if g := last[k]; g != nil && h.addOp[i] <= g.op {
				upTo = append(upTo, h.sc.recs[i].ev)
			}
		}
		_, f := totalsOf(all, h.m.cfg.MaxTagSets)
		folded += f
		g := last[k]
		if g == nil {
			if complete {
				h.fatalf("window %v never emitted series", k)
			}
			continue
		}
		want, _ := totalsOf(upTo, h.m.cfg.MaxTagSets)
		if len(want) != len(g.b.Series) {
			h.fatalf("window %v: last series has %d tag sets, model %d", k, len(g.b.Series), len(want))
		}
		for _, s := range g.b.Series {
			w := want[s.Tags]
			if w == nil {
				h.fatalf("window %v: tag set %v not in the model", k, s.Tags)
			}
			if msg := seriesMismatch(s, w); msg != "" {
				h.fatalf("window %v tags %v: %s", k, s.Tags, msg)
			}
		}
	}
	for k := range last {
		if byWin[k] == nil {
			h.fatalf("series emitted for window %v, which has no placed or corrected record", k)
		}
	}

	count := func(c class) int64 {
		n := int64(0)
		for _, x := range h.class {
			if x == c {
				n++
			}
		}
		return n
	}
	st := h.a.Stats()
	if st.LateCorrected != count(cCorrected) || st.LateMetricDropped != count(cDropped) ||
		st.ReplaySkipped != count(cSkipped) || st.Replayed != count(cReplayed) || st.TagSetsFolded != int64(folded) {
		h.fatalf("Stats %+v; model: corrected %d dropped %d skipped %d replayed %d folded %d", st,
			count(cCorrected), count(cDropped), count(cSkipped), count(cReplayed), folded)
	}
	if complete {
		if _, ok := h.a.MinOffset(); ok || st.OpenWindows != 0 || st.BufferedLogs != 0 || st.RetainedWindows != 0 {
			h.fatalf("after the final Advance something is held: MinOffset ok %v, %+v", ok, st)
		}
		if len(h.a.tenants) != 0 || len(h.a.closing) != 0 || h.a.retained.len() != 0 || len(h.a.pendingLate) != 0 {
			h.fatalf("after the final Advance the aggregator still keeps %d tenants, %d closing, %d retained, %d late groups",
				len(h.a.tenants), len(h.a.closing), h.a.retained.len(), len(h.a.pendingLate))
		}
	}
}
