package ddfake

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// isWidgetType reports whether t is the `type` of a WidgetDefinition
// schema of the spec.
func isWidgetType(t string) bool {
	switch t {
	case "alert_graph", "alert_value", "bar_chart", "change", "check_status", "cohort", "distribution", "embedded_app",
		"event_stream", "event_timeline", "free_text", "funnel", "geomap", "group", "heatgrid", "heatmap", "hostmap",
		"iframe", "image", "list_stream", "log_stream", "manage_status", "note", "point_plot", "powerpack", "query_table",
		"query_value", "retention_curve", "run_workflow", "sankey", "scatterplot", "servicemap", "slo", "slo_list",
		"split_group", "sunburst", "timeseries", "toplist", "topology_map", "trace_service", "treemap", "wildcard":
		return true
	}
	return false
}

// needsRequests reports whether a widget type's schema requires a
// non-empty `requests` list.
func needsRequests(t string) bool {
	switch t {
	case "timeseries", "query_value", "toplist", "query_table", "change", "distribution",
		"heatmap", "scatterplot", "sunburst", "treemap", "geomap", "bar_chart":
		return true
	}
	return false
}

// formulaNames returns the identifiers a widget formula refers to,
// leaving out functions (an identifier followed by "(").
func formulaNames(formula string) []string {
	var out []string
	for i := 0; i < len(formula); {
		c := formula[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			i++
			continue
		}
		j := i
		for j < len(formula) && (formula[j] == '_' || formula[j] >= 'a' && formula[j] <= 'z' ||
			formula[j] >= 'A' && formula[j] <= 'Z' || formula[j] >= '0' && formula[j] <= '9') {
			j++
		}
		k := j
		for k < len(formula) && formula[k] == ' ' {
			k++
		}
		if k >= len(formula) || formula[k] != '(' {
			out = append(out, formula[i:j])
		}
		i = j
	}
	return out
}

// handleDashboards is POST /api/v1/dashboard ("Create a new dashboard").
func (s *Server) handleDashboards(r *http.Request, account string, st *reqState) answer {
	body, refusal, ok := s.readObject(r)
	if !ok {
		return refusal
	}
	if msg := checkDashboard(body); msg != "" {
		return errorAnswer(apiErrors, http.StatusBadRequest, msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.boardsOf(account)
	id := s.newDashboardID()
	now := s.now().UTC()
	d := &Dashboard{ID: id, Created: now}
	s.setDashboard(d, body, account, now)
	b.dashboards[id] = d
	st.rec.Items = 1
	return objectAnswer(http.StatusOK, d.Body)
}

// handleDashboard is GET, PUT and DELETE /api/v1/dashboard/{dashboard_id}.
func (s *Server) handleDashboard(r *http.Request, account string, st *reqState) answer {
	id := strings.TrimPrefix(r.URL.Path, "/api/v1/dashboard/")
	var body map[string]any
	if r.Method == http.MethodPut {
		var refusal answer
		var ok bool
		if body, refusal, ok = s.readObject(r); !ok {
			return refusal
		}
		if msg := checkDashboard(body); msg != "" {
			return errorAnswer(apiErrors, http.StatusBadRequest, msg)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.boardsOf(account)
	d := b.dashboards[id]
	if d == nil {
		return errorAnswer(apiErrors, http.StatusNotFound, "Dashboard with ID "+id+" not found")
	}
	switch r.Method {
	case http.MethodDelete:
		delete(b.dashboards, id)
		return objectAnswer(http.StatusOK, map[string]string{"deleted_dashboard_id": id})
	case http.MethodPut:
		s.setDashboard(d, body, account, s.now().UTC())
		d.Updates++
		st.rec.Items = 1
	}
	return objectAnswer(http.StatusOK, d.Body)
}

// setDashboard stores body as d, with the read-only fields Datadog adds:
// id, url, author, creation and modification times, widget ids. Callers
// hold s.mu.
func (s *Server) setDashboard(d *Dashboard, body map[string]any, account string, now time.Time) {
	d.Title, _ = body["title"].(string)
	d.LayoutType, _ = body["layout_type"].(string)
	d.URL = "/dashboard/" + d.ID + "/" + slug(d.Title)
	d.Modified = now
	body["id"] = d.ID
	body["url"] = d.URL
	body["created_at"] = d.Created.Format(time.RFC3339)
	body["modified_at"] = now.Format(time.RFC3339)
	body["author_handle"] = account + "@example.com"
	body["author_name"] = account
	for _, k := range []string{"description", "notify_list", "template_variables", "tags"} {
		if _, ok := body[k]; !ok {
			body[k] = nil
		}
	}
	if _, ok := body["restricted_roles"]; !ok {
		body["restricted_roles"] = []any{}
	}
	s.numberWidgets(body["widgets"])
	d.Body = body
}

// numberWidgets gives every widget without one an id, as Datadog does.
func (s *Server) numberWidgets(v any) {
	list, _ := v.([]any)
	for _, w := range list {
		obj, _ := w.(map[string]any)
		if obj == nil {
			continue
		}
		if _, ok := obj["id"]; !ok {
			s.boardSeq++
			obj["id"] = float64(1_000_000_000 + s.boardSeq)
		}
		if def, _ := obj["definition"].(map[string]any); def != nil {
			s.numberWidgets(def["widgets"])
		}
	}
}

// checkDashboard checks what the Dashboard schema requires: title,
// layout_type (ordered or free), widgets, each with a definition of a
// known type (and a layout on a free dashboard), at most 5 tags of the form
// team:<name>. It returns the error message, or "" when the body is fine.
func checkDashboard(body map[string]any) string {
	title, ok := body["title"].(string)
	if !ok || strings.TrimSpace(title) == "" {
		return "Invalid dashboard: title is required"
	}
	layout, _ := body["layout_type"].(string)
	if layout != "ordered" && layout != "free" {
		return `Invalid dashboard: layout_type must be one of "ordered", "free"`
	}
	widgets, ok := body["widgets"].([]any)
	if !ok {
		return "Invalid dashboard: widgets is required"
	}
	if msg := checkWidgets(widgets, layout, "widgets"); msg != "" {
		return "Invalid dashboard: " + msg
	}
	if d, ok := body["description"]; ok && d != nil {
		if _, ok := d.(string); !ok {
			return "Invalid dashboard: description must be a string"
		}
	}
	if tags, ok := body["tags"]; ok && tags != nil {
		list, ok := tags.([]any)
		if !ok || len(list) > 5 {
			return "Invalid dashboard: tags must be a list of at most 5 team tags"
		}
		for _, t := range list {
			if s, _ := t.(string); !strings.HasPrefix(s, "team:") || len(s) == len("team:") {
				return fmt.Sprintf("Invalid dashboard: tag %v is not of the form team:<name>", t)
			}
		}
	}
	if tvs, ok := body["template_variables"]; ok && tvs != nil {
		list, ok := tvs.([]any)
		if !ok {
			return "Invalid dashboard: template_variables must be a list"
		}
		for i, tv := range list {
			obj, _ := tv.(map[string]any)
			if name, _ := obj["name"].(string); name == "" {
				return fmt.Sprintf("Invalid dashboard: template_variables[%d].name is required", i)
			}
		}
	}
	return ""
}

func checkWidgets(widgets []any, layout, path string) string {
	for i, w := range widgets {
		at := fmt.Sprintf("%s[%d]", path, i)
		obj, _ := w.(map[string]any)
		if obj == nil {
			return at + " must be an object"
		}
		def, _ := obj["definition"].(map[string]any)
		if def == nil {
			return at + ".definition is required"
		}
		typ, _ := def["type"].(string)
		if !isWidgetType(typ) {
			return fmt.Sprintf("%s.definition.type %q is not a widget type", at, typ)
		}
		if layout == "free" {
			if l, _ := obj["layout"].(map[string]any); l == nil {
				return at + ".layout is required on a free layout dashboard"
			}
		}
		switch {
		case typ == "group":
			inner, ok := def["widgets"].([]any)
			if !ok {
				return at + ".definition.widgets is required"
			}
			if gl, _ := def["layout_type"].(string); gl != "ordered" {
				return at + `.definition.layout_type must be "ordered"`
			}
			if msg := checkWidgets(inner, "ordered", at+".definition.widgets"); msg != "" {
				return msg
			}
		case needsRequests(typ):
			if msg := checkRequests(def["requests"], at+".definition.requests"); msg != "" {
				return msg
			}
		case typ == "note":
			if _, ok := def["content"].(string); !ok {
				return at + ".definition.content is required"
			}
		}
	}
	return ""
}

// checkRequests checks a metric widget's requests: a legacy `q`, or
// formula queries, each with data_source, name and query, whose formulas
// name only those queries.
func checkRequests(v any, path string) string {
	reqs, ok := v.([]any)
	if !ok || len(reqs) == 0 {
		return path + " is required"
	}
	for i, r := range reqs {
		at := fmt.Sprintf("%s[%d]", path, i)
		req, _ := r.(map[string]any)
		if req == nil {
			return at + " must be an object"
		}
		if _, legacy := req["q"].(string); legacy {
			continue
		}
		queries, _ := req["queries"].([]any)
		if len(queries) == 0 {
			return at + " needs q or queries"
		}
		names := map[string]bool{}
		for j, q := range queries {
			qo, _ := q.(map[string]any)
			name, _ := qo["name"].(string)
			src, _ := qo["data_source"].(string)
			query, _ := qo["query"].(string)
			if name == "" || src == "" || query == "" {
				return fmt.Sprintf("%s.queries[%d] needs data_source, name and query", at, j)
			}
			names[name] = true
		}
		formulas, _ := req["formulas"].([]any)
		for j, f := range formulas {
			fo, _ := f.(map[string]any)
			formula, _ := fo["formula"].(string)
			if formula == "" {
				return fmt.Sprintf("%s.formulas[%d].formula is required", at, j)
			}
			for _, id := range formulaNames(formula) {
				if !names[id] {
					return fmt.Sprintf("%s.formulas[%d]: %q is not the name of a query", at, j, id)
				}
			}
		}
	}
	return ""
}
