package sink

import (
	"bytes"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/futureagi/prism-exporter/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func goldenEvents() []*schemas.Event {
	at := time.Date(2026, 11, 26, 12, 0, 1, 617_000_000, time.UTC)
	return []*schemas.Event{
		{ // the seed's example
			RequestID: "req_0000009531985d", TraceID: "099950d836f675cc81e74ef5e8e25d94", Timestamp: at,
			Model: "gpt-4o", ResolvedModel: "gpt-4o-2025-08-06", Provider: "openai",
			PromptTokens: 1200, CompletionTokens: 323, TotalTokens: 1523, StatusCode: 200, LatencyMS: 842, Cost: 0.02,
			IsStream: true, AuthKeyID: "key_b2e0_1", UserID: "user_283", SessionID: "sess_39",
			OrgID: "org_77b2e0", GatewayID: "gw-us-east-1", RoutingStrategy: "least-latency",
		},
		{ // a failed request, with an error message that needs escaping twice
			RequestID: "req_2", Timestamp: at.Add(time.Second), Model: "Claude Sonnet 4", ResolvedModel: "claude-sonnet-4",
			Provider: "Anthropic", StatusCode: 503, LatencyMS: 12, Cost: 0, IsError: true, FallbackUsed: true,
			ErrorMessage: "upstream said \"overloaded\"\nretry later \\ ünïcode \u2028 ok", ErrorCode: "upstream_unavailable",
			OrgID: "org_77b2e0", GatewayID: "GW EU/west,1",
		},
		{ // cache hit, guardrail, tiny cost, no routing decision
			RequestID: "req_3", Timestamp: at.Add(2 * time.Second), Model: "mistral-large", Provider: "mistral",
			PromptTokens: 5, CompletionTokens: 0, TotalTokens: 5, StatusCode: 200, LatencyMS: 3, Cost: 0.0000123,
			CacheHit: true, GuardrailTriggered: true, OrgID: "org_3f9a1c",
		},
		{ // a 4xx without an error message; invalid UTF-8 in a field
			RequestID: "req_4", Timestamp: at.Add(3 * time.Second), Model: "gpt-4o", Provider: "openai",
			StatusCode: 400, LatencyMS: 1, Cost: 12.34567, UserID: "bad\xffbyte", OrgID: "org_3f9a1c",
		},
	}
}

// TestLogFormatGolden pins the exact bytes of a log item: field order,
// message, tags, attributes.
func TestLogFormatGolden(t *testing.T) {
	enc := &logEncoder{service: "prism-gateway"}
	var got bytes.Buffer
	for _, ev := range goldenEvents() {
		got.Write(enc.appendLog(nil, ev, noTrim()))
		got.WriteByte('\n')
	}
	const path = "testdata/logs.golden.jsonl"
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("log items differ from %s (go test -run Golden -update to rewrite after checking):\n got: %s\nwant: %s", path, got.Bytes(), want)
	}
}

// TestLogFormatFields reads an item back and checks every field's meaning,
// independently of the golden bytes.
func TestLogFormatFields(t *testing.T) {
	enc := &logEncoder{service: "svc"}
	evs := goldenEvents()
	decode := func(ev *schemas.Event) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(enc.appendLog(nil, ev, noTrim()), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := decode(evs[0])
	want := map[string]any{
		"message":  "[openai] gpt-4o status=200 latency=842ms tokens=1523 cost=$0.02",
		"status":   "info",
		"ddsource": "futureagi",
		"service":  "svc",
		"ddtags":   "model:gpt-4o,provider:openai,status_code:200,gateway:gw-us-east-1,error:false,cache:miss,guardrail:false,routing:least-latency",
		// epoch milliseconds: Datadog reads `timestamp` as the log's date
		"timestamp":  float64(evs[0].Timestamp.UnixMilli()),
		"request_id": "req_0000009531985d", "trace_id": "099950d836f675cc81e74ef5e8e25d94",
		"model": "gpt-4o", "resolved_model": "gpt-4o-2025-08-06", "provider": "openai",
		"status_code": 200.0, "latency_ms": 842.0, "input_tokens": 1200.0, "output_tokens": 323.0, "total_tokens": 1523.0,
		"cost": 0.02, "is_stream": true, "cache_hit": false, "fallback_used": false, "guardrail_triggered": false,
		"user_id": "user_283", "session_id": "sess_39", "org_id": "org_77b2e0", "gateway": "gw-us-east-1", "routing_strategy": "least-latency",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	for k := range m {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected field %s = %v (the auth key id must not leave)", k, m[k])
		}
	}

	m = decode(evs[1])
	if m["status"] != "error" {
		t.Errorf("failed request status %v", m["status"])
	}
	wantMsg := `[Anthropic] Claude Sonnet 4 status=503 latency=12ms tokens=0 cost=$0 error="upstream said \"overloaded\"\nretry later \\ ünïcode \u2028 ok"`
	if m["message"] != wantMsg {
		t.Errorf("message\n %v\nwant\n %v", m["message"], wantMsg)
	}
	if m["error_message"] != evs[1].ErrorMessage || m["error_code"] != "upstream_unavailable" || m["fallback_used"] != true {
		t.Errorf("error fields: %v", m)
	}
	if tags := m["ddtags"]; tags != "model:claude_sonnet_4,provider:anthropic,status_code:503,gateway:gw_eu/west_1,error:true,cache:miss,guardrail:false,routing:none" {
		t.Errorf("ddtags %v", tags)
	}
	m = decode(evs[2])
	if m["message"] != "[mistral] mistral-large status=200 latency=3ms tokens=5 cost=$0.000012" ||
		!strings.Contains(m["ddtags"].(string), "cache:hit,guardrail:true,routing:none") {
		t.Errorf("%v / %v", m["message"], m["ddtags"])
	}
	m = decode(evs[3])
	if m["status"] != "error" || m["message"] != "[openai] gpt-4o status=400 latency=1ms tokens=0 cost=$12.3457" || m["user_id"] != "bad\ufffdbyte" {
		t.Errorf("%v %v %q", m["status"], m["message"], m["user_id"])
	}
	if _, has := m["error_message"]; has {
		t.Errorf("empty strings are left out")
	}
}

// TestJSONStringMatchesEncodingJSON: whatever the bytes, the hand-rolled
// escaping reads back as encoding/json's does.
func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", "0", " ", "\"", "\\", "/", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "é", "😀", "\u2028", "\u2029", "\xff", "\xc3", "<", "&", "\xed\xa0\x80",
		// plain runs, so that every byte position of the eight-byte fast path
		// meets every special byte
		"abcdefg", "abcdefgh", "plain text and more"}
	for i := 0; i < 20000; i++ {
		var b strings.Builder
		for n := r.IntN(24); n > 0; n-- {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		s := b.String()
		ours := appendJSONString(nil, s)
		std, _ := json.Marshal(s)
		var a, c string
		if err := json.Unmarshal(ours, &a); err != nil {
			t.Fatalf("%q -> %s: %v", s, ours, err)
		}
		_ = json.Unmarshal(std, &c)
		if a != c {
			t.Fatalf("%q: ours reads %q, encoding/json %q", s, a, c)
		}
		if bs := appendJSONString(nil, []byte(s)); !bytes.Equal(bs, ours) {
			t.Fatalf("[]byte and string forms differ for %q", s)
		}
	}
	for _, f := range []float64{0, 1, -1, 0.1, 1e-7, 123456789.125, 1e21, 1e300, 0.000001, 5e-324} {
		ours := appendJSONFloat(nil, f)
		std, _ := json.Marshal(f)
		if string(ours) != string(std) {
			t.Errorf("%v: %s, encoding/json %s", f, ours, std)
		}
	}
}

func TestCostFormat(t *testing.T) {
	cases := map[float64]string{
		0: "0", 0.02: "0.02", 0.016945: "0.0169", 1.5: "1.5", 12.34567: "12.3457", 100: "100",
		0.00005: "0.0001", 0.0000123: "0.000012", 0.000000456: "0.00000046", -0.5: "-0.5", 1234.00001: "1234",
	}
	for in, want := range cases {
		if got := string(appendCost(nil, in)); got != want {
			t.Errorf("cost %v = %s, want %s", in, got, want)
		}
	}
}

func TestTagSanitizing(t *testing.T) {
	cases := []struct{ key, value, empty, want string }{
		{"model", "gpt-4o", "", "model:gpt-4o"},
		{"model", "GPT-4o", "", "model:gpt-4o"},
		{"model", "Claude Sonnet 4", "", "model:claude_sonnet_4"},
		{"model", "a,b", "", "model:a_b"},
		{"model", "ünïcode", "", "model:_n_code"},
		{"model", "😀x", "", "model:_x"},
		{"gateway", "gw:eu:", "", "gateway:gw:eu_"},
		{"routing", "", "none", "routing:none"},
		{"model", "path/to.model_v1-2", "", "model:path/to.model_v1-2"},
		{"model", "tab\there", "", "model:tab_here"},
		{"model", strings.Repeat("x", 300), "", "model:" + strings.Repeat("x", 194)},
		{"model", strings.Repeat("x", 193) + ":", "", "model:" + strings.Repeat("x", 193) + "_"},
		{"model", strings.Repeat("x", 194) + ":yy", "", "model:" + strings.Repeat("x", 194)},
		{"model", strings.Repeat("x", 193) + ":yy", "", "model:" + strings.Repeat("x", 193) + "_"},
	}
	for _, c := range cases {
		got := tag(c.key, c.value, c.empty)
		if got != c.want {
			t.Errorf("tag(%q, %q) = %q, want %q", c.key, c.value, got, c.want)
		}
		if len(got) > 200 || strings.HasSuffix(got, ":") {
			t.Errorf("tag %q breaks Datadog's rules", got)
		}
		for _, ch := range got {
			if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || strings.ContainsRune("_:./-", ch)) {
				t.Errorf("tag %q has %q", got, ch)
			}
		}
	}
}

func TestLogChunksAt5MB(t *testing.T) {
	enc := &logEncoder{service: "s"}
	evs := testEvents(500, time.Now())
	for i, ev := range evs {
		ev.ErrorMessage = strings.Repeat("e", 25_000+i) // ~12.5 MB in all
		enc.add(ev, i)
	}
	chunks := enc.chunks(maxLogsPerRequest, maxLogsRequestBytes)
	if len(chunks) < 3 {
		t.Fatalf("%d chunks for ~12.5 MB", len(chunks))
	}
	next := 0
	for _, c := range chunks {
		if c[0] != next {
			t.Fatalf("chunks not consecutive: %v", chunks)
		}
		next = c[1]
		body := append(append([]byte{'['}, enc.body(c[0], c[1])...), ']')
		if len(body) > maxLogsRequestBytes || len(body) != enc.bodySize(c[0], c[1]) {
			t.Errorf("chunk %v is %d bytes", c, len(body))
		}
		// And the next item would not have fitted: chunks are full.
		if c[1] < len(evs) && enc.bodySize(c[0], c[1]+1) <= maxLogsRequestBytes {
			t.Errorf("chunk %v stops early", c)
		}
		var items []map[string]any
		if err := json.Unmarshal(body, &items); err != nil || len(items) != c[1]-c[0] {
			t.Fatalf("chunk %v: %d items, %v", c, len(items), err)
		}
	}
	if next != len(evs) {
		t.Errorf("chunks end at %d of %d", next, len(evs))
	}
	// small logs: 500 per request at most
	enc.reset()
	for i, ev := range testEvents(1200, time.Now()) {
		enc.add(ev, i)
	}
	if c := enc.chunks(maxLogsPerRequest, maxLogsRequestBytes); len(c) != 3 || c[0] != [2]int{0, 500} || c[2] != [2]int{1000, 1200} {
		t.Errorf("chunks %v", c)
	}
}

func TestLogTrimmedTo1MB(t *testing.T) {
	enc := &logEncoder{service: "s"}
	huge := strings.Repeat("boom \"x\" ", 300_000) // 2.7 MB, escaped larger

	failed := testEvent(1, time.Now())
	failed.StatusCode, failed.ErrorMessage = 500, huge
	okEv := testEvent(2, time.Now())
	okEv.ErrorMessage = huge // an error message on a success: in the attribute only
	hugeModel := testEvent(3, time.Now())
	hugeModel.Model = strings.Repeat("m", 600_000) // message and attribute: message trimmed
	hopeless := testEvent(4, time.Now())
	hopeless.UserID = strings.Repeat("u", 1_200_000) // nothing to trim

	for i, ev := range []*schemas.Event{failed, okEv, hugeModel} {
		enc.reset()
		ok, trimmed := enc.add(ev, 0)
		if !ok || !trimmed {
			t.Fatalf("event %d: ok %v trimmed %v", i, ok, trimmed)
		}
		item := enc.item(0)
		if len(item) > maxLogBytes || len(item) < maxLogBytes-64<<10 {
			t.Errorf("event %d trimmed to %d bytes, want just under %d", i, len(item), maxLogBytes)
		}
		var m map[string]any
		if err := json.Unmarshal(item, &m); err != nil {
			t.Fatalf("event %d: trimmed item is not JSON: %v", i, err)
		}
		if m["request_id"] != ev.RequestID || m["org_id"] != ev.OrgID {
			t.Errorf("event %d lost its attributes", i)
		}
		if i < 2 {
			if !strings.HasSuffix(m["error_message"].(string), truncatedMark) {
				t.Errorf("event %d: error_message not marked as truncated", i)
			}
			if !strings.HasPrefix(m["message"].(string), "["+ev.Provider+"] "+ev.Model+" status=") {
				t.Errorf("event %d: message lost its head: %.80s", i, m["message"])
			}
		} else if !strings.HasSuffix(m["message"].(string), truncatedMark) {
			t.Errorf("huge model: message not trimmed")
		}
	}
	enc.reset()
	enc.add(testEvent(9, time.Now()), 0)
	if ok, _ := enc.add(hopeless, 1); ok {
		t.Errorf("a log that cannot be trimmed under 1 MB was accepted")
	}
	if enc.len() != 1 || !json.Valid(append(append([]byte{'['}, enc.body(0, 1)...), ']')) {
		t.Errorf("a refused item left bytes behind")
	}
}
