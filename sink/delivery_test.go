package sink

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/futureagi/prism-exporter/aggregate"
)

const (
	keyA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"
	keyB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2"
)

func twoTenants() []Tenant {
	return []Tenant{
		{ID: "org_a", Site: SiteUS1, APIKey: keyA},
		{ID: "org_b", Site: SiteEU1, APIKey: keyB, AppKey: "appkeyB-0000000000000000000000000000000"},
	}
}

func closeBatch(tenant string, now time.Time, nLogs int, series ...aggregate.Series) aggregate.Batch {
	start := now.Truncate(time.Minute).Add(-time.Minute)
	return aggregate.Batch{
		Kind:      aggregate.KindTotals,
		Tenant:    tenant,
		Partition: 3,
		Window:    aggregate.Window{Start: start, Length: time.Minute},
		Logs:      testEvents(nLogs, start),
		Series:    series,
	}
}

func TestDeliverLogsAndSeries(t *testing.T) {
	dd := newFakeDD(t)
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	s.SetTenants(twoTenants())
	now := time.Now()

	a := deliver(t, s.Sink, closeBatch("org_a", now, 10, testSeries("gpt-4o")))
	b := deliver(t, s.Sink, closeBatch("org_b", now, 3, testSeries("gpt-4o"), testSeries("o3")))
	if o := wait(t, a, 5*time.Second); o != Delivered {
		t.Fatalf("org_a: %v", o)
	}
	if o := wait(t, b, 5*time.Second); o != Delivered {
		t.Fatalf("org_b: %v", o)
	}
	if got := len(dd.acceptedLogs(t, keyA)); got != 10 {
		t.Errorf("org_a logs: %d, want 10", got)
	}
	if got := len(dd.acceptedLogs(t, keyB)); got != 3 {
		t.Errorf("org_b logs: %d, want 3", got)
	}
	var seriesB int
	for _, r := range dd.requests("/api/v2/series") {
		if r.encoding != "gzip" {
			t.Errorf("series sent with Content-Encoding %q", r.encoding)
		}
		var p struct {
			Series []json.RawMessage `json:"series"`
		}
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		if r.apiKey == keyB {
			seriesB += len(p.Series)
		}
	}
	if seriesB != 2*seriesPerTagSet {
		t.Errorf("org_b series: %d, want %d", seriesB, 2*seriesPerTagSet)
	}
	// org_b has an application key: both validations ran, with the keys.
	var v1, v2 int
	for _, r := range dd.requests("") {
		switch r.path {
		case "/api/v1/validate":
			v1++
		case "/api/v2/validate_keys":
			v2++
			if r.apiKey != keyB || r.appKey == "" {
				t.Errorf("validate_keys without both keys")
			}
		}
	}
	if v1 != 2 || v2 != 1 {
		t.Errorf("validations: v1 %d (want 2), v2 %d (want 1)", v1, v2)
	}
	for _, st := range s.TenantStatus() {
		if st.Delivered != 1 || st.State != Active {
			t.Errorf("status %+v", st)
		}
	}
	if s.QueuedBytes() != 0 {
		t.Errorf("QueuedBytes %d after everything completed", s.QueuedBytes())
	}
	_ = http.StatusOK
}

// The partitions close a window at about the same moment, one job each: all
// of their series go before any of their logs, so that the last partition's
// totals do not wait behind the others' logs.
func TestQueuedWindowsSeriesBeforeLogs(t *testing.T) {
	dd := newFakeDD(t)
	release := make(chan struct{})
	var first sync.Once
	dd.setHook(func(r *http.Request, _ []byte, _ http.ResponseWriter) int {
		if r.URL.Path == "/api/v2/series" {
			first.Do(func() { <-release }) // hold the first until all are queued
		}
		return 0
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL, Concurrency: 1})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	now := time.Now()
	var outs []<-chan Outcome
	for p := int32(0); p < 3; p++ {
		b := closeBatch("org_a", now, 10, testSeries("gpt-4o"))
		b.Partition = p
		outs = append(outs, deliver(t, s.Sink, b))
	}
	close(release)
	for _, o := range outs {
		if got := wait(t, o, 5*time.Second); got != Delivered {
			t.Fatal(got)
		}
	}
	var order []string
	for _, r := range dd.requests("") {
		if r.path == "/api/v2/series" || r.path == "/api/v2/logs" {
			order = append(order, strings.TrimPrefix(r.path, "/api/v2/"))
		}
	}
	want := []string{"series", "series", "series", "logs", "logs", "logs"}
	if !slices.Equal(order, want) {
		t.Errorf("requests %v, want %v", order, want)
	}
}
