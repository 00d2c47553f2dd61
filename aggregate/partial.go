package aggregate

import (
	"slices"
	"time"

	"github.com/DataDog/sketches-go/ddsketch/mapping"

	"github.com/futureagi/prism-exporter/schemas"
)

// Partial is what one source partition knows of one tenant window: the first
// phase of two-phase aggregation. The processor produces it to a compacted
// topic under Key; the Combiner keeps the latest per Key, sums a window's
// partials over every source and sends one series per tag set.
//
// There are two kinds, told apart by Late:
//
//   - Late == 0: the window's whole totals on Source, as one run of the
//     Aggregator built them: every record of the window that this run read at
//     an offset in [First, Through] is counted, and no other. It goes out on
//     KindClose and again, corrected, on KindLate while the closed window is
//     retained: each version overwrites the last under the same Key. A
//     replay rebuilds it from the window's first record (the committed
//     offset stays at or below it while the window is not delivered), so the
//     rebuilt version overwrites it whole, never with part of the records.
//   - Late == 1 + o: the one record at offset o, late or replayed, whose
//     window this run could not correct as a whole: its totals were evicted
//     or expired, the window never opened in this run, or it was delivered
//     before a restart. First == Through == o. A replay that reads o again
//     builds the same partial under the same Key, so nothing is counted
//     twice; and a record counted both here and in a whole partial whose
//     [First, Through] holds o is counted once by the Combiner, in the whole
//     one (see Combiner.Totals).
//
// A Partial handed out by the Aggregator is immutable: it may be read
// (encoded) from any goroutine. Its Series slice is the batch's own
// Batch.Series (the same backing array, not a copy): neither may be
// modified.
type Partial struct {
	Tenant string
	Window Window
	Source int32 // the Kafka partition the records came from
	Late   int64

	// First and Through bound the offsets whose records the partial counts
	// (see above). Offsets of one partition arrive in increasing order, which
	// is what makes "every record in [First, Through]" exact.
	First, Through int64

	// Series holds the totals, one per tag set, sorted by tags: what Source
	// alone would send for the window. The Combiner sums the counts and sums
	// (Requests .. LatencyMaxMS) and derives the rest from Latencies.
	Series []Series
	// Latencies[i] are the latencies of Series[i]'s requests.
	Latencies []Latencies
}

// Latencies are one tag set's latencies (clamped at 0): the values
// themselves while there are at most exactLatencies of them and each fits
// an int32, else a DDSketch (1% relative accuracy, cubically interpolated
// mapping).
type Latencies struct {
	// Sketched tells which: Exact[:Requests], sorted, when false; Zeros
	// latencies of 0 ms and the non-empty Bins, by increasing index, when
	// true.
	Sketched bool
	Exact    [exactLatencies]int32
	Zeros    int64
	Bins     []Bin
}

// Bin is one DDSketch bin: Count latencies whose mapping index is Index.
type Bin struct {
	Index int32
	Count int64
}

// PartialKey is a Partial's overwrite key: a later partial with the same key
// replaces the earlier one. Its binary form (AppendBinary) is the record key
// on the compacted topic.
type PartialKey struct {
	Tenant string
	Start  int64 // window start, Unix nanoseconds
	Length time.Duration
	Source int32
	Late   int64 // 0: the window's whole totals on Source; 1 + o: the record at offset o
}

// Key is the partial's overwrite key.
func (p *Partial) Key() PartialKey {
	return PartialKey{Tenant: p.Tenant, Start: p.Window.Start.UnixNano(), Length: p.Window.Length, Source: p.Source, Late: p.Late}
}

// covers reports whether the whole partial p counts the record at offset.
func (p *Partial) covers(offset int64) bool {
	return p.Late == 0 && p.First <= offset && offset <= p.Through
}

// latencies copies the accumulator's latencies into dst, except a sketch's
// bins, which it appends to bc.bins: the caller copies them out (into one
// slice for all of a window's tag sets) rather than share the sketch,
// because a DDSketch is not safe to share between goroutines even for
// reading (its buffered store sorts itself on every read), and the window
// may still be corrected.
func (s *seriesAcc) latencies(dst *Latencies, bc *binCollector) {
	if s.latency == nil {
		*dst = Latencies{Exact: s.exact}
		slices.Sort(dst.Exact[:s.requests])
		return
	}
	*dst = Latencies{Sketched: true, Zeros: int64(s.latency.GetZeroCount())}
	s.latency.GetPositiveValueStore().ForEach(bc.fn)
}

// ownLatencies is the accumulator's latencies with a copy of its bins.
func (s *seriesAcc) ownLatencies(bc *binCollector) Latencies {
	var lat Latencies
	if s.latency == nil {
		s.latencies(&lat, nil)
		return lat
	}
	if bc == nil {
		bc = newBinCollector()
	}
	bc.bins = bc.bins[:0]
	s.latencies(&lat, bc)
	lat.Bins = slices.Clone(bc.bins)
	return lat
}

// binCollector gathers a sketch's bins (by increasing index: ForEach's
// order). One serves an Aggregator, its callback made once, so that a
// snapshot allocates the bins' copy and nothing else.
type binCollector struct {
	bins []Bin
	fn   func(index int, count float64) bool
}

func newBinCollector() *binCollector {
	c := &binCollector{}
	c.fn = c.add
	return c
}

func (c *binCollector) add(index int, count float64) bool {
	c.bins = append(c.bins, Bin{Index: int32(index), Count: int64(count)})
	return false
}

// recordPartial is the Partial of one late or replayed record at offset,
// under its own key. Its tag set is the record's own: the tag-set cap is
// the Combiner's to apply across sources.
func recordPartial(ev *schemas.Event, source int32, w Window, offset int64, sk sketches) *Partial {
	acc := seriesAcc{tags: tagsOf(ev)}
	acc.add(ev, sk) // a sketch only for a latency past an int32
	p := &Partial{Tenant: ev.OrgID, Window: w, Source: source, Late: offset + 1, First: offset, Through: offset,
		Series: make([]Series, 1), Latencies: make([]Latencies, 1)}
	lat := &p.Latencies[0]
	*lat = acc.ownLatencies(sk.bins)
	p.Series[0] = acc.seriesWith(lat, sk.mapping)
	return p
}

// seriesWith is the accumulator's totals as Datadog gets them, with the
// percentiles from lat, its latencies.
func (s *seriesAcc) seriesWith(lat *Latencies, m mapping.IndexMapping) Series {
	out := Series{
		Tags:              s.tags,
		Requests:          s.requests,
		Errors:            s.errors,
		InputTokens:       s.inputTokens,
		OutputTokens:      s.outputTokens,
		Cost:              s.cost.sum(),
		CacheHits:         s.cacheHits,
		GuardrailTriggers: s.guardrails,
		Fallbacks:         s.falls,
		LatencySumMS:      s.latencySum,
		LatencyMaxMS:      s.latencyMax,
	}
	derive(&out, lat, m)
	return out
}

// derive sets s's average and percentiles from its sums and latencies:
// percentiles exact from Exact or, from the sketch, equal to what
// DDSketch.GetValueAtQuantile reports (within 1% of the exact value).
func derive(s *Series, lat *Latencies, m mapping.IndexMapping) {
	if s.Requests <= 0 {
		return
	}
	s.LatencyAvgMS = float64(s.LatencySumMS) / float64(s.Requests)
	if lat.Sketched {
		s.LatencyP50MS = binsQuantile(lat.Zeros, lat.Bins, 0.50, m)
		s.LatencyP95MS = binsQuantile(lat.Zeros, lat.Bins, 0.95, m)
		s.LatencyP99MS = binsQuantile(lat.Zeros, lat.Bins, 0.99, m)
		return
	}
	exact := lat.Exact[:s.Requests] // sorted
	s.LatencyP50MS = exactQuantileOf(exact, 0.50)
	s.LatencyP95MS = exactQuantileOf(exact, 0.95)
	s.LatencyP99MS = exactQuantileOf(exact, 0.99)
}

// exactQuantileOf is the latency of rank floor(q*(n-1)) among the n sorted
// latencies.
func exactQuantileOf(sorted []int32, q float64) float64 {
	return float64(sorted[int(q*float64(len(sorted)-1))])
}

// binsQuantile is the sketch's value at q, computed as
// DDSketch.GetValueAtQuantile does (same rank, same comparisons, same
// mapping), so that it reports exactly what the library would: the
// latency of rank floor(q*(n-1)) within 1%.
func binsQuantile(zeros int64, bins []Bin, q float64, m mapping.IndexMapping) float64 {
	count := float64(zeros)
	for _, b := range bins {
		count += float64(b.Count)
	}
	if count == 0 {
		return 0
	}
	rank := float64(q * (count - 1))
	if rank < float64(zeros) {
		return 0
	}
	rank -= float64(zeros)
	cum := 0.0
	for _, b := range bins {
		cum += float64(b.Count)
		if cum > rank {
			return m.Value(int(b.Index))
		}
	}
	return m.Value(int(bins[len(bins)-1].Index))
}
