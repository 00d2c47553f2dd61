package aggregate

import (
	"sync"
	"testing"
	"time"
)

// Which key each late record's metrics go under: a retained window that
// opened here is overwritten whole; an evicted one, one that never opened
// here, and one delivered before a restart get a record partial each; one
// too old for Datadog gets none.
func TestLatePartialKeys(t *testing.T) {
	a, clock := newTest(t, Config{Partition: 2, RetainClosed: 1, MetricMaxAge: 10 * time.Minute}, Resume{})
	var c collector
	only := func(what string) Batch {
		t.Helper()
		got := c.take()
		if len(got) != 1 {
			t.Fatalf("%s: %d batches, want 1: %+v", what, len(got), got)
		}
		return got[0]
	}
	a.Add(1, event("t", t0.Add(time.Second), 10), time.Minute, c.emit)
	a.Add(2, event("t", t0.Add(70*time.Second), 20), time.Minute, c.emit) // closes window 0
	b := only("close")
	if p := b.Partial; b.Kind != KindClose || p == nil || p.Key() != (PartialKey{"t", t0.UnixNano(), time.Minute, 2, 0}) || p.First != 1 || p.Through != 1 {
		t.Fatalf("close: %+v", b)
	}

	// Retained: the whole partial again, under the same key, covering 3.
	a.Add(3, event("t", t0.Add(2*time.Second), 30), time.Minute, c.emit)
	a.Advance(false, c.emit)
	b = only("correction")
	if p := b.Partial; b.Kind != KindLate || p == nil || p.Late != 0 || p.First != 1 || p.Through != 3 || p.Series[0].Requests != 2 || b.RecordPartials != nil {
		t.Fatalf("correction: %+v", b)
	}

	// Evicted (RetainClosed 1): a record partial of its own.
	a.Add(4, event("t", t0.Add(130*time.Second), 40), time.Minute, c.emit) // closes window 1, evicts window 0
	only("close of window 1")
	a.Add(5, event("t", t0.Add(3*time.Second), 50), time.Minute, c.emit)
	a.Advance(false, c.emit)
	b = only("evicted")
	if b.Partial != nil || b.Series != nil || len(b.RecordPartials) != 1 {
		t.Fatalf("evicted: %+v", b)
	}
	if p := b.RecordPartials[0]; p.Key() != (PartialKey{"t", t0.UnixNano(), time.Minute, 2, 6}) || p.First != 5 || p.Through != 5 || p.Series[0].LatencySumMS != 50 {
		t.Fatalf("record partial %+v", p)
	}

	// Never opened here: the Series start its totals, the partial is the
	// record's own.
	clock.now = t0.Add(8 * time.Minute)
	a.Advance(true, c.emit) // closes window 2
	c.take()
	a.Add(6, event("t", t0.Add(5*time.Minute+time.Second), 60), time.Minute, c.emit)
	a.Advance(false, c.emit)
	b = only("late opened")
	if b.Partial != nil || len(b.Series) != 1 || len(b.RecordPartials) != 1 || b.RecordPartials[0].Late != 7 {
		t.Fatalf("late opened: %+v", b)
	}

	// Too old for Datadog: a log only.
	clock.now = t0.Add(20 * time.Minute)
	a.Add(7, event("t", t0.Add(4*time.Second), 70), time.Minute, c.emit)
	a.Advance(false, c.emit)
	if b = only("too old"); b.Partial != nil || b.RecordPartials != nil {
		t.Fatalf("too old: %+v", b)
	}
	if s := a.Stats(); s.LatePartials != 2 || s.LateTooOld != 1 {
		t.Errorf("Stats %+v", s)
	}

	// After a restart with window 0 delivered: below LateFrom skipped, from
	// it on a record partial each.
	a, clock = newTest(t, Config{Partition: 2, MetricMaxAge: 10 * time.Minute}, Resume{Delivered: t0.Add(2 * time.Minute), LateFrom: 10})
	clock.now = t0.Add(3 * time.Minute)
	if p := a.Add(9, event("t", t0.Add(5*time.Second), 90), time.Minute, c.emit); p != Skipped {
		t.Fatalf("offset 9: %v", p)
	}
	a.Add(10, event("t", t0.Add(6*time.Second), 100), time.Minute, c.emit)
	a.Advance(false, c.emit)
	b = only("replayed")
	if b.Partial != nil || len(b.RecordPartials) != 1 || b.RecordPartials[0].Late != 11 {
		t.Fatalf("replayed: %+v", b)
	}
}

// A partial handed out may be read from another goroutine while the
// Aggregator goes on (run with -race): it shares nothing the Aggregator
// writes later.
func TestPartialsReadConcurrently(t *testing.T) {
	for seed := range uint64(20) {
		sc := genScenario(seed, false)
		clock := &fakeClock{now: sc.start}
		cfg := sc.cfg
		cfg.Clock = clock
		a, err := New(cfg, Resume{LateFrom: -1})
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan *Partial, 1024)
		var wg sync.WaitGroup
		wg.Go(func() {
			for p := range ch {
				if _, err := p.MarshalBinary(); err != nil {
					t.Errorf("seed %d: %v", seed, err)
				}
			}
		})
		emit := func(b Batch) {
			for _, p := range batchPartials(&b) {
				ch <- p
			}
		}
		for _, o := range sc.ops {
			switch o.kind {
			case opAdd:
				r := sc.recs[o.rec]
				a.Add(r.offset, r.ev, r.length, emit)
			case opAdvance, opIdle:
				a.Advance(o.kind == opIdle, emit)
			case opFlush:
				a.Flush(emit)
			case opClock:
				clock.now = o.at
			}
		}
		close(ch)
		wg.Wait()
	}
}
