package sink

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
)

func TestParseSite(t *testing.T) {
	cases := []struct {
		in   string
		want Site
	}{
		{"", SiteUS1},
		{"US1", SiteUS1}, {"us1", SiteUS1}, {"datadoghq.com", SiteUS1},
		{"US3", SiteUS3}, {"us3.datadoghq.com", SiteUS3},
		{"US5", SiteUS5}, {"us5.datadoghq.com", SiteUS5},
		{"EU1", SiteEU1}, {"eu1", SiteEU1}, {"datadoghq.eu", SiteEU1}, {"DATADOGHQ.EU", SiteEU1},
		{"AP1", SiteAP1}, {"ap1.datadoghq.com", SiteAP1},
		{"AP2", SiteAP2}, {"ap2.datadoghq.com", SiteAP2},
		{"UK1", SiteUK1}, {"uk1.datadoghq.com", SiteUK1},
		{"US1-FED", SiteUS1FED}, {"us1-fed", SiteUS1FED}, {"ddog-gov.com", SiteUS1FED},
		{"US2-FED", SiteUS2FED}, {"us2.ddog-gov.com", SiteUS2FED},
		{" eu1 ", SiteEU1},
	}
	for _, c := range cases {
		got, err := ParseSite(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSite(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"EU2", "datadoghq.de", "app.datadoghq.com", "https://datadoghq.com"} {
		_, err := ParseSite(bad)
		if err == nil || !strings.Contains(err.Error(), "EU1") || !strings.Contains(err.Error(), "datadoghq.eu") {
			t.Errorf("ParseSite(%q) error %v should list the accepted values", bad, err)
		}
	}
	var zero Site
	if zero.Name() != "datadoghq.com" || zero.APIHost() != "api.datadoghq.com" || zero.Region() != "US1" {
		t.Errorf("zero Site is not US1: %q %q", zero.Name(), zero.APIHost())
	}
}

// TestSitesKnownToClient checks every site against the spec's `site` enum,
// through the client's own server selection for each operation the sink
// uses.
func TestSitesKnownToClient(t *testing.T) {
	cfg := datadog.NewConfiguration()
	ops := map[string]string{
		"v2.LogsApi.SubmitLog":               "http-intake.logs.",
		"v2.MetricsApi.SubmitMetrics":        "api.",
		"v1.AuthenticationApi.Validate":      "api.",
		"v2.KeyManagementApi.ValidateAPIKey": "api.",
	}
	for _, e := range sites() {
		ctx := context.WithValue(context.Background(), datadog.ContextServerVariables, map[string]string{"site": e.site.Name()})
		for op, prefix := range ops {
			u, err := cfg.ServerURLWithContext(ctx, op)
			if err != nil {
				t.Errorf("%s (%s): %s: %v", e.region, e.site, op, err)
				continue
			}
			if want := "https://" + prefix + e.site.Name(); u != want {
				t.Errorf("%s: %s = %s, want %s", e.region, op, u, want)
			}
		}
	}
}

// hostRecorder answers every request like Datadog would and records which
// host each key reached for which path, without any network.
type hostRecorder struct {
	mu   sync.Mutex
	seen map[string]map[string]string // api key -> path -> scheme://host
}

func (h *hostRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	h.mu.Lock()
	key := r.Header.Get("DD-API-KEY")
	if h.seen[key] == nil {
		h.seen[key] = map[string]string{}
	}
	h.seen[key][r.URL.Path] = r.URL.Scheme + "://" + r.URL.Host
	h.mu.Unlock()
	body, code := `{}`, http.StatusAccepted
	switch r.URL.Path {
	case "/api/v1/validate":
		body, code = `{"valid":true}`, 200
	case "/api/v2/validate_keys":
		body, code = `{"status":"ok"}`, 200
	}
	return &http.Response{
		StatusCode: code, Status: fmt.Sprintf("%d", code), Request: r,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   io.NopCloser(strings.NewReader(body)),
	}, nil
}

func TestEachSiteReachesItsHosts(t *testing.T) {
	s := newTestSink(t, Config{})
	rec := &hostRecorder{seen: map[string]map[string]string{}}
	s.dd.httpc.Transport = rec

	var ts []Tenant
	for i, e := range sites() {
		ts = append(ts, Tenant{ID: "org_" + e.region, Site: e.site, APIKey: Secret(fmt.Sprintf("key-%02d-000000000000000000000", i)), AppKey: "app-key-0000000000000000"})
	}
	s.SetTenants(ts)
	now := time.Now()
	var chans []<-chan Outcome
	for _, tn := range ts {
		chans = append(chans, deliver(t, s.Sink, closeBatch(tn.ID, now, 2, testSeries("gpt-4o"))))
	}
	for i, ch := range chans {
		if o := wait(t, ch, 5*time.Second); o != Delivered {
			t.Fatalf("%s: %v", ts[i].ID, o)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, tn := range ts {
		got := rec.seen[string(tn.APIKey)]
		want := map[string]string{
			"/api/v2/logs":          "https://http-intake.logs." + tn.Site.Name(),
			"/api/v2/series":        "https://api." + tn.Site.Name(),
			"/api/v1/validate":      "https://api." + tn.Site.Name(),
			"/api/v2/validate_keys": "https://api." + tn.Site.Name(),
		}
		for path, host := range want {
			if got[path] != host {
				t.Errorf("%s (%s): %s went to %q, want %q", tn.ID, tn.Site.Region(), path, got[path], host)
			}
		}
		if tn.Site.LogsHost() != strings.TrimPrefix(want["/api/v2/logs"], "https://") || tn.Site.APIHost() != strings.TrimPrefix(want["/api/v2/series"], "https://") {
			t.Errorf("%s: Site hosts %s %s disagree with the client", tn.ID, tn.Site.LogsHost(), tn.Site.APIHost())
		}
	}
}

func TestBaseURLSendsEverythingThere(t *testing.T) {
	dd := newFakeDD(t)
	s := newTestSink(t, Config{BaseURL: dd.srv.URL + "/prefix/"})
	s.SetTenants([]Tenant{{ID: "org_a", Site: SiteAP2, APIKey: keyA}})
	if o := wait(t, deliver(t, s.Sink, closeBatch("org_a", time.Now(), 1, testSeries("m"))), 5*time.Second); o != Delivered {
		t.Fatal(o)
	}
	paths := map[string]bool{}
	for _, r := range dd.requests("") {
		paths[r.path] = true
	}
	for _, p := range []string{"/prefix/api/v1/validate", "/prefix/api/v2/logs", "/prefix/api/v2/series"} {
		if !paths[p] {
			t.Errorf("nothing reached %s: %v", p, paths)
		}
	}
}
