package processor

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/futureagi/prism-exporter/aggregate"
)

// TestCommitPointProperties drives the tracker with random streams shaped like
// the aggregator's output (windows of several lengths, chunks, late records,
// dead letters, answers in any order) and checks, at random moments, that the
// commit it proposes is safe to resume from by the rules of docs/design.md:
//
//  1. every record below C is fully handled;
//  2. every window ending at or before D is closed and fully answered;
//  3. every window ending after D has all its records at or above C, so a
//     replay rebuilds it whole;
//  4. every unanswered late record is at or above L, and L <= the next offset.
func TestCommitPointProperties(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		commitPointRun(t, seed)
		if t.Failed() {
			t.Fatalf("seed %d", seed)
		}
	}
}

type simWindow struct {
	key      windowKey
	end      int64 // seconds
	offsets  []int64
	closed   bool
	pending  int // batches not answered
	answered bool
}

type simBatch struct {
	tok     ackToken
	win     *simWindow
	late    []int64
	dead    int64
	isDead  bool
	settled bool
}

func commitPointRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	lengths := map[string]int64{"a": 2, "b": 5, "c": 11}
	tenants := []string{"a", "b", "c"}
	lateness := int64(rng.IntN(3))
	tr := newTracker(0)
	windows := map[windowKey]*simWindow{}
	handled := map[int64]bool{} // offset -> fully handled
	lateUnanswered := map[int64]bool{}
	var inflight []*simBatch
	var maxTS, frontier int64
	offset := int64(0)

	closeUpTo := func(f int64) {
		for _, w := range windows {
			if !w.closed && w.end <= f {
				w.closed = true
				b := aggregate.Batch{Kind: aggregate.KindClose, Tenant: w.key.tenant,
					Window:    aggregate.Window{Start: time.Unix(0, w.key.start), Length: w.key.length},
					MinOffset: minOf(w.offsets)}
				w.pending++
				inflight = append(inflight, &simBatch{tok: tr.sent(&b), win: w})
			}
		}
	}
	answer := func(b *simBatch) {
		b.settled = true
		switch {
		case b.isDead:
			tr.deadLetterDone(b.dead)
			handled[b.dead] = true
		case b.win != nil:
			tr.answered(b.tok)
			b.win.pending--
			if b.win.closed && b.win.pending == 0 {
				for _, o := range b.win.offsets {
					handled[o] = true
				}
			}
		default:
			tr.answered(b.tok)
			for _, o := range b.late {
				handled[o] = true
				delete(lateUnanswered, o)
			}
		}
	}

	steps := 200 + rng.IntN(400)
	for step := 0; step < steps; step++ {
		switch r := rng.IntN(10); {
		case r < 6: // a record
			o := offset
			offset++
			tr.next = offset
			if rng.IntN(25) == 0 {
				tr.deadLetterPending(o)
				inflight = append(inflight, &simBatch{isDead: true, dead: o})
				continue
			}
			tenant := tenants[rng.IntN(len(tenants))]
			ts := maxTS - int64(rng.IntN(6)) + int64(rng.IntN(4))
			if ts < 0 {
				ts = 0
			}
			length := lengths[tenant]
			start := ts / length * length
			end := start + length
			if end <= frontier { // late: its own batch
				b := aggregate.Batch{Kind: aggregate.KindLate, Tenant: tenant,
					Window: aggregate.Window{Start: time.Unix(start, 0), Length: time.Duration(length) * time.Second}, MinOffset: o}
				lateUnanswered[o] = true
				inflight = append(inflight, &simBatch{tok: tr.sent(&b), late: []int64{o}})
				continue
			}
			k := windowKey{tenant: tenant, start: time.Unix(start, 0).UnixNano(), length: time.Duration(length) * time.Second}
			w := windows[k]
			if w == nil {
				w = &simWindow{key: k, end: end}
				windows[k] = w
			}
			w.offsets = append(w.offsets, o)
			if ts > maxTS {
				maxTS = ts
			}
			if f := maxTS - lateness; f > frontier {
				frontier = f
				closeUpTo(frontier)
			}
			if rng.IntN(8) == 0 { // an early chunk of the open window's logs
				b := aggregate.Batch{Kind: aggregate.KindLogs, Tenant: tenant,
					Window: aggregate.Window{Start: time.Unix(start, 0), Length: time.Duration(length) * time.Second}, MinOffset: o}
				w.pending++
				inflight = append(inflight, &simBatch{tok: tr.sent(&b), win: w})
			}
		case r < 9: // answers, in any order
			for n := rng.IntN(4); n > 0 && len(inflight) > 0; n-- {
				i := rng.IntN(len(inflight))
				answer(inflight[i])
				inflight = append(inflight[:i], inflight[i+1:]...)
			}
		default: // the wall clock moves the frontier of a quiet partition
			frontier += int64(rng.IntN(4))
			closeUpTo(frontier)
		}

		// The aggregator's view: the lowest offset of an open window.
		held, holding := int64(0), false
		for _, w := range windows {
			if !w.closed {
				if m := minOf(w.offsets); !holding || m < held {
					held, holding = m, true
				}
			}
		}
		c, meta := tr.commitPoint(time.Unix(frontier, 0), held, holding)
		d := meta.delivered.Unix()
		if meta.delivered.IsZero() {
			d = -1 << 62
		}
		for o := int64(0); o < c; o++ {
			if !handled[o] {
				t.Errorf("step %d: commit %d passes offset %d, which is not handled", step, c, o)
				return
			}
		}
		for _, w := range windows {
			if w.end <= d && (!w.closed || w.pending > 0) {
				t.Errorf("step %d: delivered frontier %d covers window %+v that is not delivered", step, d, w.key)
				return
			}
			if w.end > d && minOf(w.offsets) < c {
				t.Errorf("step %d: window %+v ends after D=%d but starts at %d below C=%d: a replay would rebuild part of it",
					step, w.key, d, minOf(w.offsets), c)
				return
			}
		}
		for o := range lateUnanswered {
			if o < meta.lateFrom {
				t.Errorf("step %d: unanswered late record %d below L=%d would be skipped on replay", step, o, meta.lateFrom)
				return
			}
		}
		if meta.lateFrom > tr.next {
			t.Errorf("step %d: L=%d beyond the next offset %d", step, meta.lateFrom, tr.next)
			return
		}
	}
}

func minOf(xs []int64) int64 {
	m := xs[0]
	for _, x := range xs[1:] {
		if x < m {
			m = x
		}
	}
	return m
}
