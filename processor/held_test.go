package processor

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/futureagi/prism-exporter/aggregate"
	"github.com/futureagi/prism-exporter/history"
	"github.com/futureagi/prism-exporter/schemas"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// heldPipeline is a partition pipeline without Kafka: its batches go to
// rec, its partials stay queued in its writer.
func heldPipeline(t *testing.T, now time.Time, logs func(string, aggregate.LogSpan, aggregate.Delivery, bool)) (*partition, *recordingDeliverer) {
	t.Helper()
	b := &budget{limit: 1 << 30}
	rec := &recordingDeliverer{}
	p := &Processor{deps: Deps{Deliverer: rec}, metrics: newMetrics(prometheus.NewRegistry(), b), budget: b, clock: fixedClock{now}}
	seg, err := aggregate.NewSegmenter(aggregate.Config{Partition: 0, ChunkSize: 2, Clock: fixedClock{now}})
	if err != nil {
		t.Fatal(err)
	}
	pt := &partition{p: p, seg: seg, ledger: aggregate.NewLedger(0), answers: make(chan answer, 64), exited: make(chan struct{}),
		log: zap.NewNop(), segs: []*heldSegment{{}}, spec: pipeline{end: -1, logs: logs}}
	pt.out = newPartialWriter(nil, p.metrics, zap.NewNop())
	return pt, rec
}

// answerAll answers every delivery made so far as r makes it, and hands the
// answers to the pipeline.
func answerAll(pt *partition, rec *recordingDeliverer, r func(b aggregate.Batch) Receipt) {
	calls := rec.calls
	rec.calls = nil
	for _, c := range calls {
		c.done(r(c.b))
	}
	for len(pt.answers) > 0 {
		pt.answered(<-pt.answers)
	}
}

// A segment's partials wait for its logs' answers and carry, per window,
// what became of the window's logs: what Datadog dropped goes to the oldest
// window, the requests to the first.
func TestPartialsCarryTheirWindowsLogs(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	type heard struct {
		w     aggregate.Window
		d     aggregate.Delivery
		share bool
	}
	var got []heard
	pt, rec := heldPipeline(t, now, func(_ string, sp aggregate.LogSpan, d aggregate.Delivery, share bool) {
		got = append(got, heard{sp.Window, d, share})
	})
	w1, w2 := now.Add(-10*time.Minute), now.Add(-9*time.Minute)
	old := now.Add(-3 * time.Hour) // too old for points: logs only
	add := func(off int64, at time.Time) {
		pt.seg.Add(off, &schemas.Event{OrgID: "org", RequestID: "r", Timestamp: at}, time.Minute, pt.emit)
		pt.next = off + 1
	}
	add(0, w1.Add(time.Second))
	add(1, w2.Add(time.Second)) // chunk of 2: one log in each window
	add(2, w2.Add(2*time.Second))
	add(3, old)
	pt.cut() // the rest of the logs, then the segment's partials
	if n := len(pt.out.take(nil)); n != 0 {
		t.Fatalf("%d partial writes before the logs were answered", n)
	}
	answerAll(pt, rec, func(b aggregate.Batch) Receipt {
		if b.Kind != aggregate.KindLogs {
			t.Fatalf("a %v batch went to the sink", b.Kind)
		}
		if b.MinOffset == 0 {
			// The chunk of w1 and w2: one dropped, three requests.
			return Receipt{Accepted: true, Delivery: aggregate.Delivery{Logs: 1, LogsDropped: 1, Requests: 3, Retries: 2, RateLimited: 2, Status: 429}}
		}
		return Receipt{Accepted: true, Delivery: aggregate.Delivery{Logs: int64(len(b.Logs)), Requests: 1}}
	})
	outs := pt.out.take(nil)
	if len(outs) != 1 {
		t.Fatalf("%d partial writes after the answers, want 1", len(outs))
	}
	by := map[time.Time]aggregate.Delivery{}
	for _, p := range outs[0].parts {
		by[p.Window.Start] = p.Delivery
	}
	if d := by[w1]; d.Logs != 0 || d.LogsDropped != 1 || d.Requests != 3 || d.Retries != 2 || d.Status != 429 {
		t.Errorf("w1 (oldest of the chunk): %+v, want the drop and the requests", d)
	}
	if d := by[w2]; d.Logs != 2 || d.LogsDropped != 0 || d.Requests != 0 {
		t.Errorf("w2: %+v, want its 2 logs and no request (each chunk's went to its oldest window)", d)
	}
	shares, logsOnly := 0, 0
	for _, h := range got {
		if h.share {
			shares++
			continue
		}
		logsOnly++
		if !h.w.Start.Equal(old.Truncate(time.Minute)) || h.d.Logs != 1 || h.d.Requests != 1 {
			t.Errorf("logs-only window %v: %+v", h.w.Start, h.d)
		}
	}
	if shares != 2 || logsOnly != 1 {
		t.Errorf("heard %d windows with shares and %d without, want 2 and 1", shares, logsOnly)
	}

	// A segment whose logs are abandoned holds its partials: the run ends
	// and the next replays it.
	add(4, w2.Add(3*time.Second))
	pt.cut()
	answerAll(pt, rec, func(aggregate.Batch) Receipt { return Receipt{} })
	if n := len(pt.out.take(nil)); n != 0 {
		t.Errorf("%d partial writes after abandoned logs", n)
	}
}

// A window's outcome, from what became of its logs and points.
func TestOutcomeOfAWindow(t *testing.T) {
	for _, c := range []struct {
		name          string
		d             aggregate.Delivery
		pointsDropped int64
		tooOld        bool
		want          history.Outcome
	}{
		{"all went", aggregate.Delivery{Logs: 5}, 0, false, history.Success},
		{"after 429s", aggregate.Delivery{Logs: 5, RateLimited: 2, Status: 429}, 0, false, history.RateLimited},
		{"points too old, logs went", aggregate.Delivery{Logs: 5}, 13, true, history.TooOld},
		{"points and logs too old", aggregate.Delivery{LogsDropped: 5}, 13, true, history.TooOld},
		{"key refused", aggregate.Delivery{LogsDropped: 5, Status: 403}, 13, false, history.Failed},
		{"some logs refused", aggregate.Delivery{Logs: 4, LogsDropped: 1, Status: 400}, 0, false, history.Partial},
		{"points too old, a log refused", aggregate.Delivery{Logs: 4, LogsDropped: 1, Status: 400}, 13, true, history.Partial},
	} {
		if got := outcomeOf(c.d, c.pointsDropped, c.tooOld); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
