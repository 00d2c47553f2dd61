package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap/zaptest"

	"github.com/futureagi/prism-exporter/history"
	"github.com/futureagi/prism-exporter/integrations"
	"github.com/futureagi/prism-exporter/sink"
)

// syncsWorld is the API over an in-memory store and a real sync history:
// a history.Writer and history.Log on an in-process Kafka.
type syncsWorld struct {
	t      *testing.T
	srv    *httptest.Server
	writer *history.Writer
	log    *history.Log
}

// syncsTokens: the tokens of the tests, each "tok-<name>".
func syncsTokens() *Tokens {
	var list []Token
	for _, tk := range []Token{
		{Name: "ops", Role: Admin}, {Name: "acme", Role: Owner, OrgID: "org_a"},
		{Name: "acme-ro", Role: Viewer, OrgID: "org_a"}, {Name: "bravo", Role: Owner, OrgID: "org_b"},
	} {
		tk.sum = sha256.Sum256([]byte("tok-" + tk.Name))
		list = append(list, tk)
	}
	tokens := &Tokens{}
	tokens.set.Store(&list)
	return tokens
}

func newSyncsWorld(t *testing.T, withHistory bool) *syncsWorld {
	t.Helper()
	w := &syncsWorld{t: t}
	store := &memStore{byID: map[string]integrations.Integration{}}
	for _, org := range []string{"org_a", "org_b"} {
		store.byID["dd_"+org] = integrations.Integration{ID: "dd_" + org, OrgID: org, Site: sink.SiteUS1, SyncInterval: time.Minute,
			ManagedBy: integrations.ManagedByAPI, Version: 1}
	}
	cfg := Config{Tokens: syncsTokens()}
	if withHistory {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cluster.Close)
		hc := history.Config{Brokers: cluster.ListenAddrs(), Topic: "history"}
		log := zaptest.NewLogger(t)
		if w.writer, err = history.NewWriter(hc, prometheus.NewRegistry(), log); err != nil {
			t.Fatal(err)
		}
		if w.log, err = history.NewLog(hc, prometheus.NewRegistry(), log); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{}, 2)
		go func() { _ = w.writer.Run(ctx); done <- struct{}{} }()
		go func() { _ = w.log.Run(ctx); done <- struct{}{} }()
		t.Cleanup(func() { cancel(); <-done; <-done })
		cfg.History = w.log
	}
	w.srv = httptest.NewServer(New(cfg, store, fakeOK{}, noLive{}))
	t.Cleanup(w.srv.Close)
	return w
}

// syncEntry is org's i-th one-minute window, delivered recently (the Log
// forgets windows past the retention).
func syncEntry(org string, i int, outcome history.Outcome) history.Entry {
	start := time.Now().UTC().Truncate(time.Minute).Add(-time.Duration(24*60-i) * time.Minute)
	e := history.Entry{OrgID: org, Start: start, End: start.Add(time.Minute), Source: history.SourceLive, Records: int64(i),
		Logs: int64(i), Points: 13, Bytes: 1000, Requests: 2, DurationMS: 80, Outcome: outcome, At: start.Add(70 * time.Second)}
	if outcome != history.Success {
		e.StatusCode, e.Error = 503, "Datadog answered 503 Service Unavailable"
	}
	return e
}

// fill writes org_a's windows 0..n-1 (every fifth failed) and one window of
// org_b's, and waits until the Log has them.
func (w *syncsWorld) fill(n int) {
	w.t.Helper()
	for i := range n {
		o := history.Success
		if i%5 == 4 {
			o = history.Failed
		}
		w.writer.Write(syncEntry("org_a", i, o))
	}
	w.writer.Write(syncEntry("org_b", 0, history.RateLimited))
	w.waitFor("org_a", n)
	w.waitFor("org_b", 1)
}

func (w *syncsWorld) waitFor(org string, n int) {
	w.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for len(w.log.Query(org, history.Query{Limit: history.MaxLimit}).Entries) < n {
		if time.Now().After(deadline) {
			w.t.Fatalf("the history log does not hold %d entries of %s", n, org)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncsPage struct {
	Syncs      []map[string]any `json:"syncs"`
	NextCursor *string          `json:"next_cursor"`
	Error      *apiError        `json:"error"`
}

func (w *syncsWorld) get(path, who string) (int, syncsPage) {
	w.t.Helper()
	req, _ := http.NewRequest("GET", w.srv.URL+path, nil)
	if who != "" {
		req.Header.Set("Authorization", "Bearer tok-"+who)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p syncsPage
	if err := json.Unmarshal(raw, &p); err != nil {
		w.t.Fatalf("GET %s: not JSON: %s", path, raw)
	}
	if resp.StatusCode == 200 && (p.Syncs == nil || p.NextCursor == nil) {
		w.t.Fatalf("GET %s: syncs or next_cursor missing: %s", path, raw)
	}
	return resp.StatusCode, p
}

// TestSyncsPaginates: pages of any size read every window once, newest
// first, even while new windows are delivered between the pages; the
// default page is 50.
func TestSyncsPaginates(t *testing.T) {
	w := newSyncsWorld(t, true)
	w.fill(120)
	st, p := w.get("/api/v1/integrations/dd_org_a/syncs", "ops")
	if st != 200 || len(p.Syncs) != 50 || *p.NextCursor == "" {
		t.Fatalf("default page: %d, %d entries, next %v", st, len(p.Syncs), p.NextCursor)
	}
	e := p.Syncs[0]
	for _, f := range []string{"org_id", "window_start", "window_end", "source", "records", "logs_sent", "logs_dropped",
		"metric_points_sent", "bytes", "requests", "retries", "duration_ms", "outcome", "delivered_at"} {
		if _, ok := e[f]; !ok {
			t.Errorf("an entry lacks %s: %v", f, e)
		}
	}
	if e["records"] != float64(119) || e["org_id"] != "org_a" {
		t.Errorf("the newest window first: %v", e)
	}

	var seen []float64
	cursor, added := "", 0
	for pages := 0; pages < 100; pages++ {
		path := "/api/v1/integrations/dd_org_a/syncs?limit=7"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		st, p := w.get(path, "acme")
		if st != 200 || len(p.Syncs) > 7 {
			t.Fatalf("page %d: %d, %d entries", pages, st, len(p.Syncs))
		}
		for _, e := range p.Syncs {
			seen = append(seen, e["records"].(float64))
		}
		if added < 3 { // a window delivered between two pages
			w.writer.Write(syncEntry("org_a", 120+added, history.Success))
			added++
			w.waitFor("org_a", 120+added)
		}
		if *p.NextCursor == "" {
			break
		}
		cursor = *p.NextCursor
	}
	if len(seen) != 120 {
		t.Fatalf("paged %d windows, want the 120 there were when paging began", len(seen))
	}
	for i, r := range seen {
		if r != float64(119-i) {
			t.Fatalf("window %d of the pages is %v, want %d (skipped, repeated or out of order)", i, r, 119-i)
		}
	}
}

func TestSyncsFilterByOutcome(t *testing.T) {
	w := newSyncsWorld(t, true)
	w.fill(50)
	st, p := w.get("/api/v1/integrations/dd_org_a/syncs?outcome=failed&limit=500", "ops")
	if st != 200 || len(p.Syncs) != 10 || *p.NextCursor != "" {
		t.Fatalf("failed: %d, %d entries, next %q", st, len(p.Syncs), *p.NextCursor)
	}
	for _, e := range p.Syncs {
		if e["outcome"] != "failed" || e["status_code"] != float64(503) || e["error"] == "" {
			t.Errorf("a failed entry: %v", e)
		}
	}
	st, p = w.get("/api/v1/integrations/dd_org_a/syncs?outcome=success", "ops")
	if st != 200 || len(p.Syncs) != 40 {
		t.Fatalf("success: %d, %d entries", st, len(p.Syncs))
	}
	if _, has := p.Syncs[0]["status_code"]; has {
		t.Errorf("a success shows a status code: %v", p.Syncs[0])
	}
	st, p = w.get("/api/v1/integrations/dd_org_a/syncs?outcome=too_old", "ops")
	if st != 200 || len(p.Syncs) != 0 || *p.NextCursor != "" {
		t.Fatalf("too_old: %d, %d entries", st, len(p.Syncs))
	}
}

func TestSyncsScoping(t *testing.T) {
	w := newSyncsWorld(t, true)
	w.fill(3)
	for _, c := range []struct {
		who, id string
		status  int
		code    string
		n       int
	}{
		{"ops", "dd_org_b", 200, "", 1},
		{"acme-ro", "dd_org_a", 200, "", 3}, // a viewer reads its org's history
		{"acme", "dd_org_a", 200, "", 3},
		{"acme", "dd_org_b", 404, "not_found", 0},    // another org's: as if it did not exist
		{"acme-ro", "dd_org_b", 404, "not_found", 0}, // likewise for a viewer
		{"bravo", "dd_org_b", 200, "", 1},
		{"ops", "dd_nothing", 404, "not_found", 0},
		{"", "dd_org_a", 401, "unauthorized", 0},
	} {
		st, p := w.get("/api/v1/integrations/"+c.id+"/syncs", c.who)
		code := ""
		if p.Error != nil {
			code = p.Error.Code
		}
		if st != c.status || code != c.code || len(p.Syncs) != c.n {
			t.Errorf("%s reading %s: %d %s with %d entries; want %d %s with %d", c.who, c.id, st, code, len(p.Syncs), c.status, c.code, c.n)
		}
		for _, e := range p.Syncs {
			if e["org_id"] != "org_"+c.id[len("dd_org_"):] {
				t.Errorf("%s reading %s got %v", c.who, c.id, e)
			}
		}
	}
}

func TestSyncsBadQuery(t *testing.T) {
	w := newSyncsWorld(t, true)
	for _, c := range []struct{ query, field string }{
		{"outcome=exploded", "outcome"},
		{"outcome=SUCCESS", "outcome"},
		{"limit=0", "limit"},
		{"limit=501", "limit"},
		{"limit=ten", "limit"},
		{"limit=-1", "limit"},
		{"cursor=abc", "cursor"},
		{"cursor=" + url.QueryEscape("aDEuMS4yLg"), "cursor"},
	} {
		st, p := w.get("/api/v1/integrations/dd_org_a/syncs?"+c.query, "acme")
		if st != 400 || p.Error == nil || p.Error.Code != "invalid_field" || p.Error.Field != c.field {
			t.Errorf("?%s: %d %+v; want 400 invalid_field %s", c.query, st, p.Error, c.field)
		}
	}
	// The integration is looked up first: an unknown one is 404 whatever the query.
	if st, _ := w.get("/api/v1/integrations/dd_nothing/syncs?limit=0", "acme"); st != 404 {
		t.Errorf("unknown id with a bad limit: %d", st)
	}
}

// historyNotReady is a history still reading its topic.
type historyNotReady struct{}

func (historyNotReady) Query(string, history.Query) history.Page { return history.Page{} }
func (historyNotReady) Ready() bool                              { return false }

func TestSyncsUnavailable(t *testing.T) {
	w := newSyncsWorld(t, false)
	st, p := w.get("/api/v1/integrations/dd_org_a/syncs", "acme")
	if st != 503 || p.Error == nil || p.Error.Code != "history_unavailable" {
		t.Errorf("without a history: %d %+v", st, p.Error)
	}
	srv := httptest.NewServer(New(Config{Tokens: syncsTokens(), History: historyNotReady{}}, &memStore{byID: map[string]integrations.Integration{
		"dd_org_a": {ID: "dd_org_a", OrgID: "org_a"},
	}}, fakeOK{}, noLive{}))
	defer srv.Close()
	w.srv = srv
	st, p = w.get("/api/v1/integrations/dd_org_a/syncs", "acme")
	if st != 503 || p.Error == nil || p.Error.Code != "not_ready" {
		t.Errorf("while the history is read: %d %+v", st, p.Error)
	}
}
