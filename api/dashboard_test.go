package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/futureagi/prism-exporter/sink/ddfake"
)

// dashboardWorld is newWorld and the stand-in's URL, where the links
// point: org_a's account takes appKeyA, org_b has no application key.
func dashboardWorld(t *testing.T) (*world, string) {
	w := newWorld(t)
	return w, w.ddURL
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

func TestDashboardEndpoint(t *testing.T) {
	w, ddURL := dashboardWorld(t)
	in := w.create("acme", map[string]any{"site": "US1", "api_key": keyA, "app_key": appKeyA})
	id := in["id"].(string)
	if in["dashboard"] != nil {
		t.Errorf("a dashboard before one was asked for: %v", in["dashboard"])
	}
	path := "/api/v1/integrations/" + id + "/dashboard"

	st, out := w.call("POST", path, "acme-ro", nil)
	w.wantError(st, out, 403, "forbidden", "")
	st, out = w.call("POST", path, "bravo", nil)
	w.wantError(st, out, 404, "not_found", "")
	st, out = w.call("POST", "/api/v1/integrations/dd_nope/dashboard", "ops", nil)
	w.wantError(st, out, 404, "not_found", "")
	for _, c := range []struct {
		body  any
		code  string
		field string
	}{
		{map[string]any{"monitors": map[string]any{"error_rate": 2}}, "invalid_field", "monitors.error_rate"},
		{map[string]any{"monitors": map[string]any{"error_rate": "5%"}}, "invalid_field", "monitors.error_rate"},
		{map[string]any{"monitors": map[string]any{"p95_latency_ms": 0}}, "invalid_field", "monitors.p95_latency_ms"},
		{map[string]any{"monitors": map[string]any{"cost_per_hour": -3}}, "invalid_field", "monitors.cost_per_hour"},
		{map[string]any{"monitors": map[string]any{"cost_per_day": 3}}, "unknown_field", "cost_per_day"},
		{map[string]any{"dashboard": true}, "unknown_field", "dashboard"},
		{"[1]", "invalid_json", ""},
	} {
		st, out = w.call("POST", path, "acme", c.body)
		w.wantError(st, out, 400, c.code, c.field)
	}
	if n := len(w.dd.Dashboards("org_a")); n != 0 {
		t.Fatalf("bad requests made %d dashboards", n)
	}

	// No body: made with the defaults.
	st, out = w.call("POST", path, "acme", nil)
	if st != http.StatusCreated {
		t.Fatalf("first POST: %d %v", st, out)
	}
	boards := w.dd.Dashboards("org_a")
	if len(boards) != 1 || len(w.dd.Monitors("org_a")) != 3 {
		t.Fatalf("%d dashboards, %d monitors", len(boards), len(w.dd.Monitors("org_a")))
	}
	if dig(out, "dashboard", "id") != boards[0].ID || dig(out, "dashboard", "url") != ddURL+boards[0].URL {
		t.Errorf("answer %v, stored %s %s", out["dashboard"], boards[0].ID, boards[0].URL)
	}
	for kind, th := range map[string]float64{"error_rate": 0.05, "p95_latency": 5000, "cost_burn": 50} {
		m := dig(out, "dashboard", "monitors", kind)
		if u, _ := dig(m, "url").(string); !strings.HasPrefix(u, ddURL+"/monitors/") || dig(m, "threshold") != th {
			t.Errorf("monitor %s: %v", kind, m)
		}
	}
	if len(out["created"].([]any)) != 4 {
		t.Errorf("created %v", out["created"])
	}

	// Again: the same, nothing made.
	st, out = w.call("POST", path, "acme", "")
	if st != http.StatusOK || dig(out, "dashboard", "id") != boards[0].ID || len(out["created"].([]any)) != 0 {
		t.Errorf("second POST: %d %v", st, out)
	}
	st, got := w.call("GET", "/api/v1/integrations/"+id, "acme-ro", nil)
	if st != 200 || dig(got, "dashboard", "url") != ddURL+boards[0].URL {
		t.Errorf("the integration's view: %v", got["dashboard"])
	}

	// New thresholds: the monitors follow in place.
	st, out = w.call("POST", path, "acme", map[string]any{"monitors": map[string]any{"error_rate": 0.1}})
	if st != http.StatusOK || len(out["updated"].([]any)) != 3 || dig(out, "dashboard", "thresholds", "error_rate") != 0.1 {
		t.Errorf("thresholds: %d %v", st, out)
	}
	if q := w.dd.Monitors("org_a")[0].Query; !strings.HasSuffix(q, "> 0.1") {
		t.Errorf("error rate monitor: %s", q)
	}

	// Deleted in Datadog: made again.
	w.dd.DeleteDashboard("org_a", boards[0].ID)
	st, out = w.call("POST", path, "acme", nil)
	if st != http.StatusCreated || dig(out, "dashboard", "id") == boards[0].ID || len(w.dd.Dashboards("org_a")) != 1 {
		t.Errorf("after a deletion: %d %v", st, out)
	}

	// Datadog refusing or away.
	w.dd.SetFault(ddfake.Fault{Path: "/api/v1/dashboard", Status: 503})
	st, out = w.call("POST", path, "acme", nil)
	w.wantError(st, out, 503, "datadog_unreachable", "")
	w.dd.ClearFaults()
	w.dd.RevokeAppKey(appKeyA)
	st, out = w.call("POST", path, "acme", nil)
	w.wantError(st, out, 422, "app_key_forbidden", "app_key")
	if msg, _ := dig(out, "error", "message").(string); !strings.Contains(msg, "dashboards_write") || !strings.Contains(msg, "monitors_write") {
		t.Errorf("message %q", msg)
	}
	w.checkNoSecrets()
}

func TestDashboardNeedsAnAppKey(t *testing.T) {
	w, _ := dashboardWorld(t)
	in := w.create("bravo", map[string]any{"site": "US1", "api_key": keyB})
	st, out := w.call("POST", "/api/v1/integrations/"+in["id"].(string)+"/dashboard", "bravo", nil)
	w.wantError(st, out, 422, "app_key_required", "app_key")
	if msg, _ := dig(out, "error", "message").(string); !strings.Contains(msg, "dashboards_write") {
		t.Errorf("message %q", msg)
	}
	st, out = w.call("DELETE", "/api/v1/integrations/"+in["id"].(string), "bravo", nil)
	if st != http.StatusNoContent {
		t.Fatalf("delete: %d %v", st, out)
	}
	// At connect time: refused before anything is stored.
	st, out = w.call("POST", "/api/v1/integrations", "bravo", map[string]any{"site": "US1", "api_key": keyB, "create_dashboard": true})
	w.wantError(st, out, 422, "app_key_required", "app_key")
	st, out = w.call("POST", "/api/v1/integrations", "bravo", map[string]any{"site": "US1", "api_key": keyB, "monitors": map[string]any{"error_rate": 0.1}})
	w.wantError(st, out, 400, "invalid_field", "monitors")
	if _, list := w.call("GET", "/api/v1/integrations", "bravo", nil); len(list["integrations"].([]any)) != 0 {
		t.Errorf("an integration was stored: %v", list)
	}
}

func TestCreateWithDashboard(t *testing.T) {
	w, ddURL := dashboardWorld(t)
	out := w.create("acme", map[string]any{"site": "US1", "api_key": keyA, "app_key": appKeyA,
		"create_dashboard": true, "monitors": map[string]any{"cost_per_hour": 20}})
	if out["dashboard_error"] != nil {
		t.Fatalf("dashboard_error %v", out["dashboard_error"])
	}
	if u, _ := dig(out, "dashboard", "url").(string); !strings.HasPrefix(u, ddURL+"/dashboard/") || dig(out, "dashboard", "monitors", "cost_burn", "threshold") != 20.0 {
		t.Errorf("dashboard %v", out["dashboard"])
	}
	if len(w.dd.Dashboards("org_a")) != 1 || len(w.dd.Monitors("org_a")) != 3 {
		t.Errorf("%d dashboards, %d monitors", len(w.dd.Dashboards("org_a")), len(w.dd.Monitors("org_a")))
	}

	// Datadog away at connect time: the integration is made, the
	// dashboard's failure said beside it.
	w2, _ := dashboardWorld(t)
	w2.dd.SetFault(ddfake.Fault{Path: "/api/v1/dashboard", Status: 503})
	out = w2.create("acme", map[string]any{"site": "US1", "api_key": keyA, "app_key": appKeyA, "create_dashboard": true})
	if dig(out, "dashboard_error", "code") != "datadog_unreachable" || out["id"] == nil || out["dashboard"] != nil {
		t.Errorf("answer %v", out)
	}
}
