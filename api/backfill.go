package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/futureagi/prism-exporter/integrations"
)

// Backfills are the integrations' backfill jobs; *integrations.Jobs
// implements it.
type Backfills interface {
	Get(integrationID string) (integrations.Job, bool)
	Start(ctx context.Context, in integrations.Integration, from, until time.Time) (integrations.Job, error)
	Cancel(ctx context.Context, integrationID string) (integrations.Job, error)
}

var errNoBackfills = fail(http.StatusServiceUnavailable, "backfill_unavailable", "", "this exporter runs no backfill jobs")

// backfillView is a job as the API shows it.
type backfillView struct {
	ID                   string     `json:"id"`
	State                string     `json:"state"`
	Percent              float64    `json:"percent"`
	From                 time.Time  `json:"from"`
	To                   time.Time  `json:"to"`
	RecordsScanned       int64      `json:"records_scanned"`
	RecordsToScan        int64      `json:"records_to_scan"`
	RecordsMatched       int64      `json:"records_matched"`
	LogsSent             int64      `json:"logs_sent"`
	LogsTooOld           int64      `json:"logs_too_old"`
	MetricWindowsTooOld  int64      `json:"metric_windows_too_old"`
	RecordsMetricsTooOld int64      `json:"records_metrics_too_old"`
	Error                string     `json:"error"`
	RequestedAt          time.Time  `json:"requested_at"`
	StartedAt            *time.Time `json:"started_at"`
	FinishedAt           *time.Time `json:"finished_at"`
	// Coverage, in the answers that start a backfill only: what of the
	// range Datadog will take, as of the request.
	Coverage *coverage `json:"coverage,omitempty"`
}

func newBackfillView(j integrations.Job) *backfillView {
	v := &backfillView{
		ID: j.ID, State: string(j.State), Percent: math.Floor(j.Percent()*10) / 10, From: j.From, To: j.Until,
		RecordsScanned: j.Scanned, RecordsToScan: j.Total, RecordsMatched: j.Matched,
		LogsSent: j.LogsSent, LogsTooOld: j.LogsTooOld, MetricWindowsTooOld: j.WindowsTooOld, RecordsMetricsTooOld: j.RecordsMetricsTooOld,
		Error: j.Error, RequestedAt: j.CreatedAt,
	}
	if j.State == integrations.JobDone {
		v.Percent = 100
	}
	if !j.StartedAt.IsZero() {
		t := j.StartedAt
		v.StartedAt = &t
	}
	if !j.FinishedAt.IsZero() {
		t := j.FinishedAt
		v.FinishedAt = &t
	}
	return v
}

// span is a part of a backfill's range.
type span struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// coverage splits a backfill's range by what Datadog takes of it, judged at
// AsOf: records younger than an hour become logs and metrics, records
// younger than 18 hours logs only (their metric windows are counted, not
// sent), older ones nothing (counted). A job delivers after it is asked
// for, so each part's boundary moves later by the time it takes.
type coverage struct {
	AsOf           time.Time `json:"as_of"`
	LogsAndMetrics *span     `json:"logs_and_metrics"`
	LogsOnly       *span     `json:"logs_only"`
	NotSent        *span     `json:"not_sent"`
}

func coverageOf(from, to, now time.Time) *coverage {
	logsFrom, metricsFrom := now.Add(-integrations.LogsMaxAge), now.Add(-integrations.MetricsMaxAge)
	part := func(a, b time.Time) *span {
		a, b = maxTime(a, from), minTime(b, to)
		if !a.Before(b) {
			return nil
		}
		return &span{From: a.UTC(), To: b.UTC()}
	}
	return &coverage{
		AsOf:           now.UTC(),
		LogsAndMetrics: part(metricsFrom, to),
		LogsOnly:       part(logsFrom, metricsFrom),
		NotSent:        part(from, logsFrom),
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// hintBackfilling goes with the status backfilling.
const hintBackfilling = "History is being exported beside new traffic, which is not held up. " +
	"Logs older than 18 h and metrics older than 1 h are counted, not sent (see backfill). DELETE .../backfill cancels it."

// addBackfill shows the integration's current backfill, and the status
// backfilling while it is pending or running and nothing worse is to say.
func (s *Server) addBackfill(v *view) {
	if s.cfg.Backfills == nil {
		return
	}
	job, ok := s.cfg.Backfills.Get(v.ID)
	if !ok {
		return
	}
	v.Backfill = newBackfillView(job)
	if job.Active() && (v.Status == "active" || v.Status == "syncing") {
		v.Status, v.Hint = "backfilling", hintBackfilling
		v.StatusMessage = fmt.Sprintf("backfilling %s to %s: %.0f%% scanned",
			job.From.UTC().Format(time.RFC3339), job.Until.UTC().Format(time.RFC3339), math.Floor(job.Percent()))
		if job.State == integrations.JobPending {
			v.StatusMessage = fmt.Sprintf("backfill of %s to %s waiting for a replica to run it",
				job.From.UTC().Format(time.RFC3339), job.Until.UTC().Format(time.RFC3339))
		}
	}
}

// parseTime reads a required RFC 3339 field.
func parseTime(field string, v *string) (time.Time, *apiError) {
	if v == nil {
		return time.Time{}, fail(http.StatusBadRequest, "missing_field", field, "%s: required: an RFC 3339 time such as 2026-12-01T00:00:00Z", field)
	}
	t, err := time.Parse(time.RFC3339, *v)
	if err != nil {
		return time.Time{}, badField(field, "must be an RFC 3339 time such as 2026-12-01T00:00:00Z, got %s", quoted(*v))
	}
	return t.UTC(), nil
}

// backfillError turns the jobs' errors into answers.
func backfillError(err error) error {
	switch {
	case errors.Is(err, integrations.ErrBackfillRunning):
		return fail(http.StatusConflict, "backfill_running", "",
			"this integration already has a backfill pending or running: wait for it, or cancel it (DELETE .../backfill) first")
	case errors.Is(err, integrations.ErrNotFound):
		return fail(http.StatusNotFound, "not_found", "", "this integration has no backfill pending or running")
	case errors.Is(err, integrations.ErrBackfillOff):
		return errNoBackfills
	}
	return err
}

// startBackfill answers POST /api/v1/integrations/{id}/backfill: a new
// backfill of {from, to} on an existing integration (after fixing a wrong
// site, say). Older parts of the range than Datadog takes are accepted:
// the answer's coverage says what will be sent, and the job counts the
// rest.
func (s *Server) startBackfill(w http.ResponseWriter, r *http.Request, tk Token) error {
	in, err := s.writable(r, tk)
	if err != nil {
		return err
	}
	var req struct {
		From *string `json:"from"`
		To   *string `json:"to"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	from, aerr := parseTime("from", req.From)
	if aerr != nil {
		return aerr
	}
	to, aerr := parseTime("to", req.To)
	if aerr != nil {
		return aerr
	}
	now := s.cfg.Clock()
	switch {
	case !from.Before(to):
		return badField("to", "must be after from")
	case to.After(now):
		return badField("to", "must not be in the future: new traffic is exported as it comes")
	}
	if s.cfg.Backfills == nil {
		return errNoBackfills
	}
	if in.Paused {
		return fail(http.StatusConflict, "paused", "", "the integration is paused: resume it first (a backfill delivers to the same account)")
	}
	job, err := s.cfg.Backfills.Start(r.Context(), in, from, to)
	if err != nil {
		return backfillError(err)
	}
	s.audit(tk, in.OrgID, in.ID, "backfill", []string{"from", "to"})
	v := newBackfillView(job)
	v.Coverage = coverageOf(job.From, job.Until, now)
	writeJSON(w, http.StatusAccepted, v)
	return nil
}

// cancelBackfill answers DELETE /api/v1/integrations/{id}/backfill.
func (s *Server) cancelBackfill(w http.ResponseWriter, r *http.Request, tk Token) error {
	in, err := s.writable(r, tk)
	if err != nil {
		return err
	}
	if s.cfg.Backfills == nil {
		return errNoBackfills
	}
	job, err := s.cfg.Backfills.Cancel(r.Context(), in.ID)
	if err != nil {
		return backfillError(err)
	}
	s.audit(tk, in.OrgID, in.ID, "backfill_cancel", nil)
	writeJSON(w, http.StatusOK, newBackfillView(job))
	return nil
}
