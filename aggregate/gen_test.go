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

type record struct {
	offset int64
	ev     *schemas.Event
	length time.Duration
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func randDur(r *rand.Rand, upTo time.Duration) time.Duration {
	return time.Duration(r.Int64N(int64(upTo) + 1))
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
