package ddfake

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSeriesLastWriteWins(t *testing.T) {
	s, url := start(t)
	now := float64(testNow().Unix())
	send := func(v float64, tags ...string) {
		t.Helper()
		body := mustJSON(t, seriesBody{Series: []map[string]any{series("prism.requests", 1, tags, [2]float64{now - 60, v})}})
		r := post(t, url+"/api/v2/series", "api-acme", "", body)
		wantStatus(t, r, http.StatusAccepted)
		if r.body != `{"errors":[]}` {
			t.Errorf("body %q", r.body)
		}
	}
	send(5, "env:prod", "model:gpt")
	send(7, "model:gpt", "env:prod") // same tag set in another order: same series
	send(1, "env:prod")              // another series

	pts := s.Points("acme")
	if len(pts) != 2 {
		t.Fatalf("points %+v", pts)
	}
	p := pts[1]
	if p.Value != 7 || p.Type != 1 || p.Interval != 10 || !slices.Equal(p.Tags, []string{"env:prod", "model:gpt"}) {
		t.Errorf("last write should win, counts are not summed: %+v", p)
	}
	if w := s.Writes("acme"); len(w) != 3 || !w[1].Overwrote || w[1].Previous != 5 || w[2].Overwrote {
		t.Errorf("writes %+v", w)
	}
	if s.Overwrites("acme") != 1 || s.Stats().PointsOverwritten != 1 {
		t.Error("overwrite not counted")
	}
}

func TestSeriesHostIsPartOfIdentity(t *testing.T) {
	s, url := start(t)
	now := testNow().Unix()
	body := fmt.Sprintf(`{"series":[
		{"metric":"m","points":[{"timestamp":%d,"value":1}],"resources":[{"name":"a","type":"host"}]},
		{"metric":"m","points":[{"timestamp":%d,"value":2}],"resources":[{"name":"b","type":"host"}]}]}`, now, now)
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "", []byte(body)), 202)
	if pts := s.Points("acme"); len(pts) != 2 || pts[0].Host != "a" || pts[1].Host != "b" {
		t.Errorf("points %+v", pts)
	}
}

func TestSeriesValidation(t *testing.T) {
	s, url := start(t)
	now := testNow().Unix()
	for _, body := range []string{
		`not json`,
		`{}`,
		`{"series":[{"points":[{"timestamp":1,"value":1}]}]}`,
		`{"series":[{"metric":"m"}]}`,
		fmt.Sprintf(`{"series":[{"metric":"m","points":[{"timestamp":%d,"value":"1"}]}]}`, now),
		fmt.Sprintf(`{"series":[{"metric":"m","points":[{"timestamp":%d}]}]}`, now),
		`{"series":[{"metric":"m","points":[{"value":1}]}]}`,
		fmt.Sprintf(`{"series":[{"metric":"m","type":7,"points":[{"timestamp":%d,"value":1}]}]}`, now),
		fmt.Sprintf(`{"series":[{"metric":"ok","points":[{"timestamp":%d,"value":1}]},{"metric":""}]}`, now),
	} {
		r := post(t, url+"/api/v2/series", "api-acme", "", []byte(body))
		wantStatus(t, r, http.StatusBadRequest)
		if !strings.HasPrefix(r.body, `{"errors":["`) {
			t.Errorf("%s: body %q", body, r.body)
		}
	}
	if len(s.Points("acme")) != 0 {
		t.Error("a refused payload stored points")
	}
}

func TestSeriesAuth(t *testing.T) {
	_, url := start(t)
	body := []byte(`{"series":[]}`)
	for _, key := range []string{"", "nope"} {
		r := post(t, url+"/api/v2/series", key, "", body)
		wantStatus(t, r, http.StatusForbidden) // the operation documents no 401
		if r.body != `{"errors":["Forbidden"]}` {
			t.Errorf("body %q", r.body)
		}
	}
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "", body), 202)
}

// seriesOfSize builds a valid series payload of exactly size bytes.
func seriesOfSize(t *testing.T, size int) []byte {
	now := float64(testNow().Unix())
	return padJSON(t, mustJSON(t, seriesBody{Series: []map[string]any{series("m", 3, nil, [2]float64{now, 1})}}), size)
}

func TestSeriesWireLimit(t *testing.T) {
	t.Parallel()
	_, url := start(t)
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "", seriesOfSize(t, MaxSeriesWireBytes)), 202)
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "", seriesOfSize(t, MaxSeriesWireBytes+1)), 413)
	// Compression gets a larger payload under the wire limit.
	big := seriesOfSize(t, 4*MaxSeriesWireBytes)
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "gzip", gzipped(big)), 202)
}

func TestSeriesInflatedLimit(t *testing.T) {
	t.Parallel()
	s, url := start(t)
	under := seriesOfSize(t, MaxSeriesInflatedBytes-1)
	at := seriesOfSize(t, MaxSeriesInflatedBytes) // "less than 5242880" refuses exactly that
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "gzip", gzipped(under)), 202)
	r := post(t, url+"/api/v2/series", "api-acme", "gzip", gzipped(at))
	wantStatus(t, r, 413)
	if r.body != `{"errors":["Payload too large"]}` {
		t.Errorf("body %q", r.body)
	}
	// The other documented encodings are accepted; they share the limit
	// code, checked here on one encoding to keep -race runs fast.
	small := seriesOfSize(t, 1000)
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "deflate", zlibbed(small)), 202)
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "zstd1", zstded(small)), 202)
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "br", small), 400)
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "gzip", []byte("not gzip")), 400)
	if got := s.Stats().PointsAccepted; got != 3 {
		t.Errorf("accepted %d points", got)
	}
}

func TestSeriesAgeWindow(t *testing.T) {
	clock := &fakeClock{t: testNow()}
	s, url := start(t, WithClock(clock.Now))
	now := float64(testNow().Unix())
	body := mustJSON(t, seriesBody{Series: []map[string]any{series("m", 3, nil,
		[2]float64{now - 3600, 1}, // one hour old: accepted
		[2]float64{now - 3601, 2}, // older: dropped
		[2]float64{now + 600, 3},  // ten minutes ahead: accepted
		[2]float64{now + 601, 4},  // further: dropped
	)}})
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "", body), 202)
	var vals []float64
	for _, p := range s.Points("acme") {
		vals = append(vals, p.Value)
	}
	if !slices.Equal(vals, []float64{1, 3}) {
		t.Errorf("kept %v", vals)
	}
	st := s.Stats()
	if st.PointsAccepted != 2 || st.PointsDroppedOld != 1 || st.PointsDroppedFuture != 1 {
		t.Errorf("stats %+v", st)
	}
	clock.Add(2 * time.Hour) // the same payload is now too old
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "", body), 202)
	if st := s.Stats(); st.PointsDroppedOld != 5 {
		t.Errorf("dropped old %d", st.PointsDroppedOld)
	}
}

func TestNormalizeTag(t *testing.T) {
	long := strings.Repeat("a", 250)
	for in, want := range map[string]string{
		"env:prod":                           "env:prod",
		"Env:Prod":                           "env:prod",
		"team:a b":                           "team:a_b",
		"path:/v1/chat.x-y":                  "path:/v1/chat.x-y",
		"model:gpt-4o@2024":                  "model:gpt-4o_2024",
		"9lives:x":                           "lives:x",
		"_x":                                 "x",
		"123":                                "",
		"key:":                               "key",
		"région:été":                         "région:été",
		long:                                 strings.Repeat("a", MaxTagLength),
		"a" + strings.Repeat("b", 198) + ":": "a" + strings.Repeat("b", 198),
	} {
		if got := NormalizeTag(in); got != want {
			t.Errorf("NormalizeTag(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSeriesTagNormalisation(t *testing.T) {
	s, url := start(t)
	now := float64(testNow().Unix())
	body := mustJSON(t, seriesBody{Series: []map[string]any{
		series("a", 3, []string{"Env:Prod", "team:a b", "env:prod", "42"}, [2]float64{now, 1}),
		series("b", 3, []string{"env:prod"}, [2]float64{now, 1}),
	}})
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "", body), 202)
	pts := s.Points("acme")
	if !slices.Equal(pts[0].Tags, []string{"env:prod", "team:a_b"}) {
		t.Errorf("stored tags %v", pts[0].Tags)
	}
	w := s.Writes("acme")
	if w[0].TagsNormal || !w[1].TagsNormal || !slices.Equal(w[0].SubmittedTags, []string{"Env:Prod", "team:a b", "env:prod", "42"}) {
		t.Errorf("writes %+v", w)
	}
	if got := s.InvalidTags("acme"); !slices.Equal(got, []string{"42", "Env:Prod", "team:a b"}) {
		t.Errorf("invalid tags %v", got)
	}
	if s.Stats().NonNormalTags != 3 {
		t.Error("non-normal tags not counted")
	}
}

func TestDistributionPoints(t *testing.T) {
	s, url := start(t)
	now := testNow().Unix()
	body := []byte(fmt.Sprintf(`{"series":[{"metric":"prism.latency","host":"h","tags":["env:prod"],"type":"distribution",
		"points":[[%d,[1.5,2.5]],[%d,[3]],[%d,[9]]]}]}`, now, now, now-7200))
	r := post(t, url+"/api/v1/distribution_points", "api-acme", "deflate", zlibbed(body))
	wantStatus(t, r, 202)
	if r.body != `{"status":"ok"}` {
		t.Errorf("body %q", r.body)
	}
	d := s.Distributions("acme")
	if len(d) != 2 || !slices.Equal(d[0].Values, []float64{1.5, 2.5}) || d[1].Timestamp != now || d[0].Host != "h" {
		t.Errorf("distributions %+v", d)
	}
	if st := s.Stats(); st.DistributionPointsAccepted != 2 || st.DistributionPointsDropped != 1 {
		t.Errorf("stats %+v", st)
	}
	wantStatus(t, post(t, url+"/api/v1/distribution_points", "api-acme", "gzip", gzipped(body)), 400)
	wantStatus(t, post(t, url+"/api/v1/distribution_points", "api-acme", "", []byte(`{"series":[{"metric":"m","points":[[1]]}]}`)), 400)
	wantStatus(t, post(t, url+"/api/v1/distribution_points", "", "", body), 403)
}

func TestInflateLimitEveryEncoding(t *testing.T) {
	body := []byte(strings.Repeat("x", 200))
	for enc, pack := range map[string]func([]byte) []byte{
		"": func(b []byte) []byte { return b }, "gzip": gzipped, "deflate": zlibbed, "zstd1": zstded,
	} {
		if out, over, corrupt := inflate(new(sync.Pool), enc, pack(body), 200, new(bytes.Buffer)); over || corrupt || string(out) != string(body) {
			t.Errorf("%q at the limit: over=%v corrupt=%v", enc, over, corrupt)
		}
		if _, over, corrupt := inflate(new(sync.Pool), enc, pack(body), 199, new(bytes.Buffer)); !over || corrupt {
			t.Errorf("%q one over: over=%v corrupt=%v", enc, over, corrupt)
		}
		if enc != "" {
			if _, _, corrupt := inflate(new(sync.Pool), enc, body, 1000, new(bytes.Buffer)); !corrupt {
				t.Errorf("%q: plain bytes not reported corrupt", enc)
			}
		}
	}
}
