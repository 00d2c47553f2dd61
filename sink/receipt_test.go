package sink

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/futureagi/prism-exporter/aggregate"
)

func waitReceipt(t *testing.T, ch <-chan Receipt) Receipt {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no receipt")
	}
	return Receipt{}
}

// The receipt is what the sync history shows: it must count what Datadog
// was sent and took, request by request.
func TestReceiptCountsWhatDatadogTook(t *testing.T) {
	dd := newFakeDD(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	hook := failFirst(2, "/api/v2/logs", "", http.StatusTooManyRequests)
	dd.setHook(hook)
	s := newTestSink(t, Config{BaseURL: dd.srv.URL, Clock: func() time.Time { return now }})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA, Backfill: true}})

	// 5 logs, 2 of them older than Datadog keeps; the logs answered 429
	// twice before they went; the series at once.
	logs := append(testEvents(3, now.Add(-time.Minute)), testEvents(2, now.Add(-19*time.Hour))...)
	b := aggregate.Batch{Kind: aggregate.KindLogs, Tenant: "org_a", Window: aggregate.Window{Start: now.Add(-5 * time.Minute), Length: time.Minute},
		Logs: logs, Series: []aggregate.Series{testSeries("m")}}
	r := waitReceipt(t, deliverReceipt(t, s.Sink, b))
	want := Receipt{Outcome: Delivered, Logs: 3, LogsDropped: 2, Points: seriesPerTagSet, Requests: 4, Retries: 2, RateLimited: true, StatusCode: 429}
	if r.Outcome != want.Outcome || r.Logs != want.Logs || r.LogsDropped != want.LogsDropped || r.Points != want.Points ||
		r.Requests != want.Requests || r.Retries != want.Retries || r.RateLimited != want.RateLimited || r.StatusCode != want.StatusCode {
		t.Errorf("receipt %+v, want %+v", r, want)
	}
	if r.Bytes <= 0 || r.Duration <= 0 {
		t.Errorf("bytes %d, duration %v: want both counted", r.Bytes, r.Duration)
	}
	var sent int64
	for _, q := range dd.requests("/api/v2/logs") {
		sent += int64(len(q.body))
	}
	for _, q := range dd.requests("/api/v2/series") {
		sent += int64(len(q.body))
	}
	// On the wire, gzipped: fewer than the bodies the server inflated.
	if r.Bytes >= sent {
		t.Errorf("receipt says %d bytes on the wire, the server inflated %d", r.Bytes, sent)
	}

	// Points too old for Datadog: not sent, and said so.
	old := aggregate.Batch{Kind: aggregate.KindTotals, Tenant: "org_a", Window: aggregate.Window{Start: now.Add(-2 * time.Hour), Length: time.Minute},
		Series: []aggregate.Series{testSeries("m")}}
	r = waitReceipt(t, deliverReceipt(t, s.Sink, old))
	if r.Outcome != Skipped || !r.PointsTooOld || r.PointsDropped != seriesPerTagSet || r.Points != 0 || r.Requests != 0 {
		t.Errorf("too old: %+v", r)
	}
}

// A refused key ends the batch undeliverable, with Datadog's code and an
// error text that names no key.
func TestReceiptOfARefusedKey(t *testing.T) {
	dd := newFakeDD(t)
	dd.setHook(func(r *http.Request, _ []byte, w http.ResponseWriter) int {
		if r.URL.Path == "/api/v1/validate" {
			return 0
		}
		w.WriteHeader(403)
		_, _ = w.Write([]byte(`{"errors":["Forbidden"]}`))
		return 403
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	r := waitReceipt(t, deliverReceipt(t, s.Sink, closeBatch("org_a", time.Now(), 4, testSeries("m"))))
	if r.Outcome != Undeliverable || r.StatusCode != 403 || r.Logs != 0 || r.LogsDropped != 4 || r.Points != 0 || r.PointsDropped != seriesPerTagSet {
		t.Errorf("receipt %+v", r)
	}
	if r.Error == "" || strings.Contains(r.Error, string(keyA)) {
		t.Errorf("error %q: want Datadog's refusal without the key", r.Error)
	}
	// A batch that comes while the tenant is in Error is not sent: its
	// receipt says why all the same.
	waitState(t, s.Sink, "org_a", Error)
	r = waitReceipt(t, deliverReceipt(t, s.Sink, closeBatch("org_a", time.Now(), 2, testSeries("m"))))
	if r.Outcome != Undeliverable || r.Requests != 0 || r.LogsDropped != 2 || !strings.Contains(r.Error, "API key") || r.StatusCode != 403 {
		t.Errorf("receipt while in Error: %+v", r)
	}
}

// A backfill's logs wait behind the live traffic of their tenant: live
// logs queued after them are sent first.
func TestBackfillLogsGoAfterLiveOnes(t *testing.T) {
	dd := newFakeDD(t)
	release := make(chan struct{})
	var first sync.Once
	dd.setHook(func(r *http.Request, _ []byte, w http.ResponseWriter) int {
		if r.URL.Path == "/api/v2/logs" {
			held := false
			first.Do(func() { held = true })
			if held {
				<-release // the first request holds the only worker
			}
		}
		return 0
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL, Concurrency: 1})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	waitState(t, s.Sink, "org_a", Active)
	now := time.Now()
	logs := func(backfill bool, n int) aggregate.Batch {
		evs := testEvents(n, now)
		for i, ev := range evs {
			ev.RequestID = fmt.Sprintf("%v-%d-%d", backfill, n, i)
		}
		return aggregate.Batch{Kind: aggregate.KindLogs, Tenant: "org_a", Logs: evs, Backfill: backfill}
	}
	var chs []<-chan Outcome
	chs = append(chs, deliver(t, s.Sink, logs(false, 1))) // taken at once, held
	time.Sleep(50 * time.Millisecond)
	chs = append(chs, deliver(t, s.Sink, logs(true, 2)), deliver(t, s.Sink, logs(true, 3)), deliver(t, s.Sink, logs(false, 4)))
	close(release)
	for _, ch := range chs {
		if o := wait(t, ch, 10*time.Second); o != Delivered {
			t.Fatal(o)
		}
	}
	var order []int
	for _, q := range dd.requests("/api/v2/logs") {
		order = append(order, strings.Count(string(q.body), `"request_id"`))
	}
	if want := []int{1, 4, 2, 3}; !slices.Equal(order, want) {
		t.Errorf("logs went in batches of %v, want %v: live before backfill", order, want)
	}
}
