package ddfake

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault makes the server misbehave on purpose. Matching requests are
// affected before any key or body check, as a load balancer or an outage
// would be. The zero value of each field means "no restriction" or "off".
//
// Examples:
//
//	Fault{Path: "/api/v2/series", Status: 429, Count: 2, RetryAfter: 3 * time.Second}
//	Fault{Path: "/api/v2/logs", Status: 503, For: time.Second}
//	Fault{Delay: 2 * time.Second}          // slow answers, then normal handling
//	Fault{Drop: true, Count: 1}            // one connection closed without answer
//	Fault{Drop: true}                      // Datadog is down until ClearFaults
//	Fault{Status: 500, Probability: 0.3}   // flaky, seeded by WithSeed
type Fault struct {
	// Path is a URL path prefix; "" matches every path.
	Path string
	// Status, when non-zero, is answered instead of handling the request,
	// with the endpoint's error body (nothing is stored).
	Status int
	// Delay holds the answer (or, with Status 0 and Drop false, the normal
	// handling) back this long, in real time.
	Delay time.Duration
	// Drop closes the connection without answering (after Delay). It needs
	// a real connection (Start or httptest.Server); under an
	// httptest.ResponseRecorder it panics with http.ErrAbortHandler.
	Drop bool
	// Count limits the fault to the next Count matching requests.
	Count int
	// For limits the fault to this long after SetFault, in real time.
	For time.Duration
	// Probability, when in (0, 1), applies the fault to each matching request
	// with that probability; other values mean always.
	Probability float64
	// RetryAfter sets Retry-After and X-RateLimit-Reset (rounded up to whole
	// seconds) on a 429 or 503; a 429 without it says 1 second.
	RetryAfter time.Duration
}

func (f Fault) String() string {
	var parts []string
	if f.Path != "" {
		parts = append(parts, "path="+f.Path)
	}
	if f.Delay > 0 {
		parts = append(parts, "delay="+f.Delay.String())
	}
	if f.Drop {
		parts = append(parts, "drop")
	}
	if f.Status != 0 {
		parts = append(parts, "status="+strconv.Itoa(f.Status))
	}
	return strings.Join(parts, " ")
}

type faultState struct {
	f         Fault
	remaining int       // when f.Count > 0
	deadline  time.Time // when f.For > 0 (real clock)
}

// SetFault adds a fault. Faults are checked in the order they were set and
// the first that matches a request applies; one whose Count or For is used
// up is forgotten.
func (s *Server) SetFault(f Fault) {
	st := &faultState{f: f, remaining: f.Count}
	if f.For > 0 {
		st.deadline = time.Now().Add(f.For)
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = append(s.faults, st)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = nil
}

// takeFault returns the fault that applies to a request on path, consuming
// one use of its Count.
func (s *Server) takeFault(path string) (Fault, bool) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	now := time.Now()
	live := s.faults[:0]
	var (
		chosen Fault
		found  bool
	)
	for _, st := range s.faults {
		if !st.deadline.IsZero() && now.After(st.deadline) {
			continue
		}
		if found || !strings.HasPrefix(path, st.f.Path) {
			live = append(live, st)
			continue
		}
		if p := st.f.Probability; p > 0 && p < 1 && s.rng.Float64() >= p {
			live = append(live, st)
			continue
		}
		chosen, found = st.f, true
		if st.f.Count > 0 {
			st.remaining--
			if st.remaining <= 0 {
				continue
			}
		}
		live = append(live, st)
	}
	clear(s.faults[len(live):])
	s.faults = live
	return chosen, found
}

// applyFault carries out f. It reports false when the request should still
// be handled normally (a Delay-only fault).
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f Fault, ep endpoint, st *reqState) bool {
	st.rec.Fault = f.String()
	if f.Delay > 0 {
		// Take the whole request first, as a slow server would: once the body
		// is read, net/http notices a client that gives up and cancels the
		// request context. The handler then reads the buffered copy.
		buf, _ := io.ReadAll(io.LimitReader(r.Body, drainCap))
		r.Body = io.NopCloser(bytes.NewReader(buf))
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			st.rec.Fault += " (client gone)"
			s.record(st, nil)
			return true
		case <-s.closed:
			s.record(st, nil)
			dropConnection(w)
			return true
		}
	}
	if f.Drop {
		s.record(st, nil)
		dropConnection(w)
		return true
	}
	if f.Status == 0 {
		return false
	}
	drain(r.Body)
	a := errorAnswer(ep.style, f.Status, http.StatusText(f.Status))
	a.header = http.Header{}
	s.mu.Lock()
	ri := s.peekRate(ep.name, st.rec.Account)
	s.mu.Unlock()
	if f.Status == http.StatusTooManyRequests || f.Status == http.StatusServiceUnavailable {
		wait := f.RetryAfter
		if wait <= 0 && f.Status == http.StatusTooManyRequests {
			wait = time.Second
		}
		if wait > 0 {
			a.header.Set("Retry-After", strconv.Itoa(ceilSeconds(wait)))
		}
		if f.Status == http.StatusTooManyRequests {
			ri.remaining, ri.reset = 0, wait
		}
	}
	s.write(w, a, ri)
	s.record(st, &a)
	return true
}

// dropConnection closes the connection without a byte of answer, as a
// crashed or unreachable intake would.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// Not hijackable (HTTP/2, recorders): net/http aborts the stream.
	panic(http.ErrAbortHandler)
}
