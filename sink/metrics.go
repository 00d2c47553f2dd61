package sink

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// sinkMetrics are the sink's self-metrics. Labels are all from small fixed
// sets: never a tenant id or a request id (a tenant's numbers are on the
// /status page instead).
type sinkMetrics struct {
	tenants        *prometheus.GaugeVec     // state
	batches        *prometheus.CounterVec   // outcome
	items          *prometheus.CounterVec   // kind, outcome
	requestSeconds *prometheus.HistogramVec // endpoint
	requests       *prometheus.CounterVec   // endpoint, code
	retries        *prometheus.CounterVec   // reason
	payloadBytes   *prometheus.CounterVec   // endpoint, stage
	droppedOld     *prometheus.CounterVec   // kind, reason
	deadLettered   *prometheus.CounterVec   // kind, reason
	trimmed        prometheus.Counter
	queuedBatches  prometheus.Gauge
	queuedBytes    prometheus.Gauge
}

// Label values, as constants so that a typo cannot create a new series.
const (
	kindLogs    = "logs"
	kindMetrics = "metrics"

	endpointLogs     = "logs"
	endpointSeries   = "series"
	endpointValidate = "validate"

	stageUncompressed = "uncompressed"
	stageCompressed   = "compressed"

	dropTooOld = "too_old"
	dropFuture = "too_far_in_future"

	dlBadRequest = "bad_request"
	dlTooLarge   = "too_large"
)

func newSinkMetrics(reg prometheus.Registerer) (*sinkMetrics, error) {
	const ns, sub = "prism_exporter", "sink"
	m := &sinkMetrics{
		tenants: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "tenants",
			Help: "Tenants by state (validating, active, syncing, paused, error).",
		}, []string{"state"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "batches_total",
			Help: "Batches completed, by outcome (delivered, undeliverable, skipped, abandoned).",
		}, []string{"outcome"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "items_total",
			Help: "Logs and metric series completed, by kind (logs, metrics) and outcome (delivered, dead_lettered, dropped, undeliverable, skipped, abandoned).",
		}, []string{"kind", "outcome"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
			Help:    "Latency of Datadog requests, by endpoint (logs, series, validate, dashboard, monitor).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Datadog requests, by endpoint and answer (2xx, 400, 401, 403, 408, 413, 429, 4xx, 5xx, error).",
		}, []string{"endpoint", "code"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "retries_total",
			Help: "Datadog requests retried or split, by reason (status_408, status_429, status_5xx, status_4xx, status_413, timeout, connection).",
		}, []string{"reason"}),
		payloadBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "payload_bytes_total",
			Help: "Request bodies sent to Datadog, by endpoint and stage (uncompressed, compressed).",
		}, []string{"endpoint", "stage"}),
		droppedOld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "dropped_too_old_total",
			Help: "Logs and metric points not sent because Datadog would silently drop them, by kind and reason (too_old, too_far_in_future).",
		}, []string{"kind", "reason"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "dead_lettered_total",
			Help: "Logs and metric series Datadog refused, sent to the dead-letter topic, by kind and reason (bad_request, too_large).",
		}, []string{"kind", "reason"}),
		trimmed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "logs_trimmed_total",
			Help: "Logs shortened (error_message, then message) to fit Datadog's 1 MB per log.",
		}),
		queuedBatches: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "queued_batches",
			Help: "Batches accepted by Deliver and not yet completed.",
		}),
		queuedBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "queued_bytes",
			Help: "Estimated memory held by batches not yet completed.",
		}),
	}
	for _, c := range []prometheus.Collector{
		m.tenants, m.batches, m.items, m.requestSeconds, m.requests, m.retries,
		m.payloadBytes, m.droppedOld, m.deadLettered, m.trimmed, m.queuedBatches, m.queuedBytes,
	} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("sink metrics are already registered: create one Sink per prometheus.Registerer")
			}
			return nil, err
		}
	}
	// Every state is exported from the start, at 0, so that dashboards and
	// alerts see the series before the first transition.
	for _, st := range allStates() {
		m.tenants.WithLabelValues(st.String())
	}
	return m, nil
}
