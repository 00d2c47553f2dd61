package aggregate

import (
	"cmp"
	"maps"
	"slices"

	"github.com/DataDog/sketches-go/ddsketch/mapping"
)

// Totals is the window's series summed over every source partition, one
// per tag set, sorted by tags; nil when the Combiner holds nothing of it.
//
// It sums the latest partial of every source and segment. Counts, sums and the maximum are exact, LatencyAvgMS is the latency sum
// over the requests; percentiles are exact when every partial holds its
// latencies exactly, else from the merged sketches (within 1%).
func (c *Combiner) Totals(tenant string, w Window) []Series {
	cw := c.windows[windowID{tenant: tenant, start: w.Start.UnixNano(), length: int64(w.Length)}]
	if cw == nil {
		return nil
	}
	accs := make(map[TagSet]*mergeAcc)
	add := func(p *Partial) {
		for i := range p.Series {
			s := &p.Series[i]
			a := accs[s.Tags]
			if a == nil {
				a = &mergeAcc{tags: s.Tags}
				accs[s.Tags] = a
			}
			a.add(s, &p.Latencies[i])
		}
	}
	// In source, then segment order, so that the float sums do not depend
	// on arrival or map order: every write of a window sums alike.
	srcs := slices.Clone(cw.sources)
	slices.SortFunc(srcs, func(a, b *csource) int { return cmp.Compare(a.source, b.source) })
	for _, tags := range slices.SortedFunc(maps.Keys(cw.folded), compareTags) {
		a := &mergeAcc{tags: tags}
		a.merge(cw.folded[tags])
		accs[tags] = a
	}
	for _, src := range srcs {
		for _, seg := range slices.Sorted(maps.Keys(src.segments)) {
			add(src.segments[seg])
		}
	}
	c.foldTagSets(accs)
	out := make([]Series, 0, len(accs))
	for _, a := range accs {
		out = append(out, a.series(c.mapping))
	}
	slices.SortFunc(out, func(a, b Series) int { return compareTags(a.Tags, b.Tags) })
	return out
}

// Delivery is what became of the window's logs, summed over every share
// the Combiner holds of it (for the sync history).
func (c *Combiner) Delivery(tenant string, w Window) Delivery {
	cw := c.windows[windowID{tenant: tenant, start: w.Start.UnixNano(), length: int64(w.Length)}]
	if cw == nil {
		return Delivery{}
	}
	d := cw.delivered
	for _, src := range cw.sources {
		for _, p := range src.segments {
			d.Add(p.Delivery)
		}
	}
	return d
}

// BackfillOnly reports whether every share the Combiner holds of the
// window came from a backfill (IsBackfillSource): the sync history tells
// backfilled windows from live ones.
func (c *Combiner) BackfillOnly(tenant string, w Window) bool {
	cw := c.windows[windowID{tenant: tenant, start: w.Start.UnixNano(), length: int64(w.Length)}]
	if cw == nil {
		return false
	}
	for _, s := range cw.folders {
		if !IsBackfillSource(s) {
			return false
		}
	}
	for _, s := range cw.sources {
		if !IsBackfillSource(s.source) {
			return false
		}
	}
	return true
}

// foldTagSets folds the tag sets past MaxTagSets, the ones with the fewest
// requests (then the last by tags), into Other: the choice depends only on
// the totals, so every write of a window folds alike.
func (c *Combiner) foldTagSets(accs map[TagSet]*mergeAcc) {
	other := otherTags()
	n := len(accs)
	if accs[other] != nil {
		n--
	}
	if n <= c.cfg.MaxTagSets {
		return
	}
	list := make([]*mergeAcc, 0, n)
	for tags, a := range accs {
		if tags != other {
			list = append(list, a)
		}
	}
	slices.SortFunc(list, func(a, b *mergeAcc) int {
		return cmp.Or(cmp.Compare(b.requests, a.requests), compareTags(a.tags, b.tags))
	})
	o := accs[other]
	if o == nil {
		o = &mergeAcc{tags: other}
		accs[other] = o
	}
	for _, a := range list[c.cfg.MaxTagSets:] {
		o.merge(a)
		delete(accs, a.tags)
	}
}

// mergeAcc sums one tag set's partial series.
type mergeAcc struct {
	tags TagSet

	requests, errors             int64
	inputTokens, outputTokens    int64
	cacheHits, guardrails, falls int64
	latencySum, latencyMax       int64
	cost                         neumaier

	// exact holds the latencies while every contribution held them
	// exactly; once one came as a sketch, the rest go to the sketch too.
	exact    []int32
	sketched bool
	zeros    int64
	bins     []Bin // unsorted, merged by series
}

func (a *mergeAcc) add(s *Series, lat *Latencies) {
	a.sums(s.Requests, s.Errors, s.InputTokens, s.OutputTokens, s.CacheHits, s.GuardrailTriggers, s.Fallbacks, s.LatencySumMS, s.LatencyMaxMS)
	a.cost.add(s.Cost)
	if lat.Sketched {
		a.sketched = true
		a.zeros += lat.Zeros
		a.bins = append(a.bins, lat.Bins...)
	} else {
		a.exact = append(a.exact, lat.Exact[:s.Requests]...)
	}
}

func (a *mergeAcc) merge(b *mergeAcc) {
	a.sums(b.requests, b.errors, b.inputTokens, b.outputTokens, b.cacheHits, b.guardrails, b.falls, b.latencySum, b.latencyMax)
	a.cost.add(b.cost.s)
	a.cost.add(b.cost.c)
	a.sketched = a.sketched || b.sketched
	a.zeros += b.zeros
	a.bins = append(a.bins, b.bins...)
	a.exact = append(a.exact, b.exact...)
}

// compact keeps a folded sum small: past foldExact exact latencies, they
// join the sketch bins (as DDSketch.Add would place them), and the bins
// are merged by index.
func (a *mergeAcc) compact(m mapping.IndexMapping) {
	if len(a.exact) > foldExact {
		a.sketched = true
		for _, v := range a.exact {
			if v == 0 {
				a.zeros++
			} else {
				a.bins = append(a.bins, Bin{Index: int32(m.Index(float64(v))), Count: 1})
			}
		}
		a.exact = nil
	}
	if len(a.bins) > 0 {
		a.bins = slices.Clip(mergeBins(a.bins))
	}
}

func (a *mergeAcc) sums(requests, errors, input, output, cache, guard, falls, latSum, latMax int64) {
	if a.requests == 0 || latMax > a.latencyMax {
		a.latencyMax = latMax
	}
	a.requests += requests
	a.errors += errors
	a.inputTokens += input
	a.outputTokens += output
	a.cacheHits += cache
	a.guardrails += guard
	a.falls += falls
	a.latencySum += latSum
}

func (a *mergeAcc) series(m mapping.IndexMapping) Series {
	out := Series{
		Tags:              a.tags,
		Requests:          a.requests,
		Errors:            a.errors,
		InputTokens:       a.inputTokens,
		OutputTokens:      a.outputTokens,
		Cost:              a.cost.sum(),
		CacheHits:         a.cacheHits,
		GuardrailTriggers: a.guardrails,
		Fallbacks:         a.falls,
		LatencySumMS:      a.latencySum,
		LatencyMaxMS:      a.latencyMax,
	}
	if a.requests <= 0 {
		return out
	}
	out.LatencyAvgMS = float64(a.latencySum) / float64(a.requests)
	if !a.sketched {
		slices.Sort(a.exact)
		out.LatencyP50MS = exactQuantileOf(a.exact, 0.50)
		out.LatencyP95MS = exactQuantileOf(a.exact, 0.95)
		out.LatencyP99MS = exactQuantileOf(a.exact, 0.99)
		return out
	}
	// The exact latencies join the sketch as DDSketch.Add would put them.
	zeros, bins := a.zeros, a.bins
	for _, v := range a.exact {
		if v == 0 {
			zeros++
		} else {
			bins = append(bins, Bin{Index: int32(m.Index(float64(v))), Count: 1})
		}
	}
	bins = mergeBins(bins)
	out.LatencyP50MS = binsQuantile(zeros, bins, 0.50, m)
	out.LatencyP95MS = binsQuantile(zeros, bins, 0.95, m)
	out.LatencyP99MS = binsQuantile(zeros, bins, 0.99, m)
	return out
}

// mergeBins sorts bins by index and sums the counts of equal indexes, in
// place.
func mergeBins(bins []Bin) []Bin {
	slices.SortFunc(bins, func(a, b Bin) int { return cmp.Compare(a.Index, b.Index) })
	out := bins[:0]
	for _, b := range bins {
		if n := len(out); n > 0 && out[n-1].Index == b.Index {
			out[n-1].Count += b.Count
		} else {
			out = append(out, b)
		}
	}
	return out
}
