package sink

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"go.uber.org/zap"
)

// validateLocked (re)starts the check of the tenant's keys. Until it
// succeeds the tenant is Validating and its batches wait in its queue.
func (q *tenantQueue) validateLocked() {
	if q.valStop != nil {
		q.valStop()
		q.valStop = nil
	}
	if q.connErr != nil {
		// Cannot happen for a Site from ParseSite (a test checks every
		// site against the client); kept so a bug shows as a clear state.
		q.s.log.Error("tenant's Datadog site cannot be reached through the client", zap.String("tenant", q.id), zap.Error(q.connErr))
		q.rejectLocked(q.connErr.Error(), q.connErr)
		return
	}
	q.setLocked(func() { q.state = Validating })
	ctx, cancel := context.WithCancel(q.s.root)
	q.valStop = cancel
	cn := q.cn
	if !q.s.spawn(func() { q.validate(ctx, cn) }) {
		cancel()
	}
}

// validate checks cn's keys until Datadog gives an answer: valid (the
// tenant becomes Active) or refused (Error). Transient failures retry with
// backoff, without limit; the tenant stays Validating meanwhile.
func (q *tenantQueue) validate(ctx context.Context, cn *conn) {
	for attempt := 1; ; attempt++ {
		advice, err := q.s.checkKeys(ctx, cn)
		if ctx.Err() != nil {
			return
		}
		q.mu.Lock()
		if q.cn != cn || q.removed || q.state != Validating {
			q.mu.Unlock()
			return // superseded by a newer configuration
		}
		var be *backoffError
		switch {
		case err == nil:
			q.validated = true
			q.failures = 0
			q.setLocked(func() { q.state = Active; q.lastErr = "" })
			q.s.log.Info("tenant's Datadog keys are valid; delivering", zap.String("tenant", q.id), zap.String("site", cn.site.Name()))
			q.pumpLocked()
			q.mu.Unlock()
			return
		case errors.Is(err, errKeyRejected):
			q.s.log.Error("Datadog rejected the tenant's keys; its batches are undeliverable until its keys or site change, or a retry is asked for",
				zap.String("tenant", q.id), zap.String("site", cn.site.Name()), zap.String("advice", advice), zap.String("answer", err.Error()))
			q.rejectLocked(advice, err)
			q.mu.Unlock()
			return
		case errors.As(err, &be):
		default:
			// Not an answer we know: retried like a transient failure.
			be = &backoffError{reason: "connection", err: err}
		}
		q.lastErr = be.Error()
		q.mu.Unlock()
		wait := max(backoff(attempt, min(baseBackoff, q.s.cfg.MaxBackoff), q.s.cfg.MaxBackoff), be.wait)
		if bitsPow2(attempt) {
			q.s.log.Warn("cannot validate the tenant's Datadog keys yet; retrying",
				zap.String("tenant", q.id), zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.String("error", be.Error()))
		}
		if q.s.sleep(ctx, wait) != nil {
			return
		}
	}
}

func bitsPow2(n int) bool { return n > 0 && n&(n-1) == 0 }

// checkKeys asks Datadog whether cn's keys are valid: the API key with
// GET /api/v1/validate, then the application key, when there is one, with
// GET /api/v2/validate_keys. It returns nil, a *backoffError, or an error
// matching errKeyRejected with the advice for the tenant.
func (s *Sink) checkKeys(ctx context.Context, cn *conn) (advice string, err error) {
	if err := s.checkAPIKey(ctx, cn); err != nil {
		return apiKeyAdvice(cn.site), err
	}
	if cn.appKey == "" {
		return "", nil
	}
	if err := s.checkAppKey(ctx, cn); err != nil {
		return appKeyAdvice(cn.site), err
	}
	return "", nil
}

func (s *Sink) checkAPIKey(ctx context.Context, cn *conn) error {
	start := time.Now()
	res, resp, err := s.dd.auth.Validate(cn.ctx(ctx))
	a := clientAnswer(resp, err)
	s.m.requestSeconds.WithLabelValues(endpointValidate).Observe(time.Since(start).Seconds())
	s.m.requests.WithLabelValues(endpointValidate, codeLabel(a)).Inc()
	if err := classify(ctx, endpointValidate, a, cn.secrets()...); err != nil {
		return err
	}
	if v, ok := res.GetValidOk(); ok && !*v {
		return &statusError{endpoint: endpointValidate, code: a.status, detail: `{"valid":false}`, kind: errKeyRejected}
	}
	return nil
}

func (s *Sink) checkAppKey(ctx context.Context, cn *conn) error {
	start := time.Now()
	_, resp, err := s.dd.keys.ValidateAPIKey(cn.ctx(ctx))
	a := clientAnswer(resp, err)
	s.m.requestSeconds.WithLabelValues(endpointValidate).Observe(time.Since(start).Seconds())
	s.m.requests.WithLabelValues(endpointValidate, codeLabel(a)).Inc()
	return classify(ctx, endpointValidate, a, cn.secrets()...)
}

// Verdicts of a key check.
const (
	KeyValid       = "valid"
	KeyRejected    = "rejected"
	KeyUnreachable = "unreachable"
	KeyUnchecked   = "unchecked"
)

// KeyVerdict is Datadog's answer about one key, with what to do about it.
// Message never holds a key.
type KeyVerdict struct {
	Verdict string `json:"verdict"`
	Message string `json:"message"`
}

// KeyCheck is the answer of CheckKeys. AppKey is nil when no application
// key was given.
type KeyCheck struct {
	Valid  bool        `json:"valid"`
	APIKey KeyVerdict  `json:"api_key"`
	AppKey *KeyVerdict `json:"app_key"`
}

// Unreachable reports whether Datadog could not tell (no answer, 5xx, 429).
func (k KeyCheck) Unreachable() bool {
	return k.APIKey.Verdict == KeyUnreachable || k.AppKey != nil && k.AppKey.Verdict == KeyUnreachable
}

// CheckKeys asks Datadog, once, whether keys of an account on site are
// valid, for the integrations API: the API key first, then the pair with
// the application key. It does not retry: the person asking is waiting.
func (s *Sink) CheckKeys(ctx context.Context, site Site, apiKey, appKey Secret) KeyCheck {
	cn, err := s.dd.newConn(Tenant{ID: "validate", Site: site, APIKey: apiKey, AppKey: appKey})
	out := KeyCheck{}
	if appKey != "" {
		out.AppKey = &KeyVerdict{Verdict: KeyUnchecked, Message: "checked once the API key is valid"}
	}
	if err != nil {
		out.APIKey = KeyVerdict{Verdict: KeyUnreachable, Message: "the site cannot be reached through the Datadog client"}
		return out
	}
	out.APIKey = verdictOf(s.checkAPIKey(ctx, cn), site, "API key",
		"check that it is an API key (Organization Settings > API Keys) of an organisation on "+site.Region()+", and that it has not been revoked")
	if out.APIKey.Verdict != KeyValid {
		return out
	}
	if appKey != "" {
		v := verdictOf(s.checkAppKey(ctx, cn), site, "application key",
			"check that it is an application key of the same organisation as the API key, and that it has not been revoked")
		out.AppKey = &v
		if v.Verdict != KeyValid {
			return out
		}
	}
	out.Valid = true
	return out
}

func verdictOf(err error, site Site, what, advice string) KeyVerdict {
	var be *backoffError
	switch {
	case err == nil:
		return KeyVerdict{Verdict: KeyValid, Message: "Datadog (" + site.Name() + ") accepted the " + what}
	case errors.Is(err, errKeyRejected):
		return KeyVerdict{Verdict: KeyRejected, Message: "Datadog (" + site.Name() + ") rejected the " + what + ": " + advice +
			". A key of another site is rejected too: check the site."}
	case errors.As(err, &be):
		return KeyVerdict{Verdict: KeyUnreachable, Message: "Datadog (" + site.Name() + ") could not check the " + what + " now (" + be.reason + "): try again in a minute"}
	}
	return KeyVerdict{Verdict: KeyUnreachable, Message: "Datadog (" + site.Name() + ") could not be reached to check the " + what + ": try again in a minute"}
}

// clientAnswer turns what a datadog-api-client call returned into an
// answer: the HTTP status decides, whatever the client made of the body.
func clientAnswer(resp *http.Response, err error) answer {
	if resp == nil {
		if err == nil {
			err = errors.New("no answer")
		}
		return answer{err: err}
	}
	a := answer{status: resp.StatusCode, header: resp.Header}
	var ge datadog.GenericOpenAPIError
	if errors.As(err, &ge) {
		a.body = ge.Body()
		if len(a.body) > maxErrorBody {
			a.body = a.body[:maxErrorBody]
		}
	}
	return a
}
