package history

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Writer produces entries to the history topic. Write hands an entry to a
// bounded queue and returns at once; Run writes the queue to Kafka in
// batches. When Kafka is slow or down the queue fills and Write drops new
// entries, counted and logged: the delivery pipeline never waits for its
// history.
type Writer struct {
	cfg    Config
	client *kafka.Client
	log    *zap.Logger
	queue  chan Entry
	// stopped is set when Run makes its last flush: later entries have no
	// one to write them.
	stopped atomic.Bool
	now     func() time.Time
	drops   *quietLog

	written prometheus.Counter
	dropped *prometheus.CounterVec
}

// Why an entry was dropped (the metric's reason label).
const (
	dropQueueFull = "queue_full"
	dropInvalid   = "invalid"
	dropStopped   = "stopped"
)

// maxBatch bounds the records of one produce request: 500 entries of at
// most about 1 KiB stay under the broker's message size limit.
const maxBatch = 500

// finalFlush bounds how long Run writes what is queued once its context
// ends.
const finalFlush = 5 * time.Second

// NewWriter prepares a writer; Run writes.
func NewWriter(cfg Config, reg prometheus.Registerer, log *zap.Logger) (*Writer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	w := &Writer{
		cfg: cfg, client: newClient(cfg), log: log, queue: make(chan Entry, cfg.QueueSize), now: time.Now,
		drops: newQuietLog(log, "sync history entries dropped: the history misses these windows", 10*time.Second),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prism_exporter_history_entries_written_total",
			Help: "Sync history entries written to the history topic, acknowledged by every in-sync replica.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_exporter_history_entries_dropped_total",
			Help: "Sync history entries not written, by reason (queue_full: Kafka too slow or down; invalid: a writer's bug; stopped: after shutdown).",
		}, []string{"reason"}),
	}
	for _, r := range []string{dropQueueFull, dropInvalid, dropStopped} {
		w.dropped.WithLabelValues(r)
	}
	if err := register(reg, w.written, w.dropped); err != nil {
		return nil, fmt.Errorf("history: registering the writer's metrics: %w", err)
	}
	return w, nil
}

// Write queues e for the topic and returns at once. It fills delivered_at
// when zero and cuts the error text to its first line and 300 bytes; an
// entry that is still not valid (no org, an unknown outcome...) is dropped
// and counted. Safe for concurrent use.
func (w *Writer) Write(e Entry) {
	if e.At.IsZero() {
		e.At = w.now()
	}
	e.Error = shortError(e.Error)
	if err := e.check(); err != nil {
		w.drop(dropInvalid, err)
		return
	}
	if w.stopped.Load() {
		w.drop(dropStopped, nil)
		return
	}
	select {
	case w.queue <- e:
	default:
		w.drop(dropQueueFull, nil)
	}
}

func (w *Writer) drop(reason string, err error) {
	w.dropped.WithLabelValues(reason).Inc()
	w.drops.note(reason, err)
}

// Run creates the topic when missing and writes queued entries until ctx
// ends; then it writes what is still queued, for up to 5 s, and returns
// nil. Kafka not answering is retried with backoff while the queue takes
// the entries that arrive meanwhile.
func (w *Writer) Run(ctx context.Context) error {
	defer w.stopped.Store(true)
	warn := func(err error, wait time.Duration) {
		w.log.Warn("history topic: cannot write yet; retrying", zap.String("topic", w.cfg.Topic), zap.Duration("wait", wait), zap.Error(err))
	}
	if err := retry(ctx, func() error { return ensureTopic(ctx, w.client, w.cfg) }, warn); err != nil {
		w.flush()
		return nil
	}
	var batch []encoded
	for {
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				w.flush()
				return nil
			case e := <-w.queue:
				batch = w.add(batch, e)
			}
		}
		batch = w.fill(batch)
		err := retry(ctx, func() error { return w.produce(ctx, batch) }, warn)
		if err != nil { // ctx ended with the batch unwritten
			w.flush(batch...)
			return nil
		}
		batch = batch[:0]
	}
}

// encoded is an entry as its record will carry it.
type encoded struct {
	key, value []byte
	at         time.Time
}

// fill adds what is queued to batch, up to maxBatch, without waiting.
func (w *Writer) fill(batch []encoded) []encoded {
	for len(batch) < maxBatch {
		select {
		case e := <-w.queue:
			batch = w.add(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// add appends e's record. The key is the org, so that a reader (or a later
// topic with more partitions) can keep an org's entries together; the
// record's time is delivered_at, which time retention measures.
func (w *Writer) add(batch []encoded, e Entry) []encoded {
	value, err := encode(e)
	if err != nil {
		w.drop(dropInvalid, err)
		return batch
	}
	return append(batch, encoded{key: []byte(e.OrgID), value: value, at: e.At})
}

// produce writes batch, acknowledged by every in-sync replica.
func (w *Writer) produce(ctx context.Context, batch []encoded) error {
	if len(batch) == 0 {
		return nil
	}
	// Records are built for each attempt: a request consumes their readers.
	recs := make([]kafka.Record, len(batch))
	for i, e := range batch {
		recs[i] = kafka.Record{Key: kafka.NewBytes(e.key), Value: kafka.NewBytes(e.value), Time: e.at}
	}
	res, err := w.client.Produce(ctx, &kafka.ProduceRequest{
		Topic: w.cfg.Topic, Partition: partition, RequiredAcks: kafka.RequireAll,
		Records: kafka.NewRecordReader(recs...),
	})
	if err == nil && res.Error != nil {
		err = res.Error
	}
	if err != nil {
		return fmt.Errorf("writing to %q (PRISM_HISTORY_TOPIC): %w", w.cfg.Topic, err)
	}
	w.written.Add(float64(len(batch)))
	return nil
}

// flush writes pending and what is queued, with one attempt per batch and
// finalFlush in all, after Run's context ended. What it cannot write is
// counted as dropped.
func (w *Writer) flush(pending ...encoded) {
	w.stopped.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), finalFlush)
	defer cancel()
	batch := append([]encoded(nil), pending...)
	for {
		batch = w.fill(batch)
		if len(batch) == 0 {
			return
		}
		if err := w.produce(ctx, batch); err != nil {
			lost := len(batch) + len(w.queue)
			w.dropped.WithLabelValues(dropStopped).Add(float64(lost))
			w.log.Warn("history topic: entries not written at shutdown", zap.Int("entries", lost), zap.Error(err))
			for len(w.queue) > 0 {
				<-w.queue
			}
			return
		}
		batch = batch[:0]
	}
}
