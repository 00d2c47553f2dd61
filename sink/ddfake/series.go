package ddfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The MetricPayload / MetricSeries / MetricPoint schemas. Pointers tell a
// missing field from a zero one, because metric and points are required and
// a point needs both timestamp and value.
type seriesPayload struct {
	Series *[]seriesIn `json:"series"`
}

type seriesIn struct {
	Metric    string       `json:"metric"`
	Type      *int         `json:"type"`
	Interval  *int64       `json:"interval"`
	Points    *[]pointIn   `json:"points"`
	Tags      []string     `json:"tags"`
	Resources []resourceIn `json:"resources"`
	Unit      string       `json:"unit"`
}

type pointIn struct {
	Timestamp *int64   `json:"timestamp"`
	Value     *float64 `json:"value"`
}

type resourceIn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// handleSeries is POST /api/v2/series ("Submit metrics", v2).
func (s *Server) handleSeries(r *http.Request, account string, st *reqState) answer {
	data, refusal, ok := s.readMetricsBody(r, st, s.limits.SeriesWireBytes, s.limits.SeriesInflatedBytes, "gzip", "deflate", "zstd1")
	if !ok {
		return refusal
	}
	bad := func(format string, args ...any) answer {
		return errorAnswer(apiErrors, http.StatusBadRequest, fmt.Sprintf(format, args...))
	}
	if s.cheap {
		n, ok := countPoints(data)
		if !ok {
			return bad("Malformed payload")
		}
		st.rec.Items = n
		s.mu.Lock()
		s.stats.PointsAccepted += int64(n)
		s.mu.Unlock()
		return jsonAnswer(http.StatusAccepted, `{"errors":[]}`)
	}

	var p seriesPayload
	if err := json.Unmarshal(data, &p); err != nil {
		return bad("Malformed payload: %v", err)
	}
	if p.Series == nil {
		return bad(`"series" is required`)
	}
	for i, se := range *p.Series {
		switch {
		case se.Metric == "":
			return bad("series[%d]: metric is required", i)
		case se.Points == nil:
			return bad("series[%d]: points is required", i)
		case se.Type != nil && (*se.Type < 0 || *se.Type > 3):
			return bad("series[%d]: type must be 0, 1, 2 or 3", i)
		}
		for j, pt := range *se.Points {
			if pt.Timestamp == nil || pt.Value == nil {
				return bad("series[%d].points[%d]: timestamp and value are required", i, j)
			}
		}
		st.rec.Items += len(*se.Points)
	}

	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.account(account)
	for _, se := range *p.Series {
		tags, badTags := normalizeTags(se.Tags)
		s.noteBadTags(d, badTags)
		base := Point{
			Metric: se.Metric,
			Tags:   tags,
			Host:   hostResource(se.Resources),
			Unit:   se.Unit,
		}
		if se.Type != nil {
			base.Type = *se.Type
		}
		if se.Interval != nil {
			base.Interval = *se.Interval
		}
		key := seriesKey{metric: base.Metric, tags: strings.Join(tags, "\x00"), host: base.Host}
		for _, in := range *se.Points {
			if !s.pointInWindow(*in.Timestamp, now) {
				continue
			}
			pt := base
			pt.Timestamp, pt.Value = *in.Timestamp, *in.Value
			key.ts = pt.Timestamp
			prev, existed := d.points[key]
			d.points[key] = pt // one value per series and timestamp: last write wins
			d.writes = append(d.writes, Write{
				Point:         pt,
				SubmittedTags: slices.Clone(se.Tags),
				TagsNormal:    len(badTags) == 0,
				Overwrote:     existed,
				Previous:      prev.Value,
				Received:      now,
			})
			s.stats.PointsAccepted++
			if existed {
				s.stats.PointsOverwritten++
			}
		}
	}
	return jsonAnswer(http.StatusAccepted, `{"errors":[]}`)
}

// pointInWindow applies the documented age window and counts the points it
// drops. Callers hold s.mu.
func (s *Server) pointInWindow(ts int64, now time.Time) bool {
	t := time.Unix(ts, 0)
	switch {
	case now.Sub(t) > s.limits.PointAge:
		s.stats.PointsDroppedOld++
		return false
	case t.Sub(now) > s.limits.PointAhead:
		s.stats.PointsDroppedFuture++
		return false
	}
	return true
}

// hostResource returns the name of the first "host" resource ("Host name is
// one of the resources in the Resources field").
func hostResource(rs []resourceIn) string {
	for _, r := range rs {
		if r.Type == "host" {
			return r.Name
		}
	}
	return ""
}

// readMetricsBody applies the metrics intake checks shared by series and
// distribution points: encoding, size on the wire (more than wireMax is
// 413), decompressed size (inflatedMax or more is 413, "less than" in the
// docs), and decompression errors (400).
func (s *Server) readMetricsBody(r *http.Request, st *reqState, wireMax, inflatedMax int64, encodings ...string) ([]byte, answer, bool) {
	tooLarge := errorAnswer(apiErrors, http.StatusRequestEntityTooLarge, "Payload too large")
	enc, ok := contentEncoding(r.Header.Get("Content-Encoding"), encodings...)
	if !ok {
		return nil, errorAnswer(apiErrors, http.StatusBadRequest, "Unsupported Content-Encoding: "+enc), false
	}
	wire, over, err := readWire(r.Body, r.ContentLength, wireMax, s.buffer(st))
	switch {
	case over:
		return nil, tooLarge, false
	case err != nil:
		return nil, errorAnswer(apiErrors, http.StatusBadRequest, "could not read body"), false
	}
	if enc == "" {
		st.rec.BodyBytes = int64(len(wire))
		return wire, answer{}, true
	}
	data, over, corrupt := inflate(&s.gzipReaders, enc, wire, inflatedMax-1, s.buffer(st))
	switch {
	case corrupt:
		return nil, errorAnswer(apiErrors, http.StatusBadRequest, "Malformed payload: body is not valid "+enc), false
	case over:
		return nil, tooLarge, false
	}
	st.rec.BodyBytes = int64(len(data))
	return data, answer{}, true
}
