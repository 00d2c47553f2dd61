package sink

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"

	"github.com/futureagi/prism-exporter/aggregate"
	"github.com/futureagi/prism-exporter/schemas"
	"github.com/futureagi/prism-exporter/sink/ddfake"
)

func testDashboardRequest() DashboardRequest {
	return DashboardRequest{IntegrationID: "dd_0123456789abcdef", OrgID: "org_b", SyncInterval: 5 * time.Minute}
}

// sentMetrics is what encodeSeriesFor sends: metric name -> series type.
func sentMetrics(t *testing.T) map[string]int {
	t.Helper()
	w := aggregate.Window{Start: time.Unix(1_700_000_000, 0), Length: time.Minute}
	enc := encodeSeriesFor(w, []aggregate.Series{testSeries("gpt-4o")})
	out := map[string]int{}
	for i := 0; i < enc.len(); i++ {
		var s struct {
			Metric string   `json:"metric"`
			Type   int      `json:"type"`
			Tags   []string `json:"tags"`
		}
		if err := json.Unmarshal(enc.item(i), &s); err != nil {
			t.Fatal(err)
		}
		out[s.Metric] = s.Type
	}
	return out
}

// sentTagKeys are the tag keys of the series.
func sentTagKeys(t *testing.T) map[string]bool {
	t.Helper()
	w := aggregate.Window{Start: time.Unix(1_700_000_000, 0), Length: time.Minute}
	enc := encodeSeriesFor(w, []aggregate.Series{testSeries("gpt-4o")})
	var s struct{ Tags []string }
	if err := json.Unmarshal(enc.item(0), &s); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, tg := range s.Tags {
		out[strings.SplitN(tg, ":", 2)[0]] = true
	}
	return out
}

// unparsed finds, anywhere in v, a client model that did not match its
// schema (UnparsedObject set): what Datadog's own client could not read.
func unparsed(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return unparsed(v.Elem(), path)
	case reflect.Slice, reflect.Array:
		var out []string
		for i := 0; i < v.Len(); i++ {
			out = append(out, unparsed(v.Index(i), path+"["+string(rune('0'+i%10))+"]")...)
		}
		return out
	case reflect.Struct:
		var out []string
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			if f.Name == "UnparsedObject" && !fv.IsZero() {
				out = append(out, path+": "+v.Type().Name())
				continue
			}
			out = append(out, unparsed(fv, path+"."+f.Name)...)
		}
		return out
	}
	return nil
}

// metricRef is a metric named in a query, and what follows its scope.
var metricRef = regexp.MustCompile(`(sum|avg|max|min):(prism\.gateway\.[a-z0-9_.]+)\{[^}]*\}((?: by \{[^}]*\})?)(\.as_count\(\))?`)

// checkQuery holds one query to what we send: the metric exists, a COUNT
// is summed and read .as_count(), a GAUGE is not; grouping keys are tags
// the series carry.
func checkQuery(t *testing.T, where, q string, sent map[string]int, keys map[string]bool) {
	t.Helper()
	refs := metricRef.FindAllStringSubmatch(q, -1)
	if len(refs) == 0 {
		t.Errorf("%s: query %q names no prism.gateway metric", where, q)
	}
	for _, m := range refs {
		agg, metric, by, asCount := m[1], m[2], m[3], m[4] != ""
		typ, ok := sent[metric]
		switch {
		case !ok:
			t.Errorf("%s: %q reads %s, which the exporter does not send", where, q, metric)
		case typ == seriesTypeCount && (!asCount || agg != "sum"):
			t.Errorf("%s: %q: %s is a COUNT: sum it and read it .as_count()", where, q, metric)
		case typ == seriesTypeGauge && (asCount || agg == "sum"):
			t.Errorf("%s: %q: %s is a GAUGE: average or max it, never sum or count it", where, q, metric)
		}
		for _, k := range regexp.MustCompile(`[a-z_]+`).FindAllString(strings.TrimPrefix(by, " by "), -1) {
			if !keys[k] {
				t.Errorf("%s: %q groups by %s, not a tag of the series", where, q, k)
			}
		}
	}
}

// TestDashboardTemplateAgainstClientModels: the dashboard and monitors read
// back through datadog-api-client-go's models without anything the client
// cannot parse, and every query reads a metric the exporter sends, the way
// its type needs.
func TestDashboardTemplateAgainstClientModels(t *testing.T) {
	req := testDashboardRequest()
	sent, keys := sentMetrics(t), sentTagKeys(t)

	raw, err := json.Marshal(dashboardTemplate(req, DefaultService))
	if err != nil {
		t.Fatal(err)
	}
	var d datadogV1.Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if bad := unparsed(reflect.ValueOf(d), "dashboard"); len(bad) > 0 {
		t.Fatalf("the client cannot parse: %v", bad)
	}
	if d.Title != "Prism gateway: org_b" || d.LayoutType != datadogV1.DASHBOARDLAYOUTTYPE_ORDERED ||
		!strings.Contains(*d.Description.Get(), req.IntegrationID) {
		t.Errorf("title %q layout %q description %q", d.Title, d.LayoutType, *d.Description.Get())
	}
	for _, tv := range d.TemplateVariables {
		if !keys[*tv.Prefix.Get()] {
			t.Errorf("template variable on %s, not a tag of the series", *tv.Prefix.Get())
		}
	}
	var queries, kinds []string
	var logQuery string
	var walk func(ws []datadogV1.Widget)
	walk = func(ws []datadogV1.Widget) {
		for _, w := range ws {
			def := w.Definition
			switch {
			case def.GroupWidgetDefinition != nil:
				walk(def.GroupWidgetDefinition.Widgets)
				continue
			case def.TimeseriesWidgetDefinition != nil:
				for _, r := range def.TimeseriesWidgetDefinition.Requests {
					for _, q := range r.Queries {
						queries = append(queries, q.FormulaAndFunctionMetricQueryDefinition.Query)
					}
				}
				kinds = append(kinds, "timeseries")
			case def.QueryValueWidgetDefinition != nil:
				for _, r := range def.QueryValueWidgetDefinition.Requests {
					for _, q := range r.Queries {
						queries = append(queries, q.FormulaAndFunctionMetricQueryDefinition.Query)
					}
				}
				kinds = append(kinds, "query_value")
			case def.ToplistWidgetDefinition != nil:
				for _, r := range def.ToplistWidgetDefinition.Requests {
					for _, q := range r.Queries {
						queries = append(queries, q.FormulaAndFunctionMetricQueryDefinition.Query)
					}
				}
				kinds = append(kinds, "toplist")
			case def.LogStreamWidgetDefinition != nil:
				logQuery = def.LogStreamWidgetDefinition.GetQuery()
				kinds = append(kinds, "log_stream")
			case def.NoteWidgetDefinition != nil:
				kinds = append(kinds, "note")
			default:
				t.Errorf("a widget of an unexpected kind: %T", def.GetActualInstance())
			}
		}
	}
	walk(d.Widgets)
	for _, q := range queries {
		checkQuery(t, "dashboard", q, sent, keys)
	}
	// What the issue asks the dashboard to show.
	all := strings.Join(queries, "\n")
	for _, want := range []string{metricRequests, metricErrors, metricLatencyAvg + "{", metricLatencyP95, metricLatencyP99,
		metricInput, metricOutput, metricCost, metricCacheHits, metricGuardrails, "by {model,provider}"} {
		if !strings.Contains(all, want) {
			t.Errorf("no widget reads %s", want)
		}
	}
	if !slices.Contains(kinds, "log_stream") {
		t.Fatal("no log stream")
	}

	// The log stream finds the logs logenc writes for a failed request.
	enc := &logEncoder{service: DefaultService}
	ev := &schemas.Event{RequestID: "r1", Model: "gpt-4o", Provider: "openai", StatusCode: 500, IsError: true, Timestamp: time.Unix(1_700_000_000, 0)}
	if ok, _ := enc.add(ev, 0); !ok {
		t.Fatal("encoding a log")
	}
	var lg map[string]any
	if err := json.Unmarshal(enc.item(0), &lg); err != nil {
		t.Fatal(err)
	}
	for _, term := range strings.Fields(logQuery) {
		k, v, _ := strings.Cut(term, ":")
		field := map[string]string{"source": "ddsource", "service": "service", "status": "status"}[k]
		if field == "" || lg[field] != v {
			t.Errorf("log stream term %q does not match a failed request's log (%s=%v)", term, field, lg[field])
		}
	}

	// Monitors: parsed by the client, queries read what we send, the
	// threshold in the query is the critical one, tags name the integration.
	for _, kind := range MonitorKinds() {
		raw, err := json.Marshal(monitorTemplate(req, kind))
		if err != nil {
			t.Fatal(err)
		}
		var m datadogV1.Monitor
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if bad := unparsed(reflect.ValueOf(m), kind); len(bad) > 0 {
			t.Fatalf("the client cannot parse monitor %s: %v", kind, bad)
		}
		checkQuery(t, kind, m.Query, sent, keys)
		if m.Type != datadogV1.MONITORTYPE_QUERY_ALERT || m.GetName() == "" || m.GetMessage() == "" ||
			!strings.Contains(m.GetName(), "org_b") || !strings.Contains(m.GetMessage(), req.IntegrationID) {
			t.Errorf("monitor %s: type %q name %q message %q", kind, m.Type, m.GetName(), m.GetMessage())
		}
		if !slices.Contains(m.Tags, "prism_integration:dd_0123456789abcdef") || !slices.Contains(m.Tags, "prism_monitor:"+kind) {
			t.Errorf("monitor %s tags %v", kind, m.Tags)
		}
		if crit := m.Options.Thresholds.GetCritical(); !strings.HasSuffix(m.Query, "> "+fmtThreshold(crit)) {
			t.Errorf("monitor %s: critical %v is not the query's threshold: %s", kind, crit, m.Query)
		}
		if upd := monitorUpdate(monitorTemplate(req, kind)); upd.GetQuery() != m.Query || upd.Options == nil {
			t.Errorf("monitor %s: the PUT body differs from the template", kind)
		}
	}
}

func TestMonitorThresholdsAndWindows(t *testing.T) {
	req := testDashboardRequest()
	req.Thresholds = MonitorThresholds{ErrorRate: 0.1, CostPerHour: 12.5}
	if q := monitorTemplate(req, MonitorErrorRate).Query; !strings.HasPrefix(q, "sum(last_10m):") || !strings.HasSuffix(q, "> 0.1") {
		t.Errorf("error rate: %s", q)
	}
	if q := monitorTemplate(req, MonitorCostBurn).Query; !strings.HasPrefix(q, "sum(last_1h):") || !strings.HasSuffix(q, "> 12.5") {
		t.Errorf("cost: %s", q)
	}
	if q := monitorTemplate(req, MonitorP95Latency).Query; !strings.HasSuffix(q, "> 5000") {
		t.Errorf("p95 keeps its default: %s", q)
	}
	req.SyncInterval = 30 * time.Minute
	m := monitorTemplate(req, MonitorErrorRate)
	if !strings.HasPrefix(m.Query, "sum(last_1h):") || m.Options.EvaluationDelay.Get() == nil || *m.Options.EvaluationDelay.Get() != 32*60 {
		t.Errorf("30m windows: %s, delay %v", m.Query, m.Options.EvaluationDelay.Get())
	}
	for _, bad := range []MonitorThresholds{{ErrorRate: 1.5}, {ErrorRate: -0.1}, {P95LatencyMS: -1}, {CostPerHour: 2e9}} {
		var te *ThresholdError
		if err := bad.Validate(); !errors.As(err, &te) || te.Field == "" {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if err := (MonitorThresholds{ErrorRate: 0.01, P95LatencyMS: 800, CostPerHour: 5}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestSiteAppURL(t *testing.T) {
	want := map[Site]string{
		SiteUS1: "https://app.datadoghq.com", SiteUS3: "https://us3.datadoghq.com", SiteUS5: "https://us5.datadoghq.com",
		SiteEU1: "https://app.datadoghq.eu", SiteAP1: "https://ap1.datadoghq.com", SiteAP2: "https://ap2.datadoghq.com",
		SiteUK1: "https://uk1.datadoghq.com", SiteUS1FED: "https://app.ddog-gov.com", SiteUS2FED: "https://us2.ddog-gov.com",
	}
	for _, s := range Sites() {
		if s.AppURL() != want[s] {
			t.Errorf("%s: %s, want %s", s.Region(), s.AppURL(), want[s])
		}
	}
	s := newTestSink(t, Config{})
	if got := s.appBase(SiteEU1); got != "https://app.datadoghq.eu" {
		t.Errorf("links without a base URL: %s", got)
	}
}

// TestEnsureDashboardAgainstStandIn: made once, found again on the next
// call, made again after a deletion in Datadog, updated in place (same id)
// when the template version is older.
func TestEnsureDashboardAgainstStandIn(t *testing.T) {
	dd, url := startFake(t)
	s := newTestSink(t, Config{BaseURL: url})
	ctx := context.Background()
	req := testDashboardRequest()
	var recorded []DashboardResult
	req.Record = func(_ context.Context, r DashboardResult) error { recorded = append(recorded, r); return nil }

	res, err := s.EnsureDashboard(ctx, SiteEU1, keyB, appKeyB, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Created) != 4 || len(recorded) != 4 || recorded[0].DashboardID == "" {
		t.Errorf("created %v, recorded %d times", res.Created, len(recorded))
	}
	boards, mons := dd.Dashboards("org_b"), dd.Monitors("org_b")
	if len(boards) != 1 || len(mons) != 3 {
		t.Fatalf("%d dashboards, %d monitors", len(boards), len(mons))
	}
	if res.DashboardID != boards[0].ID || res.DashboardURL != url+boards[0].URL {
		t.Errorf("dashboard %s %s, stored %s %s", res.DashboardID, res.DashboardURL, boards[0].ID, boards[0].URL)
	}
	for _, kind := range MonitorKinds() {
		if id := res.MonitorIDs[kind]; id == 0 || res.MonitorURLs[kind] != url+"/monitors/"+strconv.FormatInt(id, 10) {
			t.Errorf("monitor %s: %d %s", kind, id, res.MonitorURLs[kind])
		}
	}

	// Asked again with the ids: nothing made, nothing changed.
	req.DashboardID, req.MonitorIDs, req.TemplateVersion = res.DashboardID, res.MonitorIDs, DashboardTemplateVersion
	again, err := s.EnsureDashboard(ctx, SiteEU1, keyB, appKeyB, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Created)+len(again.Updated)+len(again.Recreated) != 0 || again.DashboardURL != res.DashboardURL {
		t.Errorf("second call: %+v", again)
	}

	// Deleted in Datadog: made again, once.
	dd.DeleteDashboard("org_b", res.DashboardID)
	dd.DeleteMonitor("org_b", res.MonitorIDs[MonitorCostBurn])
	again, err = s.EnsureDashboard(ctx, SiteEU1, keyB, appKeyB, req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.Recreated, []string{"dashboard", "monitor:" + MonitorCostBurn}) || again.DashboardID == res.DashboardID {
		t.Errorf("after deletions: %+v", again)
	}
	if len(dd.Dashboards("org_b")) != 1 || len(dd.Monitors("org_b")) != 3 {
		t.Fatalf("%d dashboards, %d monitors", len(dd.Dashboards("org_b")), len(dd.Monitors("org_b")))
	}

	// An older template: updated in place.
	req.DashboardID, req.MonitorIDs, req.TemplateVersion = again.DashboardID, again.MonitorIDs, DashboardTemplateVersion-1
	up, err := s.EnsureDashboard(ctx, SiteEU1, keyB, appKeyB, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(up.Updated) != 4 || len(up.Created)+len(up.Recreated) != 0 || up.DashboardID != again.DashboardID {
		t.Errorf("template bump: %+v", up)
	}
	if b := dd.Dashboards("org_b"); len(b) != 1 || b[0].Updates != 1 || b[0].ID != again.DashboardID {
		t.Errorf("dashboard after the bump: %+v", b)
	}
	for _, m := range dd.Monitors("org_b") {
		if m.Updates != 1 {
			t.Errorf("monitor %d updated %d times", m.ID, m.Updates)
		}
	}

	// New thresholds: the monitors are refitted in place.
	req.TemplateVersion, req.Refit, req.Thresholds = DashboardTemplateVersion, true, MonitorThresholds{ErrorRate: 0.2}
	if up, err = s.EnsureDashboard(ctx, SiteEU1, keyB, appKeyB, req); err != nil || len(up.Updated) != 3 {
		t.Fatalf("refit: %+v %v", up, err)
	}
	if m := dd.Monitors("org_b")[0]; !strings.HasSuffix(m.Query, "> 0.2") {
		t.Errorf("error rate monitor after the refit: %s", m.Query)
	}

	// A monitor made by a call that died before storing its id is found
	// by its tags, not made twice.
	req.MonitorIDs = map[string]int64{}
	req.Refit = false
	found, err := s.EnsureDashboard(ctx, SiteEU1, keyB, appKeyB, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Created) != 0 || len(found.Recreated) != 3 || len(dd.Monitors("org_b")) != 3 {
		t.Errorf("lost ids: %+v, %d monitors", found, len(dd.Monitors("org_b")))
	}
}

func TestEnsureDashboardErrors(t *testing.T) {
	dd, url := startFake(t)
	s := newTestSink(t, Config{BaseURL: url})
	ctx := context.Background()
	req := testDashboardRequest()

	if _, err := s.EnsureDashboard(ctx, SiteEU1, keyB, "", req); !errors.Is(err, ErrNoAppKey) {
		t.Errorf("no app key: %v", err)
	}
	wrong := Secret("0123456789abcdef0123456789abcdef01234567")
	_, err := s.EnsureDashboard(ctx, SiteEU1, keyB, wrong, req)
	var de *DashboardError
	if !errors.Is(err, ErrAppKeyForbidden) || !errors.As(err, &de) || de.Status != 403 {
		t.Errorf("wrong app key: %v", err)
	}
	if err != nil && (strings.Contains(err.Error(), string(wrong)) || strings.Contains(err.Error(), keyB)) {
		t.Errorf("a key in the error: %v", err)
	}
	if !strings.Contains(err.Error(), "dashboards_write") {
		t.Errorf("the error does not say what the key needs: %v", err)
	}

	dd.SetFault(ddfake.Fault{Path: "/api/v1/dashboard", Status: 503})
	if _, err := s.EnsureDashboard(ctx, SiteEU1, keyB, appKeyB, req); !errors.Is(err, ErrDatadogUnavailable) {
		t.Errorf("503: %v", err)
	}
	if n := len(dd.Requests()); n != 1+dashboardTries {
		t.Errorf("%d requests, want 1 refused and %d tries", n, dashboardTries)
	}
	dd.ClearFaults()
	dd.SetFault(ddfake.Fault{Path: "/api/v1/dashboard", Status: 500, Count: 1})
	if _, err := s.EnsureDashboard(ctx, SiteEU1, keyB, appKeyB, req); err != nil {
		t.Errorf("one 500 is tried again: %v", err)
	}
	dd.SetFault(ddfake.Fault{Path: "/api/v1/monitor", Status: 400, Count: 1})
	res, err := s.EnsureDashboard(ctx, SiteEU1, keyB, appKeyB, req)
	if !errors.Is(err, ErrTemplateRefused) || res.DashboardID == "" {
		t.Errorf("400: %v, result %+v", err, res)
	}
}
