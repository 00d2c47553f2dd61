package aggregate

import (
	"cmp"
	"math"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"

	"github.com/futureagi/prism-exporter/schemas"
)

// sketchAccuracy is the latency sketch's relative accuracy: a reported
// percentile is within 1% of the exact one.
const sketchAccuracy = 0.01

// otherTags is the tag set that tag sets past the cap fold into.
func otherTags() TagSet {
	return TagSet{Model: Other, Provider: Other, Gateway: Other, Routing: Other}
}

// Values for facets the record left empty: Datadog drops empty tag values, and
// an explicit value keeps such requests countable.
const (
	unknownTag   = "unknown"
	noRoutingTag = "none"
)

// tagsOf is the tag set a record's metrics go to.
func tagsOf(ev *schemas.Event) TagSet {
	t := TagSet{Model: ev.Model, Provider: ev.Provider, Gateway: ev.GatewayID, Routing: ev.RoutingStrategy}
	if t.Model == "" {
		t.Model = unknownTag
	}
	if t.Provider == "" {
		t.Provider = unknownTag
	}
	if t.Gateway == "" {
		t.Gateway = unknownTag
	}
	if t.Routing == "" {
		t.Routing = noRoutingTag
	}
	return t
}

// sketches builds latency sketches. All share one index mapping (it is
// immutable) and one empty store for negative values: latencies are clamped
// at zero before they reach a sketch, so that store is never written, and each
// sketch saves a store it would never use.
type sketches struct {
	mapping  mapping.IndexMapping
	negative store.Store
	bins     *binCollector // for snapshots: one Aggregator's, used by its goroutine only
}

func newSketches() (sketches, error) {
	// The cubically interpolated mapping avoids a math.Log per record and
	// needs only about 1% more bins than the logarithmic one.
	m, err := mapping.NewCubicallyInterpolatedMapping(sketchAccuracy)
	if err != nil {
		return sketches{}, err
	}
	return sketches{mapping: m, negative: store.NewDenseStore(), bins: newBinCollector()}, nil
}

func (s sketches) new() *ddsketch.DDSketch {
	// The buffered paginated store keeps a few values in a small buffer and
	// only pages dense ranges: windows with few records stay small.
	return ddsketch.NewDDSketch(s.mapping, store.NewBufferedPaginatedStore(), s.negative)
}

// exactLatencies is how many latencies a series keeps as they are before it
// starts a sketch. Most tag sets see few requests in a window, and a sketch
// costs three allocations and a few hundred bytes of live heap, which at
// full load sets how often the collector runs; four int32s cost 16 bytes,
// and their percentiles are exact.
const exactLatencies = 4

// seriesAcc accumulates one tag set's totals over one window. Every field is
// order-independent (sums, max, exact values or a sketch; cost with
// compensated summation), so a rebuilt window reports the same totals
// whatever the arrival order.
type seriesAcc struct {
	tags TagSet

	requests, errors             int64
	inputTokens, outputTokens    int64
	cacheHits, guardrails, falls int64
	latencySum, latencyMax       int64
	cost                         neumaier
	exact                        [exactLatencies]int32 // the first latencies, while latency is nil
	latency                      *ddsketch.DDSketch    // nil until a latency does not fit in exact
}

func (s *seriesAcc) add(ev *schemas.Event, sk sketches) {
	s.requests++
	if ev.Failed() {
		s.errors++
	}
	s.inputTokens += ev.PromptTokens
	s.outputTokens += ev.CompletionTokens
	if ev.CacheHit {
		s.cacheHits++
	}
	if ev.GuardrailTriggered {
		s.guardrails++
	}
	if ev.FallbackUsed {
		s.falls++
	}
	s.cost.add(ev.Cost)
	s.latencySum += ev.LatencyMS
	if s.requests == 1 || ev.LatencyMS > s.latencyMax {
		s.latencyMax = ev.LatencyMS
	}
	// A negative latency is invalid input; clamping it keeps the sketch's
	// negative store unused (see sketches). The errors are ignored because a
	// finite, non-negative float64 is always trackable.
	l := max(ev.LatencyMS, 0)
	if s.latency == nil {
		if s.requests <= exactLatencies && l <= math.MaxInt32 {
			s.exact[s.requests-1] = int32(l)
			return
		}
		s.latency = sk.new()
		for _, v := range s.exact[:s.requests-1] {
			_ = s.latency.Add(float64(v))
		}
	}
	_ = s.latency.Add(float64(l))
}

func compareTags(a, b TagSet) int {
	if c := cmp.Compare(a.Model, b.Model); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Provider, b.Provider); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Gateway, b.Gateway); c != 0 {
		return c
	}
	return cmp.Compare(a.Routing, b.Routing)
}

// neumaier is a compensated float sum (Neumaier's variant of Kahan's): the
// result is the correctly rounded sum up to O(eps) whatever the order of the
// terms, so rebuilding a window from a replay gives the same cost.
type neumaier struct{ s, c float64 }

func (n *neumaier) add(x float64) {
	t := n.s + x
	if math.Abs(n.s) >= math.Abs(x) {
		n.c += (n.s - t) + x
	} else {
		n.c += (x - t) + n.s
	}
	n.s = t
}

func (n neumaier) sum() float64 { return n.s + n.c }
