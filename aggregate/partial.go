package aggregate

import (
	"cmp"
	"slices"
	"time"

	"github.com/DataDog/sketches-go/ddsketch/mapping"
)

// Partial is one segment's share of one tenant window: the totals of the
// window's records that one source partition read in one segment, the
// offsets [Segment, Through]. The Segmenter hands it on at the cut that
// ends the segment; the processor produces it to a compacted topic under
// Key; the Combiner keeps the latest per Key and sums a window's partials
// over every source and segment.
//
// A segment starts at a commit point, so a replay after a crash starts at
// one too, and rebuilds the segment that starts there under the same key.
// The segments after it may end elsewhere in the replay (cuts follow the
// clock): the processor tells the Combiner, before the replay's first
// partial, to drop the source's partials from the commit point on
// (Combiner.Reset), and nothing is counted twice.
//
// A Partial handed out is immutable: it may be read (encoded) from any
// goroutine.
type Partial struct {
	Tenant  string
	Window  Window
	Source  int64 // the Kafka partition the records came from, or a backfill's reader of one (see Config.Source)
	Segment int64 // the segment's first offset: a commit point

	// First and Through bound the segment's offsets: First == Segment, and
	// Through is the last offset before the cut.
	First, Through int64
	// MaxEvent is the latest event time (Unix ns) the source had read when
	// it cut the segment, over all its records: once it is past a window's
	// end, the source has moved on from the window (a straggler may still
	// correct it), and the Combiner need not wait for it.
	MaxEvent int64
	// Committed is the source partition's committed offset when the
	// partial was made (-1: none yet). Segments below it are final: no run
	// reads them again, so no partial replaces them and no reset drops
	// them, and the Combiner folds them into one share per source.
	Committed int64

	// Series holds the totals, one per tag set, sorted by tags. The
	// Combiner sums the counts and sums (Requests .. LatencyMaxMS) and
	// derives the rest from Latencies.
	Series []Series
	// Latencies[i] are the latencies of Series[i]'s requests.
	Latencies []Latencies

	// Delivery is what became of the logs of the window's records in this
	// segment: the sync history's log figures. The processor fills it from
	// the sink's answers before the partial goes out; the Combiner sums it
	// over a window's shares.
	Delivery Delivery
}

// Delivery counts what became of a set of logs: the sync history's
// figures for them. Requests, Retries, Bytes, Micros and RateLimited count
// a logs request once, in the share of the first window its logs fall in.
type Delivery struct {
	Logs        int64 // accepted by Datadog
	LogsDropped int64 // not sent (older than Datadog takes, tenant in error) or refused for good
	Requests    int64
	Retries     int64
	Bytes       int64 // on the wire
	Micros      int64 // spent in requests
	RateLimited int64 // requests answered 429
	Status      int64 // Datadog's refusal (HTTP status; the highest of a sum), 0 if none
}

// Add sums d and e; Status keeps the higher code, so that a sum does not
// depend on the order of its terms.
func (d *Delivery) Add(e Delivery) {
	d.Logs += e.Logs
	d.LogsDropped += e.LogsDropped
	d.Requests += e.Requests
	d.Retries += e.Retries
	d.Bytes += e.Bytes
	d.Micros += e.Micros
	d.RateLimited += e.RateLimited
	d.Status = max(d.Status, e.Status)
}

func (d *Delivery) valid() bool {
	for _, f := range d.fields() {
		if *f < 0 {
			return false
		}
	}
	return true
}

func (d *Delivery) fields() [8]*int64 {
	return [8]*int64{&d.Logs, &d.LogsDropped, &d.Requests, &d.Retries, &d.Bytes, &d.Micros, &d.RateLimited, &d.Status}
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
	Tenant  string
	Start   int64 // window start, Unix nanoseconds
	Length  time.Duration
	Source  int64
	Segment int64
}

// Key is the partial's overwrite key.
func (p *Partial) Key() PartialKey {
	return PartialKey{Tenant: p.Tenant, Start: p.Window.Start.UnixNano(), Length: p.Window.Length, Source: p.Source, Segment: p.Segment}
}

func comparePartialKeys(a, b PartialKey) int {
	return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Start, b.Start), cmp.Compare(a.Length, b.Length),
		cmp.Compare(a.Source, b.Source), cmp.Compare(a.Segment, b.Segment))
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
