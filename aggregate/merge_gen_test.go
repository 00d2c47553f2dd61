package aggregate

import (
	"math/rand/v2"
	"strconv"
	"time"
)

// mergeScenario is one random gateway stream spread over several
// partitions without regard to tenant, as the gateway produces it: one
// scenario per partition (its records in offset order, with the calls its
// processor goroutine would interleave), all on one wall clock.
type mergeScenario struct {
	seed  uint64
	parts []*scenario
	// end is when every window has closed on every partition: the
	// Combiner's clock for the final check.
	end time.Time
}

// genMergeScenario makes a stream of a few tenants with different window
// lengths, event times in and out of order (within lateness, beyond it by
// up to two windows, up to 10 minutes back), idle periods per partition,
// and random Advance and Flush calls. Everything stays well inside
// DefaultMetricMaxAge, so that every record must be counted.
func genMergeScenario(seed uint64) mergeScenario {
	r := rand.New(rand.NewPCG(seed, 0x3e7a_9e11))
	ms := mergeScenario{seed: seed}
	lateness := pick(r, 0, 500*time.Millisecond, 2*time.Second, 10*time.Second)
	lengths := []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute}
	nTenants := 1 + r.IntN(4)
	tenants := make([]string, nTenants)
	tlen := make([]time.Duration, nTenants)
	var maxLen time.Duration
	for i := range tenants {
		tenants[i] = "org-" + strconv.Itoa(i)
		tlen[i] = pick(r, lengths...)
		maxLen = max(maxLen, tlen[i])
	}

	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).Add(randDur(r, time.Hour))
	cursor := base
	clock := base.Add(randDur(r, 2*time.Second))
	nParts := 2 + r.IntN(4)
	next := make([]int64, nParts)
	at := make([]time.Time, nParts) // each partition's clock as its ops last set it
	for p := range nParts {
		ms.parts = append(ms.parts, &scenario{
			seed: seed*16 + uint64(p),
			cfg: Config{
				Partition:       int32(p),
				AllowedLateness: lateness,
				ChunkSize:       pick(r, 1, 2, 3, 5, 0),
				RetainClosed:    pick(r, 1, 2, 4, 0),
			},
			start: clock,
		})
		next[p] = r.Int64N(1000)
		at[p] = clock
	}
	// opOn appends an op to partition p, first setting its clock.
	opOn := func(p int, o op) {
		if !at[p].Equal(clock) {
			ms.parts[p].ops = append(ms.parts[p].ops, op{kind: opClock, at: clock})
			at[p] = clock
		}
		ms.parts[p].ops = append(ms.parts[p].ops, o)
	}
	// Half the streams use two tag sets only, so that tag sets gather more
	// than exactLatencies requests and their latencies go to sketches.
	narrow := r.IntN(2) == 0
	prev := base
	n := 150 + r.IntN(250)
	for i := range n {
		switch x := r.IntN(100); {
		case x < 8:
			opOn(r.IntN(nParts), op{kind: opAdvance})
		case x < 11:
			opOn(r.IntN(nParts), op{kind: opFlush})
		case x < 14:
			// Quiet for a while: some partitions notice they are idle.
			gap := randDur(r, 90*time.Second)
			clock = clock.Add(gap)
			cursor = cursor.Add(gap)
			for p := range nParts {
				if r.IntN(3) > 0 {
					opOn(p, op{kind: opIdle})
				}
			}
		}
		if r.IntN(2) == 0 {
			cursor = cursor.Add(randDur(r, 2*time.Second))
		}
		if clock.Before(cursor) {
			clock = cursor.Add(randDur(r, time.Second))
		}
		ti := r.IntN(nTenants)
		var ts time.Time
		switch j := r.IntN(100); {
		case j < 55:
			ts = cursor.Add(-randDur(r, lateness))
		case j < 75:
			ts = cursor.Add(-randDur(r, 2*maxLen+lateness))
		case j < 80:
			ts = cursor.Add(-randDur(r, 10*time.Minute))
		case j < 88:
			ts = prev
		case j < 92:
			ts = time.Unix(0, cursor.UnixNano()/int64(tlen[ti])*int64(tlen[ti])).UTC()
		default:
			ts = cursor.Add(randDur(r, 5*time.Second))
		}
		prev = ts
		p := r.IntN(nParts)
		next[p]++
		if r.IntN(10) == 0 {
			next[p] += r.Int64N(3)
		}
		sc := ms.parts[p]
		ev := genEvent(r, tenants[ti], ts, i)
		if narrow {
			ev.Model, ev.Provider, ev.GatewayID, ev.RoutingStrategy = pick(r, "gpt-4o", "llama-3"), "openai", "gw-eu", "cost"
		}
		sc.recs = append(sc.recs, record{offset: next[p], ev: ev, length: tlen[ti]})
		opOn(p, op{kind: opAdd, rec: len(sc.recs) - 1})
	}
	// Every window closes on every partition; then, two days on, the
	// retained totals expire (so that the harness can check nothing is
	// left), which emits nothing.
	clock = clock.Add(maxLen + lateness + 6*time.Second) // records run up to 5 s ahead
	ms.end = clock
	for p := range nParts {
		opOn(p, op{kind: opIdle})
		ms.parts[p].ops = append(ms.parts[p].ops, op{kind: opClock, at: clock.Add(48 * time.Hour)}, op{kind: opIdle})
	}
	return ms
}
