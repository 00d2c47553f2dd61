package aggregate

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/futureagi/prism-exporter/schemas"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// collector gathers emitted batches.
type collector struct{ got []Batch }

func (c *collector) emit(b Batch) { c.got = append(c.got, b) }

func (c *collector) take() []Batch {
	out := c.got
	c.got = nil
	return out
}

func newTest(t *testing.T, cfg Config, r Resume) (*Aggregator, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: t0}
	cfg.Clock = clock
	a, err := New(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	return a, clock
}

func event(org string, ts time.Time, latency int64) *schemas.Event {
	return &schemas.Event{OrgID: org, Timestamp: ts, Model: "gpt-4o", Provider: "openai", GatewayID: "gw", LatencyMS: latency, StatusCode: 200}
}

func TestNewValidatesAndDefaults(t *testing.T) {
	clock := &fakeClock{now: t0}
	for _, tc := range []struct {
		cfg  Config
		r    Resume
		want string
	}{
		{Config{Partition: -1, Clock: clock}, Resume{}, "Config.Partition must be >= 0"},
		{Config{AllowedLateness: -time.Second, Clock: clock}, Resume{}, "Config.AllowedLateness must be >= 0"},
		{Config{MaxTagSets: -1, Clock: clock}, Resume{}, "Config.MaxTagSets must be between 1 and"},
		{Config{ChunkSize: 1001, Clock: clock}, Resume{}, "Config.ChunkSize must be between 1 and 1000 (0 selects 500), got 1001"},
		{Config{ChunkSize: -5, Clock: clock}, Resume{}, "Config.ChunkSize must be between 1 and 1000"},
		{Config{MetricMaxAge: 2 * time.Hour, Clock: clock}, Resume{}, "Config.MetricMaxAge must be between 0 and 1h0m0s"},
		{Config{RetainClosed: -1, Clock: clock}, Resume{}, "Config.RetainClosed must be between 1 and"},
		{Config{}, Resume{}, "Config.Clock must be set"},
		{Config{Clock: clock}, Resume{Delivered: t0, LateFrom: -2}, "Resume.LateFrom must be -1"},
	} {
		_, err := New(tc.cfg, tc.r)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "aggregate: ") {
			t.Errorf("New(%+v, %+v) = %v, want an error containing %q", tc.cfg, tc.r, err, tc.want)
		}
	}
	a, err := New(Config{Partition: 3, Clock: clock}, Resume{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Partition: 3, MaxTagSets: 1000, ChunkSize: 500, MetricMaxAge: 55 * time.Minute, RetainClosed: 4, Clock: clock}
	if a.cfg != want {
		t.Errorf("defaults: got %+v, want %+v", a.cfg, want)
	}
	if !a.Frontier().IsZero() {
		t.Errorf("fresh Frontier() = %v, want the zero time", a.Frontier())
	}
}

func TestWindowStartFloorsFromEpoch(t *testing.T) {
	s := int64(time.Second)
	for _, tc := range []struct{ ts, length, want int64 }{
		{0, 60 * s, 0},
		{59*s + 999, 60 * s, 0},
		{60 * s, 60 * s, 60 * s},
		{-1, 60 * s, -60 * s},
		{-60 * s, 60 * s, -60 * s},
		{-60*s - 1, 60 * s, -120 * s},
		{t0.UnixNano() + 7*s + 5, 7 * s, (t0.UnixNano() + 7*s + 5) / (7 * s) * (7 * s)},
		{math.MaxInt64, 3600 * s, math.MaxInt64 - math.MaxInt64%(3600*s)},
	} {
		if got := windowStart(tc.ts, tc.length); got != tc.want {
			t.Errorf("windowStart(%d, %d) = %d, want %d", tc.ts, tc.length, got, tc.want)
		}
	}
}

// A full worked example: field by field totals, tag normalisation, and the
// order of closes (end, then tenant).
func TestCloseCarriesTotalsInOrder(t *testing.T) {
	a, _ := newTest(t, Config{Partition: 2}, Resume{})
	var c collector
	evs := []*schemas.Event{
		{OrgID: "b", Timestamp: t0.Add(1 * time.Second), Model: "m", Provider: "p", GatewayID: "g", RoutingStrategy: "cost",
			PromptTokens: 10, CompletionTokens: 5, LatencyMS: 100, Cost: 0.5, StatusCode: 200, CacheHit: true},
		{OrgID: "b", Timestamp: t0.Add(2 * time.Second), Model: "m", Provider: "p", GatewayID: "g", RoutingStrategy: "cost",
			PromptTokens: 20, CompletionTokens: 7, LatencyMS: 300, Cost: 0.25, StatusCode: 502, FallbackUsed: true},
		{OrgID: "b", Timestamp: t0.Add(3 * time.Second), LatencyMS: 40, IsError: true, GuardrailTriggered: true},
		{OrgID: "a", Timestamp: t0.Add(4 * time.Second), Model: "x", Provider: "y", GatewayID: "z", LatencyMS: 7},
	}
	for i, ev := range evs {
		if p := a.Add(int64(100+i), ev, time.Minute, c.emit); p != Placed {
			t.Fatalf("Add %d = %v", i, p)
		}
	}
	if got := c.take(); len(got) != 0 {
		t.Fatalf("emitted %d batches before any window could close", len(got))
	}
	// An event a minute later moves F past both windows' end: Add closes
	// them, tenant a before b.
	a.Add(104, event("c", t0.Add(61*time.Second), 1), time.Minute, c.emit)
	got := c.take()
	if len(got) != 2 || got[0].Tenant != "a" || got[1].Tenant != "b" {
		t.Fatalf("closes: %+v", got)
	}
	b := got[1]
	if b.Kind != KindClose || b.Partition != 2 || !b.Window.Start.Equal(t0) || b.Window.Length != time.Minute ||
		b.MinOffset != 100 || len(b.Logs) != 3 {
		t.Fatalf("close of b: kind %v partition %d window %+v min %d logs %d", b.Kind, b.Partition, b.Window, b.MinOffset, len(b.Logs))
	}
	want := []Series{
		{Tags: TagSet{"m", "p", "g", "cost"}, Requests: 2, Errors: 1, InputTokens: 30, OutputTokens: 12, Cost: 0.75,
			CacheHits: 1, Fallbacks: 1, LatencySumMS: 400, LatencyAvgMS: 200, LatencyMaxMS: 300},
		{Tags: TagSet{"unknown", "unknown", "unknown", "none"}, Requests: 1, Errors: 1, GuardrailTriggers: 1,
			LatencySumMS: 40, LatencyAvgMS: 40, LatencyMaxMS: 40},
	}
	if len(b.Series) != len(want) {
		t.Fatalf("series %+v", b.Series)
	}
	for i, s := range b.Series {
		p50, p95, p99 := s.LatencyP50MS, s.LatencyP95MS, s.LatencyP99MS
		s.LatencyP50MS, s.LatencyP95MS, s.LatencyP99MS = 0, 0, 0
		if s != want[i] {
			t.Errorf("series %d = %+v, want %+v", i, s, want[i])
		}
		lo, hi := float64(want[i].LatencyMaxMS), float64(want[i].LatencyMaxMS)
		if i == 0 {
			lo = 100 // rank floor(q*(2-1)) = 0 for p50..p99: the lower value
		}
		for _, p := range []float64{p50, p95, p99} {
			if math.Abs(p-lo) > 0.01*lo && math.Abs(p-hi) > 0.01*hi {
				t.Errorf("series %d percentile %v, want within 1%% of %v", i, p, lo)
			}
		}
	}
	if s := a.Stats(); s.OpenWindows != 1 || s.BufferedLogs != 1 || s.RetainedWindows != 2 {
		t.Errorf("Stats %+v", s)
	}
}

func TestLogsGoOutInChunks(t *testing.T) {
	a, _ := newTest(t, Config{ChunkSize: 2}, Resume{})
	var c collector
	for i := range 5 {
		a.Add(int64(10+i), event("t", t0.Add(time.Duration(i)*time.Second), 5), time.Minute, c.emit)
	}
	got := c.take()
	if len(got) != 2 || got[0].Kind != KindLogs || got[0].MinOffset != 10 || got[1].MinOffset != 12 ||
		len(got[0].Logs) != 2 || len(got[1].Logs) != 2 || got[0].Series != nil {
		t.Fatalf("chunks: %+v", got)
	}
	if &got[0].Logs[:cap(got[0].Logs)][cap(got[0].Logs)-1] == &got[1].Logs[:cap(got[1].Logs)][cap(got[1].Logs)-1] {
		t.Fatal("two batches share a Logs array")
	}
	if m, ok := a.MinOffset(); !ok || m != 10 {
		t.Errorf("MinOffset() = %d, %v; the open window holds offset 10", m, ok)
	}
	a.Flush(c.emit)
	got = c.take()
	if len(got) != 1 || got[0].Kind != KindLogs || len(got[0].Logs) != 1 || got[0].MinOffset != 14 {
		t.Fatalf("flush: %+v", got)
	}
	// Every log already sent: the close still carries the totals.
	a.Add(15, event("t", t0.Add(2*time.Minute), 5), time.Minute, c.emit)
	got = c.take()
	if len(got) != 1 || got[0].Kind != KindClose || len(got[0].Logs) != 0 || got[0].MinOffset != 10 ||
		len(got[0].Series) != 1 || got[0].Series[0].Requests != 5 {
		t.Fatalf("close: %+v", got)
	}
}

func TestLateRecordsCorrectOrDrop(t *testing.T) {
	a, clock := newTest(t, Config{AllowedLateness: 10 * time.Second, RetainClosed: 1, MetricMaxAge: 10 * time.Minute}, Resume{})
	var c collector
	a.Add(1, event("t", t0.Add(5*time.Second), 10), time.Minute, c.emit)
	a.Add(2, event("t", t0.Add(65*time.Second), 10), time.Minute, c.emit) // within lateness: window 0 stays open
	if got := c.take(); len(got) != 0 {
		t.Fatalf("window closed before end + lateness: %+v", got)
	}
	a.Add(3, event("t", t0.Add(55*time.Second), 20), time.Minute, c.emit) // still on time
	a.Add(4, event("t", t0.Add(70*time.Second), 10), time.Minute, c.emit) // F = 60 s: window 0 closes
	if got := c.take(); len(got) != 1 || got[0].Kind != KindClose || got[0].Series[0].Requests != 2 {
		t.Fatalf("close: %+v", got)
	}

	clock.now = t0.Add(2 * time.Minute)
	if p := a.Add(5, event("t", t0.Add(30*time.Second), 30), time.Minute, c.emit); p != Late {
		t.Fatalf("late record placed %v", p)
	}
	if got := c.take(); len(got) != 0 {
		t.Fatalf("late batch emitted before Advance: %+v", got)
	}
	if m, _ := a.MinOffset(); m != 2 {
		t.Errorf("MinOffset() = %d, want 2 (window 1)", m)
	}
	a.Advance(false, c.emit)
	got := c.take()
	if len(got) != 1 || got[0].Kind != KindLate || len(got[0].Logs) != 1 || got[0].MinOffset != 5 ||
		len(got[0].Series) != 1 || got[0].Series[0].Requests != 3 || got[0].Series[0].LatencySumMS != 60 {
		t.Fatalf("correction: %+v", got)
	}

	// Window 1 closes; with RetainClosed 1 window 0's totals go.
	a.Add(6, event("t", t0.Add(200*time.Second), 10), time.Minute, c.emit)
	c.take()
	a.Add(7, event("t", t0.Add(10*time.Second), 10), time.Minute, c.emit)
	a.Advance(false, c.emit)
	got = c.take()
	if len(got) != 1 || got[0].Kind != KindLate || got[0].Series != nil {
		t.Fatalf("evicted window: %+v", got)
	}

	// Window 1 is retained until its start + MetricMaxAge.
	clock.now = t0.Add(60*time.Second + 10*time.Minute)
	a.Add(8, event("t", t0.Add(61*time.Second), 10), time.Minute, c.emit)
	a.Advance(false, c.emit)
	if got = c.take(); len(got) != 1 || got[0].Series != nil {
		t.Fatalf("expired window: %+v", got)
	}
	if s := a.Stats(); s.LateCorrected != 1 || s.LateMetricDropped != 2 || s.RetainedWindows != 0 {
		t.Errorf("Stats %+v", s)
	}
}

func TestTagSetsFoldIntoOther(t *testing.T) {
	a, _ := newTest(t, Config{MaxTagSets: 2}, Resume{})
	var c collector
	for i, m := range []string{"a", "b", "c", "d", "a", Other} {
		ev := event("t", t0, 1)
		ev.Model = m
		if m == Other {
			ev.Provider, ev.GatewayID, ev.RoutingStrategy = Other, Other, Other
		}
		a.Add(int64(i), ev, time.Second, c.emit)
	}
	a.Add(9, event("t", t0.Add(2*time.Second), 1), time.Second, c.emit)
	got := c.take()
	if len(got) != 1 {
		t.Fatalf("close: %+v", got)
	}
	var models []string
	for _, s := range got[0].Series {
		models = append(models, s.Tags.Model+":"+strconv.FormatInt(s.Requests, 10))
	}
	if want := []string{"a:2", "b:1", "other:3"}; !slices.Equal(models, want) {
		t.Errorf("series %v, want %v", models, want)
	}
	if s := a.Stats(); s.TagSetsFolded != 2 {
		t.Errorf("TagSetsFolded = %d, want 2 (c and d)", s.TagSetsFolded)
	}
}

func TestIdleAdvanceClosesByWallClock(t *testing.T) {
	a, clock := newTest(t, Config{AllowedLateness: 5 * time.Second}, Resume{})
	var c collector
	a.Add(1, event("t", t0, 1), 10*time.Second, c.emit)
	clock.now = t0.Add(14 * time.Second)
	a.Advance(true, c.emit)
	if got := c.take(); len(got) != 0 {
		t.Fatalf("closed before end + lateness: %+v", got)
	}
	a.Advance(false, c.emit)
	clock.now = t0.Add(15 * time.Second)
	a.Advance(false, c.emit) // not idle: the clock does not count
	if got := c.take(); len(got) != 0 {
		t.Fatalf("closed by the clock while not idle: %+v", got)
	}
	a.Advance(true, c.emit)
	if got := c.take(); len(got) != 1 || got[0].Kind != KindClose {
		t.Fatalf("idle close: %+v", got)
	}
	if !a.Frontier().Equal(t0.Add(10 * time.Second)) {
		t.Errorf("Frontier() = %v", a.Frontier())
	}
	clock.now = t0 // a wall clock stepping back never moves F back
	a.Advance(true, c.emit)
	if !a.Frontier().Equal(t0.Add(10 * time.Second)) {
		t.Errorf("Frontier() went back to %v", a.Frontier())
	}
}

func TestResumeSkipsAndReplaysDeliveredWindows(t *testing.T) {
	d := t0.Add(time.Minute)
	a, _ := newTest(t, Config{}, Resume{Delivered: d, LateFrom: 20})
	var c collector
	if !a.Frontier().Equal(d) {
		t.Fatalf("Frontier() = %v, want D %v", a.Frontier(), d)
	}
	if p := a.Add(10, event("t", t0.Add(time.Second), 1), time.Minute, c.emit); p != Skipped {
		t.Errorf("below LateFrom: %v", p)
	}
	if p := a.Add(20, event("t", t0.Add(time.Second), 1), time.Minute, c.emit); p != Replayed {
		t.Errorf("at LateFrom: %v", p)
	}
	if p := a.Add(21, event("t", d, 1), time.Minute, c.emit); p != Placed {
		t.Errorf("past D: %v", p)
	}
	if m, ok := a.MinOffset(); !ok || m != 20 {
		t.Errorf("MinOffset() = %d, %v; the replayed record is held", m, ok)
	}
	a.Advance(false, c.emit)
	got := c.take()
	if len(got) != 1 || got[0].Kind != KindLate || got[0].Series != nil || got[0].MinOffset != 20 {
		t.Fatalf("replay: %+v", got)
	}
	if s := a.Stats(); s.ReplaySkipped != 1 || s.Replayed != 1 || s.LateMetricDropped != 0 {
		t.Errorf("Stats %+v", s)
	}
	a2, _ := newTest(t, Config{}, Resume{Delivered: d, LateFrom: -1})
	if p := a2.Add(99, event("t", t0, 1), time.Minute, c.emit); p != Skipped {
		t.Errorf("LateFrom -1: %v", p)
	}
}

func TestCostSumIsOrderIndependent(t *testing.T) {
	// One large cost and many tiny ones, each below half an ulp of the
	// large one: naive summation drops them all when the large one comes
	// first, and keeps them when it comes last.
	costs := []float64{1e9}
	for range 100_000 {
		costs = append(costs, 1e-8)
	}
	want := 1e9 + 1e-3
	naive := 0.0
	for _, x := range costs {
		naive += x
	}
	if naive != 1e9 {
		t.Fatalf("the example no longer defeats naive summation: %.17g", naive)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 3 {
		var n neumaier
		for _, x := range costs {
			n.add(x)
		}
		if got := n.sum(); math.Abs(got-want) > 1e-15*want {
			t.Fatalf("sum = %.17g, want %.17g", got, want)
		}
		r.Shuffle(len(costs), func(i, j int) { costs[i], costs[j] = costs[j], costs[i] })
	}
}

func TestAddPanicsOnNonPositiveLength(t *testing.T) {
	a, _ := newTest(t, Config{}, Resume{})
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "must be > 0") {
			t.Errorf("recover() = %v", r)
		}
	}()
	a.Add(1, event("t", t0, 1), 0, func(Batch) {})
}

func TestEventsBefore1970(t *testing.T) {
	a, clock := newTest(t, Config{}, Resume{})
	clock.now = time.Unix(0, 0)
	var c collector
	ts := time.Unix(-1, 0) // 1969-12-31T23:59:59
	a.Add(1, event("t", ts, 1), time.Minute, c.emit)
	a.Flush(c.emit)
	got := c.take()
	if len(got) != 1 || !got[0].Window.Start.Equal(time.Unix(-60, 0)) {
		t.Fatalf("window of %v: %+v", ts, got)
	}
}

// A series keeps its first latencies as they are and moves them into a
// sketch when one more arrives or one does not fit in an int32; the
// percentiles are those of every latency either way.
func TestSeriesLatenciesExactThenSketch(t *testing.T) {
	sk, err := newSketches()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		latencies     []int64
		p50, p95, p99 float64
	}{
		{[]int64{7}, 7, 7, 7},
		{[]int64{9, 1, 5}, 5, 5, 5},
		{[]int64{40, 10, 30, 20}, 20, 30, 30},
		{[]int64{1, 2, 3_000_000_000, 4}, 2, 4, 4}, // too large for the exact values
		{[]int64{50, 10, 40, 20, 30}, 30, 40, 40},  // one more than they hold
		{[]int64{-5, 10, 20}, 10, 10, 10},          // negative clamps to 0
		{[]int64{0, 0, 0, 0, 0, 0, 0, 0, 0, 1000}, 0, 0, 0},
	}
	for _, c := range cases {
		var s seriesAcc
		for _, l := range c.latencies {
			s.add(&schemas.Event{LatencyMS: l}, sk)
		}
		got := s.series()
		for _, p := range []struct {
			name      string
			got, want float64
		}{
			{"p50", got.LatencyP50MS, c.p50}, {"p95", got.LatencyP95MS, c.p95}, {"p99", got.LatencyP99MS, c.p99},
		} {
			if math.Abs(p.got-p.want) > sketchAccuracy*p.want+1e-9 {
				t.Errorf("%v: %s = %v, want %v", c.latencies, p.name, p.got, p.want)
			}
		}
	}
}

// A quiet partition's wall clock closes windows that never had a record;
// a record produced late into one of them starts its totals, and the next
// late record corrects them.
func TestLateRecordOfWindowThatNeverExisted(t *testing.T) {
	a, clock := newTest(t, Config{AllowedLateness: 10 * time.Second, MetricMaxAge: 10 * time.Minute}, Resume{})
	var c collector
	a.Add(1, event("t", t0.Add(5*time.Second), 10), time.Minute, c.emit)
	clock.now = t0.Add(5 * time.Minute)
	a.Advance(true, c.emit) // idle: F = now - lateness closes window 0
	c.take()

	// Window 2 (2 to 3 min) never had a record here.
	if p := a.Add(2, event("t", t0.Add(150*time.Second), 40), time.Minute, c.emit); p != Late {
		t.Fatalf("placed %v, want Late", p)
	}
	a.Advance(false, c.emit)
	got := c.take()
	if len(got) != 1 || got[0].Kind != KindLate || len(got[0].Series) != 1 || got[0].Series[0].Requests != 1 ||
		!got[0].Window.Start.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("first late record: %+v", got)
	}
	a.Add(3, event("t", t0.Add(170*time.Second), 20), time.Minute, c.emit)
	a.Advance(false, c.emit)
	got = c.take()
	if len(got) != 1 || len(got[0].Series) != 1 || got[0].Series[0].Requests != 2 || got[0].Series[0].LatencySumMS != 60 {
		t.Fatalf("second late record: %+v", got)
	}
	if s := a.Stats(); s.LateOpened != 1 || s.LateCorrected != 2 || s.LateMetricDropped != 0 {
		t.Errorf("Stats %+v", s)
	}
}
