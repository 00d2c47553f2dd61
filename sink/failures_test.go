package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/futureagi/prism-exporter/aggregate"
)

func counterValue(t *testing.T, ts *testSink, name string, labels ...string) float64 {
	t.Helper()
	switch name {
	case "retries":
		return testutil.ToFloat64(ts.m.retries.WithLabelValues(labels...))
	case "dead_lettered":
		return testutil.ToFloat64(ts.m.deadLettered.WithLabelValues(labels...))
	case "dropped":
		return testutil.ToFloat64(ts.m.droppedOld.WithLabelValues(labels...))
	case "tenants":
		return testutil.ToFloat64(ts.m.tenants.WithLabelValues(labels...))
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// failFirst answers status to the first n requests on path for key (any
// key when empty), with extra headers.
func failFirst(n int, path, key string, status int, headers ...string) func(*http.Request, []byte, http.ResponseWriter) int {
	var left atomic.Int64
	left.Store(int64(n))
	return func(r *http.Request, _ []byte, w http.ResponseWriter) int {
		if r.URL.Path != path || (key != "" && r.Header.Get("DD-API-KEY") != key) || left.Add(-1) < 0 {
			return 0
		}
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, `{"errors":["try again later"]}`)
		return status
	}
}

func TestRetriedAnswersLoseNothing(t *testing.T) {
	for _, c := range []struct {
		status int
		reason string
	}{{408, "status_408"}, {429, "status_429"}, {500, "status_5xx"}, {502, "status_5xx"}, {503, "status_5xx"}} {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			dd := newFakeDD(t)
			logsHook := failFirst(3, "/api/v2/logs", "", c.status)
			seriesHook := failFirst(3, "/api/v2/series", "", c.status)
			dd.setHook(func(r *http.Request, b []byte, w http.ResponseWriter) int {
				if code := logsHook(r, b, w); code != 0 {
					return code
				}
				return seriesHook(r, b, w)
			})
			s := newTestSink(t, Config{BaseURL: dd.srv.URL})
			s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
			if o := wait(t, deliver(t, s.Sink, closeBatch("org_a", time.Now(), 10, testSeries("m"))), 10*time.Second); o != Delivered {
				t.Fatal(o)
			}
			if ids := dd.acceptedLogs(t, keyA); len(ids) != 10 {
				t.Errorf("%d logs accepted, want 10", len(ids))
			}
			if got := counterValue(t, s, "retries", c.reason); got != 6 {
				t.Errorf("retries{%s} = %v, want 6", c.reason, got)
			}
		})
	}
}

func TestTimeoutAndConnectionErrorsRetried(t *testing.T) {
	dd := newFakeDD(t)
	var n atomic.Int64
	dd.setHook(func(r *http.Request, _ []byte, w http.ResponseWriter) int {
		if r.URL.Path != "/api/v2/logs" {
			return 0
		}
		switch n.Add(1) {
		case 1: // slower than HTTPTimeout
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return 599
		case 2, 3: // connection dropped without an answer
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return 598
		}
		return 0
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL, HTTPTimeout: 200 * time.Millisecond})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	if o := wait(t, deliver(t, s.Sink, closeBatch("org_a", time.Now(), 5)), 10*time.Second); o != Delivered {
		t.Fatal(o)
	}
	if ids := dd.acceptedLogs(t, keyA); len(ids) != 5 {
		t.Errorf("%d logs accepted", len(ids))
	}
	if counterValue(t, s, "retries", "timeout") != 1 || counterValue(t, s, "retries", "connection") != 2 {
		t.Errorf("retries: timeout %v, connection %v", counterValue(t, s, "retries", "timeout"), counterValue(t, s, "retries", "connection"))
	}
}

// TestServerWaitHonoured checks the waits asked for, with the sink's sleep
// replaced: no test waits for real.
func TestServerWaitHonoured(t *testing.T) {
	dd := newFakeDD(t)
	var n atomic.Int64
	dd.setHook(func(r *http.Request, _ []byte, w http.ResponseWriter) int {
		if r.URL.Path != "/api/v2/logs" {
			return 0
		}
		switch n.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "7")
		case 2:
			w.Header().Set("X-RateLimit-Reset", "11")
		case 3:
			w.Header().Set("Retry-After", time.Now().Add(30*time.Second).UTC().Format(http.TimeFormat))
		case 4:
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(503)
			return 503
		default:
			return 0
		}
		w.WriteHeader(429)
		return 429
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL, MaxBackoff: time.Second})
	// A fake monotonic clock that the fake sleep moves forward.
	var mu sync.Mutex
	var waits []time.Duration
	clock := time.Now()
	s.mono = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	}
	s.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		clock = clock.Add(d)
		mu.Unlock()
		return ctx.Err()
	}
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	if o := wait(t, deliver(t, s.Sink, closeBatch("org_a", time.Now(), 1)), 10*time.Second); o != Delivered {
		t.Fatal(o)
	}
	mu.Lock()
	defer mu.Unlock()
	mins := []time.Duration{7 * time.Second, 11 * time.Second, 28 * time.Second, 3 * time.Second}
	if len(waits) != len(mins) {
		t.Fatalf("waits %v, want %d", waits, len(mins))
	}
	for i, m := range mins {
		// (the HTTP date is a whole second, read against the real clock)
		if waits[i] < m-time.Second || waits[i] > m+2*time.Second {
			t.Errorf("wait %d = %v, want at least %v (and not much more: MaxBackoff is 1s)", i, waits[i], m)
		}
	}
}

func TestBadRequestIsolatesAndDeadLetters(t *testing.T) {
	dd := newFakeDD(t)
	bad := []string{"req_00000003", "req_00000011", "req_00000012"}
	dd.setHook(func(r *http.Request, body []byte, w http.ResponseWriter) int {
		refuse := false
		switch r.URL.Path {
		case "/api/v2/logs":
			for _, id := range bad {
				refuse = refuse || strings.Contains(string(body), `"request_id":"`+id+`"`)
			}
		case "/api/v2/series":
			refuse = strings.Contains(string(body), "model:bad")
		}
		if !refuse {
			return 0
		}
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"errors":["invalid attribute"]}`))
		return 400
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	b := closeBatch("org_a", time.Now(), 40, testSeries("good"), testSeries("bad"))
	if o := wait(t, deliver(t, s.Sink, b), 10*time.Second); o != Delivered {
		t.Fatal(o)
	}
	ids := dd.acceptedLogs(t, keyA)
	if len(ids) != 37 {
		t.Errorf("%d logs accepted, want 37", len(ids))
	}
	seen := map[string]int{}
	for _, id := range ids {
		seen[id]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s accepted %d times", id, n)
		}
	}
	var deadLogs, deadSeries []string
	for _, d := range s.dl.all() {
		if d.tenant != "org_a" || !strings.Contains(d.reason, "400") || !strings.Contains(d.reason, "invalid attribute") {
			t.Errorf("dead letter %s: %q", d.tenant, d.reason)
		}
		var m map[string]any
		if err := json.Unmarshal(d.item, &m); err != nil {
			t.Fatalf("dead-lettered item is not JSON: %v", err)
		}
		if id, ok := m["request_id"]; ok {
			deadLogs = append(deadLogs, id.(string))
		} else {
			deadSeries = append(deadSeries, fmt.Sprint(m["metric"]))
			if !strings.Contains(fmt.Sprint(m["tags"]), "model:bad") {
				t.Errorf("good series dead-lettered: %v", m)
			}
		}
	}
	if strings.Join(deadLogs, ",") != strings.Join(bad, ",") {
		t.Errorf("dead-lettered logs %v, want %v", deadLogs, bad)
	}
	if len(deadSeries) != seriesPerTagSet {
		t.Errorf("%d series dead-lettered, want %d", len(deadSeries), seriesPerTagSet)
	}
	if got := counterValue(t, s, "dead_lettered", kindLogs, dlBadRequest); got != 3 {
		t.Errorf("dead_lettered{logs,bad_request} = %v", got)
	}
	if st := s.TenantStatus()[0]; st.DeadLettered != 3+seriesPerTagSet || st.State != Active {
		t.Errorf("status %+v", st)
	}
}

func TestTooLargeSplitsTrimsAndDeadLetters(t *testing.T) {
	dd := newFakeDD(t)
	dd.setHook(func(r *http.Request, body []byte, w http.ResponseWriter) int {
		if r.URL.Path != "/api/v2/logs" {
			return 0
		}
		var items []json.RawMessage
		_ = json.Unmarshal(body, &items)
		// A stricter intake than Datadog's: 120 items or 300 KB, and one
		// log it never takes.
		if len(items) > 120 || len(body) > 500_000 || strings.Contains(string(body), `"request_id":"req_00000042"`) {
			w.WriteHeader(413)
			return 413
		}
		return 0
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	b := closeBatch("org_a", time.Now(), 500)
	b.Logs[7].StatusCode, b.Logs[7].ErrorMessage = 500, strings.Repeat("x", 400_000) // trimmed to fit
	if o := wait(t, deliver(t, s.Sink, b), 10*time.Second); o != Delivered {
		t.Fatal(o)
	}
	ids := dd.acceptedLogs(t, keyA)
	if len(ids) != 499 {
		t.Errorf("%d accepted, want 499", len(ids))
	}
	dead := s.dl.all()
	if len(dead) != 1 || !strings.Contains(string(dead[0].item), `"request_id":"req_00000042"`) || !strings.HasPrefix(dead[0].reason, reasonTooLarge) {
		for _, d := range dead {
			t.Errorf("dead letter %q: %.200s", d.reason, d.item)
		}
	}
	if counterValue(t, s, "retries", "status_413") == 0 || testutil.ToFloat64(s.m.trimmed) != 1 {
		t.Errorf("413 splits %v, trimmed %v", counterValue(t, s, "retries", "status_413"), testutil.ToFloat64(s.m.trimmed))
	}
	var trimmed map[string]any
	for _, r := range dd.requests("/api/v2/logs") {
		if r.code == 202 && strings.Contains(string(r.body), `"request_id":"req_00000007"`) {
			var items []map[string]any
			_ = json.Unmarshal(r.body, &items)
			trimmed = items[0]
		}
	}
	if trimmed == nil || !strings.HasSuffix(fmt.Sprint(trimmed["error_message"]), truncatedMark) {
		t.Errorf("log 7 not delivered trimmed")
	}
}

func TestKeyRejectedDuringDelivery(t *testing.T) {
	dd := newFakeDD(t)
	release := make(chan struct{})
	dd.setHook(func(r *http.Request, _ []byte, w http.ResponseWriter) int {
		if r.Header.Get("DD-API-KEY") != keyA || r.URL.Path == "/api/v1/validate" {
			return 0
		}
		select { // hold org_a's first requests until its queue has filled
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(403)
		_, _ = w.Write([]byte(`{"errors":["Forbidden"]}`))
		return 403
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	s.SetTenants(twoTenants())
	now := time.Now()
	var as []<-chan Outcome
	for i := 0; i < 6; i++ {
		as = append(as, deliver(t, s.Sink, closeBatch("org_a", now, 5, testSeries("m"))))
	}
	waitState(t, s.Sink, "org_a", Syncing)
	var bs []<-chan Outcome
	for i := 0; i < 6; i++ {
		bs = append(bs, deliver(t, s.Sink, closeBatch("org_b", now, 5, testSeries("m"))))
	}
	for _, ch := range bs {
		if o := wait(t, ch, 5*time.Second); o != Delivered {
			t.Fatalf("org_b: %v while org_a is stuck", o)
		}
	}
	close(release)
	for _, ch := range as {
		if o := wait(t, ch, 5*time.Second); o != Undeliverable {
			t.Errorf("org_a: %v, want undeliverable", o)
		}
	}
	st := waitState(t, s.Sink, "org_a", Error)
	want := "Datadog rejected the API key: check the API key and the site (datadoghq.com)"
	if st.LastError != want || st.Failed != 6 {
		t.Errorf("status %+v", st)
	}
	// New batches for a tenant in Error complete at once, without a request.
	before := len(dd.requests(""))
	if o := wait(t, deliver(t, s.Sink, closeBatch("org_a", now, 5)), time.Second); o != Undeliverable {
		t.Errorf("after Error: %v", o)
	}
	if len(dd.requests("")) != before {
		t.Errorf("a request was made for a tenant in Error")
	}
	if o := wait(t, deliver(t, s.Sink, closeBatch("org_b", now, 5)), 5*time.Second); o != Delivered {
		t.Errorf("org_b after org_a's error: %v", o)
	}
	if counterValue(t, s, "tenants", "error") != 1 || counterValue(t, s, "tenants", "active") != 1 {
		t.Errorf("tenant gauge: error %v active %v", counterValue(t, s, "tenants", "error"), counterValue(t, s, "tenants", "active"))
	}
	for _, k := range []string{keyA, keyB} {
		if strings.Contains(s.allLogText(), k) {
			t.Errorf("a key is in the logs")
		}
	}
}

func TestValidation(t *testing.T) {
	dd := newFakeDD(t)
	var validateFails atomic.Int64
	validateFails.Store(3)
	dd.setHook(func(r *http.Request, _ []byte, w http.ResponseWriter) int {
		key := r.Header.Get("DD-API-KEY")
		switch {
		case r.URL.Path == "/api/v1/validate" && key == "revoked":
			w.WriteHeader(403)
			_, _ = w.Write([]byte("<html>Forbidden</html>")) // Datadog sometimes answers HTML
			return 403
		case r.URL.Path == "/api/v2/validate_keys" && r.Header.Get("DD-APPLICATION-KEY") == "bad-app-key":
			w.WriteHeader(403)
			_, _ = w.Write([]byte(`{"errors":["Forbidden"]}`))
			return 403
		case r.URL.Path == "/api/v1/validate" && key == keyB && validateFails.Add(-1) >= 0:
			w.WriteHeader(503)
			return 503
		}
		return 0
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	s.SetTenants([]Tenant{
		{ID: "org_revoked", Site: SiteEU1, APIKey: "revoked"},
		{ID: "org_app", Site: SiteUS5, APIKey: keyA, AppKey: "bad-app-key"},
		{ID: "org_flaky", APIKey: keyB},
	})
	st := waitState(t, s.Sink, "org_revoked", Error)
	if st.LastError != "Datadog rejected the API key: check the API key and the site (datadoghq.eu)" {
		t.Errorf("revoked: %q", st.LastError)
	}
	st = waitState(t, s.Sink, "org_app", Error)
	if st.LastError != "Datadog rejected the application key: check the application key and the site (us5.datadoghq.com)" {
		t.Errorf("app key: %q", st.LastError)
	}
	if o := wait(t, deliver(t, s.Sink, closeBatch("org_revoked", time.Now(), 3)), time.Second); o != Undeliverable {
		t.Errorf("revoked: %v", o)
	}
	// org_flaky: 503s keep it Validating and its batches queued, then it
	// validates and delivers them.
	if o := wait(t, deliver(t, s.Sink, closeBatch("org_flaky", time.Now(), 3)), 10*time.Second); o != Delivered {
		t.Errorf("flaky: %v", o)
	}
	if counterValue(t, s, "tenants", "error") != 2 {
		t.Errorf("error gauge %v", counterValue(t, s, "tenants", "error"))
	}

	// A reload that fixes the key brings the tenant back.
	s.SetTenants([]Tenant{
		{ID: "org_revoked", Site: SiteEU1, APIKey: "fixed-key-000000"},
		{ID: "org_app", Site: SiteUS5, APIKey: keyA, AppKey: "bad-app-key"},
		{ID: "org_flaky", APIKey: keyB},
	})
	waitState(t, s.Sink, "org_revoked", Active)
	if st := waitState(t, s.Sink, "org_app", Error); st.Failed != 0 {
		t.Errorf("unchanged tenant touched: %+v", st)
	}
	if o := wait(t, deliver(t, s.Sink, closeBatch("org_revoked", time.Now(), 3)), 5*time.Second); o != Delivered {
		t.Errorf("after fix: %v", o)
	}
}

func TestValidatingQueuesBatches(t *testing.T) {
	dd := newFakeDD(t)
	gate := make(chan struct{})
	dd.setHook(func(r *http.Request, _ []byte, w http.ResponseWriter) int {
		if r.URL.Path == "/api/v1/validate" {
			select {
			case <-gate:
				return 0
			case <-r.Context().Done():
				return 599
			}
		}
		return 0
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL, HTTPTimeout: 30 * time.Second})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	ch := deliver(t, s.Sink, closeBatch("org_a", time.Now(), 3))
	time.Sleep(50 * time.Millisecond)
	if st := s.TenantStatus()[0]; st.State != Validating || st.QueuedBatches != 1 {
		t.Errorf("status %+v", st)
	}
	if s.QueuedBytes() <= 0 {
		t.Errorf("QueuedBytes %d with a batch queued", s.QueuedBytes())
	}
	if len(dd.requests("/api/v2/logs")) != 0 {
		t.Errorf("logs sent before the key was validated")
	}
	close(gate)
	if o := wait(t, ch, 5*time.Second); o != Delivered {
		t.Fatal(o)
	}
}

func TestPauseRemoveSkipQueued(t *testing.T) {
	dd := newFakeDD(t)
	dd.setHook(func(r *http.Request, _ []byte, w http.ResponseWriter) int {
		if r.URL.Path == "/api/v1/validate" { // never validates: batches stay queued
			<-r.Context().Done()
			return 599
		}
		return 0
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	tn := []Tenant{{ID: "org_a", APIKey: keyA}, {ID: "org_b", APIKey: keyB}}
	s.SetTenants(tn)
	now := time.Now()
	a := deliver(t, s.Sink, closeBatch("org_a", now, 3))
	b := deliver(t, s.Sink, closeBatch("org_b", now, 3))
	time.Sleep(20 * time.Millisecond)

	tn[0].Paused = true
	s.SetTenants(tn[:1]) // org_a paused, org_b removed
	if o := wait(t, a, time.Second); o != Skipped {
		t.Errorf("paused: %v", o)
	}
	if o := wait(t, b, time.Second); o != Skipped {
		t.Errorf("removed: %v", o)
	}
	for _, id := range []string{"org_a", "org_b", "org_unknown"} {
		if _, ok := s.Route(id, now); ok {
			t.Errorf("%s routed", id)
		}
		if o := wait(t, deliver(t, s.Sink, closeBatch(id, now, 1)), time.Second); o != Skipped {
			t.Errorf("%s: %v", id, o)
		}
	}
	if st := s.TenantStatus(); len(st) != 1 || st[0].State != Paused {
		t.Errorf("status %+v", st)
	}
	if counterValue(t, s, "tenants", "paused") != 1 || counterValue(t, s, "tenants", "validating") != 0 {
		t.Errorf("gauge paused %v validating %v", counterValue(t, s, "tenants", "paused"), counterValue(t, s, "tenants", "validating"))
	}
	if s.QueuedBytes() != 0 {
		t.Errorf("QueuedBytes %d", s.QueuedBytes())
	}
}

func TestSlowTenantDoesNotStallOthers(t *testing.T) {
	dd := newFakeDD(t)
	release := make(chan struct{})
	var slowSeen atomic.Int64
	dd.setHook(func(r *http.Request, _ []byte, w http.ResponseWriter) int {
		if r.Header.Get("DD-API-KEY") == keyA && r.URL.Path == "/api/v2/logs" {
			slowSeen.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		return 0
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL, Concurrency: 2, HTTPTimeout: 30 * time.Second})
	s.SetTenants(twoTenants())
	now := time.Now()
	var as []<-chan Outcome
	for i := 0; i < 10; i++ {
		as = append(as, deliver(t, s.Sink, closeBatch("org_a", now, 5)))
	}
	for i := 0; i < 30; i++ {
		if o := wait(t, deliver(t, s.Sink, closeBatch("org_b", now, 5)), 5*time.Second); o != Delivered {
			t.Fatalf("org_b: %v", o)
		}
	}
	if n := slowSeen.Load(); n != 2 {
		t.Errorf("org_a has %d requests in flight, want Concurrency=2", n)
	}
	close(release)
	for _, ch := range as {
		if o := wait(t, ch, 5*time.Second); o != Delivered {
			t.Fatal(o)
		}
	}
}

func TestKeyChangeRequeuesInFlight(t *testing.T) {
	dd := newFakeDD(t)
	release := make(chan struct{})
	dd.setHook(func(r *http.Request, _ []byte, w http.ResponseWriter) int {
		if r.Header.Get("DD-API-KEY") == keyA && r.URL.Path == "/api/v2/logs" {
			select { // the old key's request hangs until the key changes, then is refused
			case <-release:
			case <-r.Context().Done():
			}
			w.WriteHeader(403)
			return 403
		}
		return 0
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL, HTTPTimeout: 30 * time.Second})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	ch := deliver(t, s.Sink, closeBatch("org_a", time.Now(), 4))
	waitState(t, s.Sink, "org_a", Syncing)
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyB}})
	close(release)
	if o := wait(t, ch, 5*time.Second); o != Delivered {
		t.Fatalf("%v: a batch in flight during a key rotation must go out with the new key", o)
	}
	if n := len(dd.acceptedLogs(t, keyB)); n != 4 {
		t.Errorf("%d logs with the new key", n)
	}
}

func TestTooOldDataNotSent(t *testing.T) {
	dd := newFakeDD(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	s := newTestSink(t, Config{BaseURL: dd.srv.URL, Clock: func() time.Time { return now }})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA, Backfill: true}})

	batch := func(windowStart time.Time, logsAt time.Time, n int) aggregate.Batch {
		return aggregate.Batch{Kind: aggregate.KindLogs, Tenant: "org_a", Window: aggregate.Window{Start: windowStart, Length: time.Minute},
			Logs: testEvents(n, logsAt), Series: []aggregate.Series{testSeries("m")}}
	}
	// Everything too old: skipped, nothing sent.
	if o := wait(t, deliver(t, s.Sink, batch(now.Add(-2*time.Hour), now.Add(-19*time.Hour), 3)), 5*time.Second); o != Skipped {
		t.Errorf("all too old: %v", o)
	}
	// Window too far in the future, logs too old: skipped.
	if o := wait(t, deliver(t, s.Sink, batch(now.Add(11*time.Minute), now.Add(-19*time.Hour), 2)), 5*time.Second); o != Skipped {
		t.Errorf("future window: %v", o)
	}
	if n := len(dd.requests("/api/v2/logs")) + len(dd.requests("/api/v2/series")); n != 0 {
		t.Errorf("%d requests for data Datadog would drop", n)
	}
	// Logs fine, metrics too old: delivered, logs only.
	if o := wait(t, deliver(t, s.Sink, batch(now.Add(-61*time.Minute), now.Add(-17*time.Hour), 4)), 5*time.Second); o != Delivered {
		t.Errorf("logs ok: %v", o)
	}
	if len(dd.acceptedLogs(t, keyA)) != 4 || len(dd.requests("/api/v2/series")) != 0 {
		t.Errorf("logs %d, series requests %d", len(dd.acceptedLogs(t, keyA)), len(dd.requests("/api/v2/series")))
	}
	// Within the limits: both.
	if o := wait(t, deliver(t, s.Sink, batch(now.Add(-59*time.Minute), now.Add(-time.Minute), 1)), 5*time.Second); o != Delivered {
		t.Errorf("fresh: %v", o)
	}
	if len(dd.requests("/api/v2/series")) != 1 {
		t.Errorf("fresh series not sent")
	}
	if got := counterValue(t, s, "dropped", kindLogs, dropTooOld); got != 5 {
		t.Errorf("dropped logs %v", got)
	}
	if got := counterValue(t, s, "dropped", kindMetrics, dropTooOld); got != 2*seriesPerTagSet {
		t.Errorf("dropped old points %v", got)
	}
	if got := counterValue(t, s, "dropped", kindMetrics, dropFuture); got != seriesPerTagSet {
		t.Errorf("dropped future points %v", got)
	}
}

func TestDeadLettererFailureRetried(t *testing.T) {
	dd := newFakeDD(t)
	dd.setHook(func(r *http.Request, _ []byte, w http.ResponseWriter) int {
		if r.URL.Path == "/api/v2/logs" {
			w.WriteHeader(400)
			return 400
		}
		return 0
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	s.dl.fail = 3
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	if o := wait(t, deliver(t, s.Sink, closeBatch("org_a", time.Now(), 1)), 5*time.Second); o != Delivered {
		t.Fatal(o)
	}
	if n := len(s.dl.all()); n != 1 {
		t.Errorf("%d dead letters", n)
	}
}

func TestCloseAbandons(t *testing.T) {
	dd := newFakeDD(t)
	dd.setHook(func(r *http.Request, _ []byte, w http.ResponseWriter) int {
		if r.URL.Path == "/api/v2/logs" {
			<-r.Context().Done()
			return 599
		}
		return 0
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL, HTTPTimeout: 30 * time.Second, Concurrency: 1})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	first := deliver(t, s.Sink, closeBatch("org_a", time.Now(), 1))
	queued := deliver(t, s.Sink, closeBatch("org_a", time.Now(), 1))
	waitState(t, s.Sink, "org_a", Syncing)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "2 batches") {
		t.Errorf("Close: %v", err)
	}
	for _, ch := range []<-chan Outcome{first, queued} {
		if o := wait(t, ch, time.Second); o != Abandoned || o.Committable() {
			t.Errorf("%v", o)
		}
	}
	if o := wait(t, deliver(t, s.Sink, closeBatch("org_a", time.Now(), 1)), time.Second); o != Abandoned {
		t.Errorf("after Close: %v", o)
	}
	if s.QueuedBytes() != 0 {
		t.Errorf("QueuedBytes %d", s.QueuedBytes())
	}
}

func TestCloseWaitsForInFlight(t *testing.T) {
	dd := newFakeDD(t)
	dd.setHook(func(r *http.Request, _ []byte, w http.ResponseWriter) int {
		if r.URL.Path == "/api/v2/logs" {
			time.Sleep(100 * time.Millisecond)
		}
		return 0
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	chs := []<-chan Outcome{deliver(t, s.Sink, closeBatch("org_a", time.Now(), 1)), deliver(t, s.Sink, closeBatch("org_a", time.Now(), 1)), deliver(t, s.Sink, closeBatch("org_a", time.Now(), 1))}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, ch := range chs {
		if o := wait(t, ch, time.Second); o != Delivered {
			t.Errorf("%v", o)
		}
	}
}

func TestUntrimmableLogDeadLettered(t *testing.T) {
	dd := newFakeDD(t)
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	b := closeBatch("org_a", time.Now(), 5)
	b.Logs[2].UserID = strings.Repeat("u", 1_500_000) // nothing that may be trimmed is large
	if o := wait(t, deliver(t, s.Sink, b), 5*time.Second); o != Delivered {
		t.Fatal(o)
	}
	if n := len(dd.acceptedLogs(t, keyA)); n != 4 {
		t.Errorf("%d logs accepted, want 4", n)
	}
	dead := s.dl.all()
	if len(dead) != 1 || len(dead[0].item) > maxLogBytes || !strings.Contains(string(dead[0].item), b.Logs[2].RequestID) ||
		!strings.HasPrefix(dead[0].reason, reasonTooLarge) || !json.Valid(dead[0].item) {
		for _, d := range dead {
			t.Errorf("dead letter %q (%d bytes)", d.reason, len(d.item))
		}
	}
	if counterValue(t, s, "dead_lettered", kindLogs, dlTooLarge) != 1 {
		t.Errorf("dead_lettered{logs,too_large} = %v", counterValue(t, s, "dead_lettered", kindLogs, dlTooLarge))
	}
}

// A batch is cut into requests as it is streamed: at 500 logs, and before a
// log that would take the body past 5 MB. No request is over either limit,
// and every log arrives once.
func TestStreamedRequestsCutAtLimits(t *testing.T) {
	dd := newFakeDD(t)
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	b := closeBatch("org_a", time.Now(), 1200)
	for i := 600; i < 1000; i++ { // 400 logs of ~20 KB: 8 MB
		b.Logs[i].StatusCode, b.Logs[i].ErrorMessage = 500, strings.Repeat("e", 10_000)
	}
	if o := wait(t, deliver(t, s.Sink, b), 10*time.Second); o != Delivered {
		t.Fatal(o)
	}
	if ids := dd.acceptedLogs(t, keyA); len(ids) != 1200 {
		t.Errorf("%d accepted, want 1200", len(ids))
	}
	var sizes []int
	for _, r := range dd.requests("/api/v2/logs") {
		var items []json.RawMessage
		if err := json.Unmarshal(r.body, &items); err != nil {
			t.Fatal(err)
		}
		if len(items) > maxLogsPerRequest || len(r.body) > maxLogsRequestBytes {
			t.Errorf("request of %d logs, %d bytes", len(items), len(r.body))
		}
		sizes = append(sizes, len(items))
	}
	// 0-499; 500-599 and the big ones up to 5 MB; the other big ones and
	// the small tail.
	if len(sizes) != 3 || sizes[0] != 500 || sizes[1] >= 500 || sizes[1]+sizes[2] != 700 {
		t.Errorf("requests of %v logs", sizes)
	}
}
