package ddfake

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
)

// The DistributionPointsPayload schema: points are [timestamp, [values...]].
type distributionPayload struct {
	Series *[]distributionIn `json:"series"`
}

type distributionIn struct {
	Metric string               `json:"metric"`
	Host   string               `json:"host"`
	Points *[][]json.RawMessage `json:"points"`
	Tags   []string             `json:"tags"`
	Type   string               `json:"type"`
}

// handleDistributions is POST /api/v1/distribution_points ("Submit
// distribution points"). Its spec allows only deflate compression.
func (s *Server) handleDistributions(r *http.Request, account string, st *reqState) answer {
	data, refusal, ok := s.readMetricsBody(r, st, s.limits.DistributionWireBytes, s.limits.DistributionInflatedBytes, "deflate")
	if !ok {
		return refusal
	}
	bad := func(format string, args ...any) answer {
		return errorAnswer(apiErrors, http.StatusBadRequest, fmt.Sprintf(format, args...))
	}
	var p distributionPayload
	if err := json.Unmarshal(data, &p); err != nil {
		return bad("Malformed payload: %v", err)
	}
	if p.Series == nil {
		return bad(`"series" is required`)
	}
	type parsed struct {
		ts     int64
		values []float64
	}
	points := make([][]parsed, len(*p.Series))
	for i, se := range *p.Series {
		switch {
		case se.Metric == "":
			return bad("series[%d]: metric is required", i)
		case se.Points == nil:
			return bad("series[%d]: points is required", i)
		case se.Type != "" && se.Type != "distribution":
			return bad("series[%d]: type must be distribution", i)
		}
		for j, pt := range *se.Points {
			var ts float64
			var values []float64
			if len(pt) != 2 || json.Unmarshal(pt[0], &ts) != nil || json.Unmarshal(pt[1], &values) != nil {
				return bad("series[%d].points[%d]: must be [timestamp, [values...]]", i, j)
			}
			points[i] = append(points[i], parsed{int64(math.Floor(ts)), values})
		}
		st.rec.Items += len(points[i])
	}
	if s.cheap {
		s.mu.Lock()
		s.stats.DistributionPointsAccepted += int64(st.rec.Items)
		s.mu.Unlock()
		return jsonAnswer(http.StatusAccepted, `{"status":"ok"}`)
	}

	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.account(account)
	for i, se := range *p.Series {
		tags, badTags := normalizeTags(se.Tags)
		s.noteBadTags(d, badTags)
		for _, pt := range points[i] {
			// The timestamp "should be in seconds and current"; current is
			// the series window (MetricPoint). Dropped points are not
			// counted as series points.
			if now.Unix()-pt.ts > int64(s.limits.PointAge.Seconds()) || pt.ts-now.Unix() > int64(s.limits.PointAhead.Seconds()) {
				s.stats.DistributionPointsDropped++
				continue
			}
			d.dists = append(d.dists, DistributionPoint{
				Metric: se.Metric, Tags: slices.Clone(tags), Host: se.Host,
				Timestamp: pt.ts, Values: pt.values,
			})
			s.stats.DistributionPointsAccepted++
		}
	}
	return jsonAnswer(http.StatusAccepted, `{"status":"ok"}`)
}
