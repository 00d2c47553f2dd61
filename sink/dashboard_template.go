package sink

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
)

// DashboardTemplateVersion is the version of the dashboard and monitors
// this build makes. Raise it with any change to dashboardTemplate or
// monitorTemplate: a dashboard or monitor stored with an older version is
// updated in place (PUT, same id) the next time it is asked for.
const DashboardTemplateVersion = 1

// The recommended monitors, by the key their ids are stored under.
const (
	MonitorErrorRate  = "error_rate"
	MonitorP95Latency = "p95_latency"
	MonitorCostBurn   = "cost_burn"
)

// MonitorKinds lists the recommended monitors, in the order they are made.
func MonitorKinds() []string { return []string{MonitorErrorRate, MonitorP95Latency, MonitorCostBurn} }

// The queries below read what encodeSeriesFor sends (a test holds them to
// it): COUNT metrics summed per window, read with .as_count() so that a
// sum over time means requests, not a rate; latency GAUGEs, one value per
// window and tag set, which are averaged or maxed, never summed. The tag
// keys are those of the series (model, provider, gateway, routing); the
// logs are ddsource futureagi with status error or info (logenc.go).
const (
	metricRequests   = "prism.gateway.requests"
	metricErrors     = "prism.gateway.errors"
	metricInput      = "prism.gateway.input_tokens"
	metricOutput     = "prism.gateway.output_tokens"
	metricCost       = "prism.gateway.cost"
	metricCacheHits  = "prism.gateway.cache_hits"
	metricGuardrails = "prism.gateway.guardrail_triggers"
	metricFallbacks  = "prism.gateway.fallbacks"
	metricLatencyAvg = "prism.gateway.latency_ms"
	metricLatencyP95 = "prism.gateway.latency_ms.p95"
	metricLatencyP99 = "prism.gateway.latency_ms.p99"
	logSource        = "futureagi"
)

// dashboardScope is every widget's filter: the dashboard's template
// variables, so that one model, provider or gateway can be picked.
const dashboardScope = "{$model,$provider,$gateway}"

// countQuery reads a COUNT metric: summed over tag sets, as counts.
func countQuery(metric, by string) string {
	return "sum:" + metric + dashboardScope + by + ".as_count()"
}

// gaugeQuery reads a latency GAUGE with agg over tag sets.
func gaugeQuery(agg, metric, by string) string {
	return agg + ":" + metric + dashboardScope + by
}

type namedQuery struct{ name, query string }

func metricQueries(agg *datadogV1.FormulaAndFunctionMetricAggregation, qs ...namedQuery) []datadogV1.FormulaAndFunctionQueryDefinition {
	out := make([]datadogV1.FormulaAndFunctionQueryDefinition, len(qs))
	for i, q := range qs {
		def := datadogV1.FormulaAndFunctionMetricQueryDefinition{
			DataSource: datadogV1.FORMULAANDFUNCTIONMETRICDATASOURCE_METRICS,
			Name:       q.name,
			Query:      q.query,
			Aggregator: agg,
		}
		out[i] = datadogV1.FormulaAndFunctionMetricQueryDefinitionAsFormulaAndFunctionQueryDefinition(&def)
	}
	return out
}

func formulas(fs ...[2]string) []datadogV1.WidgetFormula {
	out := make([]datadogV1.WidgetFormula, len(fs))
	for i, f := range fs {
		out[i] = datadogV1.WidgetFormula{Formula: f[0]}
		if f[1] != "" {
			out[i].Alias = datadog.PtrString(f[1])
		}
	}
	return out
}

func timeseries(title string, display datadogV1.WidgetDisplayType, fs []datadogV1.WidgetFormula, qs ...namedQuery) datadogV1.Widget {
	def := datadogV1.TimeseriesWidgetDefinition{
		Type:       datadogV1.TIMESERIESWIDGETDEFINITIONTYPE_TIMESERIES,
		Title:      datadog.PtrString(title),
		ShowLegend: datadog.PtrBool(true),
		Requests: []datadogV1.TimeseriesWidgetRequest{{
			Queries:        metricQueries(nil, qs...),
			Formulas:       fs,
			ResponseFormat: datadogV1.FORMULAANDFUNCTIONRESPONSEFORMAT_TIMESERIES.Ptr(),
			DisplayType:    display.Ptr(),
		}},
	}
	return datadogV1.Widget{Definition: datadogV1.TimeseriesWidgetDefinitionAsWidgetDefinition(&def)}
}

func queryValue(title, formula string, precision int64, qs ...namedQuery) datadogV1.Widget {
	def := datadogV1.QueryValueWidgetDefinition{
		Type:      datadogV1.QUERYVALUEWIDGETDEFINITIONTYPE_QUERY_VALUE,
		Title:     datadog.PtrString(title),
		Precision: datadog.PtrInt64(precision),
		Autoscale: datadog.PtrBool(true),
		Requests: []datadogV1.QueryValueWidgetRequest{{
			Queries:        metricQueries(datadogV1.FORMULAANDFUNCTIONMETRICAGGREGATION_SUM.Ptr(), qs...),
			Formulas:       formulas([2]string{formula, ""}),
			ResponseFormat: datadogV1.FORMULAANDFUNCTIONRESPONSEFORMAT_SCALAR.Ptr(),
		}},
	}
	return datadogV1.Widget{Definition: datadogV1.QueryValueWidgetDefinitionAsWidgetDefinition(&def)}
}

func toplist(title, formula string, qs ...namedQuery) datadogV1.Widget {
	def := datadogV1.ToplistWidgetDefinition{
		Type:  datadogV1.TOPLISTWIDGETDEFINITIONTYPE_TOPLIST,
		Title: datadog.PtrString(title),
		Requests: []datadogV1.ToplistWidgetRequest{{
			Queries:        metricQueries(datadogV1.FORMULAANDFUNCTIONMETRICAGGREGATION_SUM.Ptr(), qs...),
			Formulas:       formulas([2]string{formula, ""}),
			ResponseFormat: datadogV1.FORMULAANDFUNCTIONRESPONSEFORMAT_SCALAR.Ptr(),
		}},
	}
	return datadogV1.Widget{Definition: datadogV1.ToplistWidgetDefinitionAsWidgetDefinition(&def)}
}

func group(title string, widgets ...datadogV1.Widget) datadogV1.Widget {
	def := datadogV1.GroupWidgetDefinition{
		Type:       datadogV1.GROUPWIDGETDEFINITIONTYPE_GROUP,
		LayoutType: datadogV1.WIDGETLAYOUTTYPE_ORDERED,
		Title:      datadog.PtrString(title),
		ShowTitle:  datadog.PtrBool(true),
		Widgets:    widgets,
	}
	return datadogV1.Widget{Definition: datadogV1.GroupWidgetDefinitionAsWidgetDefinition(&def)}
}

// dashboardTitle names the org, so that a person with several
// organisations' dashboards in one account tells them apart.
func dashboardTitle(org string) string { return "Prism gateway: " + org }

// errorLogQuery finds the failed requests' logs (logenc.go writes status
// error for them).
func errorLogQuery(service string) string {
	return "source:" + logSource + " service:" + service + " status:error"
}

// dashboardTemplate is the dashboard of one integration: traffic, latency,
// tokens and cost, cache and guardrails, and the failed requests' logs.
func dashboardTemplate(req DashboardRequest, service string) datadogV1.Dashboard {
	var (
		requests = namedQuery{"requests", countQuery(metricRequests, "")}
		errs     = namedQuery{"errors", countQuery(metricErrors, "")}
		cost     = namedQuery{"cost", countQuery(metricCost, "")}
		bars     = datadogV1.WIDGETDISPLAYTYPE_BARS
		line     = datadogV1.WIDGETDISPLAYTYPE_LINE
	)
	logs := datadogV1.LogStreamWidgetDefinition{
		Type:              datadogV1.LOGSTREAMWIDGETDEFINITIONTYPE_LOG_STREAM,
		Title:             datadog.PtrString("Failed requests (logs)"),
		Query:             datadog.PtrString(errorLogQuery(service)),
		Columns:           []string{"provider", "model", "status_code", "error_code", "latency_ms"},
		ShowDateColumn:    datadog.PtrBool(true),
		ShowMessageColumn: datadog.PtrBool(true),
		MessageDisplay:    datadogV1.WIDGETMESSAGEDISPLAY_INLINE.Ptr(),
		Sort:              &datadogV1.WidgetFieldSort{Column: "time", Order: datadogV1.WIDGETSORT_DESCENDING},
	}
	note := datadogV1.NoteWidgetDefinition{
		Type: datadogV1.NOTEWIDGETDEFINITIONTYPE_NOTE,
		Content: fmt.Sprintf("Made by prism-exporter for integration `%s` (organisation `%s`), template version %d. "+
			"Metrics arrive once per sync interval (%s), stamped with the start of their window; logs arrive as requests are read.",
			req.IntegrationID, req.OrgID, DashboardTemplateVersion, fmtMinutes(req.SyncInterval)),
		ShowTick: datadog.PtrBool(false),
	}
	widgets := []datadogV1.Widget{
		{Definition: datadogV1.NoteWidgetDefinitionAsWidgetDefinition(&note)},
		group("Requests and errors",
			queryValue("Requests", "requests", 0, requests),
			queryValue("Errors", "errors", 0, errs),
			queryValue("Error rate (%)", "100 * errors / requests", 2, errs, requests),
			timeseries("Requests and errors", bars, formulas([2]string{"requests", "requests"}, [2]string{"errors", "errors"}), requests, errs),
			timeseries("Error rate (%)", line, formulas([2]string{"100 * errors / requests", "error rate"}), errs, requests),
		),
		group("Latency",
			timeseries("Latency (ms): average, p95, p99", line,
				formulas([2]string{"avg", "average"}, [2]string{"p95", "p95"}, [2]string{"p99", "p99"}),
				namedQuery{"avg", gaugeQuery("avg", metricLatencyAvg, "")},
				namedQuery{"p95", gaugeQuery("max", metricLatencyP95, "")},
				namedQuery{"p99", gaugeQuery("max", metricLatencyP99, "")}),
			timeseries("p95 latency by model (ms)", line, formulas([2]string{"p95", ""}),
				namedQuery{"p95", gaugeQuery("max", metricLatencyP95, " by {model}")}),
		),
		group("Tokens and cost",
			queryValue("Cost (USD)", "cost", 2, cost),
			toplist("Cost by model and provider (USD)", "cost",
				namedQuery{"cost", countQuery(metricCost, " by {model,provider}")}),
			timeseries("Cost by provider (USD)", bars, formulas([2]string{"cost", ""}),
				namedQuery{"cost", countQuery(metricCost, " by {provider}")}),
			timeseries("Tokens by model", bars, formulas([2]string{"input + output", "tokens"}),
				namedQuery{"input", countQuery(metricInput, " by {model}")},
				namedQuery{"output", countQuery(metricOutput, " by {model}")}),
			toplist("Tokens by model and provider", "input + output",
				namedQuery{"input", countQuery(metricInput, " by {model,provider}")},
				namedQuery{"output", countQuery(metricOutput, " by {model,provider}")}),
		),
		group("Cache and guardrails",
			timeseries("Cache hit rate (%)", line, formulas([2]string{"100 * hits / requests", "cache hit rate"}),
				namedQuery{"hits", countQuery(metricCacheHits, "")}, requests),
			timeseries("Guardrail triggers by model", bars, formulas([2]string{"triggers", ""}),
				namedQuery{"triggers", countQuery(metricGuardrails, " by {model}")}),
			timeseries("Fallbacks by provider", bars, formulas([2]string{"fallbacks", ""}),
				namedQuery{"fallbacks", countQuery(metricFallbacks, " by {provider}")}),
		),
		{Definition: datadogV1.LogStreamWidgetDefinitionAsWidgetDefinition(&logs)},
	}
	d := datadogV1.NewDashboard(datadogV1.DASHBOARDLAYOUTTYPE_ORDERED, dashboardTitle(req.OrgID), widgets)
	desc := fmt.Sprintf("Prism gateway traffic of %s, exported by prism-exporter (integration %s, template version %d). "+
		"Changes made here are kept until the template version changes; then the dashboard is updated in place.",
		req.OrgID, req.IntegrationID, DashboardTemplateVersion)
	d.Description = *datadog.NewNullableString(&desc)
	for _, tv := range []string{"model", "provider", "gateway"} {
		d.TemplateVariables = append(d.TemplateVariables, datadogV1.DashboardTemplateVariable{
			Name:    tv,
			Prefix:  *datadog.NewNullableString(datadog.PtrString(tv)),
			Default: *datadog.NewNullableString(datadog.PtrString("*")),
		})
	}
	// Dashboards take no free tags (only `team:` ones): the integration
	// is named in the description and the note instead.
	return *d
}

// monitorTags mark a monitor as this integration's, of one kind: they are
// how a monitor made by a call that died before storing its id is found
// again (GET /api/v1/monitor?monitor_tags=...) rather than made twice.
func monitorTags(integrationID, orgID, kind string) []string {
	return []string{
		tag("prism_integration", integrationID, "unknown"),
		tag("prism_monitor", kind, "unknown"),
		tag("prism_org", orgID, "unknown"),
		"managed_by:prism-exporter",
	}
}

// monitorWindow is how far back a metric monitor looks: two sync
// intervals, at least 10 minutes. A window's points are stamped with its
// start and arrive after its end, so a shorter look-back would often see
// none.
func monitorWindow(interval time.Duration) time.Duration {
	return max(10*time.Minute, 2*interval).Truncate(time.Minute)
}

// evaluationDelay holds the evaluation back until a window's totals have
// arrived: the window itself plus two minutes for the combiner and
// Datadog's intake.
func evaluationDelay(interval time.Duration) int64 {
	return int64((interval + 2*time.Minute) / time.Second)
}

func fmtMinutes(d time.Duration) string {
	if d <= 0 {
		return "unknown"
	}
	if d%time.Hour == 0 {
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strconv.Itoa(int(d/time.Minute)) + "m"
}

func fmtThreshold(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// monitorTemplate is one recommended monitor of an integration.
func monitorTemplate(req DashboardRequest, kind string) datadogV1.Monitor {
	th := req.Thresholds.Or(DefaultMonitorThresholds())
	window := "last_" + fmtMinutes(monitorWindow(req.SyncInterval))
	var name, query, message string
	var critical float64
	var priority int64
	switch kind {
	case MonitorErrorRate:
		critical, priority = th.ErrorRate, 2
		name = fmt.Sprintf("[Prism] %s: error rate above %s%%", req.OrgID, fmtThreshold(th.ErrorRate*100))
		query = fmt.Sprintf("sum(%s):sum:%s{*}.as_count() / sum:%s{*}.as_count() > %s",
			window, metricErrors, metricRequests, fmtThreshold(critical))
		message = fmt.Sprintf("More than %s%% of the Prism gateway's requests for %s failed over the %s. "+
			"See the failed requests' logs (source:%s status:error).", fmtThreshold(th.ErrorRate*100), req.OrgID, strings.TrimPrefix(window, "last_")+" window", logSource)
	case MonitorP95Latency:
		critical, priority = th.P95LatencyMS, 3
		name = fmt.Sprintf("[Prism] %s: p95 latency above %s ms on {{model.name}}", req.OrgID, fmtThreshold(critical))
		query = fmt.Sprintf("avg(%s):max:%s{*} by {model} > %s", window, metricLatencyP95, fmtThreshold(critical))
		message = fmt.Sprintf("The 95th percentile latency of %s's requests to {{model.name}} through the Prism gateway is above %s ms.",
			req.OrgID, fmtThreshold(critical))
	case MonitorCostBurn:
		critical, priority = th.CostPerHour, 3
		name = fmt.Sprintf("[Prism] %s: LLM cost above $%s an hour", req.OrgID, fmtThreshold(critical))
		query = fmt.Sprintf("sum(last_1h):sum:%s{*}.as_count() > %s", metricCost, fmtThreshold(critical))
		message = fmt.Sprintf("%s spent more than $%s on LLM calls through the Prism gateway in the last hour.",
			req.OrgID, fmtThreshold(critical))
	}
	message += fmt.Sprintf("\n\nMade by prism-exporter for integration %s (template version %d).", req.IntegrationID, DashboardTemplateVersion)
	m := datadogV1.NewMonitor(query, datadogV1.MONITORTYPE_QUERY_ALERT)
	m.Name = datadog.PtrString(name)
	m.Message = datadog.PtrString(message)
	m.Tags = monitorTags(req.IntegrationID, req.OrgID, kind)
	m.Priority = *datadog.NewNullableInt64(datadog.PtrInt64(priority))
	m.Options = &datadogV1.MonitorOptions{
		Thresholds:      &datadogV1.MonitorThresholds{Critical: datadog.PtrFloat64(critical)},
		EvaluationDelay: *datadog.NewNullableInt64(datadog.PtrInt64(evaluationDelay(req.SyncInterval))),
		// Points come once per window: a window that is not "full" of
		// them is the normal case, and no data is not an outage of ours
		// to page about (the gateway may simply be idle).
		RequireFullWindow: datadog.PtrBool(false),
		NotifyNoData:      datadog.PtrBool(false),
		IncludeTags:       datadog.PtrBool(true),
	}
	return *m
}

// monitorUpdate is the PUT body that brings a monitor to the template.
func monitorUpdate(m datadogV1.Monitor) datadogV1.MonitorUpdateRequest {
	return datadogV1.MonitorUpdateRequest{
		Name:     m.Name,
		Message:  m.Message,
		Query:    datadog.PtrString(m.Query),
		Tags:     m.Tags,
		Options:  m.Options,
		Priority: m.Priority,
	}
}
