package ddfake

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var acmeKeys = map[string]string{"DD-API-KEY": "api-acme", "DD-APPLICATION-KEY": "app-acme", "Content-Type": "application/json"}

func call(t *testing.T, method, url string, body any, h map[string]string) (reply, map[string]any) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case string:
		b = []byte(v)
	default:
		b = mustJSON(t, v)
	}
	r, err := do(t, method, url, b, h)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	_ = json.Unmarshal([]byte(r.body), &obj)
	return r, obj
}

func testDashboard(title string) map[string]any {
	return map[string]any{
		"title": title, "layout_type": "ordered",
		"widgets": []any{
			map[string]any{"definition": map[string]any{"type": "note", "content": "hello"}},
			map[string]any{"definition": map[string]any{"type": "group", "layout_type": "ordered", "widgets": []any{
				map[string]any{"definition": map[string]any{"type": "timeseries", "requests": []any{map[string]any{
					"queries": []any{
						map[string]any{"data_source": "metrics", "name": "errors", "query": "sum:prism.gateway.errors{*}.as_count()"},
						map[string]any{"data_source": "metrics", "name": "requests", "query": "sum:prism.gateway.requests{*}.as_count()"},
					},
					"formulas": []any{map[string]any{"formula": "100 * errors / requests"}},
				}}}},
			}}},
		},
	}
}

func testMonitor(threshold float64) map[string]any {
	return map[string]any{
		"name": "error rate", "type": "query alert", "message": "too many errors",
		"query":   "sum(last_10m):sum:prism.gateway.errors{*}.as_count() / sum:prism.gateway.requests{*}.as_count() > " + strconv.FormatFloat(threshold, 'f', -1, 64),
		"tags":    []any{"prism_integration:dd_1", "prism_monitor:error_rate"},
		"options": map[string]any{"thresholds": map[string]any{"critical": threshold}},
	}
}

func TestDashboardLifecycle(t *testing.T) {
	s, url := start(t)
	r, d := call(t, "POST", url+"/api/v1/dashboard", testDashboard("Prism gateway: org_acme"), acmeKeys)
	wantStatus(t, r, 200)
	id, _ := d["id"].(string)
	if !regexp.MustCompile(`^[a-z0-9]{3}-[a-z0-9]{3}-[a-z0-9]{3}$`).MatchString(id) {
		t.Fatalf("id %q is not shaped like Datadog's", id)
	}
	if d["url"] != "/dashboard/"+id+"/prism-gateway-org-acme" || d["created_at"] == nil || d["author_handle"] == nil {
		t.Errorf("answer %v", d)
	}
	w := d["widgets"].([]any)[1].(map[string]any)
	if w["id"] == nil || w["definition"].(map[string]any)["widgets"].([]any)[0].(map[string]any)["id"] == nil {
		t.Errorf("widgets have no ids: %v", w)
	}

	r, got := call(t, "GET", url+"/api/v1/dashboard/"+id, nil, acmeKeys)
	wantStatus(t, r, 200)
	if got["title"] != "Prism gateway: org_acme" {
		t.Errorf("GET %v", got)
	}
	r, got = call(t, "PUT", url+"/api/v1/dashboard/"+id, testDashboard("Renamed"), acmeKeys)
	wantStatus(t, r, 200)
	if got["id"] != id || got["url"] != "/dashboard/"+id+"/renamed" || got["created_at"] != d["created_at"] {
		t.Errorf("PUT %v", got)
	}
	if ds := s.Dashboards("acme"); len(ds) != 1 || ds[0].Updates != 1 || ds[0].Title != "Renamed" {
		t.Errorf("read back %+v", ds)
	}
	// Another account's keys do not see it.
	r, _ = call(t, "GET", url+"/api/v1/dashboard/"+id, nil, map[string]string{"DD-API-KEY": "api-globex", "DD-APPLICATION-KEY": "app-globex"})
	wantStatus(t, r, 404)

	r, got = call(t, "DELETE", url+"/api/v1/dashboard/"+id, nil, acmeKeys)
	wantStatus(t, r, 200)
	if got["deleted_dashboard_id"] != id {
		t.Errorf("DELETE %v", got)
	}
	for _, m := range []string{"GET", "DELETE"} {
		r, got = call(t, m, url+"/api/v1/dashboard/"+id, nil, acmeKeys)
		wantStatus(t, r, 404)
		if errs, _ := got["errors"].([]any); len(errs) != 1 {
			t.Errorf("404 body %q", r.body)
		}
	}
	r, _ = call(t, "PUT", url+"/api/v1/dashboard/"+id, testDashboard("x"), acmeKeys)
	wantStatus(t, r, 404)

	// The read-back helper deletes as a person in the web app would.
	_, d = call(t, "POST", url+"/api/v1/dashboard", testDashboard("Again"), acmeKeys)
	id2 := d["id"].(string)
	if id2 == id || !s.DeleteDashboard("acme", id2) || s.DeleteDashboard("acme", id2) {
		t.Fatalf("second id %q, or DeleteDashboard", id2)
	}
	r, _ = call(t, "GET", url+"/api/v1/dashboard/"+id2, nil, acmeKeys)
	wantStatus(t, r, 404)
}

func TestDashboardValidation(t *testing.T) {
	_, url := start(t)
	with := func(k string, v any) map[string]any {
		d := testDashboard("t")
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
		return d
	}
	badFormula := testDashboard("t")
	badFormula["widgets"].([]any)[1].(map[string]any)["definition"].(map[string]any)["widgets"].([]any)[0].(map[string]any)["definition"].(map[string]any)["requests"].([]any)[0].(map[string]any)["formulas"] =
		[]any{map[string]any{"formula": "errors / request"}}
	for name, body := range map[string]any{
		"no title":          with("title", nil),
		"empty title":       with("title", " "),
		"no layout":         with("layout_type", nil),
		"bad layout":        with("layout_type", "grid"),
		"no widgets":        with("widgets", nil),
		"unknown widget":    with("widgets", []any{map[string]any{"definition": map[string]any{"type": "pie"}}}),
		"no requests":       with("widgets", []any{map[string]any{"definition": map[string]any{"type": "timeseries"}}}),
		"free without xy":   with("layout_type", "free"),
		"free-form tag":     with("tags", []any{"prism_integration:dd_1"}),
		"six tags":          with("tags", []any{"team:a", "team:b", "team:c", "team:d", "team:e", "team:f"}),
		"formula typo":      badFormula,
		"not an object":     `[]`,
		"not JSON":          `{`,
		"template var name": with("template_variables", []any{map[string]any{"prefix": "model"}}),
	} {
		r, got := call(t, "POST", url+"/api/v1/dashboard", body, acmeKeys)
		if r.status != 400 {
			t.Errorf("%s: status %d, want 400 (%s)", name, r.status, r.body)
			continue
		}
		if errs, _ := got["errors"].([]any); len(errs) != 1 {
			t.Errorf("%s: body %q is not {\"errors\":[...]}", name, r.body)
		}
	}
	r, _ := call(t, "POST", url+"/api/v1/dashboard", with("tags", []any{"team:llm"}), acmeKeys)
	wantStatus(t, r, 200)
}

func TestBoardsNeedBothKeys(t *testing.T) {
	s, url := start(t)
	for _, h := range []map[string]string{
		{"DD-API-KEY": "api-acme"},
		{"DD-API-KEY": "api-acme", "DD-APPLICATION-KEY": "app-globex"},
		{"DD-APPLICATION-KEY": "app-acme"},
	} {
		for _, p := range []string{"/api/v1/dashboard", "/api/v1/monitor"} {
			r, _ := call(t, "POST", url+p, testDashboard("t"), h)
			wantStatus(t, r, 403)
			if r.body != `{"errors":["Forbidden"]}` {
				t.Errorf("body %q", r.body)
			}
		}
	}
	if len(s.Dashboards("acme")) != 0 || len(s.Monitors("acme")) != 0 {
		t.Error("something was stored without both keys")
	}
	r, _ := call(t, "GET", url+"/api/v1/dashboard", nil, acmeKeys)
	wantStatus(t, r, 405)
	if r.header.Get("Allow") != "POST" {
		t.Errorf("Allow %q", r.header.Get("Allow"))
	}
}

func TestMonitorLifecycle(t *testing.T) {
	s, url := start(t)
	r, m := call(t, "POST", url+"/api/v1/monitor", testMonitor(0.05), acmeKeys)
	wantStatus(t, r, 200)
	id, ok := m["id"].(float64)
	if !ok || id != float64(int64(id)) || m["overall_state"] == nil || m["creator"] == nil {
		t.Fatalf("answer %v", m)
	}
	other := testMonitor(0.1)
	other["tags"] = []any{"prism_integration:dd_2", "prism_monitor:error_rate"}
	_, m2 := call(t, "POST", url+"/api/v1/monitor", other, acmeKeys)
	path := url + "/api/v1/monitor/" + strconv.FormatInt(int64(id), 10)

	list := func(query string) []any {
		t.Helper()
		r, err := do(t, "GET", url+"/api/v1/monitor"+query, nil, acmeKeys)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, r, 200)
		var out []any
		if err := json.Unmarshal([]byte(r.body), &out); err != nil {
			t.Fatalf("list body %q", r.body)
		}
		return out
	}
	if got := list(""); len(got) != 2 {
		t.Errorf("all: %d monitors", len(got))
	}
	got := list("?monitor_tags=prism_integration:dd_1,prism_monitor:error_rate")
	if len(got) != 1 || got[0].(map[string]any)["id"] != id {
		t.Errorf("by tags: %v", got)
	}
	if got := list("?monitor_tags=prism_integration:dd_1,prism_monitor:p95_latency"); len(got) != 0 {
		t.Errorf("every tag must match: %v", got)
	}
	if got := list("?page=1&page_size=1"); len(got) != 1 || got[0].(map[string]any)["id"] != m2["id"] {
		t.Errorf("page 1: %v", got)
	}

	// PUT merges the given fields, checks the result, keeps the id.
	r, m = call(t, "PUT", path, map[string]any{
		"query":   strings.Replace(testMonitor(0.05)["query"].(string), "> 0.05", "> 0.2", 1),
		"options": map[string]any{"thresholds": map[string]any{"critical": 0.2}},
	}, acmeKeys)
	wantStatus(t, r, 200)
	if m["id"] != id || m["name"] != "error rate" || !strings.HasSuffix(m["query"].(string), "> 0.2") {
		t.Errorf("PUT %v", m)
	}
	r, _ = call(t, "PUT", path, map[string]any{"type": "log alert"}, acmeKeys)
	wantStatus(t, r, 400)
	r, _ = call(t, "PUT", path, map[string]any{"options": map[string]any{"thresholds": map[string]any{"critical": 0.3}}}, acmeKeys)
	wantStatus(t, r, 400) // no longer the query's threshold
	if ms := s.Monitors("acme"); len(ms) != 2 || ms[0].Updates != 1 || ms[0].Tags[1] != "prism_monitor:error_rate" {
		t.Errorf("read back %+v", ms)
	}

	r, m = call(t, "DELETE", path, nil, acmeKeys)
	wantStatus(t, r, 200)
	if m["deleted_monitor_id"] != id {
		t.Errorf("DELETE %v", m)
	}
	for _, p := range []string{path, url + "/api/v1/monitor/not-a-number"} {
		r, _ = call(t, "GET", p, nil, acmeKeys)
		wantStatus(t, r, 404)
	}
	if !s.DeleteMonitor("acme", int64(m2["id"].(float64))) || len(list("")) != 0 {
		t.Error("DeleteMonitor")
	}
}

func TestMonitorValidation(t *testing.T) {
	_, url := start(t)
	with := func(k string, v any) map[string]any {
		m := testMonitor(0.05)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for name, body := range map[string]any{
		"no type":           with("type", nil),
		"unknown type":      with("type", "metric"),
		"no query":          with("query", nil),
		"no comparison":     with("query", "sum(last_10m):sum:prism.gateway.errors{*}.as_count()"),
		"no time window":    with("query", "sum:prism.gateway.errors{*}.as_count() > 1"),
		"threshold differs": with("options", map[string]any{"thresholds": map[string]any{"critical": 0.5}}),
		"priority 9":        with("priority", 9),
		"tags not strings":  with("tags", []any{1}),
	} {
		r, got := call(t, "POST", url+"/api/v1/monitor", body, acmeKeys)
		if r.status != 400 {
			t.Errorf("%s: status %d, want 400 (%s)", name, r.status, r.body)
			continue
		}
		if errs, _ := got["errors"].([]any); len(errs) != 1 {
			t.Errorf("%s: body %q", name, r.body)
		}
	}
	// The schema requires type and query only.
	r, _ := call(t, "POST", url+"/api/v1/monitor", with("name", nil), acmeKeys)
	wantStatus(t, r, 200)
}

func TestBoardFaults(t *testing.T) {
	s, url := start(t)
	s.SetFault(Fault{Path: "/api/v1/dashboard", Status: 503, Count: 1})
	r, _ := call(t, "POST", url+"/api/v1/dashboard", testDashboard("t"), acmeKeys)
	wantStatus(t, r, 503)
	r, _ = call(t, "POST", url+"/api/v1/dashboard", testDashboard("t"), acmeKeys)
	wantStatus(t, r, 200)
	if r.header.Get("X-RateLimit-Name") != "dashboards" {
		t.Errorf("rate-limit name %q", r.header.Get("X-RateLimit-Name"))
	}
}
