package ddfake

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// Read-back for tests. Everything returned is a copy: callers may keep or
// change it while the server goes on.

// Logs returns the account's stored logs in arrival order.
func (s *Server) Logs(account string) []Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.data[account]
	if d == nil {
		return nil
	}
	out := make([]Log, len(d.logs))
	for i, l := range d.logs {
		l.Attributes, _ = deepCopy(l.Attributes).(map[string]any)
		l.Raw = slices.Clone(l.Raw)
		l.Tags = slices.Clone(l.Tags)
		out[i] = l
	}
	return out
}

// LogCount returns how many logs the account has stored.
func (s *Server) LogCount(account string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.data[account]; d != nil {
		return len(d.logs)
	}
	return 0
}

// Points returns the last-write-wins view of the account's series, sorted
// by metric, tags, host and timestamp.
func (s *Server) Points(account string) []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.data[account]
	if d == nil {
		return nil
	}
	out := make([]Point, 0, len(d.points))
	for _, p := range d.points {
		p.Tags = slices.Clone(p.Tags)
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Point) int {
		return cmp.Or(
			strings.Compare(a.Metric, b.Metric),
			slices.Compare(a.Tags, b.Tags),
			strings.Compare(a.Host, b.Host),
			cmp.Compare(a.Timestamp, b.Timestamp),
		)
	})
	return out
}

// Writes returns every accepted point submission of the account in arrival
// order, overwrites included.
func (s *Server) Writes(account string) []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.data[account]
	if d == nil {
		return nil
	}
	out := make([]Write, len(d.writes))
	for i, w := range d.writes {
		w.Point.Tags = slices.Clone(w.Point.Tags)
		w.SubmittedTags = slices.Clone(w.SubmittedTags)
		out[i] = w
	}
	return out
}

// Overwrites returns how many of the account's accepted points replaced an
// existing value for the same series and timestamp.
func (s *Server) Overwrites(account string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	if d := s.data[account]; d != nil {
		for _, w := range d.writes {
			if w.Overwrote {
				n++
			}
		}
	}
	return n
}

// Distributions returns the account's accepted distribution points in
// arrival order.
func (s *Server) Distributions(account string) []DistributionPoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.data[account]
	if d == nil {
		return nil
	}
	out := make([]DistributionPoint, len(d.dists))
	for i, p := range d.dists {
		p.Tags = slices.Clone(p.Tags)
		p.Values = slices.Clone(p.Values)
		out[i] = p
	}
	return out
}

// InvalidTags returns, sorted, the distinct tags the account submitted (on
// points, distributions or logs) that were not already in Datadog's normal
// form. Tests assert it is empty to prove the exporter sends valid tags.
func (s *Server) InvalidTags(account string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.data[account]
	if d == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(d.invalidTags))
}

// Requests returns the records of the requests seen (the last 100,000; none
// in cheap mode), oldest first.
func (s *Server) Requests() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByStatus = maps.Clone(s.stats.ByStatus)
	return st
}

// Reset forgets stored data, request records, counters and rate-limit
// windows. Accounts, revocations and faults stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = map[string]*accountData{}
	s.requests = nil
	s.stats = Stats{ByStatus: map[int]int64{}}
	s.windows = map[windowKey]*window{}
}

// deepCopy copies what encoding/json produces (maps, slices, scalars).
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = deepCopy(e)
		}
		return s
	default:
		return v
	}
}
