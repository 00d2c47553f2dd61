package ddfake

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Dashboards and monitors ("Dashboards" and "Monitors" in the v1 API
// reference; schemas Dashboard, Monitor, MonitorUpdateRequest,
// DashboardDeleteResponse, DeletedMonitor in the v1 OpenAPI spec). They are
// kept per account as the JSON objects Datadog would answer with.

// maxObjectBytes bounds a dashboard or monitor body; Datadog documents no
// limit, and real dashboards stay far below this.
const maxObjectBytes = 8 << 20

// Dashboard is one stored dashboard, for tests.
type Dashboard struct {
	ID         string
	Title      string
	LayoutType string
	URL        string // "/dashboard/<id>/<slug>", as the answer's url
	// Body is the dashboard as GET answers it (numbers are float64).
	Body     map[string]any
	Created  time.Time
	Modified time.Time
	Updates  int // accepted PUTs
}

// Monitor is one stored monitor, for tests.
type Monitor struct {
	ID      int64
	Name    string
	Type    string
	Query   string
	Message string
	Tags    []string
	Body    map[string]any
	Created time.Time
	Updates int
}

// boards is an account's dashboards and monitors.
type boards struct {
	dashboards map[string]*Dashboard
	monitors   map[int64]*Monitor
}

// boardsOf returns the account's dashboards and monitors, creating them.
// Callers hold s.mu.
func (s *Server) boardsOf(account string) *boards {
	d := s.account(account)
	if d.boards == nil {
		d.boards = &boards{dashboards: map[string]*Dashboard{}, monitors: map[int64]*Monitor{}}
	}
	return d.boards
}

// newDashboardID makes an id shaped like Datadog's ("abc-123-def"): the
// sequence number scrambled by a bijection of [0, 36^9), so ids never
// repeat and do not look sequential. Callers hold s.mu.
func (s *Server) newDashboardID() string {
	const space = 101559956668416 // 36^9
	s.boardSeq++
	n := (uint64(s.boardSeq) * 2654435761) % space // odd and not a multiple of 3: coprime with 36^9
	b := []byte(strconv.FormatUint(n, 36))
	for len(b) < 9 {
		b = append([]byte{'0'}, b...)
	}
	return string(b[0:3]) + "-" + string(b[3:6]) + "-" + string(b[6:9])
}

// newMonitorID makes an integer id. Callers hold s.mu.
func (s *Server) newMonitorID() int64 {
	s.monitorSeq++
	return 1_000_000 + s.monitorSeq
}

// slug is the title as the dashboard url's last segment.
func slug(title string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(title) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// readObject reads a JSON object body (identity, gzip or deflate).
func (s *Server) readObject(r *http.Request) (map[string]any, answer, bool) {
	bad := func(msg string) (map[string]any, answer, bool) {
		return nil, errorAnswer(apiErrors, http.StatusBadRequest, msg), false
	}
	enc, ok := contentEncoding(r.Header.Get("Content-Encoding"), "gzip", "deflate")
	if !ok {
		return bad("Unsupported Content-Encoding")
	}
	wire, over, err := readWire(r.Body, r.ContentLength, maxObjectBytes, new(bytes.Buffer))
	if over {
		return nil, errorAnswer(apiErrors, http.StatusRequestEntityTooLarge, "Payload too large"), false
	}
	if err != nil {
		return bad("Could not read the body")
	}
	data, over, corrupt := inflate(&s.gzipReaders, enc, wire, maxObjectBytes, new(bytes.Buffer))
	if over {
		return nil, errorAnswer(apiErrors, http.StatusRequestEntityTooLarge, "Payload too large"), false
	}
	if corrupt {
		return bad("Malformed compressed body")
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&obj); err != nil || obj == nil || dec.More() {
		return bad("Invalid JSON: the body must be one JSON object")
	}
	return obj, answer{}, true
}

func objectAnswer(status int, obj any) answer {
	b, _ := json.Marshal(obj)
	return answer{status: status, body: b}
}

// Dashboards returns the account's dashboards, oldest first.
func (s *Server) Dashboards(account string) []Dashboard {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.data[account]
	if d == nil || d.boards == nil {
		return nil
	}
	out := make([]Dashboard, 0, len(d.boards.dashboards))
	for _, db := range d.boards.dashboards {
		c := *db
		c.Body, _ = deepCopy(db.Body).(map[string]any)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Dashboard) int { return a.Created.Compare(b.Created) })
	return out
}

// Monitors returns the account's monitors, by id.
func (s *Server) Monitors(account string) []Monitor {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.data[account]
	if d == nil || d.boards == nil {
		return nil
	}
	out := make([]Monitor, 0, len(d.boards.monitors))
	for _, m := range d.boards.monitors {
		c := *m
		c.Tags = slices.Clone(m.Tags)
		c.Body, _ = deepCopy(m.Body).(map[string]any)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Monitor) int { return int(a.ID - b.ID) })
	return out
}

// DeleteDashboard removes a dashboard as a person would in Datadog's web
// app; it reports whether there was one. Later GETs of it answer 404.
func (s *Server) DeleteDashboard(account, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.data[account]
	if d == nil || d.boards == nil || d.boards.dashboards[id] == nil {
		return false
	}
	delete(d.boards.dashboards, id)
	return true
}

// DeleteMonitor removes a monitor as a person would; it reports whether
// there was one.
func (s *Server) DeleteMonitor(account string, id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.data[account]
	if d == nil || d.boards == nil || d.boards.monitors[id] == nil {
		return false
	}
	delete(d.boards.monitors, id)
	return true
}
