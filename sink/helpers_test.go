package sink

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/futureagi/prism-exporter/aggregate"
	"github.com/futureagi/prism-exporter/schemas"
)

// testEvent is a deterministic gateway record; i varies its fields.
func testEvent(i int, at time.Time) *schemas.Event {
	models := []string{"gpt-4o", "claude-sonnet-4", "mistral-large"}
	providers := []string{"openai", "anthropic", "mistral"}
	ev := &schemas.Event{
		RequestID:        fmt.Sprintf("req_%08d", i),
		TraceID:          fmt.Sprintf("%032x", i*7919),
		Timestamp:        at.Add(time.Duration(i) * time.Millisecond),
		Model:            models[i%3],
		ResolvedModel:    models[i%3] + "-2025",
		Provider:         providers[i%3],
		PromptTokens:     int64(100 + i%900),
		CompletionTokens: int64(50 + i%400),
		StatusCode:       200,
		LatencyMS:        int64(20 + i%2000),
		Cost:             float64(i%100) * 0.000731,
		IsStream:         i%2 == 0,
		CacheHit:         i%5 == 0,
		UserID:           fmt.Sprintf("user_%d", i%300),
		OrgID:            "org_test",
		GatewayID:        "gw-us-east-1",
		RoutingStrategy:  []string{"weighted", "least-latency", ""}[i%3],
	}
	ev.TotalTokens = ev.PromptTokens + ev.CompletionTokens
	if i%17 == 0 {
		ev.StatusCode = 429
		ev.IsError = true
		ev.ErrorMessage = "rate limited by upstream"
		ev.ErrorCode = "rate_limit"
	}
	return ev
}

func testEvents(n int, at time.Time) []*schemas.Event {
	out := make([]*schemas.Event, n)
	for i := range out {
		out[i] = testEvent(i, at)
	}
	return out
}

// testSeries is one window's totals for a tag set.
func testSeries(model string) aggregate.Series {
	return aggregate.Series{
		Tags:     aggregate.TagSet{Model: model, Provider: "openai", Gateway: "gw-1", Routing: "weighted"},
		Requests: 10, Errors: 1, InputTokens: 1000, OutputTokens: 500, Cost: 0.25,
		CacheHits: 2, GuardrailTriggers: 1, Fallbacks: 1,
		LatencySumMS: 1000, LatencyAvgMS: 100, LatencyMaxMS: 400,
		LatencyP50MS: 90, LatencyP95MS: 300, LatencyP99MS: 390,
	}
}

// recordingDL is a DeadLetterer that keeps what it was given.
type recordingDL struct {
	mu    sync.Mutex
	items []deadItem
	fail  int // fail this many calls first
}

type deadItem struct {
	tenant, reason string
	item           []byte
}

func (d *recordingDL) DeadLetter(_ context.Context, tenant string, item []byte, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail > 0 {
		d.fail--
		return fmt.Errorf("kafka unavailable")
	}
	d.items = append(d.items, deadItem{tenant, reason, append([]byte(nil), item...)})
	return nil
}

func (d *recordingDL) all() []deadItem {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]deadItem(nil), d.items...)
}

// testSink is a Sink on an observed logger and its own registry.
type testSink struct {
	*Sink
	logs *observer.ObservedLogs
	reg  *prometheus.Registry
	dl   *recordingDL
}

func newTestSink(t *testing.T, cfg Config) *testSink {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	reg := prometheus.NewRegistry()
	dl := &recordingDL{}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 5 * time.Millisecond
	}
	if cfg.HTTPTimeout == 0 {
		cfg.HTTPTimeout = 5 * time.Second
	}
	s, err := New(cfg, reg, zap.New(core), dl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return &testSink{Sink: s, logs: logs, reg: reg, dl: dl}
}

// allLogText is every log line with its fields, for grepping.
func (ts *testSink) allLogText() string {
	var b strings.Builder
	for _, e := range ts.logs.All() {
		b.WriteString(e.Message)
		enc := zapcore.NewMapObjectEncoder()
		for _, f := range e.Context {
			f.AddTo(enc)
		}
		for k, v := range enc.Fields {
			fmt.Fprintf(&b, " %s=%v", k, v)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// deliver hands b to the sink and returns a channel with its outcome;
// calls to done beyond the first fail the test.
func deliver(t *testing.T, s *Sink, b aggregate.Batch) <-chan Outcome {
	t.Helper()
	ch := make(chan Outcome, 1)
	rc := deliverReceipt(t, s, b)
	go func() { ch <- (<-rc).Outcome }()
	return ch
}

// deliverReceipt is deliver with the whole Receipt.
func deliverReceipt(t *testing.T, s *Sink, b aggregate.Batch) <-chan Receipt {
	t.Helper()
	ch := make(chan Receipt, 1)
	var once sync.Once
	s.Deliver(b, func(r Receipt) {
		called := false
		once.Do(func() { called = true; ch <- r })
		if !called {
			t.Errorf("done called twice for tenant %s", b.Tenant)
		}
	})
	return ch
}

func wait(t *testing.T, ch <-chan Outcome, d time.Duration) Outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(d):
		t.Fatalf("no outcome after %v", d)
	}
	return 0
}

// waitState waits until the tenant reports state.
func waitState(t *testing.T, s *Sink, id string, state TenantState) TenantStatus {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, st := range s.TenantStatus() {
			if st.ID == id && (st.State == state || state == Active && st.State == Syncing) {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("tenant %s never reached %v: %+v", id, state, s.TenantStatus())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fakeDD is a minimal Datadog on httptest: it records what it receives and
// answers what the test's hook says (202 / 200 by default).
type fakeDD struct {
	srv *httptest.Server
	mu  sync.Mutex
	// hook, when set, may answer instead: return 0 to let the default
	// answer.
	hook func(r *http.Request, body []byte, w http.ResponseWriter) int
	reqs []fakeReq
}

type fakeReq struct {
	path, apiKey, appKey, host, encoding string
	body                                 []byte // decompressed
	code                                 int    // the answer
}

func newFakeDD(t *testing.T) *fakeDD {
	f := &fakeDD{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeDD) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	body := raw
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			http.Error(w, "bad gzip", 400)
			return
		}
		body, _ = io.ReadAll(zr)
	}
	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	rec := fakeReq{r.URL.Path, r.Header.Get("DD-API-KEY"), r.Header.Get("DD-APPLICATION-KEY"), r.Host, r.Header.Get("Content-Encoding"), body, 0}
	defer func() {
		f.mu.Lock()
		f.reqs = append(f.reqs, rec)
		f.mu.Unlock()
	}()
	if hook != nil {
		if rec.code = hook(r, body, w); rec.code != 0 {
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/api/v1/validate":
		rec.code = 200
		_, _ = w.Write([]byte(`{"valid":true}`))
	case "/api/v2/validate_keys":
		rec.code = 200
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	default:
		rec.code = http.StatusAccepted
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{}`))
	}
}

func (f *fakeDD) setHook(h func(r *http.Request, body []byte, w http.ResponseWriter) int) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

func (f *fakeDD) requests(path string) []fakeReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeReq
	for _, r := range f.reqs {
		if path == "" || r.path == path {
			out = append(out, r)
		}
	}
	return out
}

// acceptedLogs is every request_id the fake accepted (2xx) in logs for an
// API key, in arrival order.
func (f *fakeDD) acceptedLogs(t *testing.T, apiKey string) []string {
	t.Helper()
	var ids []string
	for _, r := range f.requests("/api/v2/logs") {
		if r.apiKey != apiKey || r.code < 200 || r.code > 299 {
			continue
		}
		var items []map[string]any
		if err := json.Unmarshal(r.body, &items); err != nil {
			t.Fatalf("logs body is not a JSON array: %v", err)
		}
		for _, it := range items {
			ids = append(ids, fmt.Sprint(it["request_id"]))
		}
	}
	return ids
}
