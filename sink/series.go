package sink

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/futureagi/prism-exporter/aggregate"
)

// Metrics are POSTed to /api/v2/series as hand-encoded JSON, gzipped at the
// sink's fast level. The client's SubmitMetrics (reflection-based
// encoding/json, then compress/gzip at its default level) was half of the
// exporter's CPU in `make bench` (docs/benchmarks.md); the body is the same
// MetricPayload the client would send, and a test holds it against the
// client's own model. The limits are Datadog's: 512,000 bytes on the wire,
// and a body that inflates to under 5 MB (5,000,000 here, to be safe).
const (
	maxSeriesCompressed   = 512_000
	maxSeriesUncompressed = 5_000_000
	// seriesPerTagSet is how many series one aggregate.Series becomes.
	seriesPerTagSet = 13
)

const (
	seriesTypeCount = 1
	seriesTypeGauge = 3
)

// encodedSeries is a window's series, each a JSON object, stored end to end
// in one buffer.
type encodedSeries struct {
	buf  []byte
	ends []int // series i is buf[ends[i-1]:ends[i]]
}

func (e *encodedSeries) len() int { return len(e.ends) }

func (e *encodedSeries) item(i int) []byte {
	start := 0
	if i > 0 {
		start = e.ends[i-1]
	}
	return e.buf[start:e.ends[i]]
}

// slice is series [i, j) as their own encodedSeries sharing the buffer.
func (e *encodedSeries) slice(i, j int) encodedSeries {
	start := 0
	if i > 0 {
		start = e.ends[i-1]
	}
	ends := make([]int, j-i)
	for k := range ends {
		ends[k] = e.ends[i+k] - start
	}
	return encodedSeries{buf: e.buf[start:e.ends[j-1]], ends: ends}
}

// rawSize is the size of the request body holding all of e.
func (e *encodedSeries) rawSize() int {
	n := len(seriesEnvelopeHead) + len(seriesEnvelopeTail) + len(e.buf)
	if len(e.ends) > 1 {
		n += len(e.ends) - 1 // commas
	}
	return n
}

const (
	seriesEnvelopeHead = `{"series":[`
	seriesEnvelopeTail = "]}"
)

// encodeSeriesFor turns a window's totals into Datadog series. The counts are
// COUNT with the window as interval; the latency figures are gauges. Each
// point is stamped with the window's start. The totals are the whole
// window's, summed over every partition by the combiner: Datadog keeps one
// value per series and timestamp, so one writer sends each (docs/design.md).
func encodeSeriesFor(w aggregate.Window, all []aggregate.Series) encodedSeries {
	ts := w.Start.Unix()
	interval := int64(w.Length / time.Second)
	out := encodedSeries{buf: make([]byte, 0, len(all)*seriesPerTagSet*260), ends: make([]int, 0, len(all)*seriesPerTagSet)}
	var tags []byte
	for _, s := range all {
		tags = append(tags[:0], '[')
		tags = appendJSONString(tags, tag("model", s.Tags.Model, "unknown"))
		tags = append(tags, ',')
		tags = appendJSONString(tags, tag("provider", s.Tags.Provider, "unknown"))
		tags = append(tags, ',')
		tags = appendJSONString(tags, tag("gateway", s.Tags.Gateway, "unknown"))
		tags = append(tags, ',')
		tags = appendJSONString(tags, tag("routing", s.Tags.Routing, "none"))
		tags = append(tags, ']')
		add := func(name string, typ int, v float64) {
			b := append(out.buf, `{"metric":"`...)
			b = append(b, name...)
			b = append(b, `","type":`...)
			b = strconv.AppendInt(b, int64(typ), 10)
			if typ == seriesTypeCount {
				b = append(b, `,"interval":`...)
				b = strconv.AppendInt(b, interval, 10)
			}
			b = append(b, `,"points":[{"timestamp":`...)
			b = strconv.AppendInt(b, ts, 10)
			b = append(b, `,"value":`...)
			b = appendJSONFloat(b, v)
			b = append(b, `}],"tags":`...)
			b = append(b, tags...)
			b = append(b, '}')
			out.buf = b
			out.ends = append(out.ends, len(b))
		}
		add("prism.gateway.requests", seriesTypeCount, float64(s.Requests))
		add("prism.gateway.errors", seriesTypeCount, float64(s.Errors))
		add("prism.gateway.input_tokens", seriesTypeCount, float64(s.InputTokens))
		add("prism.gateway.output_tokens", seriesTypeCount, float64(s.OutputTokens))
		add("prism.gateway.cost", seriesTypeCount, s.Cost)
		add("prism.gateway.cache_hits", seriesTypeCount, float64(s.CacheHits))
		add("prism.gateway.guardrail_triggers", seriesTypeCount, float64(s.GuardrailTriggers))
		add("prism.gateway.fallbacks", seriesTypeCount, float64(s.Fallbacks))
		add("prism.gateway.latency_ms", seriesTypeGauge, s.LatencyAvgMS)
		add("prism.gateway.latency_ms.p50", seriesTypeGauge, s.LatencyP50MS)
		add("prism.gateway.latency_ms.p95", seriesTypeGauge, s.LatencyP95MS)
		add("prism.gateway.latency_ms.p99", seriesTypeGauge, s.LatencyP99MS)
		add("prism.gateway.latency_ms.max", seriesTypeGauge, float64(s.LatencyMaxMS))
	}
	return out
}

// seriesGroup is one request: its series and its gzipped body.
type seriesGroup struct {
	series encodedSeries
	raw    int
	gz     []byte
}

// splitSeries cuts series into requests under both limits: first greedily
// by raw size under maxRaw, then in halves while a request's compressed body
// is over maxGz. A single series over the limits comes back alone; Datadog's
// 413 decides its fate.
func (s *Sink) splitSeries(all encodedSeries, maxRaw, maxGz int) ([]seriesGroup, error) {
	var out []seriesGroup
	start, size := 0, len(seriesEnvelopeHead)+len(seriesEnvelopeTail)
	for i := 0; i < all.len(); i++ {
		n := len(all.item(i)) + 1 // and its comma
		if i > start && size+n > maxRaw {
			var err error
			if out, err = s.fitCompressed(out, all.slice(start, i), maxGz); err != nil {
				return nil, err
			}
			start, size = i, len(seriesEnvelopeHead)+len(seriesEnvelopeTail)
		}
		size += n
	}
	if start < all.len() {
		return s.fitCompressed(out, all.slice(start, all.len()), maxGz)
	}
	return out, nil
}

// fitCompressed appends series to out as one group, or as halves,
// recursively, while the group compresses to more than maxGz.
func (s *Sink) fitCompressed(out []seriesGroup, series encodedSeries, maxGz int) ([]seriesGroup, error) {
	gz, err := s.gzipSeries(series)
	if err != nil {
		return nil, err
	}
	if len(gz) <= maxGz || series.len() == 1 {
		return append(out, seriesGroup{series: series, raw: series.rawSize(), gz: gz}), nil
	}
	mid := series.len() / 2
	if out, err = s.fitCompressed(out, series.slice(0, mid), maxGz); err != nil {
		return nil, err
	}
	return s.fitCompressed(out, series.slice(mid, series.len()), maxGz)
}

// gzipSeries compresses the request body holding series.
func (s *Sink) gzipSeries(series encodedSeries) ([]byte, error) {
	parts := make([][]byte, 0, 2*series.len()+1)
	parts = append(parts, []byte(seriesEnvelopeHead))
	for i := 0; i < series.len(); i++ {
		if i > 0 {
			parts = append(parts, comma)
		}
		parts = append(parts, series.item(i))
	}
	parts = append(parts, []byte(seriesEnvelopeTail))
	var buf bytes.Buffer
	if err := s.gzipTo(&buf, parts...); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var comma = []byte{','}

// sendSeries delivers a window's series.
func (q *tenantQueue) sendSeries(ctx context.Context, cn *conn, w aggregate.Window, totals []aggregate.Series) error {
	groups, err := q.s.splitSeries(encodeSeriesFor(w, totals), maxSeriesUncompressed, maxSeriesCompressed)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if err := q.sendSeriesGroup(ctx, cn, g); err != nil {
			return err
		}
	}
	return nil
}

// sendSeriesGroup sends one request's worth; refusals are narrowed down as
// for logs (413: halves; 400: bisection), and what is refused alone is
// dead-lettered as JSON.
func (q *tenantQueue) sendSeriesGroup(ctx context.Context, cn *conn, g seriesGroup) error {
	if g.gz == nil {
		var err error
		if g.gz, err = q.s.gzipSeries(g.series); err != nil {
			return err
		}
		g.raw = g.series.rawSize()
	}
	err := q.attempt(ctx, cn, endpointSeries, func(ctx context.Context) answer {
		q.s.m.payloadBytes.WithLabelValues(endpointSeries, stageUncompressed).Add(float64(g.raw))
		q.s.m.payloadBytes.WithLabelValues(endpointSeries, stageCompressed).Add(float64(len(g.gz)))
		return q.s.post(ctx, cn, cn.seriesURL, g.gz)
	})
	var se *statusError
	switch {
	case err == nil:
		q.s.m.items.WithLabelValues(kindMetrics, Delivered.String()).Add(float64(g.series.len()))
		return nil
	case (errors.Is(err, errTooLarge) || errors.Is(err, errBadRequest)) && g.series.len() > 1:
		if errors.Is(err, errTooLarge) {
			q.s.m.retries.WithLabelValues("status_413").Inc()
		}
		mid := g.series.len() / 2
		if err := q.sendSeriesGroup(ctx, cn, seriesGroup{series: g.series.slice(0, mid)}); err != nil {
			return err
		}
		return q.sendSeriesGroup(ctx, cn, seriesGroup{series: g.series.slice(mid, g.series.len())})
	case errors.Is(err, errTooLarge), errors.Is(err, errBadRequest):
		errors.As(err, &se)
		reason := reasonBadRequest
		if errors.Is(err, errTooLarge) {
			reason = reasonTooLarge
		}
		item := append([]byte(nil), g.series.item(0)...)
		return q.deadLetter(ctx, kindMetrics, reason, item, detailOf(se))
	}
	return err
}
