package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/futureagi/prism-exporter/integrations"
	"github.com/futureagi/prism-exporter/sink"
)

// Dashboards makes an integration's Datadog dashboard and recommended
// monitors; *integrations.Dashboards implements it.
type Dashboards interface {
	Ensure(ctx context.Context, id string, th sink.MonitorThresholds) (integrations.Integration, integrations.DashboardChanges, error)
}

// dashboardTimeout bounds a call that makes a dashboard: a handful of
// Datadog requests, or the wait for another replica making it.
const dashboardTimeout = 90 * time.Second

// monitorsBody is the request's thresholds; absent fields keep what is
// stored (or the defaults).
type monitorsBody struct {
	ErrorRate    *float64 `json:"error_rate"`
	P95LatencyMS *float64 `json:"p95_latency_ms"`
	CostPerHour  *float64 `json:"cost_per_hour"`
}

func parseMonitors(m *monitorsBody) (sink.MonitorThresholds, *apiError) {
	var th sink.MonitorThresholds
	if m == nil {
		return th, nil
	}
	for _, f := range []struct {
		name string
		v    *float64
		out  *float64
	}{{"error_rate", m.ErrorRate, &th.ErrorRate}, {"p95_latency_ms", m.P95LatencyMS, &th.P95LatencyMS}, {"cost_per_hour", m.CostPerHour, &th.CostPerHour}} {
		if f.v == nil {
			continue
		}
		if *f.v <= 0 {
			return th, badField("monitors."+f.name, "must be above 0")
		}
		*f.out = *f.v
	}
	var te *sink.ThresholdError
	if err := th.Validate(); errors.As(err, &te) {
		return th, badField("monitors."+te.Field, "%s", te.Reason)
	}
	return th, nil
}

func (t monitorsBody) fields() []string {
	var f []string
	if t.ErrorRate != nil {
		f = append(f, "monitors.error_rate")
	}
	if t.P95LatencyMS != nil {
		f = append(f, "monitors.p95_latency_ms")
	}
	if t.CostPerHour != nil {
		f = append(f, "monitors.cost_per_hour")
	}
	return f
}

var errAppKeyRequired = fail(http.StatusUnprocessableEntity, "app_key_required", "app_key",
	"app_key: this integration has no application key: add one (PATCH app_key) whose user has the dashboards_write and monitors_write permissions")

// dashboardView is an integration's dashboard as the API shows it.
type dashboardView struct {
	ID              string                 `json:"id"`
	URL             string                 `json:"url"`
	Monitors        map[string]monitorView `json:"monitors"`
	Thresholds      sink.MonitorThresholds `json:"thresholds"`
	TemplateVersion int                    `json:"template_version"`
	UpdatedAt       *time.Time             `json:"updated_at"`
}

type monitorView struct {
	ID        int64   `json:"id"`
	URL       string  `json:"url"`
	Threshold float64 `json:"threshold"`
}

// dashboardViewOf is nil until a dashboard exists.
func dashboardViewOf(d *integrations.Dashboard) *dashboardView {
	if d == nil || d.ID == "" {
		return nil
	}
	th := d.Thresholds.Or(sink.DefaultMonitorThresholds())
	v := &dashboardView{ID: d.ID, URL: d.URL, Monitors: map[string]monitorView{}, Thresholds: th, TemplateVersion: d.TemplateVersion}
	if !d.UpdatedAt.IsZero() {
		t := d.UpdatedAt
		v.UpdatedAt = &t
	}
	for kind, id := range d.MonitorIDs {
		mv := monitorView{ID: id, URL: d.MonitorURLs[kind]}
		switch kind {
		case sink.MonitorErrorRate:
			mv.Threshold = th.ErrorRate
		case sink.MonitorP95Latency:
			mv.Threshold = th.P95LatencyMS
		case sink.MonitorCostBurn:
			mv.Threshold = th.CostPerHour
		}
		v.Monitors[kind] = mv
	}
	return v
}

// dashboardError turns what making a dashboard ended with into an answer.
// Datadog's own words go to the log only.
func dashboardError(err error) error {
	var de *sink.DashboardError
	switch {
	case errors.Is(err, integrations.ErrNoAppKey):
		return errAppKeyRequired
	case errors.Is(err, sink.ErrAppKeyForbidden):
		return fail(http.StatusUnprocessableEntity, "app_key_forbidden", "app_key",
			"app_key: Datadog refused the keys for dashboards and monitors: the application key's user needs the dashboards_write and monitors_write permissions, or the key is wrong or revoked")
	case errors.Is(err, sink.ErrDatadogUnavailable), errors.Is(err, context.DeadlineExceeded):
		e := fail(http.StatusServiceUnavailable, "datadog_unreachable", "", "Datadog could not be reached, or asked to wait: try again in a minute; what was made is kept")
		if errors.As(err, &de) && de.RetryAfter > 0 {
			e.retryAfter = de.RetryAfter
		}
		return e
	case errors.Is(err, integrations.ErrDashboardBusy):
		e := fail(http.StatusServiceUnavailable, "dashboard_busy", "", "another replica is making or updating this dashboard: try again in a minute")
		e.retryAfter = 30 * time.Second
		return e
	case errors.Is(err, sink.ErrTemplateRefused):
		return fail(http.StatusBadGateway, "datadog_refused", "", "Datadog refused the dashboard or a monitor the exporter sent: a fault of the exporter; its log says what Datadog answered")
	}
	return storeError(err)
}

// readOptional decodes the body into v when there is one: these calls
// take an empty body too.
func readOptional(w http.ResponseWriter, r *http.Request, v any) *apiError {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return decodeError(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return decode(w, r, v)
}

// dashboard is POST /api/v1/integrations/{id}/dashboard.
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, tk Token) error {
	in, err := s.find(r, tk)
	if err != nil {
		return err
	}
	if !tk.writes(in.OrgID) {
		return errForbidden
	}
	var req struct {
		Monitors *monitorsBody `json:"monitors"`
	}
	if err := readOptional(w, r, &req); err != nil {
		return err
	}
	th, aerr := parseMonitors(req.Monitors)
	if aerr != nil {
		return aerr
	}
	if s.cfg.Dashboards == nil {
		return fail(http.StatusNotImplemented, "not_implemented", "", "this exporter does not make dashboards")
	}
	if in.AppKeyHint == "" {
		return errAppKeyRequired
	}
	if err := s.allow(tk); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), dashboardTimeout)
	defer cancel()
	out, ch, err := s.cfg.Dashboards.Ensure(ctx, in.ID, th)
	if err != nil {
		return dashboardError(err)
	}
	var fields []string
	if req.Monitors != nil {
		fields = req.Monitors.fields()
	}
	s.audit(tk, in.OrgID, in.ID, "dashboard", fields)
	status := http.StatusOK
	if len(ch.Created)+len(ch.Recreated) > 0 {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{
		"integration_id": in.ID,
		"dashboard":      dashboardViewOf(out.Dashboard),
		"created":        orEmpty(ch.Created),
		"recreated":      orEmpty(ch.Recreated),
		"updated":        orEmpty(ch.Updated),
	})
	return nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// dashboardAtConnect checks create_dashboard and monitors of a create
// request before anything is stored.
func (s *Server) dashboardAtConnect(create bool, m *monitorsBody, appKey string) (sink.MonitorThresholds, *apiError) {
	if !create {
		if m != nil {
			return sink.MonitorThresholds{}, badField("monitors", "only with create_dashboard: true")
		}
		return sink.MonitorThresholds{}, nil
	}
	th, aerr := parseMonitors(m)
	if aerr != nil {
		return th, aerr
	}
	if s.cfg.Dashboards == nil {
		return th, fail(http.StatusNotImplemented, "not_implemented", "create_dashboard", "create_dashboard: this exporter does not make dashboards")
	}
	if appKey == "" {
		return th, fail(http.StatusUnprocessableEntity, "app_key_required", "app_key",
			"app_key: create_dashboard needs an application key whose user has the dashboards_write and monitors_write permissions")
	}
	return th, nil
}

// connectAnswer is the create answer with the dashboard's outcome: the
// integration exists whatever became of its dashboard.
type connectAnswer struct {
	view
	DashboardError *apiError `json:"dashboard_error,omitempty"`
}

// connectDashboard makes the new integration's dashboard; a failure is
// reported beside the integration, not instead of it.
func (s *Server) connectDashboard(ctx context.Context, tk Token, in integrations.Integration, th sink.MonitorThresholds) (integrations.Integration, *apiError) {
	ctx, cancel := context.WithTimeout(ctx, dashboardTimeout)
	defer cancel()
	out, _, err := s.cfg.Dashboards.Ensure(ctx, in.ID, th)
	if err != nil {
		var ae *apiError
		if !errors.As(dashboardError(err), &ae) {
			s.log.Error("making a new integration's dashboard failed", zap.String("integration", in.ID), zap.Error(err))
			ae = fail(http.StatusInternalServerError, "internal", "", "the dashboard could not be made; see the exporter's log")
		}
		return in, ae
	}
	s.audit(tk, in.OrgID, in.ID, "dashboard", nil)
	return out, nil
}
