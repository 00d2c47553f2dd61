package ddfake

import (
	"net/http"
	"strconv"
	"time"
)

type rateConfig struct {
	limit  int
	period time.Duration
}

type windowKey struct{ endpoint, account string }

// window is one fixed rate-limit window; "calendar aligned" in the Rate
// Limits page means windows start at multiples of the period.
type window struct {
	start time.Time
	used  int
}

// rateInfo is what the X-RateLimit-* headers say.
type rateInfo struct {
	name      string
	limit     int
	period    time.Duration
	remaining int
	reset     time.Duration
}

func (ri rateInfo) set(h http.Header) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(ri.limit))
	h.Set("X-RateLimit-Period", strconv.Itoa(int(ri.period/time.Second)))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(ri.remaining))
	h.Set("X-RateLimit-Reset", strconv.Itoa(ceilSeconds(ri.reset)))
	h.Set("X-RateLimit-Name", ri.name)
}

func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// consumeRate counts one request against the account's window for the
// endpoint and reports whether it is over the limit. Callers hold s.mu.
func (s *Server) consumeRate(endpoint, account string) (rateInfo, bool) {
	now := s.now()
	start := now.Truncate(s.rate.period)
	k := windowKey{endpoint, account}
	w := s.windows[k]
	if w == nil || !w.start.Equal(start) {
		w = &window{start: start}
		s.windows[k] = w
	}
	w.used++
	return rateInfo{
		name:      endpoint,
		limit:     s.rate.limit,
		period:    s.rate.period,
		remaining: max(s.rate.limit-w.used, 0),
		reset:     max(start.Add(s.rate.period).Sub(now), time.Second),
	}, w.used > s.rate.limit
}

// peekRate describes the window without counting, for answers that never
// reached the limiter (faults). Callers hold s.mu.
func (s *Server) peekRate(endpoint, account string) rateInfo {
	now := s.now()
	start := now.Truncate(s.rate.period)
	used := 0
	if w := s.windows[windowKey{endpoint, account}]; w != nil && w.start.Equal(start) {
		used = w.used
	}
	return rateInfo{
		name:      endpoint,
		limit:     s.rate.limit,
		period:    s.rate.period,
		remaining: max(s.rate.limit-used, 0),
		reset:     max(start.Add(s.rate.period).Sub(now), time.Second),
	}
}
