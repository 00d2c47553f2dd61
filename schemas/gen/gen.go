// Package gen generates Prism gateway records shaped like the shared samples,
// deterministically, for tests, benchmarks and the demo. It writes JSON by
// hand with strconv's Append functions: it feeds benchmarks millions of
// records, and encoding/json would cost more than the code under test.
package gen

import (
	"math/rand/v2"
	"time"
)

// Config says what to generate.
type Config struct {
	// Tenants are the organisation ids (metadata.org_id) to spread records
	// over, the first the busiest; empty means the five of the samples. Ids
	// must be valid UTF-8; empty ones are skipped.
	Tenants []string
	// Seed makes the output reproducible: the same seed and the same
	// timestamps give the same bytes.
	Seed int64
	// MalformedEvery makes every Nth record malformed, cycling through the
	// kinds of malformed-records.txt; 0 means never.
	MalformedEvery int
}

// Generator produces records. It is not safe for concurrent use.
type Generator struct {
	rng            *rand.Rand
	tenants        []tenant
	tenantCum      []float64 // cumulative share of each tenant
	models         []model
	modelWeights   int
	outcomes       []outcome
	routing        []string
	gateways       []string
	malformedEvery int
	count          uint64 // records generated so far
	nextFault      fault  // the kind the next malformed record takes
}

type tenant struct {
	quoted []byte // the id as a JSON string, quotes included
	keyTag string // what the tenant's API key ids are made of
}

// New returns a Generator for cfg.
func New(cfg Config) *Generator {
	var names []string
	for _, name := range cfg.Tenants {
		if name != "" { // an empty org_id is a malformed record, not a tenant
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		names = sampleTenants()
	}
	g := &Generator{
		rng:            rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15)),
		models:         models(),
		outcomes:       outcomes(),
		routing:        routingStrategies(),
		gateways:       gateways(),
		malformedEvery: cfg.MalformedEvery,
		nextFault:      firstFault,
	}
	// Zipf-like (weight 1/rank): a few tenants carry most of the traffic, as
	// on a shared gateway, and the rest still show up.
	var total float64
	for i, name := range names {
		total += 1 / float64(i+1)
		g.tenants = append(g.tenants, tenant{
			quoted: appendString(nil, name),
			keyTag: keyTag(name),
		})
	}
	var cum float64
	for i := range names {
		cum += 1 / float64(i+1) / total
		g.tenantCum = append(g.tenantCum, cum)
	}
	g.tenantCum[len(g.tenantCum)-1] = 1
	for _, m := range g.models {
		g.modelWeights += m.weight
	}
	return g
}

// keyTag mimics the samples' API key ids (org_77b2e0 has key_b2e0_1..4): the
// last four characters of the id.
func keyTag(name string) string {
	if len(name) > 4 {
		name = name[len(name)-4:]
	}
	tag := make([]byte, 0, len(name))
	for _, c := range []byte(name) {
		// Keep the tag a plain JSON string whatever the tenant id holds.
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			tag = append(tag, c)
		}
	}
	return string(tag)
}

// Next returns one record with event time ts. The key is nil: the gateway
// does not key its messages by tenant. malformed says the record is one of
// the bad ones MalformedEvery asks for.
func (g *Generator) Next(ts time.Time) (key, value []byte, malformed bool) {
	value, malformed = g.AppendNext(make([]byte, 0, 768), ts)
	return nil, value, malformed
}

// AppendNext appends one record with event time ts to dst, so that a caller
// can reuse one buffer for millions of records.
func (g *Generator) AppendNext(dst []byte, ts time.Time) ([]byte, bool) {
	g.count++
	f := faultNone
	if g.malformedEvery > 0 && g.count%uint64(g.malformedEvery) == 0 {
		f = g.nextFault
		g.nextFault++
		if g.nextFault > lastFault {
			g.nextFault = firstFault
		}
	}
	return g.appendRecord(dst, ts, f), f != faultNone
}

func (g *Generator) pickTenant() *tenant {
	x := g.rng.Float64()
	for i, c := range g.tenantCum {
		if x < c {
			return &g.tenants[i]
		}
	}
	return &g.tenants[len(g.tenants)-1]
}

func (g *Generator) pickModel() *model {
	x := g.rng.IntN(g.modelWeights)
	for i := range g.models {
		if x < g.models[i].weight {
			return &g.models[i]
		}
		x -= g.models[i].weight
	}
	return &g.models[len(g.models)-1]
}

func (g *Generator) pickOutcome() *outcome {
	x := g.rng.IntN(1000)
	for i := range g.outcomes {
		if x < g.outcomes[i].perMille {
			return &g.outcomes[i]
		}
		x -= g.outcomes[i].perMille
	}
	return &g.outcomes[0]
}

// chance reports true perMille times in a thousand.
func (g *Generator) chance(perMille int) bool { return g.rng.IntN(1000) < perMille }

// between returns a uniform integer in [lo, hi].
func (g *Generator) between(lo, hi int) int { return lo + g.rng.IntN(hi-lo+1) }
