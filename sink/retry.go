package sink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// How an answer from Datadog is handled is decided here, in one place:
//
//   - 2xx: accepted.
//   - 408, 429, 5xx, timeouts, connection errors: retried, without limit, with
//     exponential backoff and full jitter, waiting at least what
//     Retry-After / X-RateLimit-Reset ask (a *backoffError).
//   - 400: the payload is wrong (errBadRequest): split to find the refused
//     items, which are dead-lettered.
//   - 413: the payload is too large (errTooLarge): split in half.
//   - 401, 403: the key is refused (errKeyRejected): the tenant goes to Error.
//   - Any other 4xx: unexpected; retried like a 5xx rather than dropping
//     data, and logged, since only a change on our side can fix it.

// The permanent answers, for errors.Is.
var (
	errKeyRejected = errors.New("Datadog rejected the key")
	errBadRequest  = errors.New("Datadog refused the payload as malformed")
	errTooLarge    = errors.New("Datadog refused the payload as too large")
)

// statusError is a permanent answer from Datadog.
type statusError struct {
	endpoint string
	code     int
	detail   string // from the answer's body, trimmed and without keys
	kind     error  // errKeyRejected, errBadRequest or errTooLarge
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("%s: Datadog answered %d %s", e.endpoint, e.code, http.StatusText(e.code))
	if e.detail != "" {
		msg += ": " + e.detail
	}
	return msg
}

func (e *statusError) Unwrap() error { return e.kind }

// backoffError is a failure worth retrying. wait is the least time the
// server asked for (0 when it did not say).
type backoffError struct {
	wait   time.Duration
	reason string // the retries metric's label
	err    error
}

func (e *backoffError) Error() string {
	if e.wait > 0 {
		return fmt.Sprintf("%v (retry after %v)", e.err, e.wait)
	}
	return e.err.Error()
}

func (e *backoffError) Unwrap() error { return e.err }

// retryable says whether a request that ended with this status or transport
// error should be sent again, and under which reason it is counted. Every
// transport error is: the data must not be lost, and the caller tells its
// own cancellation apart before asking.
func retryable(status int, err error) (reason string, ok bool) {
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return "timeout", true
		}
		return "connection", true
	}
	switch {
	case status == http.StatusRequestTimeout:
		return "status_408", true
	case status == http.StatusTooManyRequests:
		return "status_429", true
	case status >= 500:
		return "status_5xx", true
	case status == http.StatusBadRequest, status == http.StatusUnauthorized,
		status == http.StatusForbidden, status == http.StatusRequestEntityTooLarge:
		return "", false
	case status >= 400:
		return "status_4xx", true
	}
	return "", false
}

// answer is what one request came back with, whichever way it was sent.
type answer struct {
	status int
	header http.Header
	body   []byte // at most maxErrorBody bytes, only read for failures
	err    error  // transport error, when there was no answer
}

const maxErrorBody = 4 << 10

// classify turns an answer into nil (accepted), *statusError or
// *backoffError. secrets are removed from anything quoted from the answer.
func classify(ctx context.Context, endpoint string, a answer, secrets ...Secret) error {
	if a.err == nil && a.status >= 200 && a.status < 300 {
		return nil
	}
	if a.err != nil && ctx.Err() != nil {
		// Our own cancellation, not the network's.
		return context.Cause(ctx)
	}
	reason, ok := retryable(a.status, a.err)
	if ok {
		var cause error
		if a.err != nil {
			cause = fmt.Errorf("%s: %s", endpoint, redact(a.err.Error(), secrets))
		} else {
			cause = &statusError{endpoint: endpoint, code: a.status, detail: errorDetail(a.body, secrets)}
		}
		return &backoffError{wait: serverWait(a.status, a.header, time.Now()), reason: reason, err: cause}
	}
	if a.err != nil {
		return fmt.Errorf("%s: %s", endpoint, redact(a.err.Error(), secrets))
	}
	e := &statusError{endpoint: endpoint, code: a.status, detail: errorDetail(a.body, secrets)}
	switch a.status {
	case http.StatusUnauthorized, http.StatusForbidden:
		e.kind = errKeyRejected
	case http.StatusRequestEntityTooLarge:
		e.kind = errTooLarge
	default:
		e.kind = errBadRequest
	}
	return e
}

// maxServerWait bounds what a header can make us wait, against a garbage
// value; Datadog's rate-limit periods are seconds to minutes.
const maxServerWait = time.Hour

// serverWait is the least wait the answer asks for: Retry-After (seconds,
// or an HTTP date) on any retryable answer, and on a 429 also
// X-RateLimit-Reset (seconds until the rate-limit window resets). Datadog
// sends the X-RateLimit-* headers on every answer of a rate-limited
// endpoint, so Reset only means "wait" when the answer is a 429 (the
// client's own retry reads it the same way).
func serverWait(status int, h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	var wait time.Duration
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" && status == http.StatusTooManyRequests {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
			wait = max(wait, time.Duration(s*float64(time.Second)))
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil {
			if s > 0 {
				wait = max(wait, time.Duration(s*float64(time.Second)))
			}
		} else if at, err := http.ParseTime(v); err == nil {
			wait = max(wait, at.Sub(now))
		}
	}
	return min(wait, maxServerWait)
}

// errorDetail is a short, key-free excerpt of an error answer's body, for
// logs and the dead-letter reason.
func errorDetail(body []byte, secrets []Secret) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	s = redact(s, secrets)
	if len(s) > 300 {
		s = s[:runeStartString(s, 300)] + truncatedMark
	}
	return s
}

// redact removes every given key from s. Datadog does not echo keys, but a
// proxy in between might, and a key must not reach a log.
func redact(s string, secrets []Secret) string {
	for _, k := range secrets {
		if len(k) >= 4 {
			s = strings.ReplaceAll(s, string(k), redacted)
		}
	}
	return s
}

// backoff is exponential backoff with full jitter: a uniformly random wait
// in [0, min(maxWait, base*2^(attempt-1))], so that many tenants' retries
// after a Datadog outage do not arrive together.
func backoff(attempt int, base, maxWait time.Duration) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	ceiling := maxWait
	if attempt < 40 {
		if d := base << (attempt - 1); d > 0 && d < maxWait {
			ceiling = d
		}
	}
	return rand.N(ceiling + 1)
}
