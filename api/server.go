// Package api serves the integrations API under /api/v1: validate keys,
// connect, list, read, edit, pause, resume, retry and delete tenants'
// Datadog integrations, and page through their sync history, for the
// console and for users' scripts. Every call
// needs a bearer token of the tokens file; a token bound to one org never
// learns of another's integrations.
package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/futureagi/prism-exporter/integrations"
	"github.com/futureagi/prism-exporter/sink"
)

// Integrations is the store's operations the API calls;
// *integrations.Service implements it.
type Integrations interface {
	Create(ctx context.Context, n integrations.New) (integrations.Integration, error)
	Update(ctx context.Context, id string, p integrations.Patch) (integrations.Integration, error)
	Pause(ctx context.Context, id string) (integrations.Integration, error)
	Resume(ctx context.Context, id string) (integrations.Integration, error)
	Retry(ctx context.Context, id string) (integrations.Integration, error)
	Delete(ctx context.Context, id string) error
	Get(id string) (integrations.Integration, bool)
	Owner(org string) (integrations.Integration, bool)
	List() []integrations.Integration
	Ready() bool
}

// KeyChecker asks Datadog about keys; *sink.Sink implements it.
type KeyChecker interface {
	CheckKeys(ctx context.Context, site sink.Site, apiKey, appKey sink.Secret) sink.KeyCheck
}

// LiveStatus tells how an org's export is doing.
type LiveStatus interface {
	Live(org string) (integrations.Live, bool)
}

// Config configures the API.
type Config struct {
	Tokens *Tokens
	// ValidatePerMinute and ValidateBurst bound, per token, the calls that
	// check keys with Datadog (validate, create, edits of keys, retry), so
	// that nobody can test stolen keys in bulk through the exporter.
	ValidatePerMinute int
	ValidateBurst     int
	Logger            *zap.Logger
	Clock             func() time.Time
	// History answers GET .../{id}/syncs; without it that call answers
	// 503 history_unavailable.
	History SyncHistory
	// Backfills holds the integrations' backfill jobs: the job in each
	// view, and .../{id}/backfill; without it those calls answer 503
	// backfill_unavailable.
	Backfills Backfills
	// Dashboards makes integrations' dashboards and monitors:
	// .../{id}/dashboard and create_dashboard; without it those answer
	// 501 not_implemented.
	Dashboards Dashboards
}

// Server is the API's handler.
type Server struct {
	cfg    Config
	store  Integrations
	keys   KeyChecker
	live   LiveStatus
	log    *zap.Logger
	mux    *http.ServeMux
	limitM sync.Mutex
	limits map[string]*bucket
}

// New builds the API over its collaborators.
func New(cfg Config, store Integrations, keys KeyChecker, live LiveStatus) *Server {
	if cfg.ValidatePerMinute <= 0 {
		cfg.ValidatePerMinute = 10
	}
	if cfg.ValidateBurst <= 0 {
		cfg.ValidateBurst = 5
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	s := &Server{cfg: cfg, store: store, keys: keys, live: live, log: cfg.Logger, limits: map[string]*bucket{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/whoami", s.authed(s.whoami))
	mux.HandleFunc("GET /api/v1/sites", s.authed(s.sites))
	mux.HandleFunc("POST /api/v1/integrations/validate", s.authed(s.validate))
	mux.HandleFunc("POST /api/v1/integrations", s.authed(s.create))
	mux.HandleFunc("GET /api/v1/integrations", s.authed(s.list))
	mux.HandleFunc("GET /api/v1/integrations/{id}", s.authed(s.get))
	mux.HandleFunc("PATCH /api/v1/integrations/{id}", s.authed(s.patch))
	mux.HandleFunc("DELETE /api/v1/integrations/{id}", s.authed(s.delete))
	mux.HandleFunc("POST /api/v1/integrations/{id}/pause", s.authed(s.pause))
	mux.HandleFunc("POST /api/v1/integrations/{id}/resume", s.authed(s.resume))
	mux.HandleFunc("POST /api/v1/integrations/{id}/retry", s.authed(s.retry))
	mux.HandleFunc("POST /api/v1/integrations/{id}/dashboard", s.authed(s.dashboard))
	mux.HandleFunc("POST /api/v1/integrations/{id}/backfill", s.authed(s.startBackfill))
	mux.HandleFunc("DELETE /api/v1/integrations/{id}/backfill", s.authed(s.cancelBackfill))
	mux.HandleFunc("GET /api/v1/integrations/{id}/syncs", s.authed(s.syncs))
	mux.HandleFunc("/api/", s.authed(func(http.ResponseWriter, *http.Request, Token) error {
		return fail(http.StatusNotFound, "not_found", "", "no such API call: see docs/api.md")
	}))
	s.mux = mux
	return s
}

// ServeHTTP serves /api/v1.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// authed checks the bearer token before h runs, and turns h's error into
// the error answer.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, Token) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			writeError(w, errUnauthorized)
			return
		}
		tk, ok := s.cfg.Tokens.lookup(strings.TrimSpace(token))
		if !ok {
			writeError(w, errUnauthorized)
			return
		}
		if !s.store.Ready() {
			writeError(w, errNotReady)
			return
		}
		if err := h(w, r, tk); err != nil {
			if _, planned := err.(*apiError); !planned {
				s.log.Error("API call failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.String("token", tk.Name), zap.Error(err))
			}
			writeError(w, err)
		}
	}
}

// audit writes the one log line of a change: who, which org, what, and the
// names (never the values) of the fields.
func (s *Server) audit(tk Token, org, id, op string, fields []string) {
	s.log.Info("audit", zap.String("token", tk.Name), zap.String("role", string(tk.Role)), zap.String("org_id", org),
		zap.String("integration", id), zap.String("operation", op), zap.Strings("fields", fields))
}

// bucket is one token's allowance of key checks: a token bucket refilled
// at ValidatePerMinute.
type bucket struct {
	tokens float64
	at     time.Time
}

// allow takes one key check from the token's allowance, or says how long
// until one is free.
func (s *Server) allow(tk Token) *apiError {
	s.limitM.Lock()
	defer s.limitM.Unlock()
	now := s.cfg.Clock()
	rate := float64(s.cfg.ValidatePerMinute) / 60 // per second
	b, ok := s.limits[tk.Name]
	if !ok {
		b = &bucket{tokens: float64(s.cfg.ValidateBurst), at: now}
		s.limits[tk.Name] = b
	}
	b.tokens = min(float64(s.cfg.ValidateBurst), b.tokens+now.Sub(b.at).Seconds()*rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return nil
	}
	wait := time.Duration((1 - b.tokens) / rate * float64(time.Second))
	e := fail(http.StatusTooManyRequests, "rate_limited", "", "too many key checks for this token: at most %d a minute; try again in %s",
		s.cfg.ValidatePerMinute, wait.Round(time.Second))
	e.retryAfter = wait
	return e
}
