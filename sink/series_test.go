package sink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV2"

	"github.com/futureagi/prism-exporter/aggregate"
)

func TestSeriesPayload(t *testing.T) {
	start := time.Date(2026, 11, 26, 12, 5, 0, 0, time.UTC)
	w := aggregate.Window{Start: start, Length: 5 * time.Minute}
	s1 := testSeries("GPT 4o")
	s1.Tags.Routing = ""
	got := decodeWithClientModel(t, encodeSeriesFor(w, []aggregate.Series{s1}))
	if len(got) != seriesPerTagSet {
		t.Fatalf("%d series", len(got))
	}
	want := map[string]struct {
		typ   datadogV2.MetricIntakeType
		value float64
	}{
		"prism.gateway.requests":           {1, 10},
		"prism.gateway.errors":             {1, 1},
		"prism.gateway.input_tokens":       {1, 1000},
		"prism.gateway.output_tokens":      {1, 500},
		"prism.gateway.cost":               {1, 0.25},
		"prism.gateway.cache_hits":         {1, 2},
		"prism.gateway.guardrail_triggers": {1, 1},
		"prism.gateway.fallbacks":          {1, 1},
		"prism.gateway.latency_ms":         {3, 100},
		"prism.gateway.latency_ms.p50":     {3, 90},
		"prism.gateway.latency_ms.p95":     {3, 300},
		"prism.gateway.latency_ms.p99":     {3, 390},
		"prism.gateway.latency_ms.max":     {3, 400},
	}
	wantTags := "model:gpt_4o,provider:openai,gateway:gw-1,routing:none"
	for _, s := range got {
		w, ok := want[s.Metric]
		if !ok {
			t.Errorf("unexpected metric %s", s.Metric)
			continue
		}
		delete(want, s.Metric)
		if *s.Type != w.typ {
			t.Errorf("%s type %v, want %v", s.Metric, *s.Type, w.typ)
		}
		if w.typ == datadogV2.METRICINTAKETYPE_COUNT && (s.Interval == nil || *s.Interval != 300) {
			t.Errorf("%s: a count needs the window as interval (300), got %v", s.Metric, s.Interval)
		}
		if w.typ == datadogV2.METRICINTAKETYPE_GAUGE && s.Interval != nil {
			t.Errorf("%s: a gauge has no interval", s.Metric)
		}
		if len(s.Points) != 1 || *s.Points[0].Timestamp != start.Unix() || *s.Points[0].Value != w.value {
			t.Errorf("%s points %v", s.Metric, s.Points)
		}
		if strings.Join(s.Tags, ",") != wantTags {
			t.Errorf("%s tags %v", s.Metric, s.Tags)
		}
	}
	if len(want) != 0 {
		t.Errorf("missing %v", want)
	}
}

// TestSeriesOnTheWire checks the JSON the client sends for them.
func TestSeriesOnTheWire(t *testing.T) {
	dd := newFakeDD(t)
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	b := closeBatch("org_a", time.Now(), 0, testSeries("gpt-4o"))
	if o := wait(t, deliver(t, s.Sink, b), 5*time.Second); o != Delivered {
		t.Fatal(o)
	}
	reqs := dd.requests("/api/v2/series")
	if len(reqs) != 1 || reqs[0].encoding != "gzip" || reqs[0].apiKey != keyA {
		t.Fatalf("%d requests", len(reqs))
	}
	var p struct {
		Series []struct {
			Metric   string `json:"metric"`
			Type     int    `json:"type"`
			Interval int    `json:"interval"`
			Points   []struct {
				Timestamp int64   `json:"timestamp"`
				Value     float64 `json:"value"`
			} `json:"points"`
			Tags []string `json:"tags"`
		} `json:"series"`
	}
	if err := json.Unmarshal(reqs[0].body, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Series) != seriesPerTagSet {
		t.Fatalf("%d series", len(p.Series))
	}
	r := p.Series[0]
	if r.Metric != "prism.gateway.requests" || r.Type != 1 || r.Interval != 60 || r.Points[0].Timestamp != b.Window.Start.Unix() || r.Points[0].Value != 10 ||
		strings.Join(r.Tags, ",") != "model:gpt-4o,provider:openai,gateway:gw-1,routing:weighted" {
		t.Errorf("%+v", r)
	}
}

// decodeWithClientModel reads the hand-encoded series through the client's
// own MetricPayload model (whose UnmarshalJSON checks required fields), so
// the body is what SubmitMetrics would have sent.
func decodeWithClientModel(t *testing.T, e encodedSeries) []datadogV2.MetricSeries {
	t.Helper()
	body := []byte(seriesEnvelopeHead)
	for i := 0; i < e.len(); i++ {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, e.item(i)...)
	}
	body = append(body, seriesEnvelopeTail...)
	var p datadogV2.MetricPayload
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("the client's model refuses the body: %v", err)
	}
	if p.UnparsedObject != nil {
		t.Fatalf("the client's model could not parse the body: %v", p.UnparsedObject)
	}
	for _, s := range p.Series {
		if s.UnparsedObject != nil || len(s.AdditionalProperties) > 0 {
			t.Fatalf("series the client's model does not know: %+v", s)
		}
	}
	return p.Series
}

// seriesOfSize builds n gauge series, each with its own random tags (so
// they barely compress), encoded as encodeSeriesFor encodes them.
func seriesOfSize(n int, r *rand.Rand) encodedSeries {
	var e encodedSeries
	for i := 0; i < n; i++ {
		b := append(e.buf, `{"metric":"prism.gateway.requests","type":3,"points":[{"timestamp":1795694400,"value":`...)
		b = appendJSONFloat(b, r.Float64())
		b = append(b, `}],"tags":[`...)
		for k := 0; k < 5; k++ {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, fmt.Sprintf("t%d:%016x%016x%08x", k, r.Uint64(), r.Uint64(), r.Uint32()))
		}
		b = append(b, "]}"...)
		e.buf = b
		e.ends = append(e.ends, len(b))
	}
	return e
}

func randomTagSets(n int, seed uint64) []aggregate.Series {
	r := rand.New(rand.NewPCG(seed, seed))
	out := make([]aggregate.Series, n)
	for i := range out {
		out[i] = testSeries(fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()))
		out[i].Tags.Gateway = fmt.Sprintf("%016x", r.Uint64())
		out[i].Requests = r.Int64N(1e6)
		out[i].Cost = r.Float64()
	}
	return out
}

func TestSeriesSplitAt512000Compressed(t *testing.T) {
	// Series with random tags barely compress, so the compressed limit
	// decides while the raw size stays under 5 MB.
	s := newTestSink(t, Config{BaseURL: "http://127.0.0.1:1"})
	all := seriesOfSize(10000, rand.New(rand.NewPCG(1, 1)))
	whole, err := s.gzipSeries(all)
	if err != nil {
		t.Fatal(err)
	}
	raw, gz := all.rawSize(), len(whole)
	if gz <= 2*maxSeriesCompressed || raw > maxSeriesUncompressed {
		t.Fatalf("test data: %d raw, %d compressed: not what this test needs", raw, gz)
	}
	groups, err := s.splitSeries(all, maxSeriesUncompressed, maxSeriesCompressed)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) < 3 {
		t.Errorf("%d groups for %d compressed bytes", len(groups), gz)
	}
	n := 0
	for _, g := range groups {
		z, _ := s.gzipSeries(g.series)
		if len(z) != len(g.gz) || g.series.rawSize() != g.raw {
			t.Errorf("group sizes %d/%d recorded as %d/%d", g.series.rawSize(), len(z), g.raw, len(g.gz))
		}
		if len(g.gz) > maxSeriesCompressed || g.raw > maxSeriesUncompressed {
			t.Errorf("group of %d series: %d raw, %d compressed", g.series.len(), g.raw, len(g.gz))
		}
		if len(g.gz) < maxSeriesCompressed/4 {
			t.Errorf("group of %d series only %d compressed bytes: split too far", g.series.len(), len(g.gz))
		}
		for i := 0; i < g.series.len(); i++ {
			if !bytes.Equal(g.series.item(i), all.item(n+i)) {
				t.Fatalf("groups out of order at %d", n+i)
			}
		}
		n += g.series.len()
	}
	if n != all.len() {
		t.Errorf("groups hold %d of %d series", n, all.len())
	}
	t.Logf("%d series, %d raw / %d gz bytes -> %d requests", all.len(), raw, gz, len(groups))
}

func TestSeriesSplitAt5MBUncompressed(t *testing.T) {
	// Long, identical tags compress extremely well: the raw limit decides.
	s := newTestSink(t, Config{BaseURL: "http://127.0.0.1:1"})
	w := aggregate.Window{Start: time.Now().Truncate(time.Minute), Length: time.Minute}
	sets := make([]aggregate.Series, 700)
	for i := range sets {
		sets[i] = testSeries(strings.Repeat("m", 190) + fmt.Sprint(i%10))
		sets[i].Tags.Gateway = strings.Repeat("g", 190)
		sets[i].Tags.Provider = strings.Repeat("p", 190)
	}
	all := encodeSeriesFor(w, sets)
	whole, _ := s.gzipSeries(all)
	if all.rawSize() <= maxSeriesUncompressed || len(whole) > maxSeriesCompressed {
		t.Fatalf("test data: %d raw, %d gz", all.rawSize(), len(whole))
	}
	groups, err := s.splitSeries(all, maxSeriesUncompressed, maxSeriesCompressed)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) < 2 {
		t.Fatalf("%d groups", len(groups))
	}
	for _, g := range groups {
		if g.raw > maxSeriesUncompressed {
			t.Errorf("group raw %d", g.raw)
		}
	}
}

func TestSeriesDeliveredInPiecesUnderLimits(t *testing.T) {
	dd := newFakeDD(t)
	var over []string
	dd.setHook(func(r *http.Request, body []byte, w http.ResponseWriter) int {
		if r.URL.Path == "/api/v2/series" && (r.ContentLength > maxSeriesCompressed || len(body) > maxSeriesUncompressed) {
			over = append(over, fmt.Sprintf("%d/%d", r.ContentLength, len(body)))
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return http.StatusRequestEntityTooLarge
		}
		return 0
	})
	s := newTestSink(t, Config{BaseURL: dd.srv.URL})
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	b := closeBatch("org_a", time.Now(), 0, randomTagSets(2000, 2)...)
	if o := wait(t, deliver(t, s.Sink, b), 20*time.Second); o != Delivered {
		t.Fatal(o)
	}
	if len(over) > 0 {
		t.Errorf("requests over the limits: %v", over)
	}
	total := 0
	for _, r := range dd.requests("/api/v2/series") {
		var p struct{ Series []json.RawMessage }
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		total += len(p.Series)
	}
	if total != 2000*seriesPerTagSet {
		t.Errorf("%d series arrived, want %d", total, 2000*seriesPerTagSet)
	}
	if n := len(dd.requests("/api/v2/series")); n < 2 {
		t.Errorf("%d requests: the batch should not fit in one", n)
	}
}
