package sink

import (
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV2"

	"github.com/futureagi/prism-exporter/aggregate"
)

// Metrics go through the client's MetricsApi.SubmitMetrics, gzipped. The
// limits are Datadog's: 512,000 bytes on the wire, and a body that inflates
// to under 5 MB (5,000,000 here, to be safe).
const (
	maxSeriesCompressed   = 512_000
	maxSeriesUncompressed = 5_000_000
	// seriesPerTagSet is how many series one aggregate.Series becomes.
	seriesPerTagSet = 13
)

// seriesFor turns a window's totals into Datadog series. The counts are
// COUNT with the window as interval; the latency figures are gauges. Each
// point is stamped with the window's start, and every series carries the
// partition (see design.md: each partition writes its own series, since
// Datadog keeps one value per series and timestamp).
func seriesFor(partition int32, w aggregate.Window, all []aggregate.Series) []datadogV2.MetricSeries {
	ts := w.Start.Unix()
	interval := int64(w.Length / time.Second)
	out := make([]datadogV2.MetricSeries, 0, len(all)*seriesPerTagSet)
	for _, s := range all {
		tags := []string{
			tag("model", s.Tags.Model, "unknown"),
			tag("provider", s.Tags.Provider, "unknown"),
			tag("gateway", s.Tags.Gateway, "unknown"),
			tag("routing", s.Tags.Routing, "none"),
			"partition:" + strconv.Itoa(int(partition)),
		}
		count := func(name string, v float64) {
			out = append(out, metricSeries(name, datadogV2.METRICINTAKETYPE_COUNT, &interval, ts, v, tags))
		}
		gauge := func(name string, v float64) {
			out = append(out, metricSeries(name, datadogV2.METRICINTAKETYPE_GAUGE, nil, ts, v, tags))
		}
		count("prism.gateway.requests", float64(s.Requests))
		count("prism.gateway.errors", float64(s.Errors))
		count("prism.gateway.input_tokens", float64(s.InputTokens))
		count("prism.gateway.output_tokens", float64(s.OutputTokens))
		count("prism.gateway.cost", s.Cost)
		count("prism.gateway.cache_hits", float64(s.CacheHits))
		count("prism.gateway.guardrail_triggers", float64(s.GuardrailTriggers))
		count("prism.gateway.fallbacks", float64(s.Fallbacks))
		gauge("prism.gateway.latency_ms", s.LatencyAvgMS)
		gauge("prism.gateway.latency_ms.p50", s.LatencyP50MS)
		gauge("prism.gateway.latency_ms.p95", s.LatencyP95MS)
		gauge("prism.gateway.latency_ms.p99", s.LatencyP99MS)
		gauge("prism.gateway.latency_ms.max", float64(s.LatencyMaxMS))
	}
	return out
}

func metricSeries(name string, typ datadogV2.MetricIntakeType, interval *int64, ts int64, v float64, tags []string) datadogV2.MetricSeries {
	ms := datadogV2.MetricSeries{
		Metric: name,
		Type:   &typ,
		Points: []datadogV2.MetricPoint{{Timestamp: &ts, Value: &v}},
		Tags:   tags,
	}
	if interval != nil {
		ms.Interval = interval
	}
	return ms
}

// encodeSeries is the body SubmitMetrics sends for series, compressed the
// way it compresses it (encoding/json through the client's encoder, then
// compress/gzip at its default level), so the sizes are the ones on the
// wire.
func encodeSeries(series []datadogV2.MetricSeries) (raw, gz int, err error) {
	var body bytes.Buffer
	if err := datadog.NewEncoder(&body).Encode(datadogV2.MetricPayload{Series: series}); err != nil {
		return 0, 0, err
	}
	var out bytes.Buffer
	zw := stdgzip.NewWriter(&out)
	if _, err := zw.Write(body.Bytes()); err != nil {
		return 0, 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, 0, err
	}
	return body.Len(), out.Len(), nil
}

// seriesGroup is one SubmitMetrics request.
type seriesGroup struct {
	series  []datadogV2.MetricSeries
	raw, gz int
}

// splitSeries cuts series into requests under both limits: first greedily
// by each series' encoded size under maxRaw, then in halves while a
// request's compressed body is over maxGz. A single series over the limits
// comes back alone; Datadog's 413 decides its fate.
//
// Each series is marshalled once. The client's body for a group is
// `{"series":[` + the series joined by commas + `]}` and a newline (a test
// holds this against encodeSeries), so a group's sizes come from joining
// and compressing those bytes, without marshalling again.
func splitSeries(series []datadogV2.MetricSeries, maxRaw, maxGz int) ([]seriesGroup, error) {
	enc := make([][]byte, len(series))
	for i := range series {
		b, err := datadog.Marshal(series[i])
		if err != nil {
			return nil, err
		}
		enc[i] = b
	}
	var out []seriesGroup
	start, size := 0, len(seriesEnvelopeHead)+len(seriesEnvelopeTail)
	for i := range series {
		n := len(enc[i]) + 1 // and its comma
		if i > start && size+n > maxRaw {
			out = fitCompressed(out, series[start:i], enc[start:i], maxGz)
			start, size = i, len(seriesEnvelopeHead)+len(seriesEnvelopeTail)
		}
		size += n
	}
	if start < len(series) {
		out = fitCompressed(out, series[start:], enc[start:], maxGz)
	}
	return out, nil
}

const (
	seriesEnvelopeHead = `{"series":[`
	seriesEnvelopeTail = "]}\n"
)

// fitCompressed appends series to out as one group, or as halves, recursively,
// while the group compresses to more than maxGz.
func fitCompressed(out []seriesGroup, series []datadogV2.MetricSeries, enc [][]byte, maxGz int) []seriesGroup {
	raw, gz := joinedSizes(enc)
	if gz <= maxGz || len(series) == 1 {
		return append(out, seriesGroup{series: series, raw: raw, gz: gz})
	}
	mid := len(series) / 2
	out = fitCompressed(out, series[:mid], enc[:mid], maxGz)
	return fitCompressed(out, series[mid:], enc[mid:], maxGz)
}

// joinedSizes is the raw and gzipped size of the client's body for enc.
func joinedSizes(enc [][]byte) (raw, gz int) {
	var out countingWriter
	zw := stdgzip.NewWriter(&out)
	_, _ = zw.Write([]byte(seriesEnvelopeHead))
	raw = len(seriesEnvelopeHead) + len(seriesEnvelopeTail)
	for i, b := range enc {
		if i > 0 {
			_, _ = zw.Write([]byte{','})
			raw++
		}
		_, _ = zw.Write(b)
		raw += len(b)
	}
	_, _ = zw.Write([]byte(seriesEnvelopeTail))
	_ = zw.Close() // writes to a counter cannot fail
	return raw, out.n
}

type countingWriter struct{ n int }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += len(p)
	return len(p), nil
}

// sendSeries delivers a window's series.
func (q *tenantQueue) sendSeries(ctx context.Context, cn *conn, partition int32, w aggregate.Window, totals []aggregate.Series) error {
	groups, err := splitSeries(seriesFor(partition, w, totals), maxSeriesUncompressed, maxSeriesCompressed)
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
	if g.raw == 0 {
		var err error
		if g.raw, g.gz, err = encodeSeries(g.series); err != nil {
			return err
		}
	}
	opts := datadogV2.NewSubmitMetricsOptionalParameters().WithContentEncoding(datadogV2.METRICCONTENTENCODING_GZIP)
	err := q.attempt(ctx, cn, endpointSeries, func(ctx context.Context) answer {
		q.s.m.payloadBytes.WithLabelValues(endpointSeries, stageUncompressed).Add(float64(g.raw))
		q.s.m.payloadBytes.WithLabelValues(endpointSeries, stageCompressed).Add(float64(g.gz))
		_, resp, err := q.s.dd.metrics.SubmitMetrics(cn.ctx(ctx), datadogV2.MetricPayload{Series: g.series}, *opts)
		return clientAnswer(resp, err)
	})
	var se *statusError
	switch {
	case err == nil:
		q.s.m.items.WithLabelValues(kindMetrics, Delivered.String()).Add(float64(len(g.series)))
		return nil
	case (errors.Is(err, errTooLarge) || errors.Is(err, errBadRequest)) && len(g.series) > 1:
		if errors.Is(err, errTooLarge) {
			q.s.m.retries.WithLabelValues("status_413").Inc()
		}
		mid := len(g.series) / 2
		if err := q.sendSeriesGroup(ctx, cn, seriesGroup{series: g.series[:mid]}); err != nil {
			return err
		}
		return q.sendSeriesGroup(ctx, cn, seriesGroup{series: g.series[mid:]})
	case errors.Is(err, errTooLarge), errors.Is(err, errBadRequest):
		errors.As(err, &se)
		reason := reasonBadRequest
		if errors.Is(err, errTooLarge) {
			reason = reasonTooLarge
		}
		item, merr := datadog.Marshal(g.series[0])
		if merr != nil {
			return merr
		}
		return q.deadLetter(ctx, kindMetrics, reason, item, detailOf(se))
	}
	return err
}
