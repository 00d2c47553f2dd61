package aggregate

import (
	"math/rand/v2"
	"testing"
	"time"
)

// propertySeeds is how many random streams each property test runs.
const propertySeeds = 200

// TestPropertyAgainstModel runs random streams through the Aggregator and the
// brute-force model: placements, closes (order, once each), chunking, held
// offsets, every log exactly once, and the last totals per window.
func TestPropertyAgainstModel(t *testing.T) {
	var seen Stats
	var lateWithSeries, flushed int
	for seed := range uint64(propertySeeds) {
		sc := genScenario(seed, seed%7 == 3)
		h := newHarness(t, &sc, &fakeClock{now: sc.start}, Resume{LateFrom: -1}, "single run")
		h.run(sc.ops)
		h.finish(true)
		st := h.a.Stats()
		seen.LateCorrected += st.LateCorrected
		seen.LateMetricDropped += st.LateMetricDropped
		seen.LateOpened += st.LateOpened
		seen.TagSetsFolded += st.TagSetsFolded
		for _, g := range h.batches {
			if g.b.Kind == KindLate && len(g.b.Series) > 0 {
				lateWithSeries++
			}
			if g.flush {
				flushed++
			}
		}
	}
	// Guard the generator: a change that stops it reaching a path would
	// otherwise pass silently.
	if seen.LateCorrected < 100 || seen.LateMetricDropped < 100 || seen.LateOpened < 50 || seen.TagSetsFolded < 100 || lateWithSeries < 100 || flushed < 100 {
		t.Errorf("the streams no longer exercise every path: %+v, late batches with series %d, flushed batches %d",
			seen, lateWithSeries, flushed)
	}
}

// TestPropertyResume crashes each random stream at a random record, acks a
// random part of what was emitted, derives the commit (C, D, L) as
// docs/design.md says, replays from C into a new Aggregator and checks that
// every record's log reached Datadog at least once and that no window's
// totals were rebuilt from part of its records.
func TestPropertyResume(t *testing.T) {
	var replayed, skipped int64
	for seed := range uint64(propertySeeds) {
		sc := genScenario(seed, false)
		r := rand.New(rand.NewPCG(seed, 0xc0ffee))

		var adds []int
		for i, o := range sc.ops {
			if o.kind == opAdd {
				adds = append(adds, i)
			}
		}
		split := adds[r.IntN(len(adds))] + 1
		lastRec := sc.ops[split-1].rec
		next := sc.recs[lastRec].offset + 1 // the next offset to fetch

		clock := &fakeClock{now: sc.start}
		h1 := newHarness(t, &sc, clock, Resume{LateFrom: -1}, "before crash")
		h1.run(sc.ops[:split])
		h1.finish(false)

		// Acknowledge part of what was emitted.
		ackP := pick(r, 1.0, 0.9, 0.5)
		acked := make([]bool, len(h1.batches))
		for i := range acked {
			acked[i] = r.Float64() < ackP
		}
		commit := deriveCommit(h1, acked, next)

		// Replay from C: first the records fetched before the crash, then
		// the rest of the stream with its calls.
		var replay []op
		for i := 0; i <= lastRec; i++ {
			if sc.recs[i].offset >= commit.c {
				replay = append(replay, op{kind: opAdd, rec: i})
			}
		}
		replay = append(replay, sc.ops[split:]...)
		h2 := newHarness(t, &sc, clock, commit.resume, "after resume")
		h2.run(replay)
		h2.finish(true)
		replayed += h2.a.Stats().Replayed
		skipped += h2.a.Stats().ReplaySkipped

		// At least once: every record's log was accepted before the crash
		// or emitted after it.
		covered := make([]bool, len(sc.recs))
		for i, g := range h1.batches {
			if acked[i] {
				for _, ev := range g.logs {
					covered[h1.recOf[ev]] = true
				}
			}
		}
		for i, n := range h2.emitted {
			if n > 0 {
				covered[i] = true
			}
		}
		for i, ok := range covered {
			if !ok {
				t.Fatalf("seed %d: record offset %d (window %v, class before %d after %d) never delivered; commit %+v",
					seed, sc.recs[i].offset, keyOf(sc.recs[i].ev, sc.recs[i].length), h1.class[i], h2.class[i], commit)
			}
		}

		// No partial overwrite: totals sent after the resume are only for
		// windows past D, and such a window's records all lie at or past C,
		// so the replay rebuilt it whole.
		d := commit.resume.Delivered.UnixNano()
		for _, g := range h2.batches {
			if len(g.b.Series) == 0 {
				continue
			}
			k := g.key()
			if !commit.resume.Delivered.IsZero() && k.end() <= d {
				t.Fatalf("seed %d: series re-sent after resume for delivered window %v (D %v)", seed, k, commit.resume.Delivered)
			}
			for _, rec := range sc.recs {
				if keyOf(rec.ev, rec.length) == k && rec.offset < commit.c {
					t.Fatalf("seed %d: window %v rebuilt after resume but its record at offset %d lies before C %d",
						seed, k, rec.offset, commit.c)
				}
			}
		}
	}
	if replayed < 100 || skipped < 100 {
		t.Errorf("the resumes no longer exercise both rules: %d replayed, %d skipped", replayed, skipped)
	}
}

type commit struct {
	c      int64
	resume Resume
}

// deriveCommit computes the commit a processor would make at the crash, from
// the batches emitted and which were acknowledged, following docs/design.md
// with two corrections (see the comments).
func deriveCommit(h *harness, acked []bool, next int64) commit {
	type winAck struct {
		closeAcked, logsUnacked bool
		closed                  bool
		first                   int64
	}
	wins := map[wkey]*winAck{}
	get := func(k wkey) *winAck {
		if wins[k] == nil {
			wins[k] = &winAck{}
		}
		return wins[k]
	}
	c := next
	lateFrom := next
	for i, g := range h.batches {
		k := g.key()
		switch g.b.Kind {
		case KindLogs:
			if !acked[i] {
				get(k).logsUnacked = true
			}
		case KindClose:
			w := get(k)
			w.closed, w.closeAcked, w.first = true, acked[i], g.b.MinOffset
		case KindLate:
			if !acked[i] {
				c = min(c, g.b.MinOffset)
				for _, ev := range g.logs {
					lateFrom = min(lateFrom, h.sc.recs[h.recOf[ev]].offset)
				}
			}
		}
	}
	// Late records still buffered are unacknowledged too.
	for i := range h.lateHeld {
		lateFrom = min(lateFrom, h.sc.recs[i].offset)
	}

	var resume Resume
	if f := h.a.Frontier(); !f.IsZero() {
		d := f.UnixNano()
		for k, w := range wins {
			if w.closed && (!w.closeAcked || w.logsUnacked) {
				// design.md says D = min(F, end of the earliest closed
				// window not fully acknowledged); but a window whose end
				// equals D counts as delivered, so D must stay below it.
				d = min(d, k.end()-1)
			}
		}
		resume.Delivered = time.Unix(0, d).UTC()
		for k, w := range wins {
			if w.closed && k.end() > d {
				c = min(c, w.first)
			}
		}
	}
	if m, ok := h.a.MinOffset(); ok {
		c = min(c, m)
	}
	// design.md says L = lowest unacknowledged late offset, or -1. But a
	// record fetched after the commit whose window is already delivered is a
	// late record nobody has sent: with L = -1 it would be skipped. So L is
	// never above the next offset to fetch.
	resume.LateFrom = lateFrom
	return commit{c: c, resume: resume}
}
