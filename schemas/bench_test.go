package schemas

import (
	"encoding/json"
	"testing"
)

func benchRecords(b *testing.B) ([][]byte, int64) {
	var recs [][]byte
	var size int64
	for _, s := range sampleLines(b, goodFile) {
		recs = append(recs, s.data)
		size += int64(len(s.data))
	}
	return recs, size / int64(len(recs))
}

// BenchmarkDecode is one partition goroutine's cost per record.
func BenchmarkDecode(b *testing.B) {
	recs, avg := benchRecords(b)
	var d Decoder
	var ev Event
	b.SetBytes(avg)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := d.Decode(recs[i], &ev); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(recs) {
			i = 0
		}
	}
}

// BenchmarkDecodePooled is the package-level Decode, from many goroutines.
func BenchmarkDecodePooled(b *testing.B) {
	recs, avg := benchRecords(b)
	b.SetBytes(avg)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ev Event
		i := 0
		for pb.Next() {
			if err := Decode(recs[i], &ev); err != nil {
				b.Error(err)
				return
			}
			if i++; i == len(recs) {
				i = 0
			}
		}
	})
}

// stdRecord is the record as encoding/json would read it: the floor to beat.
// It checks nothing, so it does less than Decode.
type stdRecord struct {
	RequestID          string  `json:"request_id"`
	TraceID            string  `json:"trace_id"`
	Timestamp          string  `json:"timestamp"`
	Model              string  `json:"model"`
	ResolvedModel      string  `json:"resolved_model"`
	Provider           string  `json:"provider"`
	PromptTokens       int64   `json:"prompt_tokens"`
	CompletionTokens   int64   `json:"completion_tokens"`
	TotalTokens        int64   `json:"total_tokens"`
	StatusCode         int     `json:"status_code"`
	LatencyMS          int64   `json:"latency_ms"`
	Cost               float64 `json:"cost"`
	IsStream           bool    `json:"is_stream"`
	IsError            bool    `json:"is_error"`
	CacheHit           bool    `json:"cache_hit"`
	FallbackUsed       bool    `json:"fallback_used"`
	GuardrailTriggered bool    `json:"guardrail_triggered"`
	ErrorMessage       string  `json:"error_message"`
	ErrorCode          string  `json:"error_code"`
	AuthKeyID          string  `json:"auth_key_id"`
	UserID             string  `json:"user_id"`
	SessionID          string  `json:"session_id"`
	Metadata           struct {
		OrgID           string `json:"org_id"`
		GatewayID       string `json:"gateway_id"`
		RoutingStrategy string `json:"routing_strategy"`
		Cost            string `json:"cost"`
	} `json:"metadata"`
}

func BenchmarkDecodeStdlib(b *testing.B) {
	recs, avg := benchRecords(b)
	b.SetBytes(avg)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var r stdRecord
		if err := json.Unmarshal(recs[i], &r); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(recs) {
			i = 0
		}
	}
}
