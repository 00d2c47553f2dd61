package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"
)

// referenceDecode reads a record with encoding/json, generically, so that it
// shares nothing with the decoder under test: a map (exact key match, last
// duplicate wins) and json.Number (exact numbers).
func referenceDecode(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after the record")
	}
	if m == nil {
		return nil, fmt.Errorf("record is null")
	}
	return m, nil
}

// compareWithReference checks that a successfully decoded event says what
// encoding/json reads in the same record. It returns the first disagreement.
func compareWithReference(data []byte, ev *Event) error {
	m, err := referenceDecode(data)
	if err != nil {
		return fmt.Errorf("decoder accepted a record encoding/json refuses: %v", err)
	}
	meta, _ := m["metadata"].(map[string]any)
	if meta == nil {
		return fmt.Errorf("decoder accepted a record without a metadata object")
	}

	strs := []struct {
		name string
		ref  any
		got  string
	}{
		{"request_id", m["request_id"], ev.RequestID},
		{"trace_id", m["trace_id"], ev.TraceID},
		{"model", m["model"], ev.Model},
		{"resolved_model", m["resolved_model"], ev.ResolvedModel},
		{"provider", m["provider"], ev.Provider},
		{"error_message", m["error_message"], ev.ErrorMessage},
		{"error_code", m["error_code"], ev.ErrorCode},
		{"auth_key_id", m["auth_key_id"], ev.AuthKeyID},
		{"user_id", m["user_id"], ev.UserID},
		{"session_id", m["session_id"], ev.SessionID},
		{"metadata.org_id", meta["org_id"], ev.OrgID},
		{"metadata.gateway_id", meta["gateway_id"], ev.GatewayID},
		{"metadata.routing_strategy", meta["routing_strategy"], ev.RoutingStrategy},
	}
	for _, s := range strs {
		want := ""
		if s.ref != nil {
			var ok bool
			if want, ok = s.ref.(string); !ok {
				return fmt.Errorf("%s: decoder accepted a %T", s.name, s.ref)
			}
		}
		if s.got != want {
			return fmt.Errorf("%s: decoder %q, encoding/json %q", s.name, s.got, want)
		}
	}

	ints := []struct {
		name string
		got  int64
	}{
		{"prompt_tokens", ev.PromptTokens},
		{"completion_tokens", ev.CompletionTokens},
		{"total_tokens", ev.TotalTokens},
		{"latency_ms", ev.LatencyMS},
		{"status_code", int64(ev.StatusCode)},
	}
	for _, n := range ints {
		ref := m[n.name]
		if ref == nil {
			if n.got != 0 {
				return fmt.Errorf("%s: decoder %d, encoding/json absent", n.name, n.got)
			}
			continue
		}
		num, ok := ref.(json.Number)
		if !ok {
			return fmt.Errorf("%s: decoder accepted a %T", n.name, ref)
		}
		r, ok := new(big.Rat).SetString(string(num))
		if !ok {
			continue // an exponent big.Rat will not expand; nothing to compare with
		}
		if !r.IsInt() || r.Num().Cmp(big.NewInt(n.got)) != 0 {
			return fmt.Errorf("%s: decoder %d, encoding/json %s", n.name, n.got, num)
		}
	}

	bools := []struct {
		name string
		got  bool
	}{
		{"is_stream", ev.IsStream},
		{"is_error", ev.IsError},
		{"cache_hit", ev.CacheHit},
		{"fallback_used", ev.FallbackUsed},
		{"guardrail_triggered", ev.GuardrailTriggered},
	}
	for _, b := range bools {
		want := false
		if ref := m[b.name]; ref != nil {
			var ok bool
			if want, ok = ref.(bool); !ok {
				return fmt.Errorf("%s: decoder accepted a %T", b.name, ref)
			}
		}
		if b.got != want {
			return fmt.Errorf("%s: decoder %v, encoding/json %v", b.name, b.got, want)
		}
	}

	var wantCost float64
	switch c := m["cost"].(type) {
	case json.Number:
		wantCost, _ = strconv.ParseFloat(string(c), 64)
	case nil:
		if s, ok := meta["cost"].(string); ok {
			wantCost, _ = strconv.ParseFloat(s, 64)
		}
	default:
		return fmt.Errorf("cost: decoder accepted a %T", c)
	}
	if ev.Cost != wantCost {
		return fmt.Errorf("cost: decoder %v, encoding/json %v", ev.Cost, wantCost)
	}

	ts, ok := m["timestamp"].(string)
	if !ok {
		return fmt.Errorf("timestamp: decoder accepted a %T", m["timestamp"])
	}
	want, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return fmt.Errorf("timestamp: decoder accepted what time.Parse refuses: %v", err)
	}
	if !ev.Timestamp.Equal(want) {
		return fmt.Errorf("timestamp: decoder %v, time.Parse %v", ev.Timestamp, want)
	}
	return nil
}

// checkInvariants checks what every decoded event must satisfy, whatever the
// input.
func checkInvariants(ev *Event) error {
	switch {
	case ev.RequestID == "":
		return fmt.Errorf("empty request_id")
	case ev.OrgID == "":
		return fmt.Errorf("empty org_id")
	case ev.PromptTokens < 0, ev.CompletionTokens < 0, ev.TotalTokens < 0:
		return fmt.Errorf("negative tokens: %d %d %d", ev.PromptTokens, ev.CompletionTokens, ev.TotalTokens)
	case ev.LatencyMS < 0:
		return fmt.Errorf("negative latency %d", ev.LatencyMS)
	case math.IsNaN(ev.Cost) || math.IsInf(ev.Cost, 0) || ev.Cost < 0 || math.Signbit(ev.Cost):
		return fmt.Errorf("bad cost %v", ev.Cost)
	case ev.StatusCode != 0 && (ev.StatusCode < 100 || ev.StatusCode > 599):
		return fmt.Errorf("status %d", ev.StatusCode)
	case ev.Timestamp.Year() < 1970 || ev.Timestamp.Year() > 9999:
		return fmt.Errorf("timestamp year %d", ev.Timestamp.Year())
	case ev.Timestamp.Location() != time.UTC:
		return fmt.Errorf("timestamp not in UTC: %v", ev.Timestamp.Location())
	}
	for _, s := range []string{ev.RequestID, ev.TraceID, ev.Model, ev.ResolvedModel, ev.Provider,
		ev.ErrorMessage, ev.ErrorCode, ev.AuthKeyID, ev.UserID, ev.SessionID,
		ev.OrgID, ev.GatewayID, ev.RoutingStrategy} {
		if !utf8.ValidString(s) {
			return fmt.Errorf("invalid UTF-8 kept: %q", s)
		}
	}
	return nil
}
