package processor

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the processor's self-metrics. Partition labels are bounded by
// the topic's partition count; no tenant or record ids appear as labels.
type metrics struct {
	records      *prometheus.CounterVec // by outcome
	bytes        prometheus.Counter
	deadLetters  *prometheus.CounterVec // by reason
	skipped      *prometheus.CounterVec // by reason
	decodeTime   prometheus.Histogram
	lag          *prometheus.GaugeVec
	committed    *prometheus.GaugeVec
	commits      *prometheus.CounterVec // by result
	assigned     prometheus.Gauge
	rebalances   prometheus.Counter
	kafkaErrors  *prometheus.CounterVec // op
	kafkaDown    prometheus.Gauge
	budgetUsed   prometheus.GaugeFunc
	paused       prometheus.Counter
	batches      *prometheus.CounterVec // by kind
	lateRecords  *prometheus.CounterVec // by placement
	openWindows  *prometheus.GaugeVec
	deliveryWait prometheus.Histogram

	partials     *prometheus.CounterVec // produced, retried, invalid
	partialWrite prometheus.Histogram

	combined       *prometheus.CounterVec // partials read by the combiner, by result
	combinerSends  *prometheus.CounterVec // window totals handed to the sink, by result
	combinerHeld   *prometheus.GaugeVec   // windows, partials, bytes
	combinerLag    *prometheus.GaugeVec   // by partials partition
	combinerUnsent prometheus.Gauge       // windows changed and not yet accepted
}

func newMetrics(reg prometheus.Registerer, b *budget) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_exporter_records_consumed_total",
			Help: "Records fetched from the gateway topic, by what became of them.",
		}, []string{"outcome"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prism_exporter_bytes_consumed_total",
			Help: "Bytes of record values fetched from the gateway topic.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_exporter_dead_letters_total",
			Help: "Records written to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_exporter_records_skipped_total",
			Help: "Records deliberately not exported, by reason (no_integration covers paused tenants and backfill off).",
		}, []string{"reason"}),
		decodeTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "prism_exporter_decode_seconds",
			Help:    "Time to decode and validate one batch of fetched records, per record.",
			Buckets: prometheus.ExponentialBuckets(250e-9, 2, 12),
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prism_exporter_partition_lag",
			Help: "Records between the partition's high watermark and the next offset this member fetches.",
		}, []string{"partition"}),
		committed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prism_exporter_partition_committed_offset",
			Help: "Last offset committed for the partition (the next record a restart reads).",
		}, []string{"partition"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_exporter_commits_total",
			Help: "Offset commits, by result.",
		}, []string{"result"}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prism_exporter_partitions_assigned",
			Help: "Partitions this member owns in the current generation.",
		}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prism_exporter_generations_total",
			Help: "Consumer group generations this member joined.",
		}),
		kafkaErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_exporter_kafka_errors_total",
			Help: "Failed attempts to reach Kafka that are retried with backoff, by operation (integrations, status, topic_setup, join_group).",
		}, []string{"op"}),
		kafkaDown: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prism_exporter_kafka_unreachable",
			Help: "1 while the member retries to reach Kafka (start-up topic checks, joining the group), else 0.",
		}),
		paused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prism_exporter_fetch_pauses_total",
			Help: "Times a partition stopped fetching because the memory budget was spent.",
		}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_exporter_batches_total",
			Help: "Batches handed on, by kind (logs to the sink, segment to the partials topic).",
		}, []string{"kind"}),
		lateRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_exporter_late_records_total",
			Help: "Records exported as logs only (placement too_old): their window is too old for Datadog to take a metric point.",
		}, []string{"placement"}),
		openWindows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prism_exporter_open_windows",
			Help: "Tenant windows the partition's current segment holds a share of.",
		}, []string{"partition"}),
		deliveryWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "prism_exporter_batch_delivery_seconds",
			Help:    "Time from handing a batch to the sink to its answer.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
	}
	m.partials = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "prism_exporter_partials_produced_total",
		Help: "Window shares (partials) the first stage wrote to the partials topic, by result (produced, retried, invalid).",
	}, []string{"result"})
	m.partialWrite = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "prism_exporter_partials_write_seconds",
		Help:    "Time to write one run of partials to the partials topic, acked by every in-sync replica.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	m.combined = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "prism_exporter_combiner_partials_total",
		Help: "Partials the combiner read, by result (changed, unchanged, too_old, evicted, invalid, rebuilt).",
	}, []string{"result"})
	m.combinerSends = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "prism_exporter_combiner_windows_sent_total",
		Help: "Window totals the combiner handed to the sink, by result (accepted, superseded, abandoned).",
	}, []string{"result"})
	m.combinerHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "prism_exporter_combiner_held",
		Help: "What the combiner holds, summed over its partitions: windows, partials, and their estimated bytes (what).",
	}, []string{"what"})
	m.combinerLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "prism_exporter_combiner_lag",
		Help: "Partials between the partials partition's high watermark and the combiner's next read.",
	}, []string{"partition"})
	m.combinerUnsent = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "prism_exporter_combiner_unsent_windows",
		Help: "Windows whose totals changed and are not yet accepted by Datadog.",
	})
	m.budgetUsed = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "prism_exporter_memory_budget_used_bytes",
		Help: "Estimated bytes of decoded records held until Datadog accepts them.",
	}, func() float64 { return float64(b.used.Load()) })
	reg.MustRegister(m.records, m.bytes, m.deadLetters, m.skipped, m.decodeTime, m.lag, m.committed,
		m.commits, m.assigned, m.rebalances, m.budgetUsed, m.paused, m.batches, m.lateRecords,
		m.openWindows, m.deliveryWait, m.kafkaErrors, m.kafkaDown,
		m.partials, m.partialWrite, m.combined, m.combinerSends, m.combinerHeld, m.combinerLag, m.combinerUnsent)
	return m
}
