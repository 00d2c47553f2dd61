package aggregate

import (
	"time"

	"github.com/futureagi/prism-exporter/schemas"
)

// Clock is the wall clock, injected so that tests close windows without
// sleeping.
type Clock interface{ Now() time.Time }

// Kind says what a Batch carries and so how the processor accounts for the
// offsets behind it.
type Kind uint8

const (
	// KindLogs is a full chunk of logs of a window that is still open. Its
	// offsets stay held by the open window.
	KindLogs Kind = iota + 1
	// KindClose closes a window: its remaining logs and its metric totals.
	// Once it and every earlier KindLogs of the window are accepted, the
	// window's offsets may be committed.
	KindClose
	// KindLate carries records that arrived after their window closed: their
	// logs and, while the window's totals are still kept, the corrected
	// whole-window totals (never a delta: Datadog keeps the last value);
	// and their partials (Batch.Partial, Batch.RecordPartials).
	KindLate
)

func (k Kind) String() string {
	switch k {
	case KindLogs:
		return "logs"
	case KindClose:
		return "close"
	case KindLate:
		return "late"
	}
	return "unknown"
}

// Window is one tenant's tumbling window: [Start, Start+Length), aligned to the
// Unix epoch in steps of Length.
type Window struct {
	Start  time.Time
	Length time.Duration
}

// End is the window's exclusive end.
func (w Window) End() time.Time { return w.Start.Add(w.Length) }

// Batch is what the aggregator hands on for delivery. It belongs to one tenant
// and one partition.
type Batch struct {
	Kind      Kind
	Tenant    string
	Partition int32
	Window    Window

	// Logs are delivered as one Datadog log each. At most the configured chunk
	// size (500) per batch.
	Logs []*schemas.Event

	// Series holds the window's whole totals, one per tag set; set on
	// KindClose (when the window had requests) and on KindLate when the
	// window's totals could be corrected.
	Series []Series

	// Partial is the window's whole totals on this partition for the
	// combiner (see Partial, Late == 0): set on KindClose, and on KindLate
	// when a record of the batch corrected a closed window that opened in
	// this run. Each one overwrites the last under the same Key.
	Partial *Partial
	// RecordPartials are, on KindLate, the partials of the batch's late or
	// replayed records that no whole Partial here could take, each under a
	// key of its own (Late == 1 + its offset). Records too old for Datadog
	// have none.
	//
	// The batch counts as accepted only once Partial and every one of
	// RecordPartials are in the partials topic, as well as its logs and
	// series: the replay rules rest on it.
	RecordPartials []*Partial

	// MinOffset is the lowest offset the batch stands for: on KindClose the
	// window's first record, on KindLate its first late record; on KindLogs
	// it is the lowest offset among Logs.
	MinOffset int64
}

// TagSet is the facets a window's metrics are split by. Values are raw; the
// sink makes them valid Datadog tags. The aggregator folds tag sets past its
// cap into Other.
type TagSet struct {
	Model    string
	Provider string
	Gateway  string
	Routing  string
}

// Other is the value every field of an overflowed tag set takes.
const Other = "other"

// Series is one tag set's totals over one whole window.
type Series struct {
	Tags TagSet

	Requests          int64
	Errors            int64
	InputTokens       int64
	OutputTokens      int64
	Cost              float64
	CacheHits         int64
	GuardrailTriggers int64
	Fallbacks         int64

	LatencySumMS int64
	LatencyAvgMS float64
	LatencyMaxMS int64
	LatencyP50MS float64
	LatencyP95MS float64
	LatencyP99MS float64
}
