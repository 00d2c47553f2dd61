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
		q.rejectLocked(q.connErr.Error())
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
			q.s.log.Error("Datadog rejected the tenant's keys; its batches are undeliverable until its entry in the tenants file changes",
				zap.String("tenant", q.id), zap.String("site", cn.site.Name()), zap.String("advice", advice), zap.String("answer", err.Error()))
			q.rejectLocked(advice)
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
	vctx := cn.ctx(ctx)

	start := time.Now()
	res, resp, err := s.dd.auth.Validate(vctx)
	a := clientAnswer(resp, err)
	s.m.requestSeconds.WithLabelValues(endpointValidate).Observe(time.Since(start).Seconds())
	s.m.requests.WithLabelValues(endpointValidate, codeLabel(a)).Inc()
	if err := classify(ctx, endpointValidate, a, cn.secrets()...); err != nil {
		return apiKeyAdvice(cn.site), err
	}
	if v, ok := res.GetValidOk(); ok && !*v {
		return apiKeyAdvice(cn.site), &statusError{endpoint: endpointValidate, code: a.status, detail: `{"valid":false}`, kind: errKeyRejected}
	}
	if cn.appKey == "" {
		return "", nil
	}

	start = time.Now()
	_, resp, err = s.dd.keys.ValidateAPIKey(vctx)
	a = clientAnswer(resp, err)
	s.m.requestSeconds.WithLabelValues(endpointValidate).Observe(time.Since(start).Seconds())
	s.m.requests.WithLabelValues(endpointValidate, codeLabel(a)).Inc()
	if err := classify(ctx, endpointValidate, a, cn.secrets()...); err != nil {
		return appKeyAdvice(cn.site), err
	}
	return "", nil
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
