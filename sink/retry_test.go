package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestRetryable(t *testing.T) {
	urlErr := func(err error) error { return &url.Error{Op: "Post", URL: "https://x/api/v2/logs", Err: err} }
	cases := []struct {
		status int
		err    error
		reason string
		ok     bool
	}{
		{408, nil, "status_408", true},
		{429, nil, "status_429", true},
		{500, nil, "status_5xx", true},
		{502, nil, "status_5xx", true},
		{503, nil, "status_5xx", true},
		{504, nil, "status_5xx", true},
		{404, nil, "status_4xx", true},
		{400, nil, "", false},
		{401, nil, "", false},
		{403, nil, "", false},
		{413, nil, "", false},
		{0, urlErr(timeoutErr{}), "timeout", true},
		{0, urlErr(context.DeadlineExceeded), "timeout", true},
		{0, urlErr(&net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), "connection", true},
		{0, urlErr(&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), "connection", true},
		{0, urlErr(io.ErrUnexpectedEOF), "connection", true},
		{0, urlErr(io.EOF), "connection", true},
	}
	for _, c := range cases {
		reason, ok := retryable(c.status, c.err)
		if reason != c.reason || ok != c.ok {
			t.Errorf("retryable(%d, %v) = %q, %v; want %q, %v", c.status, c.err, reason, ok, c.reason, c.ok)
		}
	}
}

func TestClassify(t *testing.T) {
	ctx := context.Background()
	key := Secret("0123456789abcdef0123456789abcdef")
	cases := []struct {
		a    answer
		want error
	}{
		{answer{status: 200}, nil},
		{answer{status: 202}, nil},
		{answer{status: 400, body: []byte(`{"errors":["bad"]}`)}, errBadRequest},
		{answer{status: 401}, errKeyRejected},
		{answer{status: 403, body: []byte("<html>Forbidden " + string(key) + "</html>")}, errKeyRejected},
		{answer{status: 413}, errTooLarge},
	}
	for _, c := range cases {
		err := classify(ctx, "logs", c.a, key)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%d: %v, want %v", c.a.status, err, c.want)
		}
		var se *statusError
		if c.want != nil && (!errors.As(err, &se) || se.code != c.a.status) {
			t.Errorf("%d: not a statusError: %#v", c.a.status, err)
		}
		if err != nil && strings.Contains(err.Error(), string(key)) {
			t.Errorf("key in error: %v", err)
		}
	}
	for _, status := range []int{408, 429, 500, 503} {
		h := http.Header{}
		h.Set("Retry-After", "7")
		err := classify(ctx, "series", answer{status: status, header: h, body: []byte(`{"errors":["slow down"]}`)}, key)
		var be *backoffError
		if !errors.As(err, &be) || be.wait != 7*time.Second {
			t.Errorf("%d: %#v", status, err)
		}
		if !strings.Contains(err.Error(), "slow down") || !strings.Contains(err.Error(), fmt.Sprint(status)) {
			t.Errorf("%d: error says %q", status, err)
		}
	}
	err := classify(ctx, "logs", answer{err: fmt.Errorf("dial tcp: connection refused (key %s)", key)}, key)
	var be *backoffError
	if !errors.As(err, &be) || be.reason != "connection" || strings.Contains(err.Error(), string(key)) {
		t.Errorf("transport error: %v", err)
	}
	// Our own cancellation is not a network failure.
	cctx, cancel := context.WithCancelCause(ctx)
	cancel(errPaused)
	if err := classify(cctx, "logs", answer{err: context.Canceled}); !errors.Is(err, errPaused) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestServerWait(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	cases := []struct {
		status int
		h      http.Header
		want   time.Duration
	}{
		{429, nil, 0},
		{429, h(), 0},
		{429, h("Retry-After", "3"), 3 * time.Second},
		{503, h("Retry-After", "3"), 3 * time.Second},
		{429, h("Retry-After", "1.5"), 1500 * time.Millisecond},
		{429, h("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)), 90 * time.Second},
		{429, h("Retry-After", "soon"), 0},
		{429, h("Retry-After", "-4"), 0},
		{429, h("X-RateLimit-Reset", "12"), 12 * time.Second},
		{429, h("X-RateLimit-Reset", "12", "Retry-After", "30"), 30 * time.Second},
		{429, h("X-RateLimit-Reset", "40", "Retry-After", "30"), 40 * time.Second},
		{429, h("X-RateLimit-Reset", "99999999"), maxServerWait},
		// Every answer carries the rate-limit headers; only a 429 means
		// "wait for the reset".
		{503, h("X-RateLimit-Reset", "20"), 0},
		{408, h("X-RateLimit-Reset", "60"), 0},
		{500, h("X-RateLimit-Reset", "60", "Retry-After", "2"), 2 * time.Second},
	}
	for _, c := range cases {
		if got := serverWait(c.status, c.h, now); got != c.want {
			t.Errorf("serverWait(%d, %v) = %v, want %v", c.status, c.h, got, c.want)
		}
	}
}

func TestBackoffFullJitter(t *testing.T) {
	base, maxWait := 500*time.Millisecond, 2*time.Minute
	for attempt := 1; attempt <= 100; attempt++ {
		ceiling := min(maxWait, base<<min(attempt-1, 30))
		var top time.Duration
		for i := 0; i < 200; i++ {
			d := backoff(attempt, base, maxWait)
			if d < 0 || d > ceiling {
				t.Fatalf("attempt %d: %v outside [0, %v]", attempt, d, ceiling)
			}
			top = max(top, d)
		}
		if top < ceiling/2 {
			t.Errorf("attempt %d: never above %v of a %v ceiling: not jittered over the full range", attempt, top, ceiling)
		}
	}
}
