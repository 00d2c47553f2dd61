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
	// KindLogs is a chunk of one tenant's logs.
	KindLogs Kind = iota + 1
	// KindSegment is the partials of one segment: its share of every
	// tenant window it touched, for the partials topic.
	KindSegment
	// KindTotals is one tenant window's totals over every partition, one
	// Series per tag set, from the Combiner: what Datadog gets.
	KindTotals
)

func (k Kind) String() string {
	switch k {
	case KindLogs:
		return "logs"
	case KindSegment:
		return "segment"
	case KindTotals:
		return "totals"
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

// Batch is what the Segmenter (logs, partials) or the Combiner (totals)
// hands on for delivery.
type Batch struct {
	Kind      Kind
	Tenant    string // KindLogs, KindTotals
	Partition int32  // the source partition: KindLogs, KindSegment
	Window    Window // KindTotals

	// Logs are delivered as one Datadog log each: at most the configured
	// chunk size (500) per batch.
	Logs []*schemas.Event
	// Spans count Logs by window (KindLogs), so that what becomes of them
	// can be told per window in the sync history.
	Spans []LogSpan

	// Series holds a window's totals over every partition, one per tag set
	// (KindTotals).
	Series []Series

	// Partials are a segment's shares of the windows it touched
	// (KindSegment), for the partials topic.
	Partials []*Partial

	// Backfill marks a backfill's logs: the sink sends them after the live
	// traffic of their tenant.
	Backfill bool

	// MinOffset is the lowest offset the batch stands for: the lowest among
	// Logs, or the segment's first offset. The offsets from it on may not
	// be committed before the batch is accepted.
	MinOffset int64
}

// LogSpan counts the logs of a KindLogs batch whose records fall in one
// window (of the batch's tenant).
type LogSpan struct {
	Window Window
	Logs   int64
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
