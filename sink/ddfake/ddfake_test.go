package ddfake

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLogsAcceptedAndStored(t *testing.T) {
	s, url := start(t)
	now := testNow()
	body := mustJSON(t, []map[string]any{
		{"message": "hello", "ddsource": "prism", "service": "gateway", "status": "info",
			"hostname": "h1", "ddtags": "env:prod, team:Core", "timestamp": now.Add(-time.Minute).UnixMilli(), "tokens": 12},
		{"message": "world", "date": "2026-03-04T11:00:00Z"},
	})
	r := post(t, url+"/api/v2/logs?ddtags=region:eu", "api-acme", "", body)
	wantStatus(t, r, http.StatusAccepted)
	if r.body != "{}" {
		t.Errorf("body %q, want {}", r.body)
	}
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Period", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Name"} {
		if r.header.Get(h) == "" {
			t.Errorf("missing header %s", h)
		}
	}
	logs := s.Logs("acme")
	if len(logs) != 2 || s.LogCount("acme") != 2 || s.LogCount("globex") != 0 {
		t.Fatalf("stored %d logs", len(logs))
	}
	l := logs[0]
	if l.Message != "hello" || l.Source != "prism" || l.Service != "gateway" || l.Status != "info" || l.Hostname != "h1" {
		t.Errorf("reserved fields: %+v", l)
	}
	if want := []string{"env:prod", "region:eu", "team:core"}; !slices.Equal(l.Tags, want) {
		t.Errorf("tags %v, want %v", l.Tags, want)
	}
	if !l.Date.Equal(now.Add(-time.Minute)) || l.DateAttribute != "timestamp" {
		t.Errorf("date %v from %q", l.Date, l.DateAttribute)
	}
	if l.Attributes["tokens"] != float64(12) {
		t.Errorf("attributes %v", l.Attributes)
	}
	var raw map[string]any
	if err := json.Unmarshal(l.Raw, &raw); err != nil || raw["message"] != "hello" {
		t.Errorf("raw %q", l.Raw)
	}
	if logs[1].DateAttribute != "date" || !logs[1].Date.Equal(now.Add(-time.Hour)) {
		t.Errorf("ISO date: %v from %q", logs[1].Date, logs[1].DateAttribute)
	}
	if got := s.InvalidTags("acme"); !slices.Equal(got, []string{"team:Core"}) {
		t.Errorf("invalid tags %v", got)
	}
	// Copies: changing what was returned changes nothing stored.
	logs[0].Attributes["message"] = "changed"
	logs[0].Tags[0] = "x"
	if l := s.Logs("acme")[0]; l.Attributes["message"] != "hello" || l.Tags[0] != "env:prod" {
		t.Error("read-back is not a copy")
	}
}

func TestLogsSingleObject(t *testing.T) {
	s, url := start(t)
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "", []byte(`{"message":"one"}`)), http.StatusAccepted)
	logs := s.Logs("acme")
	if len(logs) != 1 || logs[0].Message != "one" || logs[0].DateAttribute != "" || !logs[0].Date.Equal(testNow()) {
		t.Fatalf("logs %+v", logs)
	}
}

func TestLogsAuth(t *testing.T) {
	s, url := start(t)
	body := []byte(`[{"message":"x"}]`)

	r := post(t, url+"/api/v2/logs", "", "", body)
	wantStatus(t, r, http.StatusUnauthorized)
	var e struct {
		Errors []struct{ Status, Title, Detail string } `json:"errors"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Status != "401" {
		t.Errorf("401 body %q is not HTTPLogErrors", r.body)
	}

	r = post(t, url+"/api/v2/logs", "nope", "", body)
	wantStatus(t, r, http.StatusForbidden)
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Errors[0].Status != "403" || e.Errors[0].Title != "Forbidden" {
		t.Errorf("403 body %q", r.body)
	}

	s.RevokeAPIKey("api-acme")
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "", body), http.StatusForbidden)
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "", []byte(`{"series":[]}`)), http.StatusForbidden)
	if s.LogCount("acme") != 0 {
		t.Error("refused logs were stored")
	}
	// Keys can come back at run time.
	s.AddAccount(Account{Name: "acme", APIKeys: []string{"api-acme-2"}})
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme-2", "", body), http.StatusAccepted)
	if st := s.Stats(); st.ByStatus[401] != 1 || st.ByStatus[403] != 3 || st.ByStatus[202] != 1 {
		t.Errorf("status counts %v", st.ByStatus)
	}
}

func TestLogsEncodings(t *testing.T) {
	s, url := start(t)
	body := []byte(`[{"message":"a"},{"message":"b"}]`)
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "gzip", gzipped(body)), http.StatusAccepted)
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "deflate", zlibbed(body)), http.StatusAccepted)
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "identity", body), http.StatusAccepted)
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "br", body), http.StatusBadRequest)
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "zstd1", zstded(body)), http.StatusBadRequest)
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "gzip", body), http.StatusBadRequest)
	broken := gzipped(body)
	broken[len(broken)-5] ^= 0xff // checksum mismatch
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "gzip", broken), http.StatusBadRequest)
	if n := s.LogCount("acme"); n != 6 {
		t.Errorf("stored %d logs, want 6", n)
	}
	var gz RequestRecord
	for _, rec := range s.Requests() {
		if rec.Encoding == "gzip" && rec.Status == 202 {
			gz = rec
		}
	}
	if gz.BodyBytes != int64(len(body)) || gz.WireBytes != int64(len(gzipped(body))) || gz.Items != 2 || gz.Account != "acme" {
		t.Errorf("record %+v", gz)
	}
}

// logsOfSize builds a logs array of exactly size bytes, no log over 1MB.
// It writes the JSON by hand: marshalling megabytes is slow under -race.
func logsOfSize(t *testing.T, size int) []byte {
	t.Helper()
	msg := strings.Repeat("m", MaxLogBytes-200)
	var b strings.Builder
	b.Grow(size)
	b.WriteByte('[')
	for n := 0; n < size-MaxLogBytes; n += MaxLogBytes - 100 {
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"message":"` + msg + `"}`)
	}
	b.WriteByte(']')
	return padJSON(t, []byte(b.String()), size)
}

func TestLogsPayloadLimit(t *testing.T) {
	t.Parallel()
	s, url := start(t)
	at := logsOfSize(t, MaxLogsPayloadBytes)
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "", at), http.StatusAccepted)
	over := logsOfSize(t, MaxLogsPayloadBytes+1)
	r := post(t, url+"/api/v2/logs", "api-acme", "", over)
	wantStatus(t, r, http.StatusRequestEntityTooLarge)
	if !strings.Contains(r.body, `"status":"413"`) {
		t.Errorf("413 body %q", r.body)
	}
	// The limit is on the uncompressed size, whatever the wire size.
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "gzip", gzipped(over)), http.StatusRequestEntityTooLarge)
	if s.Stats().LogsTruncated != 0 {
		t.Error("no log was over 1MB")
	}
}

func TestLogsCountLimit(t *testing.T) {
	s, url := start(t)
	items := make([]map[string]string, MaxLogsPerRequest+1)
	for i := range items {
		items[i] = map[string]string{"message": fmt.Sprint(i)}
	}
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "", mustJSON(t, items[:MaxLogsPerRequest])), http.StatusAccepted)
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "", mustJSON(t, items)), http.StatusBadRequest)
	if n := s.LogCount("acme"); n != MaxLogsPerRequest {
		t.Errorf("stored %d", n)
	}
}

func TestLogTruncation(t *testing.T) {
	t.Parallel()
	s, url := start(t)
	exact := padJSON(t, mustJSON(t, map[string]string{"message": strings.Repeat("a", 1000)}), MaxLogBytes)
	big := mustJSON(t, map[string]string{"message": strings.Repeat("é", MaxLogBytes/2+50)}) // 2 bytes each
	body := append(append(append([]byte("["), exact...), ','), append(big, ']')...)
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "", body), http.StatusAccepted)
	logs := s.Logs("acme")
	if len(logs) != 2 {
		t.Fatalf("stored %d", len(logs))
	}
	if logs[0].Truncated || len(logs[0].Raw) != MaxLogBytes {
		t.Errorf("a log of exactly 1MB must not be truncated")
	}
	l := logs[1]
	if !l.Truncated || len(l.Raw) != MaxLogBytes {
		t.Errorf("truncated=%v raw=%d", l.Truncated, len(l.Raw))
	}
	if excess := len(big) - MaxLogBytes; len(l.Message) > len(strings.Repeat("é", MaxLogBytes/2+50))-excess || !strings.HasPrefix(l.Message, "éé") || !json.Valid(mustJSON(t, l.Message)) {
		t.Errorf("message not cut by the excess: %d bytes", len(l.Message))
	}
	if s.Stats().LogsTruncated != 1 {
		t.Error("truncation not counted")
	}
}

func TestLogsInvalid(t *testing.T) {
	s, url := start(t)
	for _, body := range []string{
		``, `not json`, `[{"message":"ok"},`, `[{"message":"ok"}, "plain string"]`,
		`[{"message":"ok"}, {"no":"message"}]`, `[{"message": 42}]`, `"str"`,
	} {
		wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "", []byte(body)), http.StatusBadRequest)
	}
	if n := s.LogCount("acme"); n != 0 {
		t.Errorf("a refused request stored %d logs", n)
	}
}

func TestLogsAgeDropping(t *testing.T) {
	s, url := start(t)
	now := testNow()
	body := mustJSON(t, []map[string]any{
		{"message": "at limit", "timestamp": now.Add(-18 * time.Hour).UnixMilli()},
		{"message": "too old", "timestamp": now.Add(-18*time.Hour - time.Millisecond).UnixMilli()},
		{"message": "seconds not ms", "timestamp": now.Unix()},
		{"message": "old iso", "eventTime": now.Add(-19 * time.Hour).Format(time.RFC3339)},
		{"message": "first attribute wins", "timestamp": now.UnixMilli(), "date": "2000-01-01T00:00:00Z"},
	})
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "", body), http.StatusAccepted)
	var got []string
	for _, l := range s.Logs("acme") {
		got = append(got, l.Message)
	}
	if want := []string{"at limit", "first attribute wins"}; !slices.Equal(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
	if st := s.Stats(); st.LogsDroppedOld != 3 || st.LogsAccepted != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestValidateEndpoints(t *testing.T) {
	_, url := start(t)
	get := func(path string, h map[string]string) reply {
		r, err := do(t, http.MethodGet, url+path, nil, h)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := get("/api/v1/validate", map[string]string{"DD-API-KEY": "api-acme"})
	wantStatus(t, r, 200)
	if r.body != `{"valid":true}` {
		t.Errorf("body %q", r.body)
	}
	for _, h := range []map[string]string{{}, {"DD-API-KEY": "nope"}} {
		r = get("/api/v1/validate", h)
		wantStatus(t, r, 403)
		if r.body != `{"errors":["Forbidden"]}` {
			t.Errorf("body %q", r.body)
		}
	}

	r = get("/api/v2/validate_keys", map[string]string{"DD-API-KEY": "api-acme", "DD-APPLICATION-KEY": "app-acme"})
	wantStatus(t, r, 200)
	if r.body != `{"status":"ok"}` {
		t.Errorf("body %q", r.body)
	}
	for _, h := range []map[string]string{
		{"DD-API-KEY": "api-acme"},
		{"DD-API-KEY": "api-acme", "DD-APPLICATION-KEY": "app-globex"}, // keys of two accounts
		{"DD-API-KEY": "nope", "DD-APPLICATION-KEY": "app-acme"},
		{"DD-API-KEY": "api-acme", "DD-APPLICATION-KEY": "nope"},
	} {
		r = get("/api/v2/validate_keys", h)
		wantStatus(t, r, 403)
		if r.body != `{"errors":["Forbidden"]}` {
			t.Errorf("body %q", r.body)
		}
	}
}

func TestSiteOfKeys(t *testing.T) {
	s, url := start(t)
	check := func(host, key string, want int) {
		t.Helper()
		r, err := do(t, http.MethodGet, url+"/api/v1/validate", nil, map[string]string{"Host": host, "DD-API-KEY": key})
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, r, want)
	}
	check("api.datadoghq.eu", "api-globex", 200)
	check("api.datadoghq.com", "api-globex", 403) // an EU key does not exist on US1
	check("api.datadoghq.com", "api-acme", 200)   // no Site: any
	check("127.0.0.1", "api-globex", 200)         // not a Datadog host: no check
	s.RevokeAppKey("app-acme")
	r, _ := do(t, http.MethodGet, url+"/api/v2/validate_keys", nil, map[string]string{"DD-API-KEY": "api-acme", "DD-APPLICATION-KEY": "app-acme"})
	wantStatus(t, r, 403)
}

func TestUnknownPathAndMethod(t *testing.T) {
	_, url := start(t)
	r := post(t, url+"/api/v1/series", "api-acme", "", []byte(`{}`))
	wantStatus(t, r, 404)
	r, err := do(t, http.MethodGet, url+"/api/v2/logs", nil, map[string]string{"DD-API-KEY": "api-acme"})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, r, 405)
	if r.header.Get("Allow") != "POST" || r.header.Get("X-RateLimit-Name") == "" {
		t.Errorf("headers %v", r.header)
	}
}

func TestHandlerWithHTTPTest(t *testing.T) {
	s := New(testAccounts(), WithClock(testNow))
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	defer s.Close()
	wantStatus(t, post(t, ts.URL+"/api/v2/logs", "api-acme", "", []byte(`{"message":"x"}`)), 202)
	if s.LogCount("acme") != 1 {
		t.Error("not stored")
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	s := New()
	defer s.Close()
	if _, err := s.Start("0.0.0.0:0"); err == nil {
		t.Fatal("listened on a non-loopback address")
	}
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start("127.0.0.1:0"); err == nil {
		t.Fatal("started twice")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestReset(t *testing.T) {
	s, url := start(t)
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "", []byte(`{"message":"x"}`)), 202)
	s.Reset()
	if s.LogCount("acme") != 0 || len(s.Requests()) != 0 || s.Stats().Requests != 0 {
		t.Fatal("not reset")
	}
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "", []byte(`{"message":"x"}`)), 202)
}

func TestCheapMode(t *testing.T) {
	s, url := start(t, WithCheapMode())
	now := testNow().Unix()
	logs := []byte(`[{"message":"a"},{"message":"b","nested":[1,{"x":"]"}]},{"message":"c"}]`)
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "gzip", gzipped(logs)), 202)
	ser := mustJSON(t, seriesBody{Series: []map[string]any{series("m", 3, nil, [2]float64{float64(now), 1}, [2]float64{float64(now - 10), 2})}})
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "deflate", zlibbed(ser)), 202)
	wantStatus(t, post(t, url+"/api/v2/logs", "nope", "", logs), 403)
	st := s.Stats()
	if st.LogsAccepted != 3 || st.PointsAccepted != 2 || st.Requests != 3 || st.BodyBytes != int64(len(logs)+len(ser)) {
		t.Errorf("stats %+v", st)
	}
	if s.LogCount("acme") != 0 || len(s.Points("acme")) != 0 || len(s.Requests()) != 0 {
		t.Error("cheap mode stored data")
	}
}

func TestCountLogItems(t *testing.T) {
	for body, want := range map[string]int{
		`[]`: 0, ` [ ] `: 0, `{"a":1}`: 1, `[{}]`: 1, `[1,2,3]`: 3, `["a,b","c"]`: 2,
		`[{"a":[1,2]},{"b":"\"],"}]`: 2, `[[1],[2]]`: 2,
	} {
		if n, ok := countLogItems([]byte(body)); !ok || n != want {
			t.Errorf("%s: %d %v, want %d", body, n, ok, want)
		}
	}
	if _, ok := countLogItems([]byte(`x`)); ok {
		t.Error("accepted junk")
	}
}

func TestCountPoints(t *testing.T) {
	for body, want := range map[string]int{
		`{"series":[]}`: 0,
		`{"series":[{"metric":"m","points":[]}]}`:                                                                                        0,
		`{"series":[{"metric":"m","points":[{"timestamp":1,"value":2}]}]}`:                                                               1,
		`{"series":[{"points":[{"timestamp":1,"value":2},{"timestamp":2,"value":3}]},{"points":[{"value":1}],"tags":["points","a:]"]}]}`: 3,
		`{"series":[{"metric":"points","tags":["[points]"],"points" : [ {"value":[1,2]} , {} ]}]}`:                                       2,
		`{"series":[{"resources":[{"name":"points","type":"host"}],"points":[{"value":1}]}]}`:                                            1,
	} {
		n, ok := countPoints([]byte(body))
		var p struct {
			Series []struct {
				Points []json.RawMessage `json:"points"`
			} `json:"series"`
		}
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		ref := 0
		for _, s := range p.Series {
			ref += len(s.Points)
		}
		if !ok || n != want || ref != want {
			t.Errorf("%s: %d %v (encoding/json %d), want %d", body, n, ok, ref, want)
		}
	}
	for _, junk := range []string{`{"series":[`, `{"series":"]`, `{"series":[}]`} {
		if _, ok := countPoints([]byte(junk)); ok {
			t.Errorf("%s: accepted", junk)
		}
	}
}

// The cheap counters jump from quote to quote; strings full of escapes and
// brackets must not move them.
func TestCountLogItemsAgainstEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	parts := []string{`a`, `\`, `"`, `[`, `]`, `{`, `}`, `,`, `\\`, `\"`, "é", ` `}
	for i := 0; i < 3000; i++ {
		var items []any
		for n := r.IntN(6); n > 0; n-- {
			var b strings.Builder
			for k := r.IntN(12); k > 0; k-- {
				b.WriteString(parts[r.IntN(len(parts))])
			}
			items = append(items, map[string]any{"message": b.String(), "n": []any{b.String(), 1}})
		}
		body, err := json.Marshal(items)
		if err != nil {
			t.Fatal(err)
		}
		if items == nil {
			body = []byte(`[]`)
		}
		if n, ok := countLogItems(body); !ok || n != len(items) {
			t.Fatalf("%s: %d %v, want %d", body, n, ok, len(items))
		}
		series, _ := json.Marshal(map[string]any{"series": []any{map[string]any{"metric": "m", "tags": items, "points": items}}})
		if n, ok := countPoints(series); !ok || n != len(items) {
			t.Fatalf("%s: %d points %v, want %d", series, n, ok, len(items))
		}
	}
}
