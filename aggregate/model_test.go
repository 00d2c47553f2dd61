package aggregate

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/futureagi/prism-exporter/schemas"
)

// This file is the brute-force model the property tests hold the Aggregator
// against: plain maps and slices, every decision recomputed from the rules in
// docs/design.md and the package brief, nothing shared with the
// implementation but the input types.

// class is what the model says became of a record.
type class uint8

const (
	cPlaced    class = iota + 1 // into an open window
	cCorrected                  // late, and its window's kept totals corrected (or started, if it never existed)
	cDropped                    // late, log only: totals no longer kept
	cReplayed                   // resumed, window delivered, at or past LateFrom: log only
	cSkipped                    // resumed, window delivered, below LateFrom
)

func (c class) placement() Placement {
	switch c {
	case cPlaced:
		return Placed
	case cCorrected, cDropped:
		return Late
	case cReplayed:
		return Replayed
	case cSkipped:
		return Skipped
	}
	return 0
}

type wkey struct {
	tenant        string
	start, length int64
}

func (k wkey) end() int64 { return k.start + k.length }

// keyOf computes a record's window independently of windowStart: test event
// times are after 1970, where truncating division is flooring.
func keyOf(ev *schemas.Event, length time.Duration) wkey {
	ts, n := ev.Timestamp.UnixNano(), int64(length)
	return wkey{tenant: ev.OrgID, start: ts / n * n, length: n}
}

type mwin struct {
	key       wkey
	open      bool
	minOffset int64
	// lateOpened: a late record started it; it sends no whole partial.
	lateOpened bool
}

type model struct {
	cfg Config // defaults applied

	f, maxEvent     int64
	hasF, hasEvent  bool
	resumed         bool
	delivered, from int64

	wins map[wkey]*mwin
	// closedOrder lists each tenant's windows in the order they closed.
	closedOrder map[string][]wkey
}

func newModel(cfg Config, r Resume) *model {
	cfg, err := cfg.withDefaults()
	if err != nil {
		panic(err)
	}
	m := &model{cfg: cfg, wins: map[wkey]*mwin{}, closedOrder: map[string][]wkey{}}
	if !r.Delivered.IsZero() {
		m.resumed, m.delivered, m.from = true, r.Delivered.UnixNano(), r.LateFrom
		m.f, m.hasF = m.delivered, true
	}
	return m
}

// add classifies one record and returns the windows its Add closes, in
// closing order.
func (m *model) add(offset int64, ev *schemas.Event, length time.Duration, now int64) (class, []wkey) {
	k := keyOf(ev, length)
	c := m.classify(offset, k, now)
	if c == cCorrected && m.wins[k] == nil {
		// A late record of a window that never existed starts it, closed.
		m.wins[k] = &mwin{key: k, minOffset: offset, lateOpened: true}
		m.closedOrder[k.tenant] = append(m.closedOrder[k.tenant], k)
	}
	if c == cPlaced {
		w := m.wins[k]
		if w == nil {
			w = &mwin{key: k, open: true, minOffset: offset}
			m.wins[k] = w
		}
		w.minOffset = min(w.minOffset, offset)
	}
	ts := ev.Timestamp.UnixNano()
	if !m.hasEvent || ts > m.maxEvent {
		m.maxEvent, m.hasEvent = ts, true
	}
	m.raise(m.maxEvent - int64(m.cfg.AllowedLateness))
	return c, m.closeDue()
}

func (m *model) classify(offset int64, k wkey, now int64) class {
	if m.resumed && k.end() <= m.delivered {
		if m.from >= 0 && offset >= m.from {
			return cReplayed
		}
		return cSkipped
	}
	if w := m.wins[k]; w != nil && w.open {
		return cPlaced
	}
	if m.hasF && k.end() <= m.f {
		// Kept: among the tenant's RetainClosed most recently closed
		// windows, and young enough for Datadog.
		order := m.closedOrder[k.tenant]
		young := now < k.start+int64(m.cfg.MetricMaxAge)
		for i, c := range order {
			if c == k && len(order)-i <= m.cfg.RetainClosed && young {
				return cCorrected
			}
		}
		// Never closed here (nor open: that was checked first): no totals
		// of it have been sent, so this record's may be.
		if young && !slices.Contains(order, k) {
			return cCorrected
		}
		return cDropped
	}
	return cPlaced
}

func (m *model) advance(idle bool, now int64) []wkey {
	if idle {
		m.raise(now - int64(m.cfg.AllowedLateness))
	}
	return m.closeDue()
}

func (m *model) raise(f int64) {
	if !m.hasF || f > m.f {
		m.f, m.hasF = f, true
	}
}

func (m *model) closeDue() []wkey {
	var due []wkey
	for k, w := range m.wins {
		if w.open && m.hasF && k.end() <= m.f {
			due = append(due, k)
		}
	}
	slices.SortFunc(due, func(a, b wkey) int {
		return cmp.Or(cmp.Compare(a.end(), b.end()), cmp.Compare(a.tenant, b.tenant),
			cmp.Compare(a.start, b.start), cmp.Compare(a.length, b.length))
	})
	for _, k := range due {
		m.wins[k].open = false
		m.closedOrder[k.tenant] = append(m.closedOrder[k.tenant], k)
	}
	return due
}

func (m *model) openCount() int {
	n := 0
	for _, w := range m.wins {
		if w.open {
			n++
		}
	}
	return n
}

// exactTotals is one tag set's totals by plain loops.
type exactTotals struct {
	Series
	latencies []float64
}

// totalsOf computes a window's per-tag-set totals over records in arrival
// order, applying the tag cap as the brief states it. It returns the totals
// and how many records were folded into Other.
func totalsOf(evs []*schemas.Event, maxTagSets int) (map[TagSet]*exactTotals, int) {
	other := TagSet{Other, Other, Other, Other}
	out := map[TagSet]*exactTotals{}
	folded, distinct := 0, 0
	for _, ev := range evs {
		tags := TagSet{ev.Model, ev.Provider, ev.GatewayID, ev.RoutingStrategy}
		for _, s := range []*string{&tags.Model, &tags.Provider, &tags.Gateway} {
			if *s == "" {
				*s = "unknown"
			}
		}
		if tags.Routing == "" {
			tags.Routing = "none"
		}
		if out[tags] == nil {
			if tags != other && distinct >= maxTagSets {
				folded++
				tags = other
			}
			if out[tags] == nil {
				out[tags] = &exactTotals{Series: Series{Tags: tags}}
				if tags != other {
					distinct++
				}
			}
		}
		t := out[tags]
		t.Requests++
		if ev.IsError || ev.StatusCode >= 400 {
			t.Errors++
		}
		t.InputTokens += ev.PromptTokens
		t.OutputTokens += ev.CompletionTokens
		t.Cost += ev.Cost
		if ev.CacheHit {
			t.CacheHits++
		}
		if ev.GuardrailTriggered {
			t.GuardrailTriggers++
		}
		if ev.FallbackUsed {
			t.Fallbacks++
		}
		t.LatencySumMS += ev.LatencyMS
		if t.Requests == 1 || ev.LatencyMS > t.LatencyMaxMS {
			t.LatencyMaxMS = ev.LatencyMS
		}
		t.latencies = append(t.latencies, float64(max(ev.LatencyMS, 0)))
	}
	for _, t := range out {
		sort.Float64s(t.latencies)
		t.LatencyAvgMS = float64(t.LatencySumMS) / float64(t.Requests)
		t.LatencyP50MS = exactQuantile(t.latencies, 0.50)
		t.LatencyP95MS = exactQuantile(t.latencies, 0.95)
		t.LatencyP99MS = exactQuantile(t.latencies, 0.99)
	}
	return out, folded
}

// exactQuantile is the sorted value of rank floor(q*(n-1)), the rank DDSketch
// reports within its relative accuracy.
func exactQuantile(sorted []float64, q float64) float64 {
	rank := float64(q * float64(len(sorted)-1))
	return sorted[int(math.Floor(rank))]
}

// seriesMismatch says how got differs from want, or "" when it matches:
// integers exactly, cost and average to float noise, percentiles within the
// sketch's 1%.
func seriesMismatch(got Series, want *exactTotals) string {
	w := want.Series
	type intField struct {
		name      string
		got, want int64
	}
	for _, f := range []intField{
		{"Requests", got.Requests, w.Requests},
		{"Errors", got.Errors, w.Errors},
		{"InputTokens", got.InputTokens, w.InputTokens},
		{"OutputTokens", got.OutputTokens, w.OutputTokens},
		{"CacheHits", got.CacheHits, w.CacheHits},
		{"GuardrailTriggers", got.GuardrailTriggers, w.GuardrailTriggers},
		{"Fallbacks", got.Fallbacks, w.Fallbacks},
		{"LatencySumMS", got.LatencySumMS, w.LatencySumMS},
		{"LatencyMaxMS", got.LatencyMaxMS, w.LatencyMaxMS},
	} {
		if f.got != f.want {
			return fmt.Sprintf("%s = %d, want %d", f.name, f.got, f.want)
		}
	}
	if !closeRel(got.Cost, w.Cost, 1e-9) {
		return fmt.Sprintf("Cost = %.17g, want %.17g", got.Cost, w.Cost)
	}
	if !closeRel(got.LatencyAvgMS, w.LatencyAvgMS, 1e-12) {
		return fmt.Sprintf("LatencyAvgMS = %v, want %v", got.LatencyAvgMS, w.LatencyAvgMS)
	}
	for _, p := range []struct {
		name      string
		got, want float64
	}{
		{"LatencyP50MS", got.LatencyP50MS, w.LatencyP50MS},
		{"LatencyP95MS", got.LatencyP95MS, w.LatencyP95MS},
		{"LatencyP99MS", got.LatencyP99MS, w.LatencyP99MS},
	} {
		if math.Abs(p.got-p.want) > sketchAccuracy*p.want*(1+1e-9)+1e-9 {
			return fmt.Sprintf("%s = %v, want %v within 1%%", p.name, p.got, p.want)
		}
	}
	return ""
}

func closeRel(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Max(math.Abs(want), 1e-300)
}
