package sink

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/futureagi/prism-exporter/aggregate"
	"github.com/futureagi/prism-exporter/sink/ddfake"
)

// End-to-end tests against sink/ddfake, the local Datadog stand-in: they
// check what a tenant would find in its account, not what was sent.

const appKeyB = "appkeyB-0000000000000000000000000000000"

func startFake(t *testing.T, opts ...ddfake.Option) (*ddfake.Server, string) {
	t.Helper()
	opts = append([]ddfake.Option{ddfake.WithAccounts(
		ddfake.Account{Name: "org_a", APIKeys: []string{keyA}, Site: "datadoghq.com"},
		ddfake.Account{Name: "org_b", APIKeys: []string{keyB}, AppKeys: []string{appKeyB}, Site: "datadoghq.eu"},
	)}, opts...)
	dd := ddfake.New(opts...)
	url, err := dd.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dd.Close() })
	return dd, url
}

// windowBatches makes n consecutive one-minute windows of one tenant, each
// with logs and two tag sets, ending a minute ago.
func windowBatches(tenant string, n, logsPer int) []aggregate.Batch {
	end := time.Now().Truncate(time.Minute)
	var out []aggregate.Batch
	for i := 0; i < n; i++ {
		start := end.Add(time.Duration(i-n) * time.Minute)
		logs := testEvents(logsPer, start)
		for k, ev := range logs {
			ev.RequestID = ev.RequestID + "_w" + start.Format("1504") + "_" + tenant
			ev.OrgID = tenant
			_ = k
		}
		out = append(out, aggregate.Batch{
			Kind: aggregate.KindTotals, Tenant: tenant, Partition: int32(i % 3),
			Window: aggregate.Window{Start: start, Length: time.Minute},
			Logs:   logs, Series: []aggregate.Series{testSeries("gpt-4o"), testSeries("claude sonnet 4")},
		})
	}
	return out
}

func deliverAll(t *testing.T, s *Sink, bs []aggregate.Batch) []<-chan Outcome {
	var out []<-chan Outcome
	for _, b := range bs {
		out = append(out, deliver(t, s, b))
	}
	return out
}

func TestE2ETwoTenantsOnTwoSites(t *testing.T) {
	dd, url := startFake(t)
	s := newTestSink(t, Config{BaseURL: url})
	s.SetTenants(twoTenants()) // org_a on US1, org_b on EU1 with an application key
	for _, ch := range append(deliverAll(t, s.Sink, windowBatches("org_a", 3, 40)), deliverAll(t, s.Sink, windowBatches("org_b", 2, 25))...) {
		if o := wait(t, ch, 10*time.Second); o != Delivered {
			t.Fatal(o)
		}
	}
	if n := dd.LogCount("org_a"); n != 120 {
		t.Errorf("org_a holds %d logs, want 120", n)
	}
	if n := dd.LogCount("org_b"); n != 50 {
		t.Errorf("org_b holds %d logs, want 50", n)
	}
	for _, acct := range []string{"org_a", "org_b"} {
		if bad := dd.InvalidTags(acct); len(bad) > 0 {
			t.Errorf("%s: tags not in Datadog's normal form: %v", acct, bad)
		}
	}
	// What the tenant sees: the date is the event time, the reserved fields
	// are read as such, every log has its tags.
	logs := dd.Logs("org_b")
	l := logs[0]
	if l.Status != "info" && l.Status != "error" || l.Service != "prism-gateway" || l.Source != "futureagi" || l.DateAttribute != "timestamp" {
		t.Errorf("log as stored: status %q service %q source %q date from %q", l.Status, l.Service, l.Source, l.DateAttribute)
	}
	if !strings.HasPrefix(l.Message, "[openai] gpt-4o status=") || l.Attributes["org_id"] != "org_b" {
		t.Errorf("log %q %v", l.Message, l.Attributes["org_id"])
	}
	for _, lg := range logs {
		want := map[string]bool{"model": false, "provider": false, "status_code": false, "gateway": false, "error": false, "cache": false, "guardrail": false, "routing": false}
		for _, tg := range lg.Tags {
			want[strings.SplitN(tg, ":", 2)[0]] = true
		}
		for k, ok := range want {
			if !ok {
				t.Fatalf("log without tag %s: %v", k, lg.Tags)
			}
		}
		if d := lg.Date.Sub(lg.Received); d > 0 || d < -3*time.Minute-time.Second {
			t.Fatalf("log dated %v, received %v: not the event time", lg.Date, lg.Received)
		}
	}
	pts := dd.Points("org_a")
	if len(pts) != 3*2*seriesPerTagSet {
		t.Errorf("org_a holds %d points, want %d", len(pts), 3*2*seriesPerTagSet)
	}
	for _, p := range pts {
		if p.Metric == "prism.gateway.requests" && (p.Type != 1 || p.Interval != 60 || p.Value != 10) {
			t.Errorf("requests point %+v", p)
		}
		if p.Metric == "prism.gateway.latency_ms.p95" && (p.Type != 3 || p.Value != 300) {
			t.Errorf("p95 point %+v", p)
		}
	}
	if n := dd.Overwrites("org_a"); n != 0 {
		t.Errorf("%d points overwritten", n)
	}
}

func TestE2EStormDelaysButLosesNothing(t *testing.T) {
	dd, url := startFake(t, ddfake.WithSeed(7))
	// The first matching fault applies, in this order.
	dd.SetFault(ddfake.Fault{Path: "/api/v1/validate", Drop: true, Count: 1})
	dd.SetFault(ddfake.Fault{Path: "/api/v2/logs", Drop: true, Count: 3})
	dd.SetFault(ddfake.Fault{Path: "/api/v2/logs", Status: 429, Count: 1, RetryAfter: time.Second})
	dd.SetFault(ddfake.Fault{Path: "/api/v2/logs", Status: 503, For: 300 * time.Millisecond})
	dd.SetFault(ddfake.Fault{Path: "/api/v2/series", Status: 500, Probability: 0.5, For: 2 * time.Second})
	dd.SetFault(ddfake.Fault{Path: "/api/v2/logs", Status: 502, Probability: 0.3, For: 2 * time.Second})
	dd.SetFault(ddfake.Fault{Path: "/api/v2/series", Status: 408, Count: 3})

	s := newTestSink(t, Config{BaseURL: url, MaxBackoff: 20 * time.Millisecond})
	s.SetTenants(twoTenants())
	start := time.Now()
	chs := append(deliverAll(t, s.Sink, windowBatches("org_a", 15, 30)), deliverAll(t, s.Sink, windowBatches("org_b", 15, 20))...)
	for _, ch := range chs {
		select {
		case o := <-ch:
			if o != Delivered {
				t.Fatal(o)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("stuck: %+v\nfake: %+v\nlog:\n%s", s.TenantStatus(), dd.Stats(), s.allLogText())
		}
	}
	t.Logf("delivered through the storm in %v; fake stats %+v", time.Since(start).Round(time.Millisecond), dd.Stats())
	if n := dd.LogCount("org_a"); n != 15*30 {
		t.Errorf("org_a holds %d logs, want %d", n, 15*30)
	}
	if n := dd.LogCount("org_b"); n != 15*20 {
		t.Errorf("org_b holds %d logs, want %d", n, 15*20)
	}
	seen := map[string]bool{}
	for _, l := range append(dd.Logs("org_a"), dd.Logs("org_b")...) {
		id := l.Attributes["request_id"].(string)
		if seen[id] {
			t.Errorf("log %s stored twice", id)
		}
		seen[id] = true
	}
	for _, acct := range []string{"org_a", "org_b"} {
		if n := len(dd.Points(acct)); n != 15*2*seriesPerTagSet {
			t.Errorf("%s holds %d points, want %d", acct, n, 15*2*seriesPerTagSet)
		}
	}
	if dd.Stats().Faults == 0 {
		t.Errorf("no fault was applied: the test tests nothing")
	}
	// Dropped connections are retried by net/http itself (requests are
	// replayable) or by the sink's backoff; either way the fake must have
	// dropped some, and nothing above may be missing.
	if counterValue(t, s, "retries", "status_429") < 1 || dd.Stats().ByStatus[0] < 1 {
		t.Errorf("retries: 429 %v; connections dropped by the fake %d", counterValue(t, s, "retries", "status_429"), dd.Stats().ByStatus[0])
	}
}

func TestE2ERevokedKeyErrorsOneTenantOnly(t *testing.T) {
	dd, url := startFake(t)
	s := newTestSink(t, Config{BaseURL: url})
	s.SetTenants(twoTenants())
	for _, ch := range deliverAll(t, s.Sink, append(windowBatches("org_a", 2, 10), windowBatches("org_b", 2, 10)...)) {
		if o := wait(t, ch, 10*time.Second); o != Delivered {
			t.Fatal(o)
		}
	}
	dd.RevokeAPIKey(keyA)
	var as, bs []<-chan Outcome
	for i := 0; i < 5; i++ {
		as = append(as, deliverAll(t, s.Sink, windowBatches("org_a", 1, 10))...)
		bs = append(bs, deliverAll(t, s.Sink, windowBatches("org_b", 1, 10))...)
	}
	for _, ch := range as {
		if o := wait(t, ch, 10*time.Second); o != Undeliverable {
			t.Errorf("org_a after revocation: %v", o)
		}
	}
	for _, ch := range bs {
		if o := wait(t, ch, 10*time.Second); o != Delivered {
			t.Errorf("org_b: %v", o)
		}
	}
	st := waitState(t, s.Sink, "org_a", Error)
	if st.LastError != "Datadog rejected the API key: check the API key and the site (datadoghq.com)" || st.Delivered != 2 || st.Failed != 5 {
		t.Errorf("org_a %+v", st)
	}
	if n := dd.LogCount("org_b"); n != 20+50 {
		t.Errorf("org_b holds %d logs", n)
	}
	if strings.Contains(s.allLogText(), keyA) || strings.Contains(s.allLogText(), keyB) {
		t.Errorf("a key reached the logs")
	}
	// The key is restored and the file changes: the tenant comes back.
	dd.AddAccount(ddfake.Account{Name: "org_a", APIKeys: []string{"new-key-for-a-000000000"}})
	ts := twoTenants()
	ts[0].APIKey = "new-key-for-a-000000000"
	s.SetTenants(ts)
	waitState(t, s.Sink, "org_a", Active)
	if o := wait(t, deliver(t, s.Sink, windowBatches("org_a", 1, 3)[0]), 5*time.Second); o != Delivered {
		t.Errorf("after the key was fixed: %v", o)
	}
}

// TestE2ESiteHosts sends to the real site hosts (no BaseURL), with a
// transport that dials the fake for every host over TLS: the fake rejects a
// key used on another site's host, so a tenant reaching the wrong site
// would be refused.
func TestE2ESiteHosts(t *testing.T) {
	dd := ddfake.New(ddfake.WithAccounts(
		ddfake.Account{Name: "org_a", APIKeys: []string{keyA}, Site: "ap1.datadoghq.com"},
		ddfake.Account{Name: "org_b", APIKeys: []string{keyB}, AppKeys: []string{appKeyB}, Site: "datadoghq.eu"},
	))
	srv := httptest.NewTLSServer(dd.Handler())
	t.Cleanup(srv.Close)
	s := newTestSink(t, Config{})
	var mu sync.Mutex
	hosts := map[string]bool{}
	s.dd.httpc.Transport = &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a local test server
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			hosts[addr] = true
			mu.Unlock()
			return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
		},
	}
	ts := []Tenant{{ID: "org_a", Site: SiteAP1, APIKey: keyA}, {ID: "org_b", Site: SiteEU1, APIKey: keyB, AppKey: appKeyB}}
	s.SetTenants(ts)
	for _, ch := range deliverAll(t, s.Sink, append(windowBatches("org_a", 1, 5), windowBatches("org_b", 1, 5)...)) {
		if o := wait(t, ch, 10*time.Second); o != Delivered {
			t.Fatal(o)
		}
	}
	if dd.LogCount("org_a") != 5 || len(dd.Points("org_b")) != 2*seriesPerTagSet {
		t.Errorf("org_a logs %d, org_b points %d", dd.LogCount("org_a"), len(dd.Points("org_b")))
	}
	for _, h := range []string{"api.ap1.datadoghq.com:443", "http-intake.logs.ap1.datadoghq.com:443", "api.datadoghq.eu:443", "http-intake.logs.datadoghq.eu:443"} {
		if !hosts[h] {
			t.Errorf("never dialled %s: %v", h, hosts)
		}
	}
	// The same key on the wrong site is refused by the fake: the check
	// above can fail.
	ts[0].Site = SiteUS3
	s.SetTenants(ts)
	st := waitState(t, s.Sink, "org_a", Error)
	if !strings.Contains(st.LastError, "us3.datadoghq.com") {
		t.Errorf("wrong site: %q", st.LastError)
	}
}
