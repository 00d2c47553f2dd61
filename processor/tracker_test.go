package processor

import (
	"testing"
	"time"

	"github.com/futureagi/prism-exporter/aggregate"
)

func batch(kind aggregate.Kind, tenant string, startSec, lengthSec int64, minOffset int64) aggregate.Batch {
	return aggregate.Batch{
		Kind:      kind,
		Tenant:    tenant,
		Window:    aggregate.Window{Start: time.Unix(startSec, 0), Length: time.Duration(lengthSec) * time.Second},
		MinOffset: minOffset,
	}
}

func TestCommitPointHoldsOutOfOrderAcknowledgements(t *testing.T) {
	tr := newTracker(0)
	tr.next = 100
	// Tenant a's window [0,10) holds offsets 0..; tenant b's [0,60) from 5.
	a := batch(aggregate.KindClose, "a", 0, 10, 0)
	b := batch(aggregate.KindClose, "b", 0, 60, 5)
	ta := tr.sent(&a)
	tb := tr.sent(&b)
	frontier := time.Unix(60, 0)

	c, m := tr.commitPoint(frontier, 0, false)
	if c != 0 {
		t.Fatalf("nothing answered: commit %d, want 0", c)
	}
	if want := time.Unix(10, 0).Add(-1); !m.delivered.Equal(want) {
		t.Fatalf("delivered frontier %v, want just before a's end %v", m.delivered, want)
	}

	// b (end 60) answered first: a (end 10) is still pending, so b must keep
	// holding the commit, or a replay would rebuild part of b.
	tr.answered(tb)
	c, _ = tr.commitPoint(frontier, 0, false)
	if c != 0 {
		t.Fatalf("b answered out of order: commit %d, want 0 (a pending)", c)
	}
	tr.answered(ta)
	c, m = tr.commitPoint(frontier, 0, false)
	if c != 100 {
		t.Fatalf("all answered: commit %d, want 100", c)
	}
	if !m.delivered.Equal(frontier) || m.lateFrom != 100 {
		t.Fatalf("metadata %+v, want delivered=%v late=100 (the next offset to fetch)", m, frontier)
	}
	if len(tr.windows) != 0 {
		t.Fatalf("tracker kept %d finished windows", len(tr.windows))
	}
}

func TestCommitPointOpenWindowsLateAndDeadLetters(t *testing.T) {
	tr := newTracker(0)
	tr.next = 50
	logs := batch(aggregate.KindLogs, "a", 0, 60, 3)
	tl := tr.sent(&logs)
	tr.answered(tl)
	// The open window's first offset is held by the aggregator.
	if c, _ := tr.commitPoint(time.Unix(30, 0), 3, true); c != 3 {
		t.Fatalf("open window from 3: commit %d", c)
	}
	late := batch(aggregate.KindLate, "a", 0, 10, 7)
	tlate := tr.sent(&late)
	tr.deadLetterPending(9)
	c, m := tr.commitPoint(time.Unix(30, 0), 0, false)
	if c != 7 || m.lateFrom != 7 {
		t.Fatalf("late batch at 7 pending: commit %d late %d, want 7 and 7", c, m.lateFrom)
	}
	tr.answered(tlate)
	if c, _ = tr.commitPoint(time.Unix(30, 0), 0, false); c != 9 {
		t.Fatalf("dead letter at 9 pending: commit %d", c)
	}
	tr.deadLetterDone(9)
	if c, _ = tr.commitPoint(time.Unix(30, 0), 0, false); c != 50 {
		t.Fatalf("nothing pending: commit %d, want 50", c)
	}
}

func TestResumeMetaRoundTrip(t *testing.T) {
	for _, m := range []resumeMeta{
		{lateFrom: -1},
		{delivered: time.Unix(1700000000, 123).UTC(), lateFrom: 42},
	} {
		got, err := parseResumeMeta(m.String())
		if err != nil {
			t.Fatal(err)
		}
		if !got.delivered.Equal(m.delivered) || got.lateFrom != m.lateFrom {
			t.Fatalf("round trip %+v -> %q -> %+v", m, m.String(), got)
		}
	}
	if m, err := parseResumeMeta(""); err != nil || !m.delivered.IsZero() || m.lateFrom != -1 {
		t.Fatalf("empty metadata: %+v %v", m, err)
	}
	for _, bad := range []string{"x", "v1 d=1", "v2 d=1 l=2", "v1 d=x l=1", "v1 d=1 l=y"} {
		if _, err := parseResumeMeta(bad); err == nil {
			t.Errorf("parseResumeMeta(%q) accepted", bad)
		}
	}
}

// FuzzParseResumeMeta: commit metadata is read from the broker, where any
// tool may have written anything. It never panics; what it accepts is a
// valid resume point and reads back the same once written.
func FuzzParseResumeMeta(f *testing.F) {
	for _, s := range []string{"", "v1 d=0 l=-1", "v1 d=1748783310000000000 l=42", "v1 d=x l=1", "v2 d=1 l=1", "v1  d=1\tl=2", "v1 d=-5 l=-7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseResumeMeta(s)
		if err != nil {
			return
		}
		if m.lateFrom < -1 {
			t.Fatalf("%q: late offset %d accepted", s, m.lateFrom)
		}
		back, err := parseResumeMeta(m.String())
		if err != nil || back != m {
			t.Fatalf("%q -> %q -> %+v, %v; want %+v", s, m.String(), back, err, m)
		}
	})
}
