package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/futureagi/prism-exporter/integrations"
	"github.com/futureagi/prism-exporter/sink"
)

// The sync intervals the product offers.
var syncIntervals = [...]time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute}

const syncIntervalChoices = "1m, 2m, 5m, 10m, 15m, 30m"

func parseInterval(field, s string) (time.Duration, *apiError) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err == nil {
		for _, ok := range syncIntervals {
			if d == ok {
				return d, nil
			}
		}
	}
	return 0, badField(field, "must be one of %s, got %s", syncIntervalChoices, quoted(s))
}

// quoted shows a value of the request in a message, unless it may be a key
// (a run of 16 letters and digits) or is long.
func quoted(s string) string {
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			if run++; run >= 16 {
				return "a value not shown"
			}
		} else {
			run = 0
		}
	}
	if len(s) > 64 {
		return "a value of " + strconv.Itoa(len(s)) + " characters"
	}
	return strconv.Quote(s)
}

func parseSite(field, s string) (sink.Site, *apiError) {
	if strings.TrimSpace(s) == "" {
		return "", fail(http.StatusBadRequest, "missing_field", field, "%s: required: one of US1, US3, US5, EU1, AP1, AP2, UK1, US1-FED, US2-FED", field)
	}
	site, err := sink.ParseSite(s)
	if err != nil {
		return "", badField(field, "must be one of US1, US3, US5, EU1, AP1, AP2, UK1, US1-FED, US2-FED (or its site name), got %s", quoted(s))
	}
	return site, nil
}

func checkKey(field, key string, required bool) *apiError {
	if strings.TrimSpace(key) == "" {
		if required {
			return fail(http.StatusBadRequest, "missing_field", field, "%s: required", field)
		}
		return nil
	}
	if len(key) > 256 || strings.ContainsAny(key, " \t\r\n") {
		return badField(field, "is not a Datadog key (letters and digits, no spaces)")
	}
	return nil
}

func checkOrg(org string) *apiError {
	switch {
	case org == "":
		return fail(http.StatusBadRequest, "missing_field", "org_id", "org_id: required: the organisation id the gateway's records carry in metadata.org_id")
	case len(org) > 128:
		return badField("org_id", "must be at most 128 characters")
	case strings.ContainsFunc(org, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return badField("org_id", "must not contain spaces or control characters")
	}
	return nil
}

// historical is the request's form of integrations.Historical.
type historical struct {
	Mode string  `json:"mode"`
	From *string `json:"from"`
	To   *string `json:"to"`
}

// parseHistorical reads the history a new integration asks for. all and
// range get a backfill job up to the cut-off (integrations.BackfillRange);
// a range's end may lie ahead, the live export covers that part.
func parseHistorical(h *historical, now time.Time) (integrations.Historical, *apiError) {
	if h == nil {
		return integrations.Historical{Mode: integrations.NewOnly}, nil
	}
	switch integrations.Mode(h.Mode) {
	case integrations.NewOnly:
		if h.From != nil || h.To != nil {
			return integrations.Historical{}, badField("historical.from", "only for mode range")
		}
		return integrations.Historical{Mode: integrations.NewOnly}, nil
	case integrations.All:
		if h.From != nil || h.To != nil {
			return integrations.Historical{}, badField("historical.from", "only for mode range")
		}
		return integrations.Historical{Mode: integrations.All}, nil
	case integrations.Range:
		var from, to time.Time
		for _, f := range []struct {
			name string
			v    *string
			out  *time.Time
		}{{"historical.from", h.From, &from}, {"historical.to", h.To, &to}} {
			if f.v == nil {
				return integrations.Historical{}, fail(http.StatusBadRequest, "missing_field", f.name, "%s: required for mode range", f.name)
			}
			t, err := time.Parse(time.RFC3339, *f.v)
			if err != nil {
				return integrations.Historical{}, badField(f.name, "must be an RFC 3339 time such as 2026-12-01T00:00:00Z, got %s", quoted(*f.v))
			}
			*f.out = t.UTC()
		}
		if !from.Before(to) {
			return integrations.Historical{}, badField("historical.to", "must be after historical.from")
		}
		if !from.Before(now) {
			return integrations.Historical{}, badField("historical.from", "must be in the past: a range is history to backfill")
		}
		return integrations.Historical{Mode: integrations.Range, From: &from, To: &to}, nil
	case "":
		return integrations.Historical{}, fail(http.StatusBadRequest, "missing_field", "historical.mode", "historical.mode: required: new_only, all or range")
	}
	return integrations.Historical{}, badField("historical.mode", "must be new_only, all or range, got %s", quoted(h.Mode))
}

// view is an integration as the API shows it.
type view struct {
	ID            string                  `json:"id"`
	OrgID         string                  `json:"org_id"`
	Platform      string                  `json:"platform"`
	Site          string                  `json:"site"`
	SiteHost      string                  `json:"site_host"`
	SyncInterval  string                  `json:"sync_interval"`
	IntervalFrom  *time.Time              `json:"sync_interval_from,omitempty"`
	Historical    integrations.Historical `json:"historical"`
	Paused        bool                    `json:"paused"`
	Status        string                  `json:"status"`
	StatusMessage string                  `json:"status_message"`
	Hint          string                  `json:"hint"`
	ConnectedAt   time.Time               `json:"connected_at"`
	ResumedAt     *time.Time              `json:"resumed_at,omitempty"`
	CreatedAt     time.Time               `json:"created_at"`
	UpdatedAt     time.Time               `json:"updated_at"`
	Version       int64                   `json:"version"`
	ManagedBy     string                  `json:"managed_by"`
	File          string                  `json:"file,omitempty"`
	APIKeyHint    string                  `json:"api_key_hint"`
	AppKeyHint    *string                 `json:"app_key_hint"`
	LastSyncedAt  *time.Time              `json:"last_synced_at"`
	LogsSent      int64                   `json:"logs_sent"`
	PointsSent    int64                   `json:"points_sent"`
	BatchesFailed int64                   `json:"batches_failed"`
	// Backfill is the integration's current (or last) backfill job, or null.
	Backfill *backfillView `json:"backfill"`
	// Dashboard is the integration's Datadog dashboard and monitors, or
	// null (dashboard.go).
	Dashboard *dashboardView `json:"dashboard"`
}

func fmtInterval(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return d.String()
}

// Hints for each state, the troubleshooting a person reads beside it.
const (
	hintError = "Datadog refused the keys. Check the site first (a key of another site is refused too), then the API key " +
		"(Organization Settings > API Keys: it may have been revoked). Edit the integration with the right site or a new key; " +
		"or, if the key was re-enabled in Datadog, use Retry."
	hintSyncing = "The exporter is delivering, or checking the keys with Datadog. Nothing to do."
	hintPaused  = "Paused: records are skipped. Resume to export new traffic again."
)

func (s *Server) view(in integrations.Integration) view {
	v := view{
		ID: in.ID, OrgID: in.OrgID, Platform: "datadog", Site: in.Site.Region(), SiteHost: in.Site.Name(),
		SyncInterval: fmtInterval(in.SyncInterval), Historical: in.Historical, Paused: in.Paused,
		ConnectedAt: in.ConnectedAt, CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt, Version: in.Version,
		ManagedBy: in.ManagedBy, File: in.File, APIKeyHint: in.APIKeyHint,
	}
	if in.AppKeyHint != "" {
		h := in.AppKeyHint
		v.AppKeyHint = &h
	}
	if !in.ResumedAt.IsZero() {
		r := in.ResumedAt
		v.ResumedAt = &r
	}
	if in.PrevInterval > 0 && s.cfg.Clock().Before(in.IntervalFrom) {
		f := in.IntervalFrom
		v.IntervalFrom = &f
	}
	live, ok := s.live.Live(in.OrgID)
	if ok {
		v.LogsSent, v.PointsSent, v.BatchesFailed = live.LogsSent, live.PointsSent, live.BatchesFailed
		if !live.LastSyncedAt.IsZero() {
			t := live.LastSyncedAt
			v.LastSyncedAt = &t
		}
	}
	switch {
	case in.Paused:
		v.Status, v.Hint = "paused", hintPaused
	case !ok:
		v.Status, v.StatusMessage, v.Hint = "syncing", "starting: the exporter is loading this integration", hintSyncing
	case live.State == sink.Error:
		v.Status, v.StatusMessage, v.Hint = "error", live.Message, hintError
	case live.State == sink.Active:
		v.Status = "active"
	case live.State == sink.Validating:
		v.Status, v.StatusMessage, v.Hint = "syncing", "checking the keys with Datadog", hintSyncing
		if live.Message != "" {
			v.StatusMessage += ": " + live.Message
		}
	default:
		v.Status, v.Hint = "syncing", hintSyncing
	}
	s.addBackfill(&v)
	v.Dashboard = dashboardViewOf(in.Dashboard)
	return v
}

// find returns the integration id names, if the token may know of it.
func (s *Server) find(r *http.Request, tk Token) (integrations.Integration, error) {
	in, ok := s.store.Get(r.PathValue("id"))
	if !ok || !tk.sees(in.OrgID) {
		return in, errNotFound
	}
	return in, nil
}

// storeError turns the service's errors into answers.
func storeError(err error) error {
	var mf *integrations.ManagedByFileError
	switch {
	case errors.As(err, &mf):
		return fail(http.StatusConflict, "managed_by_file", "", "this integration comes from the tenants file %s: change it there (the API cannot)", mf.File)
	case errors.Is(err, integrations.ErrNotFound):
		return errNotFound
	case errors.Is(err, integrations.ErrConflict):
		return fail(http.StatusConflict, "conflict", "org_id", "org_id: this organisation already has a Datadog integration: edit it instead")
	case errors.Is(err, integrations.ErrBackfillOff):
		return errNoBackfills
	case errors.Is(err, integrations.ErrNoKeyring):
		return fail(http.StatusServiceUnavailable, "no_secrets_key", "", "the exporter has no PRISM_SECRETS_KEY: it cannot store keys")
	}
	return err
}

func (s *Server) whoami(w http.ResponseWriter, _ *http.Request, tk Token) error {
	writeJSON(w, http.StatusOK, map[string]string{"name": tk.Name, "role": string(tk.Role), "org_id": tk.OrgID})
	return nil
}

func (s *Server) sites(w http.ResponseWriter, _ *http.Request, _ Token) error {
	type site struct {
		Code string `json:"code"`
		Host string `json:"host"`
	}
	var out []site
	for _, st := range sink.Sites() {
		out = append(out, site{Code: st.Region(), Host: st.Name()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sites": out, "default": "US1"})
	return nil
}

// checkKeys asks Datadog about keys, within the token's allowance.
func (s *Server) checkKeys(ctx context.Context, tk Token, site sink.Site, apiKey, appKey string) (sink.KeyCheck, error) {
	if err := s.allow(tk); err != nil {
		return sink.KeyCheck{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return s.keys.CheckKeys(ctx, site, sink.Secret(apiKey), sink.Secret(appKey)), nil
}

// mustPass turns a failed key check into its answer.
func mustPass(kc sink.KeyCheck) error {
	switch {
	case kc.Valid:
		return nil
	case kc.Unreachable():
		e := fail(http.StatusServiceUnavailable, "datadog_unreachable", "", "Datadog could not check the keys now: try again in a minute")
		e.Verdicts = kc
		return e
	}
	e := fail(http.StatusUnprocessableEntity, "keys_rejected", "", "Datadog rejected the keys: see verdicts")
	if kc.APIKey.Verdict == sink.KeyRejected {
		e.Field = "api_key"
	} else {
		e.Field = "app_key"
	}
	e.Verdicts = kc
	return e
}

func (s *Server) validate(w http.ResponseWriter, r *http.Request, tk Token) error {
	if tk.Role == Viewer {
		return errForbidden
	}
	var req struct {
		Site   string `json:"site"`
		APIKey string `json:"api_key"`
		AppKey string `json:"app_key"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	site, err := parseSite("site", req.Site)
	if err != nil {
		return err
	}
	if err := checkKey("api_key", req.APIKey, true); err != nil {
		return err
	}
	if err := checkKey("app_key", req.AppKey, false); err != nil {
		return err
	}
	kc, cerr := s.checkKeys(r.Context(), tk, site, req.APIKey, req.AppKey)
	if cerr != nil {
		return cerr
	}
	writeJSON(w, http.StatusOK, map[string]any{"valid": kc.Valid, "site": site.Region(), "api_key": kc.APIKey, "app_key": kc.AppKey})
	return nil
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, tk Token) error {
	if tk.Role == Viewer {
		return errForbidden
	}
	var req struct {
		OrgID        string      `json:"org_id"`
		Site         string      `json:"site"`
		APIKey       string      `json:"api_key"`
		AppKey       string      `json:"app_key"`
		SyncInterval *string     `json:"sync_interval"`
		Historical   *historical `json:"historical"`
		Paused       bool        `json:"paused"`
		// CreateDashboard makes the dashboard and monitors too
		// (dashboard.go), with Monitors' thresholds.
		CreateDashboard bool          `json:"create_dashboard"`
		Monitors        *monitorsBody `json:"monitors"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.OrgID == "" && tk.Role == Owner {
		req.OrgID = tk.OrgID
	}
	if err := checkOrg(req.OrgID); err != nil {
		return err
	}
	if !tk.writes(req.OrgID) {
		return fail(http.StatusForbidden, "forbidden", "org_id", "org_id: this token may only connect its own organisation")
	}
	site, aerr := parseSite("site", req.Site)
	if aerr != nil {
		return aerr
	}
	if err := checkKey("api_key", req.APIKey, true); err != nil {
		return err
	}
	if err := checkKey("app_key", req.AppKey, false); err != nil {
		return err
	}
	interval := 5 * time.Minute
	if req.SyncInterval != nil {
		if interval, aerr = parseInterval("sync_interval", *req.SyncInterval); aerr != nil {
			return aerr
		}
	}
	hist, aerr := parseHistorical(req.Historical, s.cfg.Clock())
	if aerr != nil {
		return aerr
	}
	thresholds, aerr := s.dashboardAtConnect(req.CreateDashboard, req.Monitors, req.AppKey)
	if aerr != nil {
		return aerr
	}
	if _, taken := s.store.Owner(req.OrgID); taken {
		return storeError(integrations.ErrConflict)
	}
	kc, err := s.checkKeys(r.Context(), tk, site, req.APIKey, req.AppKey)
	if err != nil {
		return err
	}
	if err := mustPass(kc); err != nil {
		return err
	}
	in, err := s.store.Create(r.Context(), integrations.New{
		OrgID: req.OrgID, Site: site, APIKey: req.APIKey, AppKey: req.AppKey,
		SyncInterval: interval, Historical: hist, Paused: req.Paused,
	})
	if err != nil {
		return storeError(err)
	}
	fields := []string{"org_id", "site", "api_key", "sync_interval", "historical"}
	if req.AppKey != "" {
		fields = append(fields, "app_key")
	}
	s.audit(tk, in.OrgID, in.ID, "create", fields)
	w.Header().Set("Location", "/api/v1/integrations/"+in.ID)
	var dashErr *apiError
	if req.CreateDashboard {
		in, dashErr = s.connectDashboard(r.Context(), tk, in, thresholds)
	}
	v := s.view(in)
	if v.Backfill != nil {
		v.Backfill.Coverage = coverageOf(v.Backfill.From, v.Backfill.To, s.cfg.Clock())
	}
	writeJSON(w, http.StatusCreated, connectAnswer{view: v, DashboardError: dashErr})
	return nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, tk Token) error {
	q := r.URL.Query()
	size := 50
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return badField("page_size", "must be a whole number from 1 to 200, got %s", quoted(v))
		}
		size = n
	}
	after := ""
	if v := q.Get("page_token"); v != "" {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			return badField("page_token", "is not a token this API returned")
		}
		after = string(raw)
	}
	org := q.Get("org_id")
	out := []view{}
	next := ""
	for _, in := range s.store.List() { // by id
		if in.ID <= after || !tk.sees(in.OrgID) || org != "" && in.OrgID != org {
			continue
		}
		if len(out) == size {
			next = base64.RawURLEncoding.EncodeToString([]byte(out[len(out)-1].ID))
			break
		}
		out = append(out, s.view(in))
	}
	writeJSON(w, http.StatusOK, map[string]any{"integrations": out, "next_page_token": next})
	return nil
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, tk Token) error {
	in, err := s.find(r, tk)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.view(in))
	return nil
}

// writable finds the integration and checks the token may change it.
func (s *Server) writable(r *http.Request, tk Token) (integrations.Integration, error) {
	in, err := s.find(r, tk)
	if err != nil {
		return in, err
	}
	if !tk.writes(in.OrgID) {
		return in, errForbidden
	}
	if in.ManagedBy == integrations.ManagedByFile {
		return in, storeError(&integrations.ManagedByFileError{File: in.File})
	}
	return in, nil
}

func (s *Server) patch(w http.ResponseWriter, r *http.Request, tk Token) error {
	in, err := s.writable(r, tk)
	if err != nil {
		return err
	}
	var req struct {
		Site         *string         `json:"site"`
		APIKey       *string         `json:"api_key"`
		AppKey       json.RawMessage `json:"app_key"`
		SyncInterval *string         `json:"sync_interval"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	var p integrations.Patch
	if req.Site != nil {
		site, aerr := parseSite("site", *req.Site)
		if aerr != nil {
			return aerr
		}
		p.Site = &site
	}
	if req.APIKey != nil {
		if err := checkKey("api_key", *req.APIKey, true); err != nil {
			return err
		}
		p.APIKey = req.APIKey
	}
	if len(req.AppKey) > 0 {
		var app *string
		if err := json.Unmarshal(req.AppKey, &app); err != nil {
			return badField("app_key", "must be a string, or null to remove the application key")
		}
		if app == nil {
			app = new(string)
		} else if err := checkKey("app_key", *app, true); err != nil {
			return err
		}
		p.AppKey = app
	}
	if req.SyncInterval != nil {
		d, aerr := parseInterval("sync_interval", *req.SyncInterval)
		if aerr != nil {
			return aerr
		}
		p.SyncInterval = &d
	}
	if len(p.Fields()) == 0 {
		return fail(http.StatusBadRequest, "missing_field", "", "nothing to change: give site, api_key, app_key or sync_interval")
	}
	if p.Site != nil || p.APIKey != nil || p.AppKey != nil {
		// The keys that will apply are checked as a pair, on the site that
		// will apply: a stored key is opened for that only.
		site := in.Site
		if p.Site != nil {
			site = *p.Site
		}
		apiKey, appKey, oerr := s.effectiveKeys(in, p)
		if oerr != nil {
			return oerr
		}
		kc, err := s.checkKeys(r.Context(), tk, site, apiKey, appKey)
		if err != nil {
			return err
		}
		if err := mustPass(kc); err != nil {
			return err
		}
	}
	out, err := s.store.Update(r.Context(), in.ID, p)
	if err != nil {
		return storeError(err)
	}
	s.audit(tk, in.OrgID, in.ID, "update", p.Fields())
	writeJSON(w, http.StatusOK, s.view(out))
	return nil
}

// KeyOpener opens an integration's stored keys, for checks that combine a
// stored key with a new one (a new site, or a new application key).
type KeyOpener interface {
	OpenKeys(in integrations.Integration) (apiKey, appKey string, err error)
}

func (s *Server) effectiveKeys(in integrations.Integration, p integrations.Patch) (apiKey, appKey string, err error) {
	op, ok := s.store.(KeyOpener)
	if !ok {
		return "", "", errors.New("the integrations store cannot open stored keys")
	}
	apiKey, appKey, err = op.OpenKeys(in)
	if err != nil {
		return "", "", err
	}
	if p.APIKey != nil {
		apiKey = *p.APIKey
	}
	if p.AppKey != nil {
		appKey = *p.AppKey
	}
	return apiKey, appKey, nil
}

func (s *Server) action(op string, do func(context.Context, string) (integrations.Integration, error)) func(http.ResponseWriter, *http.Request, Token) error {
	return func(w http.ResponseWriter, r *http.Request, tk Token) error {
		in, err := s.writable(r, tk)
		if err != nil {
			return err
		}
		out, err := do(r.Context(), in.ID)
		if err != nil {
			return storeError(err)
		}
		s.audit(tk, in.OrgID, in.ID, op, nil)
		writeJSON(w, http.StatusOK, s.view(out))
		return nil
	}
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request, tk Token) error {
	return s.action("pause", s.store.Pause)(w, r, tk)
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request, tk Token) error {
	return s.action("resume", s.store.Resume)(w, r, tk)
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request, tk Token) error {
	in, err := s.writable(r, tk)
	if err != nil {
		return err
	}
	apiKey, appKey, err := s.effectiveKeys(in, integrations.Patch{})
	if err != nil {
		return err
	}
	kc, err := s.checkKeys(r.Context(), tk, in.Site, apiKey, appKey)
	if err != nil {
		return err
	}
	if err := mustPass(kc); err != nil {
		return err
	}
	out, err := s.store.Retry(r.Context(), in.ID)
	if err != nil {
		return storeError(err)
	}
	s.audit(tk, in.OrgID, in.ID, "retry", nil)
	writeJSON(w, http.StatusOK, s.view(out))
	return nil
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, tk Token) error {
	in, err := s.writable(r, tk)
	if err != nil {
		return err
	}
	if err := s.store.Delete(r.Context(), in.ID); err != nil {
		return storeError(err)
	}
	s.audit(tk, in.OrgID, in.ID, "delete", nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
