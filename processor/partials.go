package processor

import (
	"context"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/futureagi/prism-exporter/aggregate"
)

// The first stage's output: each partition pipeline produces its share of
// every tenant window (an aggregate.Partial) to the partials topic, keyed by
// aggregate.PartialKey so that a replay overwrites its own earlier share,
// and partitioned by tenant so that all of a tenant's shares meet on one
// partition of that topic, where one combiner sums them.

// tenantBalancer places a partial by its tenant: FNV-1a of the tenant over
// the topic's partitions. Every replica computes the same placement as long
// as the partition count holds; the combiner does not depend on it beyond
// that (each of its partitions is summed on its own).
type tenantBalancer struct{}

func (tenantBalancer) Balance(m kafka.Message, partitions ...int) int {
	if len(partitions) == 0 {
		return 0
	}
	if to, ok := aggregate.ControlTo(m.Key); ok {
		for _, p := range partitions {
			if p == to {
				return p
			}
		}
	}
	tenant, ok := aggregate.KeyTenant(m.Key)
	if !ok {
		return partitions[0]
	}
	h := fnv.New32a()
	_, _ = h.Write(tenant)
	return partitions[int(h.Sum32()%uint32(len(partitions)))]
}

// partialOut is one batch's partials (or a run's resets) waiting to be
// produced, and the answer to give once Kafka holds them (or the pipeline
// ends first).
type partialOut struct {
	parts    []*aggregate.Partial
	resets   []aggregate.SourceReset
	progress []aggregate.SourceProgress
	done     func(accepted bool)
}

// partialWriter produces one pipeline's partials in the order the
// aggregator made them: a window's corrected share must land after the
// share it corrects, or compaction would keep the older one. It runs as one
// goroutine per pipeline; the kafka.Writer under it is shared and batches
// the pipelines' writes together.
type partialWriter struct {
	w   *kafka.Writer
	m   *metrics
	log *zap.Logger

	// The queue is unbounded: the pipeline that fills it must never block
	// on it, since the answers that would unblock it come back through
	// that pipeline. The memory budget bounds it (each queued batch holds
	// its logs' records).
	mu     sync.Mutex
	queued []partialOut
	wake   chan struct{} // capacity 1
}

func newPartialWriter(w *kafka.Writer, m *metrics, log *zap.Logger) *partialWriter {
	return &partialWriter{w: w, m: m, log: log, wake: make(chan struct{}, 1)}
}

func newKafkaPartialsWriter(cfg Config, transport *kafka.Transport) *kafka.Writer {
	return &kafka.Writer{
		Addr:      kafka.TCP(cfg.Brokers...),
		Topic:     cfg.PartialsTopic,
		Transport: transport,
		Balancer:  tenantBalancer{},
		// Acked by every in-sync replica: the gateway offsets a partial
		// stands for are committed on this ack, so losing it with a leader
		// would lose its records' counts.
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 2 * time.Millisecond,
		BatchSize:    1000,
		BatchBytes:   8 << 20,
		MaxAttempts:  1, // retried by partialWriter.run, in order
		Compression:  kafka.Lz4,
		WriteTimeout: 10 * time.Second,
	}
}

// write queues out; its done is called exactly once, from the writer's
// goroutine.
func (pw *partialWriter) write(out partialOut) {
	pw.mu.Lock()
	pw.queued = append(pw.queued, out)
	pw.mu.Unlock()
	select {
	case pw.wake <- struct{}{}:
	default:
	}
}

// reset queues, ahead of the run's first partial, a SourceReset for every
// partition of the partials topic: whichever combiner holds a tenant's
// windows drops the partials an earlier run wrote from from on.
func (pw *partialWriter) reset(source int64, from int64, partitions int32) {
	rs := make([]aggregate.SourceReset, max(1, partitions))
	for i := range rs {
		rs[i] = aggregate.SourceReset{Source: source, From: from, To: i}
	}
	pw.write(partialOut{resets: rs, done: func(bool) {}})
}

// progress queues a SourceProgress for every partition of the partials
// topic: the combiners fold the source's shares below committed and know
// it has read up to maxEvent, though it sent them no share lately.
func (pw *partialWriter) progress(source int64, committed, maxEvent int64, partitions int32) {
	ps := make([]aggregate.SourceProgress, max(1, partitions))
	for i := range ps {
		ps[i] = aggregate.SourceProgress{Source: source, Committed: committed, MaxEvent: maxEvent, To: i}
	}
	pw.write(partialOut{progress: ps, done: func(bool) {}})
}

// take moves what is queued to pending.
func (pw *partialWriter) take(pending []partialOut) []partialOut {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	pending = append(pending, pw.queued...)
	clear(pw.queued)
	pw.queued = pw.queued[:0]
	return pending
}

// joinAnswers calls done once all n answers are in: accepted when all were.
func joinAnswers(n int32, done func(bool)) func(bool) {
	var left atomic.Int32
	var failed atomic.Bool
	left.Store(n)
	return func(ok bool) {
		if !ok {
			failed.Store(true)
		}
		if left.Add(-1) == 0 {
			done(!failed.Load())
		}
	}
}

// run produces what is queued until ctx ends, retrying a failed write with
// backoff: a write is never skipped, so order holds. What is still queued
// when ctx ends is answered not accepted: the partition's next owner
// replays it.
func (pw *partialWriter) run(ctx context.Context) {
	var (
		pending []partialOut
		msgs    []kafka.Message
	)
	// Emptied with clear as well as truncated: a truncated slice would keep
	// the last run's partials and encoded messages alive until overwritten,
	// a share per window and partition in a quiet exporter.
	fail := func() {
		for _, o := range pending {
			o.done(false)
		}
		clear(pending)
		pending = pending[:0]
	}
	for {
		select {
		case <-ctx.Done():
			pending = pw.take(pending)
			fail()
			return
		case <-pw.wake:
		}
		pending = pw.take(pending)
		msgs = msgs[:0]
		for _, o := range pending {
			for _, r := range o.resets {
				b := r.AppendBinary(nil)
				msgs = append(msgs, kafka.Message{Key: b, Value: b})
			}
			for _, r := range o.progress {
				b := r.AppendBinary(nil)
				// Keyed by source and partition only: compaction keeps the
				// latest progress of each source on each partition.
				k := aggregate.SourceProgress{Source: r.Source, To: r.To, Committed: -1}.AppendBinary(nil)
				msgs = append(msgs, kafka.Message{Key: k, Value: b})
			}
			for _, p := range o.parts {
				key, _ := p.Key().AppendBinary(nil)
				val, err := p.AppendBinary(nil)
				if err != nil {
					// The aggregator made it, so this is a bug; producing
					// it would hand the combiner a record it refuses.
					pw.log.Error("partial not produced: it does not encode", zap.String("tenant", p.Tenant), zap.Error(err))
					pw.m.partials.WithLabelValues("invalid").Inc()
					continue
				}
				msgs = append(msgs, kafka.Message{Key: key, Value: val})
			}
		}
		for wait := 100 * time.Millisecond; len(msgs) > 0; wait = min(2*wait, 5*time.Second) {
			started := time.Now()
			err := pw.w.WriteMessages(ctx, msgs...)
			if err == nil {
				pw.m.partials.WithLabelValues("produced").Add(float64(len(msgs)))
				pw.m.partialWrite.Observe(time.Since(started).Seconds())
				break
			}
			if ctx.Err() != nil {
				break
			}
			pw.m.partials.WithLabelValues("retried").Add(float64(len(msgs)))
			pw.m.kafkaErrors.WithLabelValues("produce_partials").Inc()
			pw.log.Warn("producing partials failed; retrying", zap.Int("partials", len(msgs)), zap.Duration("wait", wait), zap.Error(err))
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			continue // answered not accepted at the top
		}
		for _, o := range pending {
			o.done(true)
		}
		clear(pending)
		pending = pending[:0]
		clear(msgs)
	}
}
