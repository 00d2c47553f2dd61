package aggregate

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/futureagi/prism-exporter/schemas"
)

// segmentSeeds is how many random streams the two-phase property runs.
const segmentSeeds = 300

// segmentCounts is what one run of the property exercised.
type segmentCounts struct {
	crashes       int   // partition runs cut short and replayed from their commit
	landedUnacked int   // batches that reached Datadog or Kafka but whose answer was lost
	lostUnacked   int   // batches lost with their run
	resetDropped  int64 // windows a SourceReset took stale partials from
	folded        int64 // final segments folded into their window's sum
	progress      int   // progress records of quiet partitions
	rebuilds      int   // Combiners rebuilt from the compacted topic
	multiSegment  int   // windows summed from more than one segment of a source
	tooOld        int   // records too old for a metric: logs only
	duplicateLogs int   // logs delivered more than once
}

func (c *segmentCounts) add(o segmentCounts) {
	c.crashes += o.crashes
	c.landedUnacked += o.landedUnacked
	c.lostUnacked += o.lostUnacked
	c.resetDropped += o.resetDropped
	c.folded += o.folded
	c.progress += o.progress
	c.rebuilds += o.rebuilds
	c.multiSegment += o.multiSegment
	c.tooOld += o.tooOld
	c.duplicateLogs += o.duplicateLogs
}

// segmentMistake breaks one part of the design on purpose.
type segmentMistake struct {
	keyOf                func(*Partial) PartialKey // the Combiner's overwrite key
	ignoreReset          bool                      // the Combiner keeps a crashed run's partials
	commitIgnoresPending bool                      // the Ledger commits past unaccepted batches
	foldAll              bool                      // the Combiner folds segments not yet final
}

// TestSegmentPropertyAgainstModel is the two-phase property. Records of
// several tenants spread over several partitions; each partition is cut
// into segments at random by a Segmenter, its batches accepted in random
// order, its commit taken from a Ledger at random moments, and its run
// crashed up to twice (the batches in flight landing or not) and replayed
// from the commit after a SourceReset. The partials and resets, each
// partition's in its order, interleaved in one topic, feed a Combiner,
// and a second one rebuilt from the compacted topic. Each window's totals
// must equal the brute-force totals of its records, every record's log
// must arrive, and records too old for Datadog must have no metric.
func TestSegmentPropertyAgainstModel(t *testing.T) {
	var all segmentCounts
	for seed := range uint64(segmentSeeds) {
		c, err := runSegmentProperty(seed, segmentMistake{})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		all.add(c)
	}
	t.Logf("exercised: %+v", all)
	// Guard the generator: a change that stops it reaching a path would
	// otherwise pass silently.
	if all.crashes < 100 || all.landedUnacked < 100 || all.lostUnacked < 100 || all.resetDropped < 50 || all.folded < 500 || all.progress < 100 ||
		all.rebuilds < 100 || all.multiSegment < 100 || all.tooOld < 50 || all.duplicateLogs < 50 {
		t.Errorf("the streams no longer exercise every path: %+v", all)
	}
}

// TestSegmentPropertyCatchesMistakes runs the property with one part of the
// design broken and requires it to fail: each part of the key, the reset,
// and the commit rule are needed, and the property can tell.
func TestSegmentPropertyCatchesMistakes(t *testing.T) {
	for _, m := range []struct {
		name    string
		mistake segmentMistake
	}{
		{"key without the source partition", segmentMistake{keyOf: func(p *Partial) PartialKey { k := p.Key(); k.Source = 0; return k }}},
		{"key without the segment", segmentMistake{keyOf: func(p *Partial) PartialKey { k := p.Key(); k.Segment = 0; return k }}},
		{"resets ignored", segmentMistake{ignoreReset: true}},
		{"commit past unaccepted batches", segmentMistake{commitIgnoresPending: true}},
		{"segments folded before they are final", segmentMistake{foldAll: true}},
	} {
		t.Run(m.name, func(t *testing.T) {
			for seed := range uint64(segmentSeeds) {
				if _, err := runSegmentProperty(seed, m.mistake); err != nil {
					t.Logf("detected at seed %d: %v", seed, err)
					return
				}
			}
			t.Fatalf("the property passed all %d seeds with the mistake: it cannot detect it", segmentSeeds)
		})
	}
}

// topicRecord is one record of the partials topic: a partial or a reset.
type topicRecord struct {
	key   string
	value []byte
}

func runSegmentProperty(seed uint64, mistake segmentMistake) (segmentCounts, error) {
	r := rand.New(rand.NewPCG(seed, 0x5e9_3e17))
	var counts segmentCounts
	now := t0.Add(3 * time.Hour)
	clock := &fakeClock{now: now}

	lengths := []time.Duration{time.Second, 10 * time.Second, time.Minute, 5 * time.Minute}
	nTenants := 1 + r.IntN(4)
	tenants := make([]string, nTenants)
	tlen := make([]time.Duration, nTenants)
	for i := range tenants {
		tenants[i] = "org-" + strconv.Itoa(i)
		tlen[i] = pick(r, lengths...)
	}
	nParts := 1 + r.IntN(4)
	parts := make([][]record, nParts)
	var all []record
	id := 0
	for p := range parts {
		offset := r.Int64N(1000)
		for range 30 + r.IntN(200) {
			ti := r.IntN(nTenants)
			var ts time.Time
			switch x := r.IntN(100); {
			case x < 70:
				ts = now.Add(-randDur(r, 5*time.Minute))
			case x < 95:
				ts = now.Add(-randDur(r, 50*time.Minute))
			default: // too old for a metric point: a log only
				ts = now.Add(-56*time.Minute - randDur(r, 20*time.Minute))
			}
			offset += 1 + r.Int64N(2)
			rec := record{offset: offset, ev: genEvent(r, tenants[ti], ts, id), length: tlen[ti]}
			id++
			parts[p] = append(parts[p], rec)
			all = append(all, rec)
		}
	}

	logs := map[string]int{}
	perPart := make([][]topicRecord, nParts)
	for p, recs := range parts {
		out := &perPart[p]
		deliver := func(b Batch) {
			switch b.Kind {
			case KindLogs:
				for _, ev := range b.Logs {
					logs[ev.RequestID]++
				}
			case KindSegment:
				for _, part := range b.Partials {
					key, _ := part.Key().AppendBinary(nil)
					val, err := part.AppendBinary(nil)
					if err != nil {
						panic(err)
					}
					*out = append(*out, topicRecord{key: string(key), value: val})
				}
			}
		}
		committed := recs[0].offset // a new group starts at the first record
		crashes := r.IntN(3)
		for run := 0; ; run++ {
			final := run == crashes
			seg, err := NewSegmenter(Config{Partition: int32(p), Clock: clock, MaxTagSets: 1000, ChunkSize: pick(r, 1, 3, 500)})
			if err != nil {
				return counts, err
			}
			ledger := NewLedger(committed)
			ledger.mutation.ignorePending = mistake.commitIgnoresPending
			reset := SourceReset{Source: int64(p), From: committed}.AppendBinary(nil)
			*out = append(*out, topicRecord{key: string(reset), value: reset})

			type inFlight struct {
				tok uint64
				b   Batch
			}
			var pending []inFlight
			emit := func(b Batch) { pending = append(pending, inFlight{ledger.Sent(b.MinOffset), b}) }
			acceptSome := func(all bool) {
				r.Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })
				keep := pending[:0]
				for _, f := range pending {
					if all || r.IntN(2) == 0 {
						deliver(f.b)
						ledger.Done(f.tok)
					} else {
						keep = append(keep, f)
					}
				}
				pending = keep
			}
			i := 0
			for i < len(recs) && recs[i].offset < committed {
				i++
			}
			stop := len(recs)
			if !final {
				stop = i + r.IntN(len(recs)-i+1)
			}
			for ; i < stop; i++ {
				if seg.Add(recs[i].offset, recs[i].ev, recs[i].length, emit) == TooOld && final {
					counts.tooOld++
				}
				if r.IntN(12) == 0 {
					next := recs[i].offset + 1
					seg.Cut(next, committed, emit)
					ledger.Cut(next)
				}
				if r.IntN(4) == 0 {
					acceptSome(false)
				}
				if r.IntN(8) == 0 {
					committed = max(committed, ledger.Point())
					if r.IntN(3) == 0 {
						// The partition went quiet after the commit: it says
						// how far it got.
						pg := SourceProgress{Source: int64(p), Committed: committed, MaxEvent: recs[i].ev.Timestamp.UnixNano()}.AppendBinary(nil)
						*out = append(*out, topicRecord{key: string(pg), value: pg})
						counts.progress++
					}
				}
			}
			if final {
				next := recs[len(recs)-1].offset + 1
				seg.Cut(next, committed, emit)
				ledger.Cut(next)
				acceptSome(true)
				break
			}
			// kill -9: what was in flight may have landed, its answer lost.
			counts.crashes++
			for _, f := range pending {
				if r.IntN(2) == 0 {
					deliver(f.b)
					counts.landedUnacked++
				} else {
					counts.lostUnacked++
				}
			}
		}
	}

	// One topic: each partition's records in its order, interleaved.
	var topic []topicRecord
	for {
		var open []int
		for p := range perPart {
			if len(perPart[p]) > 0 {
				open = append(open, p)
			}
		}
		if len(open) == 0 {
			break
		}
		p := open[r.IntN(len(open))]
		topic = append(topic, perPart[p][0])
		perPart[p] = perPart[p][1:]
	}

	feed := func(records []topicRecord) (*Combiner, error) {
		c, err := NewCombiner(CombinerConfig{Clock: clock, MaxTagSets: 1000})
		if err != nil {
			return nil, err
		}
		c.mutation.keyOf = mistake.keyOf
		c.mutation.ignoreReset = mistake.ignoreReset
		c.mutation.foldAll = mistake.foldAll
		for _, rec := range records {
			if IsSourceProgress(rec.value) {
				var pg SourceProgress
				if err := pg.UnmarshalBinary(rec.value); err != nil {
					return nil, err
				}
				c.Progress(pg.Source, pg.Committed, pg.MaxEvent)
				continue
			}
			if IsSourceReset(rec.value) {
				var rs SourceReset
				if err := rs.UnmarshalBinary(rec.value); err != nil {
					return nil, err
				}
				c.Reset(rs.Source, rs.From)
				continue
			}
			p := new(Partial)
			if err := p.UnmarshalBinary(rec.value); err != nil {
				return nil, err
			}
			c.Add(p)
		}
		return c, nil
	}
	comb, err := feed(topic)
	if err != nil {
		return counts, err
	}
	counts.resetDropped = comb.Stats().ResetDropped
	counts.folded = comb.Stats().Folded
	if n := comb.Stats().ResetTooLate; n > 0 {
		return counts, fmt.Errorf("%d resets came below a source's commit", n)
	}
	if err := checkTotals(comb, all, now); err != nil {
		return counts, err
	}
	// Compaction keeps the last record per key, in place: a Combiner
	// rebuilt from it must reach the same totals.
	last := map[string]int{}
	for i, rec := range topic {
		last[rec.key] = i
	}
	var compacted []topicRecord
	for i, rec := range topic {
		if last[rec.key] == i {
			compacted = append(compacted, rec)
		}
	}
	rebuilt, err := feed(compacted)
	if err != nil {
		return counts, err
	}
	counts.rebuilds++
	if err := checkTotals(rebuilt, all, now); err != nil {
		return counts, fmt.Errorf("rebuilt from the compacted topic: %w", err)
	}
	for _, w := range comb.windows {
		for _, src := range w.sources {
			if len(src.segments) > 1 {
				counts.multiSegment++
				break
			}
		}
	}
	for _, rec := range all {
		switch n := logs[rec.ev.RequestID]; {
		case n == 0:
			return counts, fmt.Errorf("the log of %s (offset %d) never arrived", rec.ev.RequestID, rec.offset)
		case n > 1:
			counts.duplicateLogs += n - 1
		}
	}
	return counts, nil
}

// checkTotals holds every window's totals in c against the brute-force
// totals of its records; records too old for Datadog count in none.
func checkTotals(c *Combiner, recs []record, now time.Time) error {
	type wid struct {
		tenant string
		start  int64
		length time.Duration
	}
	byWindow := map[wid][]record{}
	for _, rec := range recs {
		start := windowStart(rec.ev.Timestamp.UnixNano(), int64(rec.length))
		if now.UnixNano() >= start+int64(DefaultMetricMaxAge) {
			continue
		}
		k := wid{rec.ev.OrgID, start, rec.length}
		byWindow[k] = append(byWindow[k], rec)
	}
	for k, rs := range byWindow {
		evs := make([]*schemas.Event, len(rs))
		for i := range rs {
			evs[i] = rs[i].ev
		}
		want, _ := totalsOf(evs, 1000)
		got := c.Totals(k.tenant, Window{Start: time.Unix(0, k.start).UTC(), Length: k.length})
		if len(got) != len(want) {
			return fmt.Errorf("window %s %v: %d tag sets, want %d", k.tenant, time.Unix(0, k.start).UTC(), len(got), len(want))
		}
		for _, s := range got {
			if msg := seriesMismatch(s, want[s.Tags]); msg != "" {
				return fmt.Errorf("window %s %v, tags %+v: %s", k.tenant, time.Unix(0, k.start).UTC(), s.Tags, msg)
			}
		}
	}
	for id := range c.windows {
		if _, ok := byWindow[wid{id.tenant, id.start, time.Duration(id.length)}]; !ok && len(c.Totals(id.tenant, windowOf(id.start, id.length))) > 0 {
			return fmt.Errorf("window %s %v has totals but no records", id.tenant, time.Unix(0, id.start).UTC())
		}
	}
	return nil
}
