package sink

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

func TestRoute(t *testing.T) {
	dd := newFakeDD(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clock := now
	s := newTestSink(t, Config{BaseURL: dd.srv.URL, Clock: func() time.Time { return clock }})
	connected := now.Add(-time.Hour)
	s.SetTenants([]Tenant{
		{ID: "org_new", APIKey: keyA, SyncInterval: time.Minute, ConnectedAt: connected},
		{ID: "org_backfill", APIKey: keyA, SyncInterval: 30 * time.Second, Backfill: true, ConnectedAt: connected},
		{ID: "org_paused", APIKey: keyA, Paused: true},
		{ID: "org_default", APIKey: keyA}, // no cut-off: the sink never invents one
		{ID: "org_switch", APIKey: keyA, SyncInterval: 2 * time.Minute, PrevSyncInterval: 5 * time.Minute, IntervalFrom: now.Add(10 * time.Minute)},
	})
	cases := []struct {
		tenant string
		at     time.Time
		length time.Duration
		ok     bool
	}{
		{"org_new", connected, time.Minute, true},
		{"org_new", connected.Add(-time.Nanosecond), 0, false}, // before it connected: not backfilled
		{"org_backfill", connected.Add(-30 * 24 * time.Hour), 30 * time.Second, true},
		{"org_paused", now, 0, false},
		{"org_unknown", now, 0, false},
		{"org_default", now, DefaultSyncInterval, true},
		{"org_default", now.Add(-30 * 24 * time.Hour), DefaultSyncInterval, true},
		{"org_switch", now.Add(10*time.Minute - time.Nanosecond), 5 * time.Minute, true},
		{"org_switch", now.Add(10 * time.Minute), 2 * time.Minute, true},
	}
	for _, c := range cases {
		length, ok := s.Route(c.tenant, c.at)
		if length != c.length || ok != c.ok {
			t.Errorf("Route(%s, %v) = %v, %v; want %v, %v", c.tenant, c.at, length, ok, c.length, c.ok)
		}
	}
	if _, bounded := s.Earliest(); bounded {
		t.Errorf("Earliest is bounded although org_default exports everything")
	}
	// A reload keeps nothing of the previous entries.
	clock = now.Add(time.Hour)
	s.SetTenants([]Tenant{{ID: "org_default", APIKey: keyA, SyncInterval: time.Minute, ConnectedAt: now}})
	if l, ok := s.Route("org_default", now); !ok || l != time.Minute {
		t.Errorf("after reload: %v %v", l, ok)
	}
	if at, bounded := s.Earliest(); !bounded || !at.Equal(now) {
		t.Errorf("Earliest = %v, %v; want %v, true", at, bounded, now)
	}
	if _, ok := s.Route("org_new", connected); ok {
		t.Errorf("removed tenant still routed")
	}
}

// TestRouteIsCheap: the processor calls Route for every record.
func TestRouteIsCheap(t *testing.T) {
	s := newTestSink(t, Config{BaseURL: "http://127.0.0.1:1"})
	s.sleep = func(ctx context.Context, _ time.Duration) error { <-ctx.Done(); return ctx.Err() }
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA, Backfill: true}})
	at := time.Now()
	if n := testing.AllocsPerRun(1000, func() { s.Route("org_a", at) }); n != 0 {
		t.Errorf("Route allocates %v times", n)
	}
}

func TestWatchTenantsFile(t *testing.T) {
	dd := newFakeDD(t)
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	path := writeFile(t, "tenants.yaml", "tenants:\n  - id: org_a\n    api_key: "+keyA+"\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.WatchTenantsFile(ctx, path, 5*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()

	waitState(t, s.Sink, "org_a", Active)
	write := func(content string) {
		t.Helper()
		// a new file renamed over the old one, as a secret store does
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(cond func() bool, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s\n%s", what, s.allLogText())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	write("tenants:\n  - id: org_a\n    api_key: " + keyB + "\n  - id: org_b\n    api_key: " + keyB + "\n    sync_interval: 1m\n")
	waitFor(func() bool { l, ok := s.Route("org_b", time.Now()); return ok && l == time.Minute }, "org_b added")

	// A bad file keeps the last good configuration.
	write("tenants:\n  - id: org_a\n    api_key: " + keyA + "\n    sync_interval: 2h\n")
	waitFor(func() bool { return strings.Contains(s.allLogText(), "tenants file rejected") }, "bad file logged")
	if _, ok := s.Route("org_b", time.Now()); !ok {
		t.Errorf("a bad file changed the configuration")
	}
	if !strings.Contains(s.allLogText(), `sync_interval: must be between 1s and 1h, got "2h"`) {
		t.Errorf("the log does not say what is wrong")
	}
	// An empty file (caught half-written) is refused too.
	write("")
	time.Sleep(30 * time.Millisecond)
	if _, ok := s.Route("org_b", time.Now()); !ok {
		t.Errorf("an empty file removed the tenants")
	}
	write("tenants:\n  - id: org_a\n    api_key: " + keyB + "\n    paused: true\n")
	waitFor(func() bool { _, ok := s.Route("org_a", time.Now()); return !ok }, "org_a paused")
	waitFor(func() bool { return len(s.TenantStatus()) == 1 }, "org_b removed")

	logs := s.allLogText()
	for _, want := range []string{"tenant added", "tenant changed", "fields=api_key", "tenant removed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(logs, keyA) || strings.Contains(logs, keyB) {
		t.Errorf("a key reached the logs:\n%s", logs)
	}
}

// TestKeysNeverLeak runs the ways things fail with answers that echo the key
// back, and looks for the keys everywhere the sink speaks.
func TestKeysNeverLeak(t *testing.T) {
	dd := newFakeDD(t)
	dd.setHook(func(r *http.Request, _ []byte, w http.ResponseWriter) int {
		key := r.Header.Get("DD-API-KEY")
		switch {
		case r.URL.Path == "/api/v1/validate" && key == keyB:
			w.WriteHeader(403)
			_, _ = w.Write([]byte("<html>key " + key + " is not valid</html>"))
			return 403
		case r.URL.Path == "/api/v2/logs" && strings.Contains(r.Header.Get("User-Agent"), "prism"):
			if len(dd.requests("/api/v2/logs")) < 3 {
				w.WriteHeader(502)
				_, _ = w.Write([]byte("bad gateway for " + key))
				return 502
			}
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"errors":["invalid key ` + key + `"]}`))
			return 400
		}
		return 0
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	s.SetTenants(twoTenants())
	if o := wait(t, deliver(t, s.Sink, closeBatch("org_a", time.Now(), 3)), 5*time.Second); o != Delivered {
		t.Fatal(o)
	}
	waitState(t, s.Sink, "org_b", Error)

	var places []string
	places = append(places, s.allLogText())
	for _, st := range s.TenantStatus() {
		places = append(places, st.LastError)
	}
	status, err := json.Marshal(s.TenantStatus())
	if err != nil {
		t.Fatal(err)
	}
	places = append(places, string(status))
	if !strings.Contains(string(status), `"state":"error"`) || !strings.Contains(string(status), `"site":"datadoghq.eu"`) {
		t.Errorf("status page JSON: %s", status)
	}
	for _, d := range s.dl.all() {
		places = append(places, d.reason, string(d.item))
	}
	if len(s.dl.all()) != 3 {
		t.Errorf("%d dead letters", len(s.dl.all()))
	}
	var metrics strings.Builder
	mfs, _ := s.reg.Gather()
	for _, mf := range mfs {
		metrics.WriteString(mf.String())
	}
	places = append(places, metrics.String())
	for i, p := range places {
		for _, k := range []string{keyA, keyB, "appkeyB-0000000000000000000000000000000"} {
			if strings.Contains(p, k) {
				t.Errorf("place %d holds a key: %.300s", i, p)
			}
		}
	}
	if !strings.Contains(s.allLogText(), "<secret>") {
		t.Errorf("the echoed key should read <secret> in the logs")
	}
}

func TestSelfMetrics(t *testing.T) {
	dd := newFakeDD(t)
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	s.SetTenants(twoTenants())
	if o := wait(t, deliver(t, s.Sink, closeBatch("org_a", time.Now(), 7, testSeries("m"))), 5*time.Second); o != Delivered {
		t.Fatal(o)
	}
	waitState(t, s.Sink, "org_b", Active)
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if !strings.HasPrefix(mf.GetName(), "prism_exporter_sink_") {
			t.Errorf("metric %s outside prism_exporter_sink_", mf.GetName())
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.HasPrefix(l.GetValue(), "org_") || strings.HasPrefix(l.GetValue(), "req_") {
					t.Errorf("%s has a tenant or request label %s=%s", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	for _, n := range []string{"tenants", "batches_total", "items_total", "request_duration_seconds", "requests_total", "payload_bytes_total", "queued_batches", "queued_bytes"} {
		if !names["prism_exporter_sink_"+n] {
			t.Errorf("missing prism_exporter_sink_%s", n)
		}
	}
	if v := testutil.ToFloat64(s.m.items.WithLabelValues(kindLogs, "delivered")); v != 7 {
		t.Errorf("logs delivered %v", v)
	}
	if v := testutil.ToFloat64(s.m.items.WithLabelValues(kindMetrics, "delivered")); v != seriesPerTagSet {
		t.Errorf("series delivered %v", v)
	}
	if v := testutil.ToFloat64(s.m.tenants.WithLabelValues("active")); v != 2 {
		t.Errorf("active tenants %v", v)
	}
	if testutil.ToFloat64(s.m.queuedBatches) != 0 || testutil.ToFloat64(s.m.queuedBytes) != 0 {
		t.Errorf("queue gauges not back to 0")
	}
	if testutil.ToFloat64(s.m.payloadBytes.WithLabelValues(endpointLogs, stageCompressed)) >= testutil.ToFloat64(s.m.payloadBytes.WithLabelValues(endpointLogs, stageUncompressed)) {
		t.Errorf("compressed logs not smaller than uncompressed")
	}
	// One Sink per registry: a second one says so.
	if _, err := New(Config{}, s.reg, zap.NewNop(), s.dl); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("second sink on one registry: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	dl := &recordingDL{}
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{BaseURL: "127.0.0.1:8080"}, "BaseURL (PRISM_DATADOG_URL): must start with http:// or https://"},
		{Config{BaseURL: "http://"}, "BaseURL (PRISM_DATADOG_URL): has no host"},
		{Config{BaseURL: "http://user:pw@h/"}, "without user"},
		{Config{Concurrency: 1000}, "Concurrency: must be between 1 and 64"},
		{Config{Concurrency: -1}, "Concurrency"},
		{Config{HTTPTimeout: -time.Second}, "HTTPTimeout: must be positive"},
		{Config{MaxBackoff: -time.Second}, "MaxBackoff: must be positive"},
		{Config{Service: " svc"}, "Service:"},
	}
	for _, c := range cases {
		_, err := New(c.cfg, prometheus.NewRegistry(), zap.NewNop(), dl)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	// Two mistakes, both reported at once.
	_, err := New(Config{Concurrency: -1, MaxBackoff: -1}, nil, zap.NewNop(), dl)
	if err == nil || !strings.Contains(err.Error(), "Concurrency") || !strings.Contains(err.Error(), "MaxBackoff") {
		t.Errorf("%v", err)
	}
	if _, err := New(Config{}, nil, zap.NewNop(), nil); err == nil {
		t.Errorf("no DeadLetterer accepted")
	}
	s, err := New(Config{}, nil, zap.NewNop(), dl)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Service != "prism-gateway" || s.cfg.HTTPTimeout != 30*time.Second || s.cfg.Concurrency != 2 || s.cfg.MaxBackoff != 30*time.Second || s.dd.httpc.Timeout != 30*time.Second {
		t.Errorf("defaults %+v", s.cfg)
	}
	if tr, ok := s.dd.httpc.Transport.(*http.Transport); !ok || tr.ResponseHeaderTimeout == 0 || tr.TLSHandshakeTimeout == 0 {
		t.Errorf("transport without timeouts")
	}
	if s.dd.api.GetConfig().RetryConfiguration.EnableRetry {
		t.Errorf("the client's own retry is on")
	}
	_ = s.Close(context.Background())
	_ = io.Discard
}

func TestOutcome(t *testing.T) {
	for o, want := range map[Outcome]string{Delivered: "delivered", Undeliverable: "undeliverable", Skipped: "skipped", Abandoned: "abandoned"} {
		if o.String() != want || o.Committable() == (o == Abandoned) {
			t.Errorf("%d: %s committable %v", o, o, o.Committable())
		}
	}
}
