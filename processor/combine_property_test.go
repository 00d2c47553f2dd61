package processor

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/futureagi/prism-exporter/aggregate"
)

// TestCombinerCommitRuleProperties runs the combiner's partition logic (the
// cpart: read, send due windows, answers, the commit point, the rebuild on
// a new run) over random partial streams with random crashes, and checks
// against a brute-force model that Datadog ends up holding every window's
// exact total: the sum over sources of each key's latest partial. A crash
// loses what was in flight (each request may or may not have reached
// Datadog) and restarts from the last commit, rebuilding from the start of
// the topic as the real one rebuilds from its hour.
func TestCombinerCommitRuleProperties(t *testing.T) {
	seeds := uint64(400)
	if testing.Short() {
		seeds = 100
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		if msg := combinerRun(seed, false); msg != "" {
			t.Fatalf("seed %d: %s", seed, msg)
		}
	}
}

// TestCombinerCommitRuleMutationIsCaught: a commit point that ignores the
// windows not yet accepted (committing everything read) must fail the
// property: after a crash those windows' changes are marked sent without
// ever reaching Datadog.
func TestCombinerCommitRuleMutationIsCaught(t *testing.T) {
	for seed := uint64(1); seed <= 400; seed++ {
		if combinerRun(seed, true) != "" {
			return
		}
	}
	t.Fatal("400 runs with a commit point that ignores unsent windows all passed: the property cannot tell")
}

type propClock struct{ now time.Time }

func (c *propClock) Now() time.Time { return c.now }

// recordingDeliverer keeps what the combiner hands the sink until the test
// answers it.
type recordingDeliverer struct {
	calls []delivery
}

type delivery struct {
	b    aggregate.Batch
	done func(Receipt)
}

func (r *recordingDeliverer) Deliver(b aggregate.Batch, done func(Receipt)) {
	r.calls = append(r.calls, delivery{b: b, done: done})
}

func combinerRun(seed uint64, mutate bool) string {
	rng := rand.New(rand.NewPCG(seed, 17))
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := &propClock{now: t0.Add(5 * time.Minute)} // past every window's end and grace
	windows := []aggregate.Window{{Start: t0, Length: time.Minute}, {Start: t0.Add(time.Minute), Length: time.Minute}}
	tenants := []string{"org_a", "org_b", "org_c"}

	// The topic: partials in offset order.
	var log []kafka.Message
	latest := map[aggregate.PartialKey]int64{} // the model: requests of each key's latest partial
	produce := func() {
		p := &aggregate.Partial{
			Tenant: tenants[rng.IntN(len(tenants))],
			Window: windows[rng.IntN(len(windows))],
			Source: int64(rng.IntN(3)),
		}
		n := int64(1 + rng.IntN(4)) // within the exact latencies a partial holds
		seg := int64(rng.IntN(5)) * 100
		p.Segment, p.First, p.Through = seg, seg, seg+int64(rng.IntN(100))
		p.MaxEvent = t0.Add(3 * time.Minute).UnixNano() // past both windows: due once settled
		p.Series = []aggregate.Series{{Tags: aggregate.TagSet{Model: "m"}, Requests: n, LatencySumMS: n, LatencyMaxMS: 1}}
		var lat aggregate.Latencies
		for i := range n {
			lat.Exact[i] = 1
		}
		p.Latencies = []aggregate.Latencies{lat}
		key, _ := p.Key().AppendBinary(nil)
		val, err := p.AppendBinary(nil)
		if err != nil {
			panic(err)
		}
		log = append(log, kafka.Message{Offset: int64(len(log)), Key: key, Value: val})
		latest[p.Key()] = n
	}

	// A new run of a source partition: the combiner drops that source's
	// segments from a commit point on.
	reset := func() {
		rs := aggregate.SourceReset{Source: int64(rng.IntN(3)), From: int64(rng.IntN(5)) * 100}
		b := rs.AppendBinary(nil)
		log = append(log, kafka.Message{Offset: int64(len(log)), Key: b, Value: b})
		for k := range latest {
			if k.Source == rs.Source && k.Segment >= rs.From {
				delete(latest, k)
			}
		}
	}

	datadog := map[combinedKey]int64{} // requests of the last accepted write
	committed := int64(-1)
	proc := &Processor{
		cfg:     Config{DrainTimeout: time.Second},
		metrics: newMetrics(prometheus.NewRegistry(), &budget{limit: 1 << 20}),
		clock:   clock,
	}
	dd := &recordingDeliverer{}
	proc.deps.Deliverer = dd

	newRun := func() *cpart {
		comb, err := aggregate.NewCombiner(aggregate.CombinerConfig{Clock: clock, Grace: time.Second})
		if err != nil {
			panic(err)
		}
		cp := &cpart{
			c: &combiner{p: proc, log: zap.NewNop()}, label: "0", comb: comb, log: zap.NewNop(),
			unsent: map[combinedKey]int64{}, inflight: map[combinedKey]bool{},
			answers: make(chan combined, 1<<16), exited: make(chan struct{}),
		}
		cp.mutation.commitAll = mutate
		// positions(): the rebuild starts at the topic's start here.
		cp.rebuildTo = int64(len(log))
		cp.sentBefore = committed
		if cp.sentBefore < 0 || cp.sentBefore > cp.rebuildTo {
			cp.sentBefore = 0
		}
		cp.lastCommit = cp.sentBefore
		cp.checkRebuilt()
		return cp
	}
	apply := func(d delivery) {
		var n int64
		for _, s := range d.b.Series {
			n += s.Requests
		}
		datadog[keyOfWindow(d.b.Tenant, d.b.Window)] = n
	}
	answerSome := func(cp *cpart, all bool) {
		keep := dd.calls[:0]
		for _, d := range dd.calls {
			switch {
			case all || rng.IntN(2) == 0:
				ok := rng.IntN(5) != 0 || all
				if ok {
					apply(d)
				}
				d.done(Receipt{Accepted: ok})
			default:
				keep = append(keep, d)
			}
		}
		dd.calls = keep
		for len(cp.answers) > 0 {
			cp.answered(<-cp.answers)
		}
	}
	commit := func(cp *cpart) {
		if !cp.markedAll {
			return
		}
		if c := cp.commitPoint(); c > cp.lastCommit {
			cp.lastCommit, committed = c, c
		}
	}

	cp := newRun()
	steps := 200 + rng.IntN(200)
	for i := 0; i < steps; i++ {
		switch r := rng.IntN(21); {
		case r == 20:
			reset()
		case r < 6:
			produce()
		case r < 12:
			if cp.next < int64(len(log)) {
				m := log[cp.next]
				m.HighWaterMark = int64(len(log))
				cp.add(m)
			}
		case r < 15:
			cp.send()
		case r < 17:
			answerSome(cp, false)
		case r < 19:
			commit(cp)
		default:
			// kill -9: in-flight requests may or may not have landed.
			for _, d := range dd.calls {
				if rng.IntN(2) == 0 {
					apply(d)
				}
			}
			dd.calls = nil
			close(cp.exited)
			cp = newRun()
		}
	}
	// A last crash after everything was read and committed by the rule,
	// with no change to come that would send a window again.
	for cp.next < int64(len(log)) {
		m := log[cp.next]
		m.HighWaterMark = int64(len(log))
		cp.add(m)
	}
	if rng.IntN(2) == 0 {
		cp.send()
		answerSome(cp, false)
	}
	commit(cp)
	dd.calls = nil // lost with the process
	close(cp.exited)
	cp = newRun()
	// The end: no more crashes; read everything, send until quiet.
	for round := 0; round < 100; round++ {
		for cp.next < int64(len(log)) {
			m := log[cp.next]
			m.HighWaterMark = int64(len(log))
			cp.add(m)
		}
		cp.send()
		answerSome(cp, true)
		commit(cp)
		if len(cp.comb.Due()) == 0 && len(cp.inflight) == 0 {
			break
		}
	}

	want := map[combinedKey]int64{}
	for k, n := range latest {
		want[combinedKey{tenant: k.Tenant, start: k.Start, length: k.Length}] += n
	}
	for k := range datadog {
		if _, ok := want[k]; !ok {
			want[k] = 0 // every partial of it was reset away: its last write must say so
		}
	}
	for k, n := range want {
		if datadog[k] != n {
			return "window " + k.tenant + " " + time.Unix(0, k.start).UTC().Format(time.TimeOnly) + ": Datadog holds " +
				itoa(datadog[k]) + " requests, the partials sum to " + itoa(n)
		}
	}
	return ""
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
