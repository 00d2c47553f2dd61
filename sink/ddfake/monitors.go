package ddfake

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// isMonitorType reports whether t is in the MonitorType enum of the spec.
func isMonitorType(t string) bool {
	switch t {
	case "composite", "event alert", "log alert", "metric alert", "process alert", "query alert", "rum alert",
		"service check", "synthetics alert", "trace-analytics alert", "slo alert", "event-v2 alert", "audit alert",
		"ci-pipelines alert", "ci-tests alert", "error-tracking alert", "database-monitoring alert",
		"network-performance alert", "cost alert", "data-quality alert", "network-path alert", "data-jobs alert",
		"llm-observability alert":
		return true
	}
	return false
}

// metricQuery is the "Metric Alert Query" grammar of the Create a monitor
// reference, coarsely: time_aggr(time_window):<metric query> operator #.
func metricQuery() *regexp.Regexp {
	return regexp.MustCompile(`^(avg|sum|min|max|change|pct_change)\((last_(\d+[mh]|1d|1w))\):(.+?)\s*(<=|>=|==|!=|<|>)\s*(-?[0-9]+(?:\.[0-9]+)?)$`)
}

// The fields a client may not set, which Datadog fills in.
func readOnlyMonitorField(k string) bool {
	switch k {
	case "id", "created", "modified", "creator", "overall_state", "multi", "deleted", "state", "matching_downtimes":
		return true
	}
	return false
}

// checkMonitor checks what the Monitor schema requires (type and query),
// the query's grammar for metric monitors, and that a critical threshold
// in the options is the one in the query, as Datadog does.
func checkMonitor(body map[string]any) string {
	typ, _ := body["type"].(string)
	if !isMonitorType(typ) {
		return fmt.Sprintf("Invalid monitor: type %q is not a monitor type", typ)
	}
	query, _ := body["query"].(string)
	if strings.TrimSpace(query) == "" {
		return "Invalid monitor: query is required"
	}
	for _, k := range []string{"name", "message"} {
		if v, ok := body[k]; ok && v != nil {
			if _, ok := v.(string); !ok {
				return "Invalid monitor: " + k + " must be a string"
			}
		}
	}
	if tags, ok := body["tags"]; ok && tags != nil {
		list, ok := tags.([]any)
		if !ok {
			return "Invalid monitor: tags must be a list of strings"
		}
		for _, t := range list {
			if _, ok := t.(string); !ok {
				return "Invalid monitor: tags must be a list of strings"
			}
		}
	}
	if p, ok := body["priority"]; ok && p != nil {
		n, ok := p.(float64)
		if !ok || n != float64(int64(n)) || n < 1 || n > 5 {
			return "Invalid monitor: priority must be an integer from 1 to 5"
		}
	}
	if typ == "query alert" || typ == "metric alert" {
		m := metricQuery().FindStringSubmatch(query)
		if m == nil {
			return "The value provided for parameter 'query' is invalid"
		}
		inQuery, _ := strconv.ParseFloat(m[6], 64)
		opts, _ := body["options"].(map[string]any)
		th, _ := opts["thresholds"].(map[string]any)
		if c, ok := th["critical"]; ok && c != nil {
			cf, ok := c.(float64)
			if !ok || cf != inQuery {
				return fmt.Sprintf("Alert threshold (%v) does not match that used in the query (%s).", c, m[6])
			}
		}
	}
	return ""
}

// setMonitor stores body as m with the fields Datadog fills in. Callers
// hold s.mu.
func setMonitor(m *Monitor, body map[string]any, account string, now time.Time) {
	m.Name, _ = body["name"].(string)
	m.Type, _ = body["type"].(string)
	m.Query, _ = body["query"].(string)
	m.Message, _ = body["message"].(string)
	m.Tags = m.Tags[:0]
	list, _ := body["tags"].([]any)
	for _, t := range list {
		m.Tags = append(m.Tags, t.(string))
	}
	body["id"] = float64(m.ID)
	body["created"] = m.Created.Format(time.RFC3339)
	body["modified"] = now.Format(time.RFC3339)
	body["creator"] = map[string]any{"email": account + "@example.com", "handle": account + "@example.com", "name": account}
	body["overall_state"] = "No Data"
	body["multi"] = strings.Contains(m.Query, " by {")
	body["deleted"] = nil
	if body["tags"] == nil {
		body["tags"] = []any{}
	}
	if body["options"] == nil {
		body["options"] = map[string]any{}
	}
	for _, k := range []string{"name", "message"} {
		if body[k] == nil {
			body[k] = ""
		}
	}
	for _, k := range []string{"priority", "restricted_roles"} {
		if _, ok := body[k]; !ok {
			body[k] = nil
		}
	}
	m.Body = body
}

// handleMonitors is GET /api/v1/monitor ("Get all monitors": filters name
// and monitor_tags, pagination page, page_size and id_offset) and POST
// /api/v1/monitor ("Create a monitor").
func (s *Server) handleMonitors(r *http.Request, account string, st *reqState) answer {
	if r.Method == http.MethodGet {
		return s.listMonitors(r, account)
	}
	body, refusal, ok := s.readObject(r)
	if !ok {
		return refusal
	}
	for k := range body {
		if readOnlyMonitorField(k) {
			delete(body, k)
		}
	}
	if msg := checkMonitor(body); msg != "" {
		return errorAnswer(apiErrors, http.StatusBadRequest, msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	m := &Monitor{ID: s.newMonitorID(), Created: now}
	setMonitor(m, body, account, now)
	s.boardsOf(account).monitors[m.ID] = m
	st.rec.Items = 1
	return objectAnswer(http.StatusOK, m.Body)
}

func (s *Server) listMonitors(r *http.Request, account string) answer {
	q := r.URL.Query()
	var want []string
	for _, t := range strings.Split(q.Get("monitor_tags"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			want = append(want, t)
		}
	}
	name := strings.ToLower(q.Get("name"))
	intParam := func(k string, def, lo, hi int64) (int64, bool) {
		v := q.Get(k)
		if v == "" {
			return def, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil && n >= lo && n <= hi
	}
	offset, ok1 := intParam("id_offset", 0, 0, 1<<62)
	page, ok2 := intParam("page", -1, 0, 1<<31)
	size, ok3 := intParam("page_size", 100, 1, 1000)
	if !ok1 || !ok2 || !ok3 {
		return errorAnswer(apiErrors, http.StatusBadRequest, "Invalid pagination parameters")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []*Monitor
	for _, m := range s.boardsOf(account).monitors {
		if m.ID <= offset || name != "" && !strings.Contains(strings.ToLower(m.Name), name) {
			continue
		}
		all := true
		for _, t := range want {
			all = all && slices.Contains(m.Tags, t)
		}
		if all {
			found = append(found, m)
		}
	}
	slices.SortFunc(found, func(a, b *Monitor) int { return int(a.ID - b.ID) })
	if page >= 0 {
		from := min(int(page*size), len(found))
		found = found[from:min(from+int(size), len(found))]
	}
	out := make([]any, len(found))
	for i, m := range found {
		out[i] = m.Body
	}
	return objectAnswer(http.StatusOK, out)
}

// handleMonitor is GET, PUT and DELETE /api/v1/monitor/{monitor_id}.
func (s *Server) handleMonitor(r *http.Request, account string, st *reqState) answer {
	raw := strings.TrimPrefix(r.URL.Path, "/api/v1/monitor/")
	id, err := strconv.ParseInt(raw, 10, 64)
	notFound := errorAnswer(apiErrors, http.StatusNotFound, "Monitor not found")
	if err != nil {
		return notFound
	}
	var patch map[string]any
	if r.Method == http.MethodPut {
		var refusal answer
		var ok bool
		if patch, refusal, ok = s.readObject(r); !ok {
			return refusal
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.boardsOf(account)
	m := b.monitors[id]
	if m == nil {
		return notFound
	}
	switch r.Method {
	case http.MethodDelete:
		delete(b.monitors, id)
		return objectAnswer(http.StatusOK, map[string]int64{"deleted_monitor_id": id})
	case http.MethodPut:
		// MonitorUpdateRequest: every field optional; what is given
		// replaces what was there.
		next, _ := deepCopy(m.Body).(map[string]any)
		for k, v := range patch {
			if readOnlyMonitorField(k) {
				continue
			}
			if k == "type" && v != next["type"] {
				return errorAnswer(apiErrors, http.StatusBadRequest, "The monitor type cannot be changed")
			}
			next[k] = v
		}
		if msg := checkMonitor(next); msg != "" {
			return errorAnswer(apiErrors, http.StatusBadRequest, msg)
		}
		setMonitor(m, next, account, s.now().UTC())
		m.Updates++
		st.rec.Items = 1
	}
	return objectAnswer(http.StatusOK, m.Body)
}
