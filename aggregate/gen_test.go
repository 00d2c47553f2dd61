package aggregate

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/futureagi/prism-exporter/schemas"
)

// fakeClock is the injected wall clock: tests move it, nothing sleeps.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

type opKind uint8

const (
	opAdd     opKind = iota
	opAdvance        // Advance(false)
	opIdle           // Advance(true)
	opFlush
	opClock // set the fake clock to at
)

type op struct {
	kind opKind
	rec  int       // opAdd: index into scenario.recs
	at   time.Time // opClock
}

type record struct {
	offset int64
	ev     *schemas.Event
	length time.Duration
}

// scenario is one random partition stream with the calls the processor would
// interleave: Advance, idle Advance after the wall clock ran ahead, Flush.
type scenario struct {
	seed  uint64
	cfg   Config // without Clock
	start time.Time
	recs  []record
	ops   []op
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func randDur(r *rand.Rand, upTo time.Duration) time.Duration {
	return time.Duration(r.Int64N(int64(upTo) + 1))
}

// genScenario makes a stream of several tenants with different window
// lengths, event times in and out of order (within lateness, beyond it, far
// back), duplicate and boundary timestamps, idle periods, and random Advance
// and Flush calls; it ends with the clock two days ahead and an idle Advance.
// With shuffleOffsets the offsets are permuted, as Kafka never does, to cover
// MinOffset's unordered path.
func genScenario(seed uint64, shuffleOffsets bool) scenario {
	r := rand.New(rand.NewPCG(seed, 0x5eed_ca11))
	sc := scenario{seed: seed}
	sc.cfg = Config{
		Partition:       r.Int32N(12),
		AllowedLateness: pick(r, 0, 500*time.Millisecond, 2*time.Second, 10*time.Second, 45*time.Second),
		MaxTagSets:      pick(r, 1, 2, 3, 5, 0),
		ChunkSize:       pick(r, 1, 2, 3, 5, 8, 0),
		MetricMaxAge:    pick(r, 15*time.Second, 2*time.Minute, 10*time.Minute, 0),
		RetainClosed:    pick(r, 1, 2, 4, 0),
	}
	lengths := []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute}
	nTenants := 1 + r.IntN(5)
	tenants := make([]string, nTenants)
	tlen := make([]time.Duration, nTenants)
	var maxLen time.Duration
	for i := range tenants {
		tenants[i] = "org-" + strconv.Itoa(i)
		tlen[i] = pick(r, lengths...)
		maxLen = max(maxLen, tlen[i])
	}

	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).Add(randDur(r, time.Hour))
	cursor := base // event time
	clock := base.Add(randDur(r, 2*time.Second))
	sc.start = clock
	prev := base
	offset := r.Int64N(1000)
	n := 100 + r.IntN(300)
	for i := range n {
		switch x := r.IntN(100); {
		case x < 8:
			sc.ops = append(sc.ops, op{kind: opAdvance})
		case x < 11:
			sc.ops = append(sc.ops, op{kind: opFlush})
		case x < 14:
			// An idle period: the partition is caught up, the wall clock
			// runs on, and records resume later.
			gap := randDur(r, 10*time.Minute)
			clock = clock.Add(gap)
			cursor = cursor.Add(gap)
			sc.ops = append(sc.ops, op{kind: opClock, at: clock}, op{kind: opIdle})
		}
		if r.IntN(2) == 0 {
			cursor = cursor.Add(randDur(r, 2*time.Second))
		}
		if clock.Before(cursor) {
			clock = cursor.Add(randDur(r, time.Second))
			sc.ops = append(sc.ops, op{kind: opClock, at: clock})
		}
		ti := r.IntN(nTenants)
		var ts time.Time
		switch j := r.IntN(100); {
		case j < 60: // within lateness
			ts = cursor.Add(-randDur(r, sc.cfg.AllowedLateness))
		case j < 80: // beyond it, by up to two windows
			ts = cursor.Add(-randDur(r, 2*maxLen+sc.cfg.AllowedLateness))
		case j < 86: // far back
			ts = cursor.Add(-randDur(r, 90*time.Minute))
		case j < 93: // the same instant as the previous record
			ts = prev
		case j < 96: // exactly on a window boundary
			ts = time.Unix(0, cursor.UnixNano()/int64(tlen[ti])*int64(tlen[ti])).UTC()
		default: // ahead of the others
			ts = cursor.Add(randDur(r, 5*time.Second))
		}
		prev = ts
		offset++
		if r.IntN(10) == 0 {
			offset += r.Int64N(3) // transaction markers, compaction
		}
		sc.recs = append(sc.recs, record{offset: offset, ev: genEvent(r, tenants[ti], ts, i), length: tlen[ti]})
		sc.ops = append(sc.ops, op{kind: opAdd, rec: i})
	}
	clock = clock.Add(48 * time.Hour)
	sc.ops = append(sc.ops, op{kind: opClock, at: clock}, op{kind: opIdle})

	if shuffleOffsets {
		r.Shuffle(len(sc.recs), func(i, j int) {
			sc.recs[i].offset, sc.recs[j].offset = sc.recs[j].offset, sc.recs[i].offset
		})
	}
	return sc
}

func genEvent(r *rand.Rand, tenant string, ts time.Time, i int) *schemas.Event {
	ev := &schemas.Event{
		RequestID:          "req-" + strconv.Itoa(i),
		Timestamp:          ts,
		OrgID:              tenant,
		Model:              pick(r, "gpt-4o", "claude-sonnet", "llama-3", ""),
		Provider:           pick(r, "openai", "anthropic", ""),
		GatewayID:          pick(r, "gw-eu", "gw-us", ""),
		RoutingStrategy:    pick(r, "", "cost", "latency"),
		PromptTokens:       r.Int64N(5000),
		CompletionTokens:   r.Int64N(2000),
		StatusCode:         pick(r, 200, 200, 200, 200, 429, 500),
		IsError:            r.IntN(20) == 0,
		CacheHit:           r.IntN(4) == 0,
		FallbackUsed:       r.IntN(8) == 0,
		GuardrailTriggered: r.IntN(10) == 0,
		// Costs over eight orders of magnitude, where naive summation loses
		// digits depending on order.
		Cost: r.Float64() * math.Pow(10, float64(r.IntN(8)-6)),
	}
	if r.IntN(50) == 0 { // a real tag set that equals the overflow one
		ev.Model, ev.Provider, ev.GatewayID, ev.RoutingStrategy = Other, Other, Other, Other
	}
	switch x := r.IntN(100); {
	case x < 5:
		ev.LatencyMS = 0
	case x < 65:
		ev.LatencyMS = 20 + r.Int64N(800)
	case x < 95:
		ev.LatencyMS = 800 + r.Int64N(20_000)
	default:
		ev.LatencyMS = r.Int64N(120_000)
	}
	ev.TotalTokens = ev.PromptTokens + ev.CompletionTokens
	return ev
}
