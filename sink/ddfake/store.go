package ddfake

import (
	"time"
)

// Log is one accepted log as Datadog would keep it.
type Log struct {
	Account string
	// Attributes is the whole log object as parsed, reserved fields included
	// (numbers are float64, as encoding/json decodes them).
	Attributes map[string]any
	// Raw is the log's JSON as received; only its first Limits.LogBytes when
	// Truncated.
	Raw      []byte
	Message  string
	Status   string
	Service  string
	Source   string // ddsource
	Hostname string
	// Tags are ddtags (plus the ddtags query parameter), normalised.
	Tags []string
	// Date is the log's date; DateAttribute names the attribute it came from,
	// "" when the log had no usable date and the receive time was used.
	Date          time.Time
	DateAttribute string
	Received      time.Time
	Truncated     bool
}

// Point is the current value of one series at one timestamp.
type Point struct {
	Metric    string
	Tags      []string // normalised, sorted, without duplicates
	Host      string   // the "host" resource, part of the series identity
	Timestamp int64    // seconds
	Value     float64
	Type      int // 0 unspecified, 1 count, 2 rate, 3 gauge
	Interval  int64
	Unit      string
}

// Write is one accepted point submission, in arrival order.
type Write struct {
	Point Point // as stored
	// SubmittedTags are the tags as sent; TagsNormal says whether every one
	// was already in Datadog's normal form (see NormalizeTag).
	SubmittedTags []string
	TagsNormal    bool
	// Overwrote says this write replaced an earlier value for the same
	// series and timestamp (Previous), which Datadog does without summing.
	Overwrote bool
	Previous  float64
	Received  time.Time
}

// DistributionPoint is one accepted distribution submission for one
// timestamp. Datadog merges distribution values; nothing is overwritten.
type DistributionPoint struct {
	Metric    string
	Tags      []string // normalised, sorted, without duplicates
	Host      string
	Timestamp int64
	Values    []float64
}

// RequestRecord describes one request the server saw.
type RequestRecord struct {
	Time    time.Time // server clock (WithClock)
	Method  string
	Path    string
	Account string // "" when the API key was missing or unknown
	// Status is the answer's status; 0 when none was sent (dropped
	// connection, or the client left during a delay).
	Status int
	// WireBytes counts the body as sent (before Content-Encoding is undone);
	// BodyBytes the body after decompression, when it got that far.
	WireBytes int64
	BodyBytes int64
	Encoding  string // the Content-Encoding header as sent
	Items     int    // logs, points or distribution points in the body, when parsed
	Fault     string // the fault applied, "" for none
	Duration  time.Duration
}

// Stats are running counters over every request since New or Reset.
type Stats struct {
	Requests  int64
	ByStatus  map[int]int64 // answers per status; 0 counts requests not answered
	WireBytes int64
	BodyBytes int64
	Faults    int64 // requests a Fault applied to

	LogsAccepted   int64
	LogsDroppedOld int64 // answered 202 but older than 18 h, so not stored
	LogsTruncated  int64

	PointsAccepted      int64
	PointsDroppedOld    int64 // answered 202 but older than 1 h
	PointsDroppedFuture int64 // answered 202 but more than 10 min ahead
	PointsOverwritten   int64 // accepted points that replaced a value

	DistributionPointsAccepted int64
	DistributionPointsDropped  int64

	// NonNormalTags counts submitted tags (metrics and logs) that Datadog
	// would have had to normalise or discard.
	NonNormalTags int64
}

type seriesKey struct {
	metric string
	tags   string // normalised sorted tags joined with "\x00"
	host   string
	ts     int64
}

type accountData struct {
	logs        []Log
	points      map[seriesKey]Point
	writes      []Write
	dists       []DistributionPoint
	invalidTags map[string]struct{}
	boards      *boards // dashboards and monitors, made on first use
}

func newAccountData() *accountData {
	return &accountData{points: map[seriesKey]Point{}, invalidTags: map[string]struct{}{}}
}

// noteBadTags remembers tags that were not normal. Callers hold s.mu.
func (s *Server) noteBadTags(d *accountData, bad []string) {
	for _, t := range bad {
		d.invalidTags[t] = struct{}{}
	}
	s.stats.NonNormalTags += int64(len(bad))
}
