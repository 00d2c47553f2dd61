package schemas

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDecodeSamples(t *testing.T) {
	var d Decoder
	for _, s := range sampleLines(t, goodFile) {
		var ev Event
		if err := d.Decode(s.data, &ev); err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if err := checkInvariants(&ev); err != nil {
			t.Errorf("%s: %v", s, err)
		}
		if err := compareWithReference(s.data, &ev); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}

// malformedWant is what each line of malformed-records.txt must produce.
var malformedWant = map[string]DecodeError{
	`not json`: {Reason: ReasonInvalidJSON},
	``:         {Reason: ReasonInvalidJSON},
	`{"request_id":"req_x1","timestamp":"2026-11-26T12:00:00Z","model":"gpt-4o","provider":"openai","status_code":200}`:       {Reason: ReasonMissingField, Field: "metadata.org_id"},
	`{"request_id":"req_x2","timestamp":"yesterday","model":"gpt-4o","provider":"openai","metadata":{"org_id":"org_3f9a1c"}}`: {Reason: ReasonInvalidValue, Field: "timestamp"},
	`{"request_id":17,"timestamp":"2026-11-26T12:00:00Z","metadata":{"org_id":"org_3f9a1c"}}`:                                 {Reason: ReasonWrongType, Field: "request_id"},
	`{"timestamp":"2026-11-26T12:00:00Z","model":"gpt-4o","metadata":{"org_id":"org_3f9a1c"}}`:                                {Reason: ReasonMissingField, Field: "request_id"},
	`{"request_id":"req_x3","timestamp":"2026-11-26T12:00:00Z","prompt_tokens":"many","metadata":{"org_id":"org_3f9a1c"}}`:    {Reason: ReasonWrongType, Field: "prompt_tokens"},
	`{"request_id":"req_x4","timestamp":"2026-11-26T12:00:00Z","prompt_tokens":-5,"metadata":{"org_id":"org_3f9a1c"}}`:        {Reason: ReasonInvalidValue, Field: "prompt_tokens"},
	`[1,2,3]`: {Reason: ReasonWrongType},
	`{"request_id":"req_x5","timestamp":"2026-11-26T12:00:00Z","metadata":"org_3f9a1c"}`:                               {Reason: ReasonWrongType, Field: "metadata"},
	`{"request_id":"req_x6","timestamp":"2026-11-26T12:00:00Z","metadata":{"org_id":""}}`:                              {Reason: ReasonInvalidValue, Field: "metadata.org_id"},
	`{"request_id":"req_x7","timestamp":"2026-11-26T12:00:00Z","latency_ms":1e400,"metadata":{"org_id":"org_3f9a1c"}}`: {Reason: ReasonInvalidValue, Field: "latency_ms"},
}

func TestDecodeMalformed(t *testing.T) {
	lines := sampleLines(t, badFile)
	for _, s := range lines {
		var ev Event
		err := Decode(s.data, &ev)
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: want a *DecodeError, got %v", s, err)
			continue
		}
		switch de.Reason {
		case ReasonInvalidJSON, ReasonMissingField, ReasonWrongType, ReasonInvalidValue:
		default:
			t.Errorf("%s: unknown reason %q", s, de.Reason)
		}
		want, ok := malformedWant[string(s.data)]
		switch {
		case !ok:
			t.Errorf("%s: no expectation for this line", s)
		case ok && (de.Reason != want.Reason || de.Field != want.Field):
			t.Errorf("%s: got %s/%q, want %s/%q", s, de.Reason, de.Field, want.Reason, want.Field)
		}
		if ev != (Event{}) {
			t.Errorf("%s: event not left zero on error: %+v", s, ev)
		}
	}
	if len(lines) < len(malformedWant) {
		t.Errorf("only %d malformed lines, want at least %d", len(lines), len(malformedWant))
	}
}

// A minimal valid record, and ways to add to it.
const (
	minHead = `{"request_id":"r1","timestamp":"2026-11-26T12:00:00Z"`
	minMeta = `"metadata":{"org_id":"o1"}`
)

func rec(fields ...string) string {
	return minHead + "," + strings.Join(append(fields, minMeta), ",") + "}"
}

// recMeta builds a record whose metadata holds org_id and the given entries.
func recMeta(entries ...string) string {
	return minHead + `,"metadata":{` + strings.Join(append([]string{`"org_id":"o1"`}, entries...), ",") + "}}"
}

type ruleCase struct {
	name   string
	in     string
	reason Reason // "" for success
	field  string
	check  func(*Event) bool
	// decoderOnly marks rules the JSON Schema cannot express; elsewhere the
	// schema must agree with the decoder.
	decoderOnly bool
}

func ruleCases() []ruleCase {
	return []ruleCase{
		{name: "minimal", in: rec(), check: func(e *Event) bool {
			return e.RequestID == "r1" && e.OrgID == "o1" && e.Timestamp.Equal(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
		}},
		{name: "unknown fields ignored", in: rec(`"x":{"y":[1,2,{"z":null}]}`, `"cache_status":"hit"`)},
		{name: "leading and trailing space", in: "  \t" + rec() + "\r\n"},

		// JSON itself.
		{name: "not json", in: `nope`, reason: ReasonInvalidJSON},
		{name: "empty", in: ``, reason: ReasonInvalidJSON},
		{name: "blank", in: " \n", reason: ReasonInvalidJSON},
		{name: "truncated", in: rec()[:40], reason: ReasonInvalidJSON},
		{name: "trailing data", in: rec() + `{}`, reason: ReasonInvalidJSON},
		{name: "NaN in an ignored field", in: rec(`"timings":NaN`), reason: ReasonInvalidJSON},
		{name: "bad number in an ignored field", in: rec(`"timings":[1-2]`), reason: ReasonInvalidJSON},
		{name: "bad escape in an ignored field", in: rec(`"request_body":"\q"`), reason: ReasonInvalidJSON},
		{name: "control character in a string", in: rec("\"error_message\":\"a\tb\""), reason: ReasonInvalidJSON},
		{name: "too deep", in: rec(`"request_body":` + strings.Repeat("[", 400) + strings.Repeat("]", 400)), reason: ReasonInvalidJSON, decoderOnly: true},
		{name: "duplicate known key", in: rec(`"request_id":"r2"`), reason: ReasonInvalidJSON, field: "request_id", decoderOnly: true},
		{name: "duplicate metadata key", in: recMeta(`"org_id":"o2"`), reason: ReasonInvalidJSON, field: "metadata.org_id", decoderOnly: true},
		{name: "duplicate unknown key", in: rec(`"x":1`, `"x":2`)},
		{name: "array", in: `[]`, reason: ReasonWrongType},
		{name: "string", in: `"r1"`, reason: ReasonWrongType},
		{name: "null", in: `null`, reason: ReasonWrongType},

		// Required fields.
		{name: "no request_id", in: `{"timestamp":"2026-11-26T12:00:00Z",` + minMeta + `}`, reason: ReasonMissingField, field: "request_id"},
		{name: "null request_id", in: `{"request_id":null,"timestamp":"2026-11-26T12:00:00Z",` + minMeta + `}`, reason: ReasonMissingField, field: "request_id"},
		{name: "empty request_id", in: `{"request_id":"","timestamp":"2026-11-26T12:00:00Z",` + minMeta + `}`, reason: ReasonInvalidValue, field: "request_id"},
		{name: "no timestamp", in: `{"request_id":"r1",` + minMeta + `}`, reason: ReasonMissingField, field: "timestamp"},
		{name: "no metadata", in: minHead + `}`, reason: ReasonMissingField, field: "metadata.org_id"},
		{name: "null metadata", in: minHead + `,"metadata":null}`, reason: ReasonMissingField, field: "metadata.org_id"},
		{name: "no org_id", in: minHead + `,"metadata":{"gateway_id":"g"}}`, reason: ReasonMissingField, field: "metadata.org_id"},
		{name: "null org_id", in: minHead + `,"metadata":{"org_id":null}}`, reason: ReasonMissingField, field: "metadata.org_id"},
		{name: "empty org_id", in: minHead + `,"metadata":{"org_id":""}}`, reason: ReasonInvalidValue, field: "metadata.org_id"},
		{name: "numeric org_id", in: minHead + `,"metadata":{"org_id":7}}`, reason: ReasonWrongType, field: "metadata.org_id"},
		{name: "metadata array", in: minHead + `,"metadata":["o1"]}`, reason: ReasonWrongType, field: "metadata"},

		// Strings.
		{name: "all strings", in: rec(`"trace_id":"t"`, `"model":"m"`, `"resolved_model":"rm"`, `"provider":"p"`,
			`"error_message":"em"`, `"error_code":"ec"`, `"auth_key_id":"k"`, `"user_id":"u"`, `"session_id":"s"`),
			check: func(e *Event) bool {
				return e.TraceID == "t" && e.Model == "m" && e.ResolvedModel == "rm" && e.Provider == "p" &&
					e.ErrorMessage == "em" && e.ErrorCode == "ec" && e.AuthKeyID == "k" && e.UserID == "u" && e.SessionID == "s"
			}},
		{name: "null strings are absent", in: rec(`"trace_id":null`, `"model":null`, `"error_message":null`),
			check: func(e *Event) bool { return e.TraceID == "" && e.Model == "" && e.ErrorMessage == "" }},
		{name: "escapes", in: rec(`"error_message":"a\"b\\c\/d\n\u00e9\ud83d\ude00"`),
			check: func(e *Event) bool { return e.ErrorMessage == "a\"b\\c/d\né😀" }},
		{name: "escaped key", in: `{"request\u005fid":"r9","timestamp":"2026-11-26T12:00:00Z",` + minMeta + `}`,
			check: func(e *Event) bool { return e.RequestID == "r9" }},
		{name: "unpaired surrogate as encoding/json", in: rec(`"error_message":"\ud800\u0041x"`),
			check: func(e *Event) bool { return e.ErrorMessage == "\uFFFDAx" }},
		{name: "invalid UTF-8", in: rec("\"model\":\"a\xffb\""), reason: ReasonInvalidValue, field: "model", decoderOnly: true},
		{name: "numeric model", in: rec(`"model":4`), reason: ReasonWrongType, field: "model"},
		{name: "object trace_id", in: rec(`"trace_id":{}`), reason: ReasonWrongType, field: "trace_id"},
		{name: "boolean user_id", in: rec(`"user_id":true`), reason: ReasonWrongType, field: "user_id"},

		// Metadata.
		{name: "metadata strings", in: recMeta(`"gateway_id":"g"`, `"routing_strategy":"weighted"`, `"cache_status":"hit"`, `"other":null`),
			check: func(e *Event) bool { return e.GatewayID == "g" && e.RoutingStrategy == "weighted" }},
		{name: "metadata non-string value", in: recMeta(`"other":3`), reason: ReasonWrongType, field: "metadata"},
		{name: "metadata numeric gateway", in: recMeta(`"gateway_id":3`), reason: ReasonWrongType, field: "metadata.gateway_id"},

		// Integers.
		{name: "tokens", in: rec(`"prompt_tokens":12`, `"completion_tokens":0`, `"total_tokens":9223372036854775807`, `"latency_ms":7`),
			check: func(e *Event) bool {
				return e.PromptTokens == 12 && e.CompletionTokens == 0 && e.TotalTokens == 9223372036854775807 && e.LatencyMS == 7
			}},
		{name: "integral notations", in: rec(`"prompt_tokens":12.0`, `"completion_tokens":1.2e1`, `"total_tokens":1200e-2`, `"latency_ms":-0`),
			check: func(e *Event) bool {
				return e.PromptTokens == 12 && e.CompletionTokens == 12 && e.TotalTokens == 12 && e.LatencyMS == 0
			}},
		{name: "null tokens", in: rec(`"prompt_tokens":null`), check: func(e *Event) bool { return e.PromptTokens == 0 }},
		{name: "fractional tokens", in: rec(`"prompt_tokens":12.5`), reason: ReasonWrongType, field: "prompt_tokens"},
		{name: "tiny fraction", in: rec(`"completion_tokens":1e-400`), reason: ReasonWrongType, field: "completion_tokens"},
		{name: "negative tokens", in: rec(`"total_tokens":-1`), reason: ReasonInvalidValue, field: "total_tokens"},
		{name: "negative latency", in: rec(`"latency_ms":-3`), reason: ReasonInvalidValue, field: "latency_ms"},
		{name: "int64 overflow", in: rec(`"prompt_tokens":9223372036854775808`), reason: ReasonInvalidValue, field: "prompt_tokens"},
		{name: "huge exponent", in: rec(`"latency_ms":1e400`), reason: ReasonInvalidValue, field: "latency_ms"},
		{name: "string tokens", in: rec(`"prompt_tokens":"12"`), reason: ReasonWrongType, field: "prompt_tokens"},
		{name: "boolean latency", in: rec(`"latency_ms":false`), reason: ReasonWrongType, field: "latency_ms"},

		// Status code.
		{name: "status", in: rec(`"status_code":429`), check: func(e *Event) bool { return e.StatusCode == 429 && e.Failed() }},
		{name: "status bounds", in: rec(`"status_code":100`), check: func(e *Event) bool { return e.StatusCode == 100 }},
		{name: "status 599", in: rec(`"status_code":599`), check: func(e *Event) bool { return e.StatusCode == 599 }},
		{name: "status 99", in: rec(`"status_code":99`), reason: ReasonInvalidValue, field: "status_code"},
		{name: "status 600", in: rec(`"status_code":600`), reason: ReasonInvalidValue, field: "status_code"},
		{name: "status 0", in: rec(`"status_code":0`), reason: ReasonInvalidValue, field: "status_code"},
		{name: "status fractional", in: rec(`"status_code":200.5`), reason: ReasonWrongType, field: "status_code"},
		{name: "status string", in: rec(`"status_code":"200"`), reason: ReasonWrongType, field: "status_code"},

		// Cost.
		{name: "cost", in: rec(`"cost":0.016945`), check: func(e *Event) bool { return e.Cost == 0.016945 }},
		{name: "cost exponent", in: rec(`"cost":2.5e-05`), check: func(e *Event) bool { return e.Cost == 2.5e-05 }},
		{name: "cost wins over metadata.cost", in: minHead + `,"cost":1.5,"metadata":{"org_id":"o1","cost":"junk"}}`,
			check: func(e *Event) bool { return e.Cost == 1.5 }},
		{name: "cost from metadata", in: recMeta(`"cost":"0.25"`), check: func(e *Event) bool { return e.Cost == 0.25 }},
		{name: "cost null, from metadata", in: minHead + `,"metadata":{"org_id":"o1","cost":"0.5"},"cost":null}`,
			check: func(e *Event) bool { return e.Cost == 0.5 }},
		{name: "no cost at all", in: rec(), check: func(e *Event) bool { return e.Cost == 0 }},
		{name: "negative cost", in: rec(`"cost":-0.1`), reason: ReasonInvalidValue, field: "cost"},
		{name: "negative zero cost", in: rec(`"cost":-0.0`), check: func(e *Event) bool { return e.Cost == 0 }},
		{name: "infinite cost", in: rec(`"cost":1e309`), reason: ReasonInvalidValue, field: "cost"},
		{name: "string cost", in: rec(`"cost":"0.1"`), reason: ReasonWrongType, field: "cost"},
		{name: "non-numeric metadata.cost", in: recMeta(`"cost":"free"`), reason: ReasonInvalidValue, field: "metadata.cost"},
		{name: "Inf metadata.cost", in: recMeta(`"cost":"Inf"`), reason: ReasonInvalidValue, field: "metadata.cost"},
		{name: "hex metadata.cost", in: recMeta(`"cost":"0x1p4"`), reason: ReasonInvalidValue, field: "metadata.cost"},
		{name: "negative metadata.cost", in: recMeta(`"cost":"-1"`), reason: ReasonInvalidValue, field: "metadata.cost"},
		{name: "empty metadata.cost", in: recMeta(`"cost":""`), reason: ReasonInvalidValue, field: "metadata.cost"},
		{name: "overflowing metadata.cost", in: recMeta(`"cost":"1e999"`), reason: ReasonInvalidValue, field: "metadata.cost", decoderOnly: true},
		{name: "numeric metadata.cost", in: recMeta(`"cost":0.25`), reason: ReasonWrongType, field: "metadata.cost"},

		// Booleans.
		{name: "booleans", in: rec(`"is_stream":true`, `"is_error":true`, `"cache_hit":true`, `"fallback_used":true`, `"guardrail_triggered":true`),
			check: func(e *Event) bool {
				return e.IsStream && e.IsError && e.CacheHit && e.FallbackUsed && e.GuardrailTriggered && e.Failed()
			}},
		{name: "null boolean", in: rec(`"is_stream":null`, `"cache_hit":false`), check: func(e *Event) bool { return !e.IsStream && !e.CacheHit }},
		{name: "string boolean", in: rec(`"is_error":"true"`), reason: ReasonWrongType, field: "is_error"},
		{name: "numeric boolean", in: rec(`"cache_hit":1`), reason: ReasonWrongType, field: "cache_hit"},

		// Timestamp.
		{name: "timestamp with micros", in: withTS("2026-11-26T12:00:01.617000Z"),
			check: func(e *Event) bool { return e.Timestamp.Equal(time.Date(2026, 11, 26, 12, 0, 1, 617000000, time.UTC)) }},
		{name: "timestamp with offset", in: withTS("2026-11-26T13:30:00.5+01:30"),
			check: func(e *Event) bool {
				return e.Timestamp == time.Date(2026, 11, 26, 12, 0, 0, 500000000, time.UTC)
			}},
		{name: "timestamp nanos", in: withTS("2026-11-26T12:00:00.123456789Z")},
		{name: "timestamp 1970", in: withTS("1970-01-01T00:00:00Z")},
		{name: "timestamp 9999", in: withTS("9999-12-31T23:59:59.999999999Z")},
		{name: "timestamp 1969", in: withTS("1969-12-31T23:59:59Z"), reason: ReasonInvalidValue, field: "timestamp"},
		{name: "timestamp year 0", in: withTS("0000-01-01T00:00:00Z"), reason: ReasonInvalidValue, field: "timestamp"},
		{name: "timestamp 1970 before UTC", in: withTS("1970-01-01T00:30:00+01:00"), reason: ReasonInvalidValue, field: "timestamp", decoderOnly: true},
		{name: "timestamp not a date", in: withTS("yesterday"), reason: ReasonInvalidValue, field: "timestamp"},
		{name: "timestamp without zone", in: withTS("2026-11-26T12:00:00"), reason: ReasonInvalidValue, field: "timestamp"},
		{name: "timestamp with space", in: withTS("2026-11-26 12:00:00Z"), reason: ReasonInvalidValue, field: "timestamp"},
		{name: "timestamp one-digit hour", in: withTS("2026-11-26T1:00:00Z"), reason: ReasonInvalidValue, field: "timestamp"},
		{name: "timestamp comma fraction", in: withTS("2026-11-26T12:00:00,5Z"), reason: ReasonInvalidValue, field: "timestamp"},
		{name: "timestamp empty fraction", in: withTS("2026-11-26T12:00:00.Z"), reason: ReasonInvalidValue, field: "timestamp"},
		{name: "timestamp offset 24h", in: withTS("2026-11-26T12:00:00+24:00"), reason: ReasonInvalidValue, field: "timestamp"},
		{name: "timestamp offset minutes", in: withTS("2026-11-26T12:00:00+05:60"), reason: ReasonInvalidValue, field: "timestamp"},
		{name: "timestamp month 13", in: withTS("2026-13-01T12:00:00Z"), reason: ReasonInvalidValue, field: "timestamp"},
		{name: "timestamp Feb 30", in: withTS("2026-02-30T12:00:00Z"), reason: ReasonInvalidValue, field: "timestamp"},
		{name: "timestamp hour 24", in: withTS("2026-11-26T24:00:00Z"), reason: ReasonInvalidValue, field: "timestamp"},
		{name: "timestamp unix number", in: `{"request_id":"r1","timestamp":1764158400,` + minMeta + `}`, reason: ReasonWrongType, field: "timestamp"},
		{name: "timestamp null", in: `{"request_id":"r1","timestamp":null,` + minMeta + `}`, reason: ReasonMissingField, field: "timestamp"},
		{name: "timestamp empty", in: withTS(""), reason: ReasonInvalidValue, field: "timestamp"},

		// Fields never kept, of any type.
		{name: "bodies of every type", in: rec(`"request_body":{"messages":[{"role":"user","content":"hi"}]}`,
			`"response_body":"text"`, `"request_headers":[["a","b"]]`, `"guardrail_results":null`, `"timings":12.5`)},
	}
}

func withTS(ts string) string {
	return `{"request_id":"r1","timestamp":"` + ts + `",` + minMeta + `}`
}

func TestDecodeRules(t *testing.T) {
	for _, c := range ruleCases() {
		t.Run(c.name, func(t *testing.T) {
			var ev Event
			err := Decode([]byte(c.in), &ev)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if err := checkInvariants(&ev); err != nil {
					t.Fatal(err)
				}
				if err := compareWithReference([]byte(c.in), &ev); err != nil {
					t.Fatal(err)
				}
				if c.check != nil && !c.check(&ev) {
					t.Fatalf("wrong event: %+v", ev)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("want a %s error, got %v", c.reason, err)
			}
			if de.Reason != c.reason || de.Field != c.field {
				t.Fatalf("got %s/%q (%v), want %s/%q", de.Reason, de.Field, err, c.reason, c.field)
			}
			if ReasonOf(err) != c.reason {
				t.Fatalf("ReasonOf = %q", ReasonOf(err))
			}
		})
	}
}

func TestDecodeErrorText(t *testing.T) {
	err := Decode([]byte(`{"request_id":"r","timestamp":"2026-11-26T12:00:00Z"}`), new(Event))
	if got, want := err.Error(), "schemas: metadata.org_id: missing required field"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	err = Decode([]byte(`[1]`), new(Event))
	if got, want := err.Error(), "schemas: record: wrong type: want object, got array"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if ReasonOf(errors.New("other")) != "" {
		t.Error("ReasonOf of a foreign error is not empty")
	}
}

// Records carry user content; no error may quote it.
func TestDecodeErrorsDoNotLeakValues(t *testing.T) {
	const secret = "s3cr3t"
	inputs := []string{
		`s3cr3t`,
		`{"s3cr3t":1}`,
		`{"request_id":"s3cr3t","timestamp":"s3cr3t","metadata":{"org_id":"s3cr3t"}}`,
		`{"request_id":"s3cr3t","timestamp":"2026-11-26T12:00:00Z","metadata":{"org_id":"s3cr3t","s3cr3t":5}}`,
		`{"request_id":"s3cr3t","timestamp":"2026-11-26T12:00:00Z","metadata":{"org_id":"s3cr3t","cost":"s3cr3t"}}`,
		`{"request_id":"s3cr3t","timestamp":"2026-11-26T12:00:00Z","prompt_tokens":"s3cr3t","metadata":{"org_id":"o"}}`,
		`{"request_id":"s3cr3t","s3cr3t":"\q"}`,
		`{"request_id":"s3cr3t","model":"s3cr3t`,
		`{"request_id":"s3cr3t","request_id":"s3cr3t"}`,
	}
	for _, in := range inputs {
		err := Decode([]byte(in), new(Event))
		if err == nil {
			t.Errorf("%s: accepted", in)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error quotes the record: %v", err)
		}
	}
}

// The bodies, headers, guardrail results and timings may hold prompts and
// keys: none of it may reach the event.
func TestDecodeDropsBodies(t *testing.T) {
	const marker = "PRIVATE-CONTENT"
	in := rec(
		`"request_body":{"messages":[{"role":"user","content":"`+marker+`"}]}`,
		`"response_body":"`+marker+`"`,
		`"request_headers":{"authorization":"Bearer `+marker+`"}`,
		`"guardrail_results":[{"name":"pii","match":"`+marker+`"}]`,
		`"timings":{"`+marker+`":1}`,
	)
	var ev Event
	if err := Decode([]byte(in), &ev); err != nil {
		t.Fatal(err)
	}
	v := reflect.ValueOf(ev)
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.String && strings.Contains(f.String(), marker) {
			t.Errorf("%s kept body content", v.Type().Field(i).Name)
		}
	}
	if ev.RequestID != "r1" || ev.OrgID != "o1" {
		t.Errorf("wrong event %+v", ev)
	}
}

// The parser's buffer is reused: strings from one record must survive the
// next decode.
func TestDecoderReuseKeepsStrings(t *testing.T) {
	var d Decoder
	var a, b Event
	inA := recMeta(`"gateway_id":"gw-a"`)
	inA = strings.Replace(inA, `"r1"`, `"req-a"`, 1)
	if err := d.Decode([]byte(inA), &a); err != nil {
		t.Fatal(err)
	}
	inB := strings.Replace(strings.Replace(inA, "req-a", "req-b", 1), "gw-a", "gw-b", 1)
	if err := d.Decode([]byte(inB), &b); err != nil {
		t.Fatal(err)
	}
	if a.RequestID != "req-a" || a.GatewayID != "gw-a" || b.RequestID != "req-b" || b.GatewayID != "gw-b" {
		t.Fatalf("strings clobbered: %q %q %q %q", a.RequestID, a.GatewayID, b.RequestID, b.GatewayID)
	}
	// A failed decode must not leave the next one anything.
	if err := d.Decode([]byte(`{"request_id":"x","model":5}`), &b); err == nil {
		t.Fatal("accepted a bad record")
	}
	if err := d.Decode([]byte(rec()), &b); err != nil || b.GatewayID != "" || b.Model != "" {
		t.Fatalf("state leaked across records: %v %+v", err, b)
	}
}

// A partition's Decoder allocates only the one block of strings a record
// keeps; tenants, models and the like come from its intern table.
func TestDecoderAllocations(t *testing.T) {
	lines := sampleLines(t, goodFile)
	var d Decoder
	var ev Event
	for _, s := range lines { // warm the parser and the intern table
		if err := d.Decode(s.data, &ev); err != nil {
			t.Fatal(err)
		}
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		_ = d.Decode(lines[i%len(lines)].data, &ev)
		i++
	})
	if allocs > 1 {
		t.Errorf("%.2f allocations per record, want at most 1", allocs)
	}
}

func TestDecodeConcurrent(t *testing.T) {
	lines := sampleLines(t, goodFile)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(lines); i += 8 {
				var ev Event
				if err := Decode(lines[i].data, &ev); err != nil {
					t.Errorf("%s: %v", lines[i], err)
					return
				}
				if err := compareWithReference(lines[i].data, &ev); err != nil {
					t.Errorf("%s: %v", lines[i], err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
