// Package integrations keeps every tenant's Datadog integration in a
// compacted Kafka topic, the way Kafka Connect keeps connector configs: each
// replica reads the topic to its end before it serves, then follows it, so
// every replica routes, exports and answers the same. Keys are sealed with
// AES-256-GCM before they are written.
package integrations

import (
	"time"

	"github.com/futureagi/prism-exporter/sink"
)

// Mode is what an integration does with the traffic from before it was
// connected.
type Mode string

const (
	// NewOnly exports records whose event time is at or after the
	// integration's cut-off (ConnectedAt), and nothing older.
	NewOnly Mode = "new_only"
	// All exports new traffic as NewOnly does, and, through a backfill
	// job (see Jobs), the history Datadog still takes logs of: the
	// LogsMaxAge before the cut-off. From the tenants file (`backfill:
	// true`) it means something older and simpler: the live export does
	// not skip records older than the cut-off that it reads, and there is
	// no job.
	All Mode = "all"
	// Range exports new traffic as NewOnly does, and From..To, up to the
	// cut-off, through a backfill job.
	Range Mode = "range"
)

// Historical is the integration's choice about history.
type Historical struct {
	Mode Mode       `json:"mode"`
	From *time.Time `json:"from,omitempty"`
	To   *time.Time `json:"to,omitempty"`
}

// Who manages an integration.
const (
	ManagedByAPI  = "api"
	ManagedByFile = "file"
)

// Integration is one organisation's Datadog integration as the store keeps
// it. It holds no key in clear: API-managed integrations carry their keys
// sealed; file-managed ones carry none (every replica reads them from its
// own copy of the tenants file).
type Integration struct {
	ID           string        `json:"id"`
	OrgID        string        `json:"org_id"`
	Site         sink.Site     `json:"site"`
	SyncInterval time.Duration `json:"sync_interval"`
	// IntervalFrom is the event time from which SyncInterval applies;
	// records before it use PrevInterval. A change of interval takes effect
	// on a boundary of both lengths, so no window is split.
	IntervalFrom time.Time     `json:"interval_from,omitzero"`
	PrevInterval time.Duration `json:"prev_interval,omitempty"`
	Historical   Historical    `json:"historical"`
	Paused       bool          `json:"paused"`
	// ConnectedAt is the cut-off between history and new traffic. It is set
	// once, when the integration is first stored, and never moves.
	ConnectedAt time.Time `json:"connected_at"`
	// ResumedAt, after a pause, is the event time from which records are
	// exported again.
	ResumedAt time.Time `json:"resumed_at,omitzero"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Version counts the integration's changes; Retries counts the times
	// its keys were to be checked again after an error.
	Version   int64  `json:"version"`
	Retries   int64  `json:"retries,omitempty"`
	ManagedBy string `json:"managed_by"`
	File      string `json:"file,omitempty"`

	APIKey     *Sealed `json:"api_key,omitempty"`
	AppKey     *Sealed `json:"app_key,omitempty"`
	APIKeyHint string  `json:"api_key_hint"`
	AppKeyHint string  `json:"app_key_hint,omitempty"`

	// Dashboard is the dashboard and monitors made in the tenant's
	// account (dashboard.go); nil until first asked for. The store's fold
	// keeps it apart from the other fields (keptDashboard).
	Dashboard *Dashboard `json:"dashboard,omitempty"`
}

// KeyHint is what may be shown of a key: its last four characters.
func KeyHint(key string) string {
	if key == "" {
		return ""
	}
	if len(key) <= 8 {
		return "****"
	}
	return "****" + key[len(key)-4:]
}

// ExportFrom is the earliest event time the integration exports: its
// cut-off for new traffic only, moved forward by a resume.
func (in *Integration) ExportFrom() time.Time {
	from := in.ConnectedAt
	if in.ResumedAt.After(from) {
		from = in.ResumedAt
	}
	return from
}

// interval is the window length for a record of this event time.
func (in *Integration) intervalAt(eventTime time.Time) time.Duration {
	if in.PrevInterval > 0 && eventTime.Before(in.IntervalFrom) {
		return in.PrevInterval
	}
	return in.SyncInterval
}

// WindowLength is the window length of a record of this event time: what
// a backfill's reader counts it in, as the live export would.
func (in *Integration) WindowLength(eventTime time.Time) time.Duration {
	return in.intervalAt(eventTime)
}
