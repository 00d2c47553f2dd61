package ddfake

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRequestRecords bounds Requests() so a long demo does not grow forever;
// the oldest records are forgotten first.
const maxRequestRecords = 100000

// authKind is how an endpoint checks keys; the answers differ per endpoint
// in Datadog's spec.
type authKind int

const (
	authLogs authKind = iota // DD-API-KEY: missing 401, unknown 403
	authAPI                  // DD-API-KEY: missing or unknown 403
	authBoth                 // DD-API-KEY and DD-APPLICATION-KEY of one account, else 403
)

type endpoint struct {
	name   string // X-RateLimit-Name, and the rate-limit bucket
	method string // one method, or several as "GET, PUT" (the Allow header's form)
	style  errorStyle
	auth   authKind
	handle func(s *Server, r *http.Request, account string, st *reqState) answer
}

func route(path string) (endpoint, bool) {
	switch path {
	case "/api/v2/logs":
		return endpoint{"logs_intake", http.MethodPost, logsErrors, authLogs, (*Server).handleLogs}, true
	case "/api/v2/series":
		return endpoint{"metrics_intake", http.MethodPost, apiErrors, authAPI, (*Server).handleSeries}, true
	case "/api/v1/distribution_points":
		return endpoint{"distribution_points_intake", http.MethodPost, apiErrors, authAPI, (*Server).handleDistributions}, true
	case "/api/v1/validate":
		return endpoint{"auth_validate", http.MethodGet, apiErrors, authAPI, (*Server).handleValidate}, true
	case "/api/v2/validate_keys":
		return endpoint{"auth_validate_keys", http.MethodGet, apiErrors, authBoth, (*Server).handleValidateKeys}, true
	case "/api/v1/dashboard":
		return endpoint{"dashboards", http.MethodPost, apiErrors, authBoth, (*Server).handleDashboards}, true
	case "/api/v1/monitor":
		return endpoint{"monitors", "GET, POST", apiErrors, authBoth, (*Server).handleMonitors}, true
	}
	// One path segment after the collection: a dashboard or monitor id.
	if id, ok := strings.CutPrefix(path, "/api/v1/dashboard/"); ok && id != "" && !strings.Contains(id, "/") {
		return endpoint{"dashboards", "GET, PUT, DELETE", apiErrors, authBoth, (*Server).handleDashboard}, true
	}
	if id, ok := strings.CutPrefix(path, "/api/v1/monitor/"); ok && id != "" && !strings.Contains(id, "/") {
		return endpoint{"monitors", "GET, PUT, DELETE", apiErrors, authBoth, (*Server).handleMonitor}, true
	}
	return endpoint{name: "unknown", style: apiErrors}, false
}

// allows reports whether an endpoint's method list ("GET, PUT") has m.
func (ep endpoint) allows(m string) bool {
	for _, x := range strings.Split(ep.method, ", ") {
		if x == m {
			return true
		}
	}
	return false
}

// reqState is one request in flight: its record and what is needed to
// finish it.
type reqState struct {
	rec     RequestRecord
	body    *countingReader
	started time.Time
	pooled  []*bytes.Buffer // to give back to Server.bodyBufs when answered
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body := &countingReader{r: r.Body}
	r.Body = body
	st := &reqState{
		rec: RequestRecord{
			Time:     s.now(),
			Method:   r.Method,
			Path:     r.URL.Path,
			Encoding: r.Header.Get("Content-Encoding"),
		},
		body:    body,
		started: time.Now(),
	}
	ep, known := route(r.URL.Path)
	s.mu.Lock()
	st.rec.Account, _ = s.lookupAPIKey(r.Header.Get("DD-API-KEY"), r.Host)
	s.mu.Unlock()

	if f, ok := s.takeFault(r.URL.Path); ok && s.applyFault(w, r, f, ep, st) {
		return
	}

	var (
		a  answer
		ri rateInfo
	)
	switch {
	case !known:
		a = errorAnswer(apiErrors, http.StatusNotFound, "Not Found")
		s.mu.Lock()
		ri = s.peekRate(ep.name, st.rec.Account)
		s.mu.Unlock()
	case !ep.allows(r.Method):
		a = errorAnswer(ep.style, http.StatusMethodNotAllowed, "Method Not Allowed")
		a.header = http.Header{"Allow": {ep.method}}
		s.mu.Lock()
		ri = s.peekRate(ep.name, st.rec.Account)
		s.mu.Unlock()
	default:
		account, refusal, ok := s.authenticate(r, ep)
		st.rec.Account = account
		s.mu.Lock()
		var over bool
		ri, over = s.consumeRate(ep.name, account)
		s.mu.Unlock()
		switch {
		case !ok:
			a = refusal
		case over:
			a = errorAnswer(ep.style, http.StatusTooManyRequests, "Too Many Requests")
			a.header = http.Header{"Retry-After": {strconv.Itoa(ceilSeconds(ri.reset))}}
		default:
			a = ep.handle(s, r, account, st)
		}
	}
	drain(r.Body)
	s.write(w, a, ri)
	s.record(st, &a)
	for _, b := range st.pooled {
		if b.Cap() <= 8<<20 {
			s.bodyBufs.Put(b)
		}
	}
}

// authenticate checks the keys the endpoint needs and returns the account,
// or the refusal to send.
func (s *Server) authenticate(r *http.Request, ep endpoint) (string, answer, bool) {
	key := r.Header.Get("DD-API-KEY")
	if key == "" && ep.auth == authLogs {
		return "", errorAnswer(ep.style, http.StatusUnauthorized, "API key is missing"), false
	}
	forbidden := errorAnswer(ep.style, http.StatusForbidden, "Forbidden")
	s.mu.Lock()
	defer s.mu.Unlock()
	account, ok := s.lookupAPIKey(key, r.Host)
	if !ok {
		return "", forbidden, false
	}
	if ep.auth == authBoth {
		appAccount, ok := s.lookupAppKey(r.Header.Get("DD-APPLICATION-KEY"), r.Host)
		if !ok || appAccount != account {
			return "", forbidden, false
		}
	}
	return account, answer{}, true
}

func (s *Server) write(w http.ResponseWriter, a answer, ri rateInfo) {
	h := w.Header()
	ri.set(h)
	for k, v := range a.header {
		h[k] = v
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// record finishes the request's record and counts it. a is nil when no
// answer was sent.
func (s *Server) record(st *reqState, a *answer) {
	st.rec.WireBytes = st.body.n
	st.rec.Duration = time.Since(st.started)
	if a != nil {
		st.rec.Status = a.status
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests++
	s.stats.ByStatus[st.rec.Status]++
	s.stats.WireBytes += st.rec.WireBytes
	s.stats.BodyBytes += st.rec.BodyBytes
	if st.rec.Fault != "" {
		s.stats.Faults++
	}
	if s.cheap {
		return
	}
	if len(s.requests) >= maxRequestRecords {
		s.requests = s.requests[1:]
	}
	s.requests = append(s.requests, st.rec)
}
