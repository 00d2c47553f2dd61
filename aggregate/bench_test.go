package aggregate

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/futureagi/prism-exporter/schemas"
)

func discard(Batch) {}

// benchEvents makes n events spread round-robin over tenants, with a few tag
// sets and varied latencies; timestamps are set by the caller.
func benchEvents(n, tenants int) []*schemas.Event {
	models := []string{"gpt-4o", "claude-sonnet", "llama-3"}
	providers := []string{"openai", "anthropic"}
	names := make([]string, tenants)
	for i := range names {
		names[i] = "org-" + strconv.Itoa(i)
	}
	evs := make([]*schemas.Event, n)
	for i := range evs {
		evs[i] = &schemas.Event{
			OrgID: names[i%tenants], Model: models[i%3], Provider: providers[i%2], GatewayID: "gw-eu",
			RoutingStrategy: "cost", PromptTokens: int64(i % 900), CompletionTokens: int64(i % 300),
			LatencyMS: int64(50 + i*37%5000), Cost: float64(i%100) * 1e-5, StatusCode: 200,
		}
	}
	return evs
}

// BenchmarkAdd is the steady state of one busy partition: 100 tenants with
// 1-minute windows, 1000 records per second of event time, a cut per 1000
// records (a second, as the processor cuts per commit interval). ns/op and
// allocs/op are per record added, cuts and chunk hand-offs included.
func BenchmarkAdd(b *testing.B) {
	const tenants = 100
	clock := &fakeClock{now: t0}
	s, err := NewSegmenter(Config{Clock: clock})
	if err != nil {
		b.Fatal(err)
	}
	// A ring of events, re-stamped as they are reused: Add reads an event's
	// fields once, so reusing one still buffered as a log changes nothing
	// the segmenter computes.
	evs := benchEvents(1<<16, tenants)
	i := 0
	add := func() {
		ev := evs[i&(len(evs)-1)]
		ev.Timestamp = t0.Add(time.Duration(i) * time.Millisecond)
		s.Add(int64(i), ev, time.Minute, discard)
		i++
		if i%1000 == 0 {
			clock.now = ev.Timestamp
			s.Cut(int64(i), -1, discard)
		}
	}
	for range 300_000 {
		add()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		add()
	}
}

// BenchmarkCut is the cost per tenant window share handed on at a cut:
// 1000 tenants with 10 records over 3 tag sets each (totals, sort, the
// partial's latencies).
func BenchmarkCut(b *testing.B) {
	benchCut(b, 1000, 10)
}

// BenchmarkCutSketched is BenchmarkCut with busy windows: 200 tenants with
// 100 records over 3 tag sets each, so every tag set's latencies are in a
// sketch whose bins the partial copies.
func BenchmarkCutSketched(b *testing.B) {
	benchCut(b, 200, 100)
}

func benchCut(b *testing.B, tenants, perWindow int) {
	clock := &fakeClock{now: t0}
	s, err := NewSegmenter(Config{Clock: clock})
	if err != nil {
		b.Fatal(err)
	}
	evs := benchEvents(tenants*perWindow, tenants)
	b.ReportAllocs()
	b.ResetTimer()
	for round, cut := 0, 0; cut < b.N; round++ {
		b.StopTimer()
		start := t0.Add(time.Duration(round) * time.Minute)
		clock.now = start
		for j, ev := range evs {
			ev.Timestamp = start.Add(time.Duration(j) * time.Millisecond)
			s.Add(int64(round*len(evs)+j), ev, time.Minute, discard)
		}
		b.StartTimer()
		s.Cut(int64((round+1)*len(evs)), -1, discard)
		cut += tenants
	}
}

// BenchmarkSegmentMemory reports the heap bytes one tenant window's share
// costs in a segment, with 10,000 tenants each holding one (B/window): the
// events themselves are allocated beforehand and not counted, their
// buffered log pointers are.
func BenchmarkSegmentMemory(b *testing.B) {
	for _, bc := range []struct {
		name      string
		perWindow int
	}{
		{"records=1", 1},
		{"records=10,tagsets=3", 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const tenants = 10_000
			evs := benchEvents(tenants*bc.perWindow, tenants)
			for _, ev := range evs {
				ev.Timestamp = t0
			}
			var perWindow float64
			for range b.N {
				clock := &fakeClock{now: t0}
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				s, err := NewSegmenter(Config{Clock: clock})
				if err != nil {
					b.Fatal(err)
				}
				for j, ev := range evs {
					s.Add(int64(j), ev, time.Minute, discard)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if got := s.Stats().Windows; got != tenants {
					b.Fatalf("%d windows, want %d", got, tenants)
				}
				perWindow = float64(after.HeapAlloc-before.HeapAlloc) / tenants
				runtime.KeepAlive(s)
			}
			b.ReportMetric(perWindow, "B/window")
		})
	}
}

// benchPartials returns the partials of one minute of 200 tenants
// (100 records over 3 tag sets each: sketched) as each of sources
// partitions would send them.
func benchPartials(b *testing.B, sources int) []*Partial {
	b.Helper()
	const tenants, perWindow = 200, 100
	var out []*Partial
	evs := benchEvents(tenants*perWindow, tenants)
	for src := range sources {
		clock := &fakeClock{now: t0}
		s, err := NewSegmenter(Config{Partition: int32(src), Clock: clock})
		if err != nil {
			b.Fatal(err)
		}
		for j, ev := range evs {
			ev.Timestamp = t0.Add(time.Duration(j*sources+src) * time.Millisecond)
			ev.LatencyMS = int64(50 + (j*37+src*101)%5000)
			s.Add(int64(j), ev, time.Minute, discard)
		}
		s.Cut(int64(len(evs)), -1, func(bt Batch) { out = append(out, bt.Partials...) })
	}
	return out
}

// BenchmarkCombiner is the second phase per tenant window: the partials of
// 6 partitions added, then the window's totals computed (ns/op and
// allocs/op per window).
func BenchmarkCombiner(b *testing.B) {
	const sources = 6
	ps := benchPartials(b, sources)
	clock := &fakeClock{now: t0.Add(2 * time.Minute)}
	c, err := NewCombiner(CombinerConfig{Clock: clock})
	if err != nil {
		b.Fatal(err)
	}
	windows := len(ps) / sources
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		w := i % windows
		// Partials arrive source by source: window w of every source.
		for src := range sources {
			c.Add(ps[src*windows+w])
		}
		p := ps[w]
		if s := c.Totals(p.Tenant, p.Window); len(s) != 3 {
			b.Fatalf("%d series", len(s))
		}
	}
}

// BenchmarkPartialEncode and BenchmarkPartialDecode are the processor's and
// the combiner's cost per partial of 3 sketched tag sets; B/partial is its
// size on the topic.
func BenchmarkPartialEncode(b *testing.B) {
	ps := benchPartials(b, 1)
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		var err error
		buf, err = ps[i%len(ps)].AppendBinary(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "B/partial")
}

func BenchmarkPartialDecode(b *testing.B) {
	ps := benchPartials(b, 1)
	encs := make([][]byte, len(ps))
	for i, p := range ps {
		var err error
		if encs[i], err = p.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		var p Partial
		if err := p.UnmarshalBinary(encs[i%len(encs)]); err != nil {
			b.Fatal(err)
		}
	}
}
