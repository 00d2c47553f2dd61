// Package history keeps the sync history: one entry per tenant window the
// exporter delivered to Datadog, live or backfill, with what was sent and
// how it went. Entries are produced to a Kafka topic with time retention
// (Writer), so that they outlive a restart and every replica sees every
// replica's deliveries, and each replica follows the topic into an index in
// memory (Log) that the API pages through.
//
// It imports nothing of the project: the sink and the processor write to
// it, the API reads from it.
package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Outcome is how a window's delivery ended.
type Outcome string

const (
	// Success: Datadog accepted every log and point of the window.
	Success Outcome = "success"
	// Partial: some logs or points were refused or too old for Datadog;
	// the rest was accepted.
	Partial Outcome = "partial"
	// Failed: Datadog accepted nothing of the window (a refused key, say).
	Failed Outcome = "failed"
	// RateLimited: everything was accepted, after Datadog answered 429:
	// its rate limits delayed the window.
	RateLimited Outcome = "rate_limited"
	// TooOld: nothing of the window could be sent, because Datadog no
	// longer accepts data that old (logs 18 h, points 1 h).
	TooOld Outcome = "too_old"
)

// outcomes lists every valid outcome.
var outcomes = [...]Outcome{Success, Partial, Failed, RateLimited, TooOld}

// Valid reports whether o is one of the outcomes above.
func (o Outcome) Valid() bool {
	for _, v := range outcomes {
		if o == v {
			return true
		}
	}
	return false
}

// OutcomeChoices names the valid outcomes, for error messages.
const OutcomeChoices = "success, partial, failed, rate_limited, too_old"

// Sources of an entry.
const (
	SourceLive     = "live"
	SourceBackfill = "backfill"
)

// Entry is one delivered tenant window. A later entry for the same org,
// window and source replaces an earlier one: a window is sent again when
// late records change it, and the later entry carries the cumulative
// counts.
type Entry struct {
	OrgID       string    `json:"org_id"`
	Start       time.Time `json:"window_start"`
	End         time.Time `json:"window_end"`
	Source      string    `json:"source"` // "live" or "backfill"
	Records     int64     `json:"records"`
	Logs        int64     `json:"logs_sent"`
	LogsDropped int64     `json:"logs_dropped"` // too old for Datadog (18 h) or refused
	Points      int64     `json:"metric_points_sent"`
	Bytes       int64     `json:"bytes"`
	Requests    int64     `json:"requests"`
	Retries     int64     `json:"retries"`
	DurationMS  int64     `json:"duration_ms"`
	Outcome     Outcome   `json:"outcome"`
	StatusCode  int       `json:"status_code,omitempty"`
	Error       string    `json:"error,omitempty"` // short, no secrets, no stack traces
	At          time.Time `json:"delivered_at"`
}

// Bounds of what an entry may hold. A record past them is skipped by the
// Log and refused by the Writer: the topic is read by every replica, and
// one bad writer must not make them hold megabytes.
const (
	maxOrgLen    = 128
	maxSourceLen = 32
	// maxErrorLen: an error text is one short sentence; the Writer cuts
	// longer ones (at a rune boundary) rather than refusing the entry.
	maxErrorLen = 300
	// maxRecordBytes bounds the value of one topic record.
	maxRecordBytes = 16 << 10
)

// ErrInvalid classifies every reason an entry is refused.
var ErrInvalid = errors.New("invalid history entry")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// check reports why e cannot be kept, if it cannot.
func (e Entry) check() error {
	switch {
	case e.OrgID == "":
		return invalid("org_id is empty")
	case len(e.OrgID) > maxOrgLen:
		return invalid("org_id is over %d bytes", maxOrgLen)
	case e.Source == "":
		return invalid("source is empty")
	case len(e.Source) > maxSourceLen:
		return invalid("source is over %d bytes", maxSourceLen)
	case !e.Outcome.Valid():
		return invalid("outcome %q is not one of %s", e.Outcome, OutcomeChoices)
	case e.Start.IsZero() || e.End.IsZero():
		return invalid("window_start and window_end are required")
	case !e.Start.Before(e.End):
		return invalid("window_end is not after window_start")
	case e.At.IsZero():
		return invalid("delivered_at is required")
	case !inRange(e.Start) || !inRange(e.End) || !inRange(e.At):
		return invalid("a time is before 1970 or after 2200")
	case len(e.Error) > maxErrorLen:
		return invalid("error is over %d bytes", maxErrorLen)
	}
	for _, n := range [...]int64{e.Records, e.Logs, e.LogsDropped, e.Points, e.Bytes, e.Requests, e.Retries, e.DurationMS} {
		if n < 0 {
			return invalid("a count is negative")
		}
	}
	return nil
}

// inRange: the index keeps times as Unix nanoseconds, which hold 1678 to
// 2262; a delivery outside 1970-2200 is a writer's bug.
func inRange(t time.Time) bool {
	return t.Year() >= 1970 && t.Year() <= 2200
}

// shortError makes an error text fit an entry: its first line (a stack
// trace, if one slipped in, starts on the second), at most maxErrorLen bytes.
func shortError(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if len(s) <= maxErrorLen {
		return s
	}
	cut := maxErrorLen - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// encode is the topic record's value of e.
func encode(e Entry) ([]byte, error) {
	return json.Marshal(e)
}

// decode reads one topic record. Anything that is not a valid entry is an
// error wrapping ErrInvalid: the Log skips it. Fields it does not know are
// ignored, so that a newer writer's records stay readable.
func decode(key, value []byte) (Entry, error) {
	if len(value) == 0 {
		return Entry{}, invalid("empty record")
	}
	if len(value) > maxRecordBytes {
		return Entry{}, invalid("record of %d bytes, over %d", len(value), maxRecordBytes)
	}
	var e Entry
	if err := json.Unmarshal(value, &e); err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(key) > 0 && string(key) != e.OrgID {
		return Entry{}, invalid("record key is not the entry's org_id")
	}
	if err := e.check(); err != nil {
		return Entry{}, err
	}
	return e, nil
}
