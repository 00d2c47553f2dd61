package aggregate

import (
	"fmt"
	"math"
	"sort"

	"github.com/futureagi/prism-exporter/schemas"
)

// This file is the brute-force model the property tests hold the Segmenter
// and Combiner against: plain maps and slices, nothing shared with the
// implementation but the input types.

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
