package history

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Log follows the history topic from its start (time retention keeps that
// at most Retention old) and indexes the entries per org in memory, within
// MaxPerOrg and MaxEntries. Every replica runs one, so every replica
// answers with every replica's deliveries.
type Log struct {
	cfg    Config
	client *kafka.Client
	log    *zap.Logger
	now    func() time.Time
	skips  *quietLog

	mu    sync.RWMutex
	ix    *index
	ready bool

	indexed prometheus.Gauge
	evicted *prometheus.CounterVec
	invalid prometheus.Counter
}

// expireEvery is how often the Log forgets windows past the retention.
const expireEvery = time.Minute

// NewLog prepares a log; Run reads the topic.
func NewLog(cfg Config, reg prometheus.Registerer, log *zap.Logger) (*Log, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	l := &Log{
		cfg: cfg, client: newClient(cfg), log: log, now: time.Now,
		skips: newQuietLog(log, "history topic: records skipped", 10*time.Second),
		ix:    newIndex(cfg.MaxPerOrg, cfg.MaxEntries),
		indexed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prism_exporter_history_entries_indexed",
			Help: "Sync history entries this replica holds in memory for the API, one per org, window and source.",
		}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_exporter_history_entries_evicted_total",
			Help: "Sync history entries forgotten by this replica's index, by reason (per_org_cap, total_cap: PRISM_HISTORY_MAX_PER_ORG, PRISM_HISTORY_MAX_ENTRIES; expired: past PRISM_HISTORY_RETENTION).",
		}, []string{"reason"}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prism_exporter_history_records_invalid_total",
			Help: "Records of the history topic that are not valid entries, skipped.",
		}),
	}
	for _, r := range []string{"per_org_cap", "total_cap", "expired"} {
		l.evicted.WithLabelValues(r)
	}
	if err := register(reg, l.indexed, l.evicted, l.invalid); err != nil {
		return nil, fmt.Errorf("history: registering the log's metrics: %w", err)
	}
	return l, nil
}

// Ready reports whether the log has read what the topic held when Run
// started: before that, a page may miss entries.
func (l *Log) Ready() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.ready
}

// Query answers one page of org's history, newest window first (see
// Query and Page). Safe for concurrent use.
func (l *Log) Query(org string, q Query) Page {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.ix.query(org, q)
}

// Run creates the topic when missing, reads it from its start and follows
// it until ctx ends, which it returns. Kafka not answering is waited out
// with backoff.
func (l *Log) Run(ctx context.Context) error {
	var first, end int64
	err := retry(ctx, func() (err error) {
		if err = ensureTopic(ctx, l.client, l.cfg); err == nil {
			first, end, err = bounds(ctx, l.client, l.cfg.Topic)
		}
		return err
	}, func(err error, wait time.Duration) {
		l.log.Warn("history topic cannot be read yet; retrying", zap.String("topic", l.cfg.Topic), zap.Duration("wait", wait), zap.Error(err))
	})
	if err != nil {
		return err
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   l.cfg.Brokers,
		Topic:     l.cfg.Topic,
		Partition: partition,
		Dialer:    l.cfg.Dialer,
		MinBytes:  1,
		MaxBytes:  8 << 20,
		// Short: a window delivered by another replica shows here within
		// about a second.
		MaxWait:     200 * time.Millisecond,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) { l.log.Debug("reader: " + fmt.Sprintf(msg, args...)) }),
	})
	defer func() { _ = r.Close() }()
	// FirstOffset is the oldest record retention kept; a reader that falls
	// below it (retention deleting as it reads) skips to the new first.
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		return err
	}
	if first >= end {
		l.markReady(end)
	}
	go l.expireLoop(ctx)
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			l.log.Warn("reading the history topic; retrying", zap.String("topic", l.cfg.Topic), zap.Error(err))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		l.apply(m.Key, m.Value)
		if m.Offset+1 >= end && !l.Ready() {
			l.markReady(end)
		}
	}
}

func (l *Log) markReady(end int64) {
	l.mu.Lock()
	l.ready = true
	n := l.ix.len()
	l.mu.Unlock()
	l.log.Info("history topic read to its end", zap.String("topic", l.cfg.Topic), zap.Int64("offset", end), zap.Int("entries", n))
}

// apply indexes one record; a record that is not a valid entry is skipped,
// counted and logged (rate-limited), never fatal: the topic is shared, and
// one bad writer must not stop every replica's history.
func (l *Log) apply(k, value []byte) {
	e, err := decode(k, value)
	if err != nil {
		l.invalid.Inc()
		l.skips.note("invalid", err)
		return
	}
	cutoff := l.now().Add(-l.cfg.Retention)
	l.mu.Lock()
	var ev evictions
	if e.End.Before(cutoff) {
		ev.expired++ // past the retention: expire would drop it at once
	} else {
		ev = l.ix.put(e)
	}
	n := l.ix.len()
	l.mu.Unlock()
	l.count(ev, n)
}

func (l *Log) expireLoop(ctx context.Context) {
	t := time.NewTicker(expireEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.expire()
		}
	}
}

// expire forgets the windows that ended more than Retention ago, so that a
// replica running for weeks answers what one started today does.
func (l *Log) expire() {
	cutoff := l.now().Add(-l.cfg.Retention)
	l.mu.Lock()
	ev := l.ix.expire(cutoff)
	n := l.ix.len()
	l.mu.Unlock()
	l.count(ev, n)
}

func (l *Log) count(ev evictions, indexed int) {
	l.indexed.Set(float64(indexed))
	if ev.perOrg > 0 {
		l.evicted.WithLabelValues("per_org_cap").Add(float64(ev.perOrg))
	}
	if ev.total > 0 {
		l.evicted.WithLabelValues("total_cap").Add(float64(ev.total))
	}
	if ev.expired > 0 {
		l.evicted.WithLabelValues("expired").Add(float64(ev.expired))
	}
}
