// Package schemas holds the Prism gateway's request record: its Go type, its
// strict decoder, and the JSON Schema published beside them
// (gateway-record.schema.json). The three are kept in step by tests that hold
// the shared samples against both.
package schemas

import "time"

// Event is one gateway API call, decoded and validated. Request and response
// bodies, headers, guardrail results and timings are never kept: they must not
// leave the exporter.
type Event struct {
	RequestID string
	TraceID   string
	// Timestamp is when the request started: the event time that places the
	// record in its window.
	Timestamp time.Time

	Model         string
	ResolvedModel string
	Provider      string

	PromptTokens     int64 // the seed's input tokens
	CompletionTokens int64 // the seed's output tokens
	TotalTokens      int64

	StatusCode int
	LatencyMS  int64
	Cost       float64 // USD; from metadata.cost when cost is absent

	IsStream           bool
	IsError            bool
	CacheHit           bool
	FallbackUsed       bool
	GuardrailTriggered bool

	ErrorMessage string
	ErrorCode    string

	AuthKeyID string
	UserID    string
	SessionID string

	// From metadata.
	OrgID           string // the tenant; required
	GatewayID       string
	RoutingStrategy string
}

// Failed reports whether the call counts as an error: the gateway flagged it
// or it answered with a 4xx or 5xx status.
func (e *Event) Failed() bool { return e.IsError || e.StatusCode >= 400 }
