package aggregate

import (
	"testing"
	"time"
)

// The commit point is a segment boundary at or below every pending batch,
// never a batch's own offset inside a segment.
func TestLedgerCommitsAtBoundaries(t *testing.T) {
	l := NewLedger(100)
	a := l.Sent(100) // logs of 100..
	l.Cut(150)
	b := l.Sent(120) // the segment [100, 150)'s partials
	c := l.Sent(160) // logs of the next segment
	l.Cut(200)
	if p := l.Point(); p != 100 {
		t.Fatalf("Point = %d with [100, 150) pending, want 100", p)
	}
	l.Done(a)
	l.Done(b)
	if p := l.Point(); p != 150 {
		t.Fatalf("Point = %d with only 160 pending, want the boundary 150 below it", p)
	}
	l.Done(c)
	if p := l.Point(); p != 200 || l.InFlight() {
		t.Fatalf("Point = %d with nothing pending, want the last cut 200", p)
	}
	l.Cut(190) // not past the last cut: ignored
	if p := l.Point(); p != 200 {
		t.Fatalf("Point = %d after a cut behind the last, want 200", p)
	}
}

func TestSegmenterCutsAndChunks(t *testing.T) {
	clock := &fakeClock{now: t0.Add(time.Minute)}
	s, err := NewSegmenter(Config{Partition: 2, ChunkSize: 2, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	var got []Batch
	emit := func(b Batch) { got = append(got, b) }
	if _, ok := s.Start(); ok || !s.Empty() {
		t.Fatal("a new Segmenter has a segment")
	}
	s.Add(10, event("a", t0, 5), time.Minute, emit)
	s.Add(11, event("a", t0.Add(time.Second), 6), time.Minute, emit) // a full chunk of 2
	s.Add(12, event("b", t0, 7), time.Minute, emit)
	if p := s.Add(13, event("b", t0.Add(-2*time.Hour), 8), time.Minute, emit); p != TooOld {
		t.Fatalf("a record two hours old placed %v", p)
	}
	if len(got) != 2 || got[0].Tenant != "a" || got[0].MinOffset != 10 || got[1].Tenant != "b" || got[1].MinOffset != 12 {
		t.Fatalf("before the cut, want the two full chunks: %+v", got)
	}
	got = nil
	s.Add(14, event("b", t0, 9), time.Minute, emit)
	if start, ok := s.Start(); !ok || start != 10 {
		t.Fatalf("Start = %d, %v", start, ok)
	}
	got = nil
	s.Cut(15, 9, emit)
	if len(got) != 2 || got[0].Kind != KindLogs || got[0].MinOffset != 14 || len(got[0].Logs) != 1 || got[1].Kind != KindSegment {
		t.Fatalf("the cut: %+v", got)
	}
	parts := got[1].Partials
	if got[1].MinOffset != 10 || len(parts) != 2 || parts[0].Tenant != "a" || parts[1].Tenant != "b" {
		t.Fatalf("partials %+v", parts)
	}
	for _, p := range parts {
		if p.Segment != 10 || p.First != 10 || p.Through != 14 || p.Committed != 9 || p.Source != 2 {
			t.Errorf("partial %+v", p)
		}
	}
	if parts[0].Series[0].Requests != 2 || parts[1].Series[0].Requests != 2 {
		t.Errorf("requests %d and %d, want 2 and 2 (the old record has no metric)", parts[0].Series[0].Requests, parts[1].Series[0].Requests)
	}
	if start, _ := s.Start(); start != 15 || !s.Empty() {
		t.Fatalf("after the cut: start %d, empty %v", start, s.Empty())
	}
	got = nil
	s.Cut(20, 14, emit) // an empty segment hands on nothing
	if len(got) != 0 {
		t.Fatalf("an empty cut emitted %+v", got)
	}
}
