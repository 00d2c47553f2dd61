package aggregate

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/futureagi/prism-exporter/schemas"
)

// mergeSeeds is how many random streams the two-phase property runs.
const mergeSeeds = 150

// mergeCounts is what one run of the property exercised.
type mergeCounts struct {
	crashes          int // partition runs cut short and replayed
	replayed         int64
	skipped          int64
	lateOpened       int64
	wholeCorrections int // KindLate batches with a whole partial
	recordPartials   int
	unackedDelivered int // partials in the topic whose batch was never acknowledged
	unackedLost      int // partials of unacknowledged batches that never reached it
	duplicates       int // partials fed to the Combiner again
	restarts         int // Combiner rebuilt from the compacted topic
	covered          int // record partials a whole partial covers at the end
	coverShrunk      int // whole partials replaced by one covering fewer offsets
	sketched         int // partial series fed whose latencies were sketched
	multiSource      int // windows with partials from more than one partition
}

func (c *mergeCounts) addAll(o mergeCounts) {
	c.crashes += o.crashes
	c.replayed += o.replayed
	c.skipped += o.skipped
	c.lateOpened += o.lateOpened
	c.wholeCorrections += o.wholeCorrections
	c.recordPartials += o.recordPartials
	c.unackedDelivered += o.unackedDelivered
	c.unackedLost += o.unackedLost
	c.duplicates += o.duplicates
	c.restarts += o.restarts
	c.covered += o.covered
	c.coverShrunk += o.coverShrunk
	c.sketched += o.sketched
	c.multiSource += o.multiSource
}

// topicEntry is one partial as produced to the partials topic.
type topicEntry struct {
	key PartialKey
	enc []byte
}

// TestMergePropertyAgainstModel is the two-phase property: records of
// several tenants spread over several partitions, each partition
// aggregated by its own Aggregator and crashed and replayed from its
// commit (the Resume rules) up to twice, acknowledging a random part of
// what it emitted; the partials that reached the topic fed to one Combiner
// in a random order with duplicates, the Combiner sometimes rebuilt from the
// compacted topic. The Combiner's totals must equal the brute-force totals
// over all records.
func TestMergePropertyAgainstModel(t *testing.T) {
	var all mergeCounts
	for seed := range uint64(mergeSeeds) {
		c, err := runMergeProperty(t, seed, nil)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		all.addAll(c)
	}
	t.Logf("exercised: %+v", all)
	// Guard the generator: a change that stops it reaching a path would
	// otherwise pass silently.
	if all.crashes < 100 || all.replayed < 100 || all.skipped < 100 || all.lateOpened < 50 ||
		all.wholeCorrections < 100 || all.recordPartials < 200 || all.unackedDelivered < 50 || all.unackedLost < 50 ||
		all.duplicates < 100 || all.restarts < 20 || all.covered < 50 || all.coverShrunk < 5 ||
		all.sketched < 100 || all.multiSource < 100 {
		t.Errorf("the streams no longer exercise every path: %+v", all)
	}
}

// TestMergePropertyCatchesMistakes runs the same property with the
// Combiner broken on purpose and requires the property to fail: so the
// property can fail, and each part of the key (and the coverage rule) is
// needed.
func TestMergePropertyCatchesMistakes(t *testing.T) {
	for _, m := range []struct {
		name   string
		mutate func(*Combiner)
	}{
		{"key without the source partition", func(c *Combiner) {
			c.mutation.keyOf = func(p *Partial) PartialKey { k := p.Key(); k.Source = 0; return k }
		}},
		{"key without the late discriminator", func(c *Combiner) {
			c.mutation.keyOf = func(p *Partial) PartialKey { k := p.Key(); k.Late = 0; return k }
		}},
		{"record partials counted though covered", func(c *Combiner) { c.mutation.countCovered = true }},
	} {
		t.Run(m.name, func(t *testing.T) {
			failed, runs := 0, 0
			var first error
			for seed := range uint64(mergeSeeds) {
				_, err := runMergeProperty(t, seed, m.mutate)
				runs++
				if err != nil {
					failed++
					if first == nil {
						first = err
					}
				}
				if failed >= 3 {
					break
				}
			}
			if failed == 0 {
				t.Fatalf("the property passed all %d seeds with the mistake: it cannot detect it", runs)
			}
			t.Logf("detected in %d of %d seeds, first: %v", failed, runs, first)
		})
	}
}

// runMergeProperty runs one seed; mutate, if set, breaks each Combiner it
// builds. It returns an error when the Combiner's totals differ from the
// model; the aggregators are held to the single-partition model as they go
// (a t.Fatal there is a bug whatever the mutation).
func runMergeProperty(t *testing.T, seed uint64, mutate func(*Combiner)) (mergeCounts, error) {
	t.Helper()
	ms := genMergeScenario(seed)
	r := rand.New(rand.NewPCG(seed, 0x70_91c5))
	var counts mergeCounts

	// Each partition's partials in the order it produced them.
	var produced [][]topicEntry
	for _, sc := range ms.parts {
		produced = append(produced, runPartitionWithCrashes(t, sc, r, &counts))
	}

	clock := &fakeClock{now: ms.end.Add(DefaultCombinerGrace + time.Second)}
	newComb := func() *Combiner {
		c, err := NewCombiner(CombinerConfig{Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(c)
		}
		return c
	}
	comb, err := feedCombiner(r, produced, newComb, &counts)
	if err != nil {
		return counts, err
	}
	return counts, checkCombiner(comb, ms, &counts)
}

// runPartitionWithCrashes runs one partition's ops, crashing up to twice
// at a random record: it acknowledges a random part of what was emitted,
// derives the commit as the processor does, restarts a little later and
// replays from the committed offset (with Advance calls of its own between
// the records, so that chunks and closes fall differently), then runs the
// rest. It returns the partials that reached the topic, in order.
func runPartitionWithCrashes(t *testing.T, sc *scenario, r *rand.Rand, counts *mergeCounts) []topicEntry {
	t.Helper()
	clock := &fakeClock{now: sc.start}
	ops := sc.ops
	resume := Resume{LateFrom: -1}
	crashes := r.IntN(3)
	var topic []topicEntry
	deliver := func(g *received, acked bool) {
		for j, p := range batchPartials(&g.b) {
			if acked || r.IntN(2) == 0 {
				topic = append(topic, topicEntry{key: p.Key(), enc: g.partials[j]})
				if !acked {
					counts.unackedDelivered++
				}
			} else {
				counts.unackedLost++
			}
		}
	}
	tally := func(h *harness) {
		st := h.a.Stats()
		counts.replayed += st.Replayed
		counts.skipped += st.ReplaySkipped
		counts.lateOpened += st.LateOpened
		if st.LateTooOld != 0 {
			t.Fatalf("seed %d partition %d: %d records too old: the generator must keep every record countable", sc.seed/16, sc.cfg.Partition, st.LateTooOld)
		}
		for i := range h.batches {
			b := &h.batches[i].b
			if b.Kind == KindLate && b.Partial != nil {
				counts.wholeCorrections++
			}
			counts.recordPartials += len(b.RecordPartials)
		}
	}
	for run := 0; ; run++ {
		name := fmt.Sprintf("partition %d run %d", sc.cfg.Partition, run)
		h := newHarness(t, sc, clock, resume, name)
		var adds []int
		for i, o := range ops {
			if o.kind == opAdd {
				adds = append(adds, i)
			}
		}
		if run >= crashes || len(adds) == 0 {
			h.run(ops)
			h.finish(true)
			tally(h)
			for i := range h.batches {
				deliver(&h.batches[i], true)
			}
			return topic
		}
		counts.crashes++
		split := adds[r.IntN(len(adds))] + 1
		h.run(ops[:split])
		h.finish(false)
		tally(h)
		ackP := pick(r, 1.0, 0.9, 0.5)
		acked := make([]bool, len(h.batches))
		for i := range h.batches {
			acked[i] = r.Float64() < ackP
			deliver(&h.batches[i], acked[i])
		}
		lastRec := ops[split-1].rec
		cm := deriveCommit(h, acked, sc.recs[lastRec].offset+1)

		clock.now = clock.now.Add(randDur(r, time.Minute))
		var replay []op
		for i := 0; i <= lastRec; i++ {
			if sc.recs[i].offset < cm.c {
				continue
			}
			switch x := r.IntN(100); {
			case x < 10:
				replay = append(replay, op{kind: opAdvance})
			case x < 15:
				replay = append(replay, op{kind: opIdle})
			}
			replay = append(replay, op{kind: opAdd, rec: i})
		}
		for _, o := range ops[split:] {
			if o.kind == opClock && o.at.Before(clock.now) {
				o.at = clock.now // the wall clock does not go back
			}
			replay = append(replay, o)
		}
		ops, resume = replay, cm.resume
	}
}

// feedCombiner feeds the topic's partials to a Combiner in a random order
// that keeps each key's order (as the topic does), sometimes feeding one
// again (a producer retry), and at a random point rebuilds the Combiner from
// the compacted topic: the last partial per key, in random order.
func feedCombiner(r *rand.Rand, produced [][]topicEntry, newComb func() *Combiner, counts *mergeCounts) (*Combiner, error) {
	queues := map[PartialKey][]topicEntry{}
	var keys []PartialKey
	total := 0
	for _, part := range produced {
		for _, e := range part {
			if queues[e.key] == nil {
				keys = append(keys, e.key)
			}
			queues[e.key] = append(queues[e.key], e)
			total++
		}
	}
	restartAt := -1
	if r.IntN(3) == 0 {
		restartAt = r.IntN(total + 1)
	}
	comb := newComb()
	latest := map[PartialKey][]byte{}
	var latestKeys []PartialKey // first-seen order, for a reproducible shuffle
	// Whole partials seen, by key, to spot a replacement covering less.
	wholes := map[PartialKey]*Partial{}
	add := func(enc []byte) error {
		var p Partial
		if err := p.UnmarshalBinary(enc); err != nil {
			return fmt.Errorf("a produced partial does not decode: %w", err)
		}
		for i := range p.Latencies {
			if p.Latencies[i].Sketched {
				counts.sketched++
			}
		}
		if p.Late == 0 {
			k := p.Key()
			if old := wholes[k]; old != nil && p.Through < old.Through {
				counts.coverShrunk++
			}
			wholes[k] = &p
		}
		comb.Add(&p)
		return nil
	}
	for fed := 0; len(keys) > 0; fed++ {
		if fed == restartAt {
			counts.restarts++
			comb = newComb()
			for _, i := range r.Perm(len(latestKeys)) {
				if err := add(latest[latestKeys[i]]); err != nil {
					return nil, err
				}
			}
		}
		i := r.IntN(len(keys))
		k := keys[i]
		e := queues[k][0]
		if err := add(e.enc); err != nil {
			return nil, err
		}
		if latest[k] == nil {
			latestKeys = append(latestKeys, k)
		}
		latest[k] = e.enc
		if r.IntN(5) == 0 {
			counts.duplicates++ // stays at the head: fed again later
			continue
		}
		queues[k] = queues[k][1:]
		if len(queues[k]) == 0 {
			keys[i] = keys[len(keys)-1]
			keys = keys[:len(keys)-1]
		}
	}
	return comb, nil
}

// checkCombiner compares the Combiner's totals for every window with the
// brute-force totals over all records of every partition, and checks that
// every window is due once and then marked sent.
func checkCombiner(comb *Combiner, ms mergeScenario, counts *mergeCounts) error {
	byWin := map[wkey][]*schemas.Event{}
	for _, sc := range ms.parts {
		for _, rec := range sc.recs {
			k := keyOf(rec.ev, rec.length)
			byWin[k] = append(byWin[k], rec.ev)
		}
	}
	for k, evs := range byWin {
		got := comb.Totals(k.tenant, windowOf(k.start, k.length))
		want, _ := totalsOf(evs, maxTagSetsLimit)
		if len(got) != len(want) {
			return fmt.Errorf("window %v: %d tag sets, the model %d (%d records)", k, len(got), len(want), len(evs))
		}
		for _, s := range got {
			w := want[s.Tags]
			if w == nil {
				return fmt.Errorf("window %v: tag set %v not in the model", k, s.Tags)
			}
			if msg := seriesMismatch(s, w); msg != "" {
				return fmt.Errorf("window %v tags %v: %s", k, s.Tags, msg)
			}
		}
	}
	for id, w := range comb.windows {
		k := wkey{tenant: id.tenant, start: id.start, length: id.length}
		if byWin[k] == nil {
			return fmt.Errorf("the Combiner holds window %v, which has no record", k)
		}
		if len(w.sources) > 1 {
			counts.multiSource++
		}
		for _, src := range w.sources {
			for _, p := range src.records {
				if src.whole != nil && src.whole.covers(p.First) {
					counts.covered++
				}
			}
		}
	}
	due := comb.Due()
	if len(due) != len(byWin) {
		return fmt.Errorf("%d windows due, want all %d", len(due), len(byWin))
	}
	for _, p := range due {
		if !comb.MarkSent(p) {
			return fmt.Errorf("MarkSent(%v) refused with nothing changed", p)
		}
	}
	if d := comb.Due(); len(d) != 0 {
		return fmt.Errorf("%d windows still due after all were marked sent", len(d))
	}
	return nil
}
