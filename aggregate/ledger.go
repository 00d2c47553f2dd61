package aggregate

import "slices"

// Ledger is one partition run's commit rule: which offset may be committed
// so that a replay from it neither loses nor double-counts anything.
//
// A replay starts at the commit point and rebuilds the segments from there
// (see Segmenter), so the point is always a segment boundary: the last cut
// at or below the lowest offset of every batch and dead letter not yet
// accepted. Everything below it is accepted: the logs by Datadog, the
// partials and dead letters by Kafka.
type Ledger struct {
	cuts    []int64 // segment boundaries from the last point on, increasing
	pending map[uint64]int64
	next    uint64

	// mutation lets tests break the rule on purpose, to show that the
	// property tests catch it. Zero in production.
	mutation struct{ ignorePending bool }
}

// NewLedger starts a run at start, the offset it reads first (a commit
// point, or where a new group starts).
func NewLedger(start int64) *Ledger {
	return &Ledger{cuts: []int64{start}, pending: make(map[uint64]int64)}
}

// Sent records a batch (or dead letter) handed on, standing for offsets
// from minOffset on; the token names it to Done.
func (l *Ledger) Sent(minOffset int64) uint64 {
	l.next++
	l.pending[l.next] = minOffset
	return l.next
}

// Done records that the batch tok was accepted.
func (l *Ledger) Done(tok uint64) { delete(l.pending, tok) }

// Cut records a segment boundary: the Segmenter ended a segment before at.
func (l *Ledger) Cut(at int64) {
	if at > l.cuts[len(l.cuts)-1] {
		l.cuts = append(l.cuts, at)
	}
}

// InFlight reports whether any batch or dead letter awaits its answer.
func (l *Ledger) InFlight() bool { return len(l.pending) > 0 }

// Point is the commit point: the last cut at or below every pending
// batch's lowest offset.
func (l *Ledger) Point() int64 {
	last := len(l.cuts) - 1
	if len(l.pending) == 0 || l.mutation.ignorePending {
		l.cuts = append(l.cuts[:0], l.cuts[last])
		return l.cuts[0]
	}
	low := int64(-1)
	for _, o := range l.pending {
		if low < 0 || o < low {
			low = o
		}
	}
	// The cuts are few between commits: a scan is cheaper than a search.
	i := 0
	for i < last && l.cuts[i+1] <= low {
		i++
	}
	l.cuts = slices.Delete(l.cuts, 0, i)
	return l.cuts[0]
}
