package sink

import (
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV2"
	"go.uber.org/zap"

	"github.com/futureagi/prism-exporter/aggregate"
	"github.com/futureagi/prism-exporter/schemas"
	"github.com/futureagi/prism-exporter/schemas/gen"
)

// The logs hot path, against what SubmitLog would do with the client's
// model. Run: go test ./sink/ -run '^$' -bench . -benchmem

// benchEvents is one request's worth of records from the project's traffic
// generator (shaped like the shared samples), decoded as the processor
// decodes them.
func benchEvents() []*schemas.Event {
	g := gen.New(gen.Config{Seed: 1})
	at := time.Now()
	var out []*schemas.Event
	for len(out) < maxLogsPerRequest {
		_, v, malformed := g.Next(at)
		if malformed {
			continue
		}
		var ev schemas.Event
		if err := schemas.Decode(v, &ev); err != nil {
			continue
		}
		out = append(out, &ev)
	}
	return out
}

func BenchmarkLogEncode(b *testing.B) {
	evs := benchEvents()
	enc := &logEncoder{service: DefaultService}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = enc.appendLog(buf[:0], evs[i%len(evs)], noTrim())
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkLogsEncodeGzip is one request's worth (500 logs): encode and
// gzip at the sink's level, with the sink's pools.
func BenchmarkLogsEncodeGzip(b *testing.B) {
	s, err := New(Config{}, nil, zap.NewNop(), &recordingDL{})
	if err != nil {
		b.Fatal(err)
	}
	evs := benchEvents()
	b.ReportAllocs()
	b.ResetTimer()
	var raw, gz int
	for i := 0; i < b.N; i++ {
		enc := s.getEncoder()
		for k, ev := range evs {
			enc.add(ev, k)
		}
		out := s.getBuf()
		if err := s.gzipTo(out, []byte{'['}, enc.body(0, enc.len()), []byte{']'}); err != nil {
			b.Fatal(err)
		}
		raw, gz = enc.bodySize(0, enc.len()), out.Len()
		s.putBuf(out)
		s.putEncoder(enc)
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "logs/s")
	b.ReportMetric(float64(raw)/float64(len(evs)), "B/log")
	b.ReportMetric(float64(gz)/float64(len(evs)), "gzB/log")
}

// BenchmarkLogsEncodeGzipParallel is the same on every core (2 in CI):
// the sink's throughput with many partitions and tenants.
func BenchmarkLogsEncodeGzipParallel(b *testing.B) {
	s, err := New(Config{}, nil, zap.NewNop(), &recordingDL{})
	if err != nil {
		b.Fatal(err)
	}
	evs := benchEvents()
	var n sync.Mutex
	requests := 0
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			enc := s.getEncoder()
			for k, ev := range evs {
				enc.add(ev, k)
			}
			out := s.getBuf()
			_ = s.gzipTo(out, []byte{'['}, enc.body(0, enc.len()), []byte{']'})
			s.putBuf(out)
			s.putEncoder(enc)
			n.Lock()
			requests++
			n.Unlock()
		}
	})
	b.ReportMetric(float64(requests*len(evs))/b.Elapsed().Seconds(), "logs/s")
}

// clientItems is what a caller of LogsApi.SubmitLog builds: one
// HTTPLogItem per log, attributes in AdditionalProperties.
func clientItems(evs []*schemas.Event) []datadogV2.HTTPLogItem {
	items := make([]datadogV2.HTTPLogItem, len(evs))
	enc := &logEncoder{}
	for i, ev := range evs {
		tags := string(appendLogTags(nil, ev))
		src, svc := "futureagi", DefaultService
		status := "info"
		if ev.Failed() {
			status = "error"
		}
		items[i] = datadogV2.HTTPLogItem{
			Message:  string(enc.message(nil, ev, noTrim())),
			Ddsource: &src, Ddtags: &tags, Service: &svc,
			AdditionalProperties: map[string]any{
				"status": status, "timestamp": ev.Timestamp.UnixMilli(),
				"request_id": ev.RequestID, "trace_id": ev.TraceID, "model": ev.Model, "resolved_model": ev.ResolvedModel,
				"provider": ev.Provider, "status_code": ev.StatusCode, "latency_ms": ev.LatencyMS,
				"input_tokens": ev.PromptTokens, "output_tokens": ev.CompletionTokens, "total_tokens": ev.TotalTokens,
				"cost": ev.Cost, "is_stream": ev.IsStream, "cache_hit": ev.CacheHit, "fallback_used": ev.FallbackUsed,
				"guardrail_triggered": ev.GuardrailTriggered, "error_message": ev.ErrorMessage, "error_code": ev.ErrorCode,
				"user_id": ev.UserID, "session_id": ev.SessionID, "org_id": ev.OrgID, "gateway": ev.GatewayID,
				"routing_strategy": ev.RoutingStrategy,
			},
		}
	}
	return items
}

// BenchmarkLogsClientModel is SubmitLog's path for one request: build the
// models, json.Marshal them (the client's encoder), gzip as the client's
// PrepareRequest does (compress/gzip, default level).
func BenchmarkLogsClientModel(b *testing.B) {
	evs := benchEvents()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body, err := datadog.Marshal(clientItems(evs))
		if err != nil {
			b.Fatal(err)
		}
		var out bytes.Buffer
		zw := stdgzip.NewWriter(&out)
		_, _ = zw.Write(body)
		_ = zw.Close()
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "logs/s")
}

// BenchmarkLogsClientModelNoGzip isolates the model and json.Marshal.
func BenchmarkLogsClientModelNoGzip(b *testing.B) {
	evs := benchEvents()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := datadog.Marshal(clientItems(evs)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "logs/s")
}

// BenchmarkGzipLevels: compression alone over a request body, at the
// sink's level (klauspost BestSpeed) and at the client's (stdlib default).
func BenchmarkGzipLevels(b *testing.B) {
	enc := &logEncoder{service: DefaultService}
	for k, ev := range benchEvents() {
		enc.add(ev, k)
	}
	body := enc.body(0, enc.len())
	s, _ := New(Config{}, nil, zap.NewNop(), &recordingDL{})
	b.Run("klauspost-BestSpeed", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		var out bytes.Buffer
		for i := 0; i < b.N; i++ {
			out.Reset()
			_ = s.gzipTo(&out, body)
		}
		b.ReportMetric(float64(len(body))/float64(out.Len()), "ratio")
	})
	b.Run("stdlib-Default", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		var out bytes.Buffer
		for i := 0; i < b.N; i++ {
			out.Reset()
			zw := stdgzip.NewWriter(&out)
			_, _ = zw.Write(body)
			_ = zw.Close()
		}
		b.ReportMetric(float64(len(body))/float64(out.Len()), "ratio")
	})
}

func BenchmarkRoute(b *testing.B) {
	s, _ := New(Config{BaseURL: "http://127.0.0.1:1"}, nil, zap.NewNop(), &recordingDL{})
	s.sleep = func(ctx context.Context, _ time.Duration) error { <-ctx.Done(); return ctx.Err() }
	defer s.Close(context.Background()) //nolint:errcheck
	var ts []Tenant
	for i := 0; i < 1000; i++ {
		ts = append(ts, Tenant{ID: "org_" + strconv.Itoa(i), APIKey: keyA, Backfill: true})
	}
	s.SetTenants(ts)
	at := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Route("org_500", at)
		}
	})
}

// BenchmarkDeliverLogs is the whole logs path of one tenant, Deliver to
// 202: queue, workers (Concurrency 2), encoding, gzip and the POST, to a
// local server that only reads the body.
func BenchmarkDeliverLogs(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/api/v1/validate" {
			_, _ = w.Write([]byte(`{"valid":true}`))
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	s, err := New(Config{BaseURL: srv.URL}, nil, zap.NewNop(), &recordingDL{})
	if err != nil {
		b.Fatal(err)
	}
	s.SetTenants([]Tenant{{ID: "org_a", APIKey: keyA}})
	evs := benchEvents()
	batch := aggregate.Batch{Kind: aggregate.KindLogs, Tenant: "org_a", Logs: evs}
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		wg.Add(1)
		s.Deliver(batch, func(r Receipt) {
			if o := r.Outcome; o != Delivered {
				b.Errorf("outcome %v", o)
			}
			wg.Done()
		})
		// keep a bounded number of batches queued, as the processor's
		// memory budget does
		for s.QueuedBytes() > 64<<20 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "logs/s")
	b.StopTimer()
	_ = s.Close(context.Background())
}
