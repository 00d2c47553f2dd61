package aggregate

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/futureagi/prism-exporter/schemas"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func newTestCombiner(t *testing.T, cfg CombinerConfig) (*Combiner, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: t0}
	cfg.Clock = clock
	c, err := NewCombiner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, clock
}

// tagSeries is one tag set of a partial: its series and latencies.
type tagSeries struct {
	s Series
	l Latencies
}

// exactSeries is a tag set's totals over the given sorted latencies, held
// exactly (at most four).
func exactSeries(model string, latencies ...int32) tagSeries {
	var t tagSeries
	t.s = Series{Tags: TagSet{model, "p", "g", "r"}, Requests: int64(len(latencies)), Cost: 0.25 * float64(len(latencies))}
	for i, l := range latencies {
		t.l.Exact[i] = l
		t.s.LatencySumMS += int64(l)
		if i == 0 || int64(l) > t.s.LatencyMaxMS {
			t.s.LatencyMaxMS = int64(l)
		}
	}
	return t
}

func wholePartial(source int64, first, through int64, series ...tagSeries) *Partial {
	// MaxEvent at the window's end: the source has read past it.
	p := &Partial{Tenant: "org", Window: windowOf(t0.UnixNano(), int64(time.Minute)), Source: source, Segment: first, First: first, Through: through,
		MaxEvent: t0.Add(time.Minute).UnixNano()}
	for _, t := range series {
		p.Series = append(p.Series, t.s)
		p.Latencies = append(p.Latencies, t.l)
	}
	return p
}

// recPartial is a one-record segment's partial.
func recPartial(source int64, offset int64, t tagSeries) *Partial {
	return wholePartial(source, offset, offset, t)
}

// ownLatencies is acc's latencies with a copy of its bins.
func ownLatencies(acc *seriesAcc) Latencies {
	var lat Latencies
	bc := newBinCollector()
	acc.latencies(&lat, bc)
	lat.Bins = append([]Bin(nil), bc.bins...)
	return lat
}

var testWindow = Window{Start: t0, Length: time.Minute}

func totalsByModel(c *Combiner) map[string]Series {
	out := map[string]Series{}
	for _, s := range c.Totals("org", testWindow) {
		out[s.Tags.Model] = s
	}
	return out
}

func TestNewCombinerValidates(t *testing.T) {
	clock := &fakeClock{now: t0}
	for _, cfg := range []CombinerConfig{
		{},
		{Clock: clock, Grace: -1},
		{Clock: clock, MaxAge: -1},
		{Clock: clock, MaxBytes: -1},
		{Clock: clock, MaxTagSets: -1},
		{Clock: clock, MaxTagSets: maxTagSetsLimit + 1},
	} {
		if _, err := NewCombiner(cfg); err == nil {
			t.Errorf("NewCombiner(%+v) accepted it", cfg)
		}
	}
}

func TestCombinerSumsSourcesAndReplaces(t *testing.T) {
	c, _ := newTestCombiner(t, CombinerConfig{})
	c.Add(wholePartial(0, 1, 9, exactSeries("a", 10, 20)))
	c.Add(wholePartial(1, 5, 6, exactSeries("a", 30), exactSeries("b", 5)))
	got := totalsByModel(c)
	a := got["a"]
	if len(got) != 2 || a.Requests != 3 || a.LatencySumMS != 60 || a.LatencyAvgMS != 20 || a.LatencyMaxMS != 30 ||
		a.LatencyP50MS != 20 || a.LatencyP99MS != 20 || a.Cost != 0.75 || got["b"].Requests != 1 {
		t.Fatalf("totals %+v", got)
	}
	// A replay of source 0 overwrites its partial: no double count.
	c.Add(wholePartial(0, 1, 9, exactSeries("a", 10)))
	if a := totalsByModel(c)["a"]; a.Requests != 2 || a.LatencySumMS != 40 {
		t.Fatalf("after the overwrite: %+v", a)
	}
	if s := c.Stats(); s.Replaced != 1 || s.Partials != 2 || s.Windows != 1 {
		t.Errorf("Stats %+v", s)
	}
}

// Segments of one source add up; a Reset drops the source's segments from
// a commit point on (a new run rewrites them), and only those.
func TestCombinerSegmentsAndReset(t *testing.T) {
	c, clock := newTestCombiner(t, CombinerConfig{Grace: time.Second})
	c.Add(wholePartial(0, 100, 199, exactSeries("a", 1, 2)))
	c.Add(wholePartial(0, 200, 299, exactSeries("a", 3)))
	c.Add(wholePartial(0, 300, 350, exactSeries("a", 4)))
	c.Add(wholePartial(1, 200, 260, exactSeries("a", 5))) // another source
	if a := totalsByModel(c)["a"]; a.Requests != 5 || a.LatencySumMS != 1+2+3+4+5 {
		t.Fatalf("totals %+v", a)
	}
	clock.now = t0.Add(2 * time.Minute)
	for _, d := range c.Due() {
		c.MarkSent(d)
	}
	changed := c.Reset(0, 200)
	if len(changed) != 1 || changed[0].Tenant != "org" || !changed[0].Window.Start.Equal(t0) {
		t.Fatalf("Reset reported %v", changed)
	}
	if a := totalsByModel(c)["a"]; a.Requests != 3 || a.LatencySumMS != 1+2+5 {
		t.Fatalf("after Reset(0, 200): %+v", a)
	}
	if d := c.Due(); len(d) != 1 {
		t.Fatalf("a reset window is not due again: %v", d)
	}
	// The replay's own segments, ending elsewhere, count once.
	c.Add(wholePartial(0, 200, 320, exactSeries("a", 3, 4)))
	if a := totalsByModel(c)["a"]; a.Requests != 5 || a.LatencySumMS != 1+2+3+4+5 {
		t.Fatalf("after the replay: %+v", a)
	}
	if len(c.Reset(2, 0)) != 0 || len(c.Reset(1, 261)) != 0 {
		t.Fatal("a Reset that drops nothing reported a change")
	}
	if s := c.Stats(); s.Partials != 3 || s.ResetDropped != 1 {
		t.Errorf("Stats %+v", s)
	}
}

// A window whose sources have not read past its end waits for Grace after
// its last change (a source that stopped before it moved on).
func TestCombinerDueAndMarkSent(t *testing.T) {
	c, clock := newTestCombiner(t, CombinerConfig{Grace: 10 * time.Second})
	p := wholePartial(0, 1, 2, exactSeries("a", 10))
	p.MaxEvent = t0.Add(30 * time.Second).UnixNano() // mid-window
	clock.now = t0.Add(time.Minute)
	c.Add(p)
	clock.now = t0.Add(time.Minute + 9*time.Second)
	if d := c.Due(); len(d) != 0 {
		t.Fatalf("due before its sources moved on or grace passed: %v", d)
	}
	clock.now = t0.Add(time.Minute + 10*time.Second)
	d := c.Due()
	if len(d) != 1 || d[0].Tenant != "org" || !d[0].Window.Start.Equal(t0) || d[0].Window.Length != time.Minute {
		t.Fatalf("Due() = %v", d)
	}
	if !c.MarkSent(d[0]) || len(c.Due()) != 0 {
		t.Fatal("still due after MarkSent")
	}
	// The same partial again (a replay, a producer retry) changes nothing.
	dup := *p
	c.Add(&dup)
	if d := c.Due(); len(d) != 0 || c.Stats().Duplicates != 1 {
		t.Fatalf("a duplicate made the window due: %v, %+v", d, c.Stats())
	}
	// A late correction makes it due again; a MarkSent of what Due saw
	// before the change is refused.
	d = []Pending{{Tenant: "org", Window: testWindow, version: c.windows[windowID{"org", t0.UnixNano(), int64(time.Minute)}].version}}
	late := recPartial(0, 7, exactSeries("a", 3))
	c.Add(late)
	if c.MarkSent(d[0]) {
		t.Fatal("MarkSent accepted a version older than the totals")
	}
	d = c.Due() // the late share moved the source past the end
	if len(d) != 1 || !c.MarkSent(d[0]) || len(c.Due()) != 0 {
		t.Fatalf("after a correction: %v", d)
	}
}

// Under a backlog the wall clock is far past every window: a window goes
// out once every source that sent a share of it has read past its end,
// not once per share.
func TestCombinerWaitsForEverySourceToMoveOn(t *testing.T) {
	c, clock := newTestCombiner(t, CombinerConfig{Grace: time.Minute, Settle: time.Second})
	clock.now = t0.Add(time.Hour / 2)
	mid := t0.Add(30 * time.Second).UnixNano()
	a := wholePartial(0, 1, 2, exactSeries("a", 10))
	a.MaxEvent = mid
	b := wholePartial(1, 1, 2, exactSeries("a", 20))
	c.Add(a)
	c.Add(b)
	clock.now = clock.now.Add(5 * time.Second)
	if d := c.Due(); len(d) != 0 {
		t.Fatalf("due while source 0 is still inside the window: %v", d)
	}
	a2 := wholePartial(0, 3, 4, exactSeries("a", 30)) // source 0 reads on, past the end
	c.Add(a2)
	if d := c.Due(); len(d) != 0 {
		t.Fatalf("due before it settled: %v", d)
	}
	clock.now = clock.now.Add(time.Second)
	if d := c.Due(); len(d) != 1 || totalsByModel(c)["a"].Requests != 3 {
		t.Fatalf("not due with every source past its end: %v", d)
	}
}

func TestCombinerExpiresByAge(t *testing.T) {
	c, clock := newTestCombiner(t, CombinerConfig{})
	c.Add(wholePartial(0, 1, 2, exactSeries("a", 10)))
	clock.now = t0.Add(time.Minute + time.Hour - time.Nanosecond)
	c.Add(recPartial(1, 5, exactSeries("a", 1)))
	if c.Totals("org", testWindow) == nil {
		t.Fatal("dropped before end + MaxAge")
	}
	clock.now = t0.Add(time.Minute + time.Hour)
	if d := c.Due(); len(d) != 0 {
		t.Fatalf("an expired window is due: %v", d)
	}
	c.Add(recPartial(2, 5, exactSeries("a", 1)))
	s := c.Stats()
	if c.Totals("org", testWindow) != nil || s.Expired != 1 || s.ExpiredUnsent != 1 || s.DroppedTooOld != 1 || s.Windows != 0 || s.Partials != 0 || s.Bytes != 0 {
		t.Fatalf("after expiry: %+v", s)
	}
}

// Past MaxBytes the windows that expire first go whole, counted, and their
// later partials are refused until they would have expired.
func TestCombinerMemoryBound(t *testing.T) {
	one := partialSize(wholePartial(0, 1, 2, exactSeries("a", 10))) + windowOverhead
	c, clock := newTestCombiner(t, CombinerConfig{MaxBytes: 3 * one})
	at := func(i int) *Partial {
		p := wholePartial(0, 1, 2, exactSeries("a", 10))
		p.Window.Start = t0.Add(time.Duration(i) * time.Minute)
		return p
	}
	for i := range 5 {
		c.Add(at(i))
	}
	s := c.Stats()
	if s.Windows != 3 || s.Evicted != 2 || s.EvictedUnsent != 2 || s.Bytes > 3*one {
		t.Fatalf("Stats %+v", s)
	}
	if c.Totals("org", Window{Start: t0, Length: time.Minute}) != nil || c.Totals("org", Window{Start: t0.Add(2 * time.Minute), Length: time.Minute}) == nil {
		t.Fatal("evicted the wrong windows")
	}
	c.Add(at(0))
	if s := c.Stats(); s.DroppedEvicted != 1 || s.Windows != 3 {
		t.Fatalf("a partial of an evicted window was taken: %+v", s)
	}
	clock.now = t0.Add(3 * time.Hour)
	c.Due()
	if len(c.evicted) != 0 || len(c.windows) != 0 {
		t.Fatalf("after expiry: %d evicted kept, %d windows", len(c.evicted), len(c.windows))
	}
}

func TestCombinerFoldsTagSets(t *testing.T) {
	c, _ := newTestCombiner(t, CombinerConfig{MaxTagSets: 2})
	c.Add(wholePartial(0, 1, 2, exactSeries("a", 1, 1, 1, 1), exactSeries("b", 2), exactSeries("c", 3, 3, 3), exactSeries("d", 4, 4)))
	other := exactSeries(Other, 9)
	other.s.Tags = otherTags()
	c.Add(wholePartial(1, 1, 2, exactSeries("a", 1), other))
	got := totalsByModel(c)
	if len(got) != 3 || got["a"].Requests != 5 || got["c"].Requests != 3 || got[Other].Requests != 1+2+1 || got[Other].LatencyMaxMS != 9 {
		t.Fatalf("totals %+v", got)
	}
}

// Percentiles are exact while every partial holds its latencies exactly,
// and within 1% once one holds a sketch; averages are exact either way.
func TestCombinerPercentiles(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sk, err := newSketches()
	if err != nil {
		t.Fatal(err)
	}
	for round := range 200 {
		c, _ := newTestCombiner(t, CombinerConfig{})
		var evs []*schemas.Event
		sources := 1 + r.IntN(6)
		sketched := false
		for src := range sources {
			var acc seriesAcc
			acc.tags = TagSet{"m", "p", "g", "r"}
			n := 1 + r.IntN(4)
			if r.IntN(3) == 0 {
				n = 5 + r.IntN(200)
			}
			for range n {
				ev := &schemas.Event{Model: "m", Provider: "p", GatewayID: "g", RoutingStrategy: "r", LatencyMS: r.Int64N(100_000), Cost: r.Float64()}
				evs = append(evs, ev)
				acc.add(ev, sk)
			}
			sketched = sketched || acc.latency != nil
			var t tagSeries
			t.l = ownLatencies(&acc)
			t.s = acc.seriesWith(&t.l, sk.mapping)
			c.Add(wholePartial(int64(src), 1, 2, t))
		}
		want, _ := totalsOf(evs, 10)
		got := c.Totals("org", testWindow)
		if len(got) != 1 {
			t.Fatalf("round %d: %d series", round, len(got))
		}
		w := want[got[0].Tags]
		if msg := seriesMismatch(got[0], w); msg != "" {
			t.Fatalf("round %d (%d sources, sketched %v): %s", round, sources, sketched, msg)
		}
		if !sketched && (got[0].LatencyP50MS != w.LatencyP50MS || got[0].LatencyP95MS != w.LatencyP95MS || got[0].LatencyP99MS != w.LatencyP99MS) {
			t.Fatalf("round %d: exact latencies gave %+v, want %+v", round, got[0], w.Series)
		}
	}
}

// With one source, the Combiner sends exactly what the partition would have.
func TestCombinerMatchesOnePartition(t *testing.T) {
	for _, lat := range [][]int64{{30, 10, 20}, {5, 0, 900, 12, 0, 40000, 7, 3, 100, 200, 300, 400}} {
		p := segmentPartial(t, lat, []string{"a", "b", "c"})
		c, _ := newTestCombiner(t, CombinerConfig{})
		c.Add(p)
		got := c.Totals(p.Tenant, p.Window)
		if len(got) != len(p.Series) {
			t.Fatalf("%d series, the partition's %d", len(got), len(p.Series))
		}
		for i := range got {
			if got[i] != p.Series[i] {
				t.Errorf("series %d: %+v, the partition's %+v", i, got[i], p.Series[i])
			}
		}
	}
}

func TestCombinerSettleSendsEarlyThenAgain(t *testing.T) {
	c, clock := newTestCombiner(t, CombinerConfig{Grace: 30 * time.Second, Settle: time.Second})
	clock.now = t0.Add(time.Minute + 2*time.Second) // after the window's end
	if !c.Add(wholePartial(0, 1, 2, exactSeries("a", 10))) {
		t.Fatal("a new partial did not change its window")
	}
	clock.now = clock.now.Add(999 * time.Millisecond)
	if d := c.Due(); len(d) != 0 {
		t.Fatalf("due before it settled: %v", d)
	}
	clock.now = clock.now.Add(time.Millisecond)
	d := c.Due()
	if len(d) != 1 || !c.MarkSent(d[0]) {
		t.Fatalf("not due once settled: %v", d)
	}
	// A later share makes it due again, settled or not.
	if !c.Add(wholePartial(1, 5, 6, exactSeries("a", 20))) {
		t.Fatal("a second source did not change the window")
	}
	if c.Add(wholePartial(1, 5, 6, exactSeries("a", 20))) {
		t.Fatal("an equal partial reported a change")
	}
	clock.now = clock.now.Add(time.Second)
	if d := c.Due(); len(d) != 1 || totalsByModel(c)["a"].Requests != 2 {
		t.Fatalf("not due again with both shares: %v", d)
	}
}

func TestCombinerSettleWaitsForTheWindowEnd(t *testing.T) {
	c, clock := newTestCombiner(t, CombinerConfig{Grace: 30 * time.Second, Settle: time.Second})
	c.Add(wholePartial(0, 1, 2, exactSeries("a", 10)))
	clock.now = t0.Add(time.Minute - time.Millisecond)
	if d := c.Due(); len(d) != 0 {
		t.Fatalf("due before the window ended: %v", d)
	}
}

func TestCombinerMarkAllSentAndHolds(t *testing.T) {
	c, clock := newTestCombiner(t, CombinerConfig{Grace: time.Second})
	c.Add(wholePartial(0, 1, 2, exactSeries("a", 10)))
	clock.now = t0.Add(time.Hour)
	c.MarkAllSent()
	if d := c.Due(); len(d) != 0 {
		t.Fatalf("due after MarkAllSent: %v", d)
	}
	if !c.Holds("org", testWindow) || c.Holds("org", Window{Start: t0.Add(time.Minute), Length: time.Minute}) {
		t.Fatal("Holds disagrees with what was added")
	}
	c.Add(recPartial(0, 9, exactSeries("a", 5)))
	if d := c.Due(); len(d) != 1 {
		t.Fatalf("a change after MarkAllSent is not due: %v", d)
	}
	clock.now = t0.Add(time.Minute + time.Hour)
	if c.Add(recPartial(0, 10, exactSeries("a", 5))) || c.Holds("org", testWindow) {
		t.Fatal("an expired window still takes partials")
	}
}

func TestKeyTenant(t *testing.T) {
	k := PartialKey{Tenant: "org_1", Start: 5, Length: time.Minute, Source: 3, Segment: 9}
	b, _ := k.AppendBinary(nil)
	if got, ok := KeyTenant(b); !ok || string(got) != "org_1" {
		t.Fatalf("KeyTenant = %q, %v", got, ok)
	}
	for _, bad := range [][]byte{nil, {2}, {1, 1, 'a'}, {2, 9, 'a'}, {2, 0x80}, SourceReset{Source: 1, To: 2}.AppendBinary(nil)} {
		if _, ok := KeyTenant(bad); ok {
			t.Errorf("KeyTenant(%v) accepted", bad)
		}
	}
}

func TestCombinerDueNowListsEveryChange(t *testing.T) {
	c, clock := newTestCombiner(t, CombinerConfig{Grace: time.Minute})
	c.Add(wholePartial(0, 1, 2, exactSeries("a", 10)))
	clock.now = t0.Add(time.Minute - time.Millisecond)
	if d := c.Due(); len(d) != 0 {
		t.Fatalf("Due lists a window that has not ended: %v", d)
	}
	if d := c.DueNow(); len(d) != 1 || !c.MarkSent(d[0]) || len(c.DueNow()) != 0 {
		t.Fatalf("DueNow = %v, want the changed window, once", d)
	}
	late := wholePartial(1, 1, 2, exactSeries("a", 11))
	late.MaxEvent = t0.UnixNano() // source 1 has not moved past the window
	c.Add(late)
	clock.now = t0.Add(time.Minute)
	if d := c.Due(); len(d) != 0 {
		t.Fatalf("Due lists a window a source is still in, within its grace: %v", d)
	}
	if d := c.DueNow(); len(d) != 1 {
		t.Fatalf("DueNow = %v, want the changed window", d)
	}
}

// A partition that went quiet says how far it got: its last shares fold
// into one sum per window, and its windows need not wait for it.
func TestCombinerProgressFoldsQuietSources(t *testing.T) {
	c, clock := newTestCombiner(t, CombinerConfig{Grace: time.Hour, Settle: time.Second})
	clock.now = t0.Add(2 * time.Minute)
	for src := range int64(6) {
		p := wholePartial(src, 100, 199, exactSeries("a", 10+int32(src)))
		p.MaxEvent = t0.Add(30 * time.Second).UnixNano() // still inside the window
		p.Committed = 100
		c.Add(p)
	}
	before := c.Stats()
	if before.Partials != 6 || len(c.Due()) != 0 {
		t.Fatalf("before progress: %+v, due %v", before, c.Due())
	}
	for src := range int64(6) {
		c.Progress(src, 200, t0.Add(time.Minute).UnixNano())
	}
	after := c.Stats()
	if after.Partials != 0 || after.Folded != 6 || after.Bytes >= before.Bytes {
		t.Fatalf("after progress: %+v (before %+v)", after, before)
	}
	if a := totalsByModel(c)["a"]; a.Requests != 6 || a.LatencySumMS != 10+11+12+13+14+15 || a.LatencyMaxMS != 15 {
		t.Fatalf("folded totals %+v", a)
	}
	clock.now = clock.now.Add(time.Second)
	if d := c.Due(); len(d) != 1 {
		t.Fatalf("not due once every source said it read past the end: %v", d)
	}
	// A copy of a folded share (a producer retry) counts once.
	dup := wholePartial(3, 100, 199, exactSeries("a", 13))
	if c.Add(dup) || totalsByModel(c)["a"].Requests != 6 {
		t.Fatal("a copy of a folded share counted again")
	}
}
