package sink

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV1"
	"go.uber.org/zap"
)

// MonitorThresholds are the recommended monitors' alert thresholds. A zero
// field means "the default" (see DefaultMonitorThresholds).
type MonitorThresholds struct {
	// ErrorRate is the share of failed requests, in (0, 1].
	ErrorRate float64 `json:"error_rate,omitempty"`
	// P95LatencyMS is the 95th percentile latency of any model, in ms.
	P95LatencyMS float64 `json:"p95_latency_ms,omitempty"`
	// CostPerHour is the LLM spend over the last hour, in USD.
	CostPerHour float64 `json:"cost_per_hour,omitempty"`
}

// DefaultMonitorThresholds: 5% errors, 5 s p95, $50 an hour.
func DefaultMonitorThresholds() MonitorThresholds {
	return MonitorThresholds{ErrorRate: 0.05, P95LatencyMS: 5000, CostPerHour: 50}
}

// Or fills t's zero fields from d.
func (t MonitorThresholds) Or(d MonitorThresholds) MonitorThresholds {
	if t.ErrorRate == 0 {
		t.ErrorRate = d.ErrorRate
	}
	if t.P95LatencyMS == 0 {
		t.P95LatencyMS = d.P95LatencyMS
	}
	if t.CostPerHour == 0 {
		t.CostPerHour = d.CostPerHour
	}
	return t
}

// ThresholdError names the threshold at fault.
type ThresholdError struct {
	Field  string // error_rate, p95_latency_ms or cost_per_hour
	Reason string
}

func (e *ThresholdError) Error() string { return e.Field + ": " + e.Reason }

// Validate checks the thresholds that are set.
func (t MonitorThresholds) Validate() error {
	check := func(field string, v, maxV float64, what string) error {
		if v == 0 {
			return nil
		}
		if math.IsNaN(v) || v < 0 || v > maxV {
			return &ThresholdError{Field: field, Reason: fmt.Sprintf("must be %s, got %s", what, fmtThreshold(v))}
		}
		return nil
	}
	return errors.Join(
		check("error_rate", t.ErrorRate, 1, "a share above 0 and at most 1 (0.05 is 5%)"),
		check("p95_latency_ms", t.P95LatencyMS, 3_600_000, "milliseconds above 0 and at most 3600000"),
		check("cost_per_hour", t.CostPerHour, 1e9, "US dollars above 0 and at most 1000000000"),
	)
}

// DashboardRequest is what EnsureDashboard makes or brings up to date for
// one integration.
type DashboardRequest struct {
	IntegrationID string
	OrgID         string
	// SyncInterval is the integration's window length: the monitors look
	// back over and wait for whole windows.
	SyncInterval time.Duration
	Thresholds   MonitorThresholds
	// What an earlier call stored: the ids to check (zero: none yet) and
	// the template version they were made with.
	DashboardID     string
	MonitorIDs      map[string]int64
	TemplateVersion int
	// Refit updates the monitors in place even when their template
	// version is current: the thresholds or the sync interval changed.
	Refit bool
	// Record, when set, is called with what exists so far after every
	// object made (or found again), before the next one is made, so that
	// its id is stored even if the call dies later. An error stops the
	// call with that error.
	Record func(ctx context.Context, r DashboardResult) error
}

// DashboardResult is what exists in the tenant's account after
// EnsureDashboard, with links a person can open.
type DashboardResult struct {
	DashboardID  string
	DashboardURL string
	MonitorIDs   map[string]int64
	MonitorURLs  map[string]string
	// Created, Updated and Recreated name what the call did:
	// "dashboard" or "monitor:<kind>". A monitor found again by its tags
	// counts as recreated.
	Created, Updated, Recreated []string
}

// The errors of EnsureDashboard, for errors.Is. Their text never holds a
// key.
var (
	// ErrNoAppKey: dashboards and monitors need an application key.
	ErrNoAppKey = errors.New("an application key is needed to create dashboards and monitors")
	// ErrAppKeyForbidden: Datadog answered 401 or 403.
	ErrAppKeyForbidden = errors.New("Datadog refused the keys for dashboards and monitors: the application key's user needs the dashboards_write and monitors_write permissions, or the key is wrong or revoked")
	// ErrDatadogUnavailable: no answer, 408, 429 or 5xx, after a few
	// tries. Worth asking again later.
	ErrDatadogUnavailable = errors.New("Datadog could not be reached, or asked to try again later")
	// ErrTemplateRefused: Datadog refused a definition (400) or answered
	// something unexpected: a fault of ours, not the tenant's.
	ErrTemplateRefused = errors.New("Datadog refused the dashboard or a monitor")
)

// DashboardError is one failed call of EnsureDashboard.
type DashboardError struct {
	Op     string // "creating the dashboard", "updating monitor p95_latency", ...
	Site   Site
	Status int    // 0 when there was no answer
	Detail string // Datadog's words, without keys
	// RetryAfter is how long Datadog asked to wait, when it did.
	RetryAfter time.Duration
	kind       error
}

func (e *DashboardError) Error() string {
	msg := e.Op + ": Datadog (" + e.Site.Name() + ")"
	if e.Status != 0 {
		msg += " answered " + strconv.Itoa(e.Status) + " " + http.StatusText(e.Status)
	} else {
		msg += " did not answer"
	}
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg + ": " + e.kind.Error()
}

func (e *DashboardError) Unwrap() error { return e.kind }

// Label values of the dashboards' and monitors' requests.
const (
	endpointDashboard = "dashboard"
	endpointMonitor   = "monitor"
	// dashboardTries bounds the attempts of one call on a retryable
	// answer: a person is waiting, and may ask again.
	dashboardTries   = 3
	maxDashboardWait = 5 * time.Second
)

// EnsureDashboard makes sure the integration's dashboard and recommended
// monitors exist in the tenant's account, as the template describes:
//
//   - a stored id is read back (GET); one that answers 404 (deleted in
//     Datadog) is made again;
//   - one stored with an older TemplateVersion is updated in place (PUT,
//     same id), and so are the monitors when req.Refit;
//   - a monitor without a stored id is first looked for by its tags, in
//     case an earlier call made it and died before storing its id.
//
// It needs both keys. Errors match ErrAppKeyForbidden,
// ErrDatadogUnavailable or ErrTemplateRefused (see DashboardError).
func (s *Sink) EnsureDashboard(ctx context.Context, site Site, apiKey, appKey Secret, req DashboardRequest) (DashboardResult, error) {
	if appKey == "" {
		return DashboardResult{}, ErrNoAppKey
	}
	cn, err := s.dd.newConn(Tenant{ID: req.OrgID, Site: site, APIKey: apiKey, AppKey: appKey})
	if err != nil {
		return DashboardResult{}, err
	}
	e := &ensurer{s: s, cn: cn, req: req, base: s.appBase(site),
		dash: datadogV1.NewDashboardsApi(s.dd.api), mon: datadogV1.NewMonitorsApi(s.dd.api)}
	e.res.MonitorIDs = maps.Clone(req.MonitorIDs)
	if e.res.MonitorIDs == nil {
		e.res.MonitorIDs = map[string]int64{}
	}
	e.res.MonitorURLs = map[string]string{}
	outdated := req.TemplateVersion < DashboardTemplateVersion
	if err := e.dashboard(ctx, outdated); err != nil {
		return e.res, err
	}
	for _, kind := range MonitorKinds() {
		if err := e.monitor(ctx, kind, outdated || req.Refit); err != nil {
			return e.res, err
		}
	}
	for kind := range e.res.MonitorIDs {
		if !slices.Contains(MonitorKinds(), kind) {
			delete(e.res.MonitorIDs, kind) // a kind an older template had
		}
	}
	return e.res, nil
}

// appBase is where the links point: the site's web app, or the base URL
// every call goes to (a stand-in).
func (s *Sink) appBase(site Site) string {
	if s.dd.baseName != "" {
		return s.dd.baseProto + "://" + s.dd.baseName
	}
	return site.AppURL()
}

// ensurer is one EnsureDashboard call.
type ensurer struct {
	s    *Sink
	cn   *conn
	req  DashboardRequest
	base string
	dash *datadogV1.DashboardsApi
	mon  *datadogV1.MonitorsApi
	res  DashboardResult
}

func (e *ensurer) record(ctx context.Context) error {
	if e.req.Record == nil {
		return nil
	}
	return e.req.Record(ctx, e.res)
}

func (e *ensurer) dashboardLink(id, path string) string {
	if path == "" {
		path = "/dashboard/" + id
	}
	return e.base + path
}

func (e *ensurer) dashboard(ctx context.Context, outdated bool) error {
	body := dashboardTemplate(e.req, e.s.cfg.Service)
	if id := e.req.DashboardID; id != "" {
		var got datadogV1.Dashboard
		status, err := e.s.ddCall(ctx, e.cn, endpointDashboard, "reading the dashboard", func(ctx context.Context) (*http.Response, error) {
			var resp *http.Response
			var err error
			got, resp, err = e.dash.GetDashboard(ctx, id)
			return resp, err
		})
		if err != nil {
			return err
		}
		if status != http.StatusNotFound {
			e.res.DashboardID, e.res.DashboardURL = id, e.dashboardLink(id, got.GetUrl())
			if !outdated {
				return nil
			}
			status, err = e.s.ddCall(ctx, e.cn, endpointDashboard, "updating the dashboard", func(ctx context.Context) (*http.Response, error) {
				var resp *http.Response
				var err error
				got, resp, err = e.dash.UpdateDashboard(ctx, id, body)
				return resp, err
			})
			if err != nil {
				return err
			}
			if status != http.StatusNotFound {
				e.res.DashboardURL = e.dashboardLink(id, got.GetUrl())
				e.res.Updated = append(e.res.Updated, "dashboard")
				return nil
			}
		}
		e.s.log.Info("the integration's dashboard is gone from Datadog; making it again",
			zap.String("integration", e.req.IntegrationID), zap.String("dashboard", id))
	}
	var got datadogV1.Dashboard
	status, err := e.s.ddCall(ctx, e.cn, endpointDashboard, "creating the dashboard", func(ctx context.Context) (*http.Response, error) {
		var resp *http.Response
		var err error
		got, resp, err = e.dash.CreateDashboard(ctx, body)
		return resp, err
	})
	if err == nil && (status == http.StatusNotFound || got.GetId() == "") {
		err = &DashboardError{Op: "creating the dashboard", Site: e.cn.site, Status: status, Detail: "no dashboard id in the answer", kind: ErrTemplateRefused}
	}
	if err != nil {
		return err
	}
	e.res.DashboardID, e.res.DashboardURL = got.GetId(), e.dashboardLink(got.GetId(), got.GetUrl())
	if e.req.DashboardID != "" {
		e.res.Recreated = append(e.res.Recreated, "dashboard")
	} else {
		e.res.Created = append(e.res.Created, "dashboard")
	}
	return e.record(ctx)
}

func (e *ensurer) monitorLink(id int64) string {
	return e.base + "/monitors/" + strconv.FormatInt(id, 10)
}

func (e *ensurer) monitor(ctx context.Context, kind string, refit bool) error {
	body := monitorTemplate(e.req, kind)
	what := "monitor:" + kind
	id, had := e.res.MonitorIDs[kind]
	if had && id != 0 {
		status, err := e.s.ddCall(ctx, e.cn, endpointMonitor, "reading monitor "+kind, func(ctx context.Context) (*http.Response, error) {
			_, resp, err := e.mon.GetMonitor(ctx, id)
			return resp, err
		})
		if err != nil {
			return err
		}
		if status != http.StatusNotFound {
			e.res.MonitorURLs[kind] = e.monitorLink(id)
			if !refit {
				return nil
			}
			status, err = e.s.ddCall(ctx, e.cn, endpointMonitor, "updating monitor "+kind, func(ctx context.Context) (*http.Response, error) {
				_, resp, err := e.mon.UpdateMonitor(ctx, id, monitorUpdate(body))
				return resp, err
			})
			if err != nil {
				return err
			}
			if status != http.StatusNotFound {
				e.res.Updated = append(e.res.Updated, what)
				return nil
			}
		}
		e.s.log.Info("one of the integration's monitors is gone from Datadog; making it again",
			zap.String("integration", e.req.IntegrationID), zap.String("monitor", kind), zap.Int64("id", id))
	}
	found, err := e.findMonitor(ctx, kind)
	if err != nil {
		return err
	}
	if found != 0 {
		e.res.MonitorIDs[kind], e.res.MonitorURLs[kind] = found, e.monitorLink(found)
		e.res.Recreated = append(e.res.Recreated, what)
		if err := e.record(ctx); err != nil {
			return err
		}
		// Found by its tags: made by an earlier call, perhaps with
		// another template; bring it to this one.
		_, err := e.s.ddCall(ctx, e.cn, endpointMonitor, "updating monitor "+kind, func(ctx context.Context) (*http.Response, error) {
			_, resp, err := e.mon.UpdateMonitor(ctx, found, monitorUpdate(body))
			return resp, err
		})
		return err
	}
	var got datadogV1.Monitor
	status, err := e.s.ddCall(ctx, e.cn, endpointMonitor, "creating monitor "+kind, func(ctx context.Context) (*http.Response, error) {
		var resp *http.Response
		var err error
		got, resp, err = e.mon.CreateMonitor(ctx, body)
		return resp, err
	})
	if err == nil && (status == http.StatusNotFound || got.GetId() == 0) {
		err = &DashboardError{Op: "creating monitor " + kind, Site: e.cn.site, Status: status, Detail: "no monitor id in the answer", kind: ErrTemplateRefused}
	}
	if err != nil {
		return err
	}
	e.res.MonitorIDs[kind], e.res.MonitorURLs[kind] = got.GetId(), e.monitorLink(got.GetId())
	if had {
		e.res.Recreated = append(e.res.Recreated, what)
	} else {
		e.res.Created = append(e.res.Created, what)
	}
	return e.record(ctx)
}

// findMonitor looks for a monitor of this integration and kind by its
// tags; 0 when there is none. The lowest id wins, so that every caller
// adopts the same one.
func (e *ensurer) findMonitor(ctx context.Context, kind string) (int64, error) {
	tags := monitorTags(e.req.IntegrationID, e.req.OrgID, kind)[:2]
	var list []datadogV1.Monitor
	_, err := e.s.ddCall(ctx, e.cn, endpointMonitor, "looking for monitor "+kind, func(ctx context.Context) (*http.Response, error) {
		var resp *http.Response
		var err error
		list, resp, err = e.mon.ListMonitors(ctx, *datadogV1.NewListMonitorsOptionalParameters().WithMonitorTags(tags[0] + "," + tags[1]))
		return resp, err
	})
	if err != nil {
		return 0, err
	}
	var best int64
	for _, m := range list {
		// The filter's semantics are Datadog's; ours are both tags.
		if slices.Contains(m.Tags, tags[0]) && slices.Contains(m.Tags, tags[1]) && m.GetId() != 0 && (best == 0 || m.GetId() < best) {
			best = m.GetId()
		}
	}
	return best, nil
}

// ddCall makes one call of the dashboards or monitors API, trying again
// (a few times, briefly) on answers worth it. It returns the status: 404
// is not an error here, the callers decide what it means.
func (s *Sink) ddCall(ctx context.Context, cn *conn, endpoint, op string, call func(context.Context) (*http.Response, error)) (int, error) {
	for attempt := 1; ; attempt++ {
		start := time.Now()
		resp, err := call(cn.ctx(ctx))
		a := clientAnswer(resp, err)
		s.m.requestSeconds.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
		s.m.requests.WithLabelValues(endpoint, codeLabel(a)).Inc()
		if a.status == http.StatusNotFound {
			return a.status, nil
		}
		if a.status >= 200 && a.status < 300 && err != nil {
			// An answer the client could not read: not one of Datadog's.
			return a.status, &DashboardError{Op: op, Site: cn.site, Status: a.status,
				Detail: redact(err.Error(), cn.secrets()), kind: ErrTemplateRefused}
		}
		cerr := classify(ctx, endpoint, a, cn.secrets()...)
		if cerr == nil {
			return a.status, nil
		}
		if ctx.Err() != nil {
			return a.status, cerr
		}
		var be *backoffError
		if errors.As(cerr, &be) {
			wait := max(backoff(attempt, baseBackoff, s.cfg.MaxBackoff), be.wait)
			if attempt < dashboardTries && wait <= maxDashboardWait {
				s.m.retries.WithLabelValues(be.reason).Inc()
				if err := s.sleep(ctx, wait); err != nil {
					return a.status, err
				}
				continue
			}
			return a.status, &DashboardError{Op: op, Site: cn.site, Status: a.status, Detail: detailOfAnswer(a, cn),
				RetryAfter: be.wait, kind: ErrDatadogUnavailable}
		}
		de := &DashboardError{Op: op, Site: cn.site, Status: a.status, Detail: detailOfAnswer(a, cn), kind: ErrTemplateRefused}
		if errors.Is(cerr, errKeyRejected) {
			de.kind = ErrAppKeyForbidden
		}
		return a.status, de
	}
}

func detailOfAnswer(a answer, cn *conn) string {
	if a.err != nil {
		return redact(a.err.Error(), cn.secrets())
	}
	return errorDetail(a.body, cn.secrets())
}
