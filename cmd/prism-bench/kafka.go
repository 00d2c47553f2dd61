package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/futureagi/prism-exporter/schemas/gen"
)

// loopback refuses addresses other hosts could reach: the benchmark's
// listeners accept anything.
func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %v (want 127.0.0.1:PORT)", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q is not a loopback address (want 127.0.0.1:PORT)", addr)
	}
	return nil
}

// portFree fails when something already listens on addr, so that a stale
// exporter from an earlier run is not measured by mistake.
func portFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is in use (%v): stop what listens there or pick another port with -http-addr/-pprof-addr", addr, err)
	}
	return ln.Close()
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("-compression: unknown codec %q (want none, snappy, lz4, zstd or gzip)", name)
}

// kafkaAdmin is the few admin calls the benchmark makes, with kafka-go's
// client as the exporter's tests use it.
type kafkaAdmin struct {
	c          *kafka.Client
	partitions int
}

func newAdmin(brokers []string, partitions int) *kafkaAdmin {
	return &kafkaAdmin{c: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}, partitions: partitions}
}

// createTopics creates each topic with the benchmark's partition count.
func (a *kafkaAdmin) createTopics(ctx context.Context, topics ...string) error {
	var cfgs []kafka.TopicConfig
	for _, t := range topics {
		cfgs = append(cfgs, kafka.TopicConfig{Topic: t, NumPartitions: a.partitions, ReplicationFactor: 1})
	}
	res, err := a.c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: cfgs})
	if err != nil {
		return fmt.Errorf("creating topics %v: %w (is the broker up? deployments/kafka-local/kafka.sh status)", topics, err)
	}
	for t, err := range res.Errors {
		if err != nil {
			return fmt.Errorf("creating topic %s: %w", t, err)
		}
	}
	return nil
}

// warmCoordinator waits until the broker can coordinate consumer groups. A
// new broker creates its offsets topic on the first group request and
// answers "coordinator not available" until then, which the exporter meets
// with a join backoff: a one-time cost of a new cluster that the measured
// run must not include.
func (a *kafkaAdmin) warmCoordinator(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		res, err := a.c.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{Key: "prism-bench-warmup", KeyType: kafka.CoordinatorKeyTypeConsumer})
		if err == nil {
			err = res.Error
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the broker cannot coordinate consumer groups: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// endOffsets are the partitions' high watermarks.
func (a *kafkaAdmin) endOffsets(ctx context.Context, topic string) (map[int]int64, error) {
	req := make([]kafka.OffsetRequest, a.partitions)
	for p := range req {
		req[p] = kafka.LastOffsetOf(p)
	}
	res, err := a.c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
	if err != nil {
		return nil, fmt.Errorf("listing offsets of %s: %w", topic, err)
	}
	out := map[int]int64{}
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("listing offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	if len(out) != a.partitions {
		return nil, fmt.Errorf("topic %s has %d partitions, want %d", topic, len(out), a.partitions)
	}
	return out, nil
}

// committed reads the group's committed offsets; a failed read is treated as
// nothing committed yet, because the caller polls.
func (a *kafkaAdmin) committed(ctx context.Context, group, topic string) map[int]int64 {
	ps := make([]int, a.partitions)
	for i := range ps {
		ps[i] = i
	}
	out := map[int]int64{}
	res, err := a.c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		return out
	}
	for _, p := range res.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// reached says whether every partition's commit is at its end.
func reached(committed, end map[int]int64) bool {
	for p, off := range end {
		if committed[p] < off {
			return false
		}
	}
	return true
}

// tenantIDs are the benchmark's organisations, the first the busiest (the
// generator weights them 1/rank).
func tenantIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("org_bench%03d", i)
	}
	return ids
}

// closedSpan is the event time the pre-loaded records cover: span long,
// ending at a window boundary already past the allowed lateness, so that
// every window of the data can close on event time and the idle clock, and
// the committed offsets can reach the end without waiting for a window
// that is still open in real time.
func closedSpan(now time.Time, span, window, lateness time.Duration) (from, to time.Time) {
	to = now.Truncate(window)
	if now.Sub(to) < lateness+time.Second {
		to = to.Add(-window)
	}
	return to.Add(-span), to
}

type preloadResult struct {
	Records int       `json:"records"`
	Bytes   int64     `json:"bytes"`
	Seconds float64   `json:"seconds"`
	From    time.Time `json:"event_time_from"`
	To      time.Time `json:"event_time_to"`
}

// preload writes n generated records to topic, round-robin over the
// partitions (each partition in event-time order, up to half a second of
// jitter), as fast as the broker takes them.
func preload(ctx context.Context, c config, topic string) (preloadResult, error) {
	cc, _ := codec(c.compression)
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(cc),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(100_000),
		// The pre-load is set-up, not what is measured: leader acks without
		// idempotence let more requests be in flight.
		kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite(),
	)
	if err != nil {
		return preloadResult{}, err
	}
	defer cl.Close()

	from, to := closedSpan(time.Now(), c.span, c.window, c.lateness)
	g := gen.New(gen.Config{Tenants: tenantIDs(c.tenants), Seed: c.seed})
	rng := rand.New(rand.NewPCG(uint64(c.seed), 11))
	step := c.span / time.Duration(c.records)
	started := time.Now()

	var firstErr error
	var errOnce sync.Once
	var acked atomic.Int64
	var bytes int64
	const chunk = 4 << 20
	arena := make([]byte, 0, chunk)
	for i := 0; i < c.records; i++ {
		if ctx.Err() != nil {
			return preloadResult{}, ctx.Err()
		}
		ts := from.Add(time.Duration(i)*step + time.Duration(rng.Int64N(int64(time.Second))) - 500*time.Millisecond)
		if ts.Before(from) {
			ts = from
		}
		if !ts.Before(to) {
			ts = to.Add(-time.Millisecond)
		}
		// Values live in shared 4 MiB arenas instead of one allocation
		// each: the producer's own garbage would otherwise be a good part
		// of what this process spends.
		if cap(arena)-len(arena) < 4096 {
			arena = make([]byte, 0, chunk)
		}
		at := len(arena)
		arena, _ = g.AppendNext(arena, ts)
		v := arena[at:len(arena):len(arena)]
		bytes += int64(len(v))
		cl.Produce(ctx, &kgo.Record{Partition: int32(i % c.partitions), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				errOnce.Do(func() { firstErr = err })
				return
			}
			acked.Add(1)
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return preloadResult{}, fmt.Errorf("pre-loading %s: %w", topic, err)
	}
	if firstErr != nil {
		return preloadResult{}, fmt.Errorf("pre-loading %s: %w", topic, firstErr)
	}
	if int(acked.Load()) != c.records {
		return preloadResult{}, fmt.Errorf("pre-loading %s: %d of %d records acknowledged", topic, acked.Load(), c.records)
	}
	return preloadResult{Records: c.records, Bytes: bytes, Seconds: time.Since(started).Seconds(), From: from, To: to}, nil
}

// liveProducer sends generated records stamped with the current time, round
// robin over the partitions, for the freshness runs.
type liveProducer struct {
	cl *kgo.Client
	g  *gen.Generator
}

func newLiveProducer(c config, topic string) (*liveProducer, error) {
	cc, _ := codec(c.compression)
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchCompression(cc),
		kgo.ProducerLinger(2*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	return &liveProducer{cl: cl, g: gen.New(gen.Config{Tenants: tenantIDs(c.tenants), Seed: c.seed + 1})}, nil
}

func (lp *liveProducer) close() { lp.cl.Close() }

// pump produces at rate records per second until ctx ends, and returns how
// many were produced.
func (lp *liveProducer) pump(ctx context.Context, rate int) (int64, error) {
	var n int64
	err := gen.Pump(ctx, lp.g, rate, func(ctx context.Context, msgs []gen.Message) error {
		recs := make([]*kgo.Record, len(msgs))
		for i, m := range msgs {
			recs[i] = &kgo.Record{Key: m.Key, Value: m.Value}
		}
		// Waiting for the acknowledgements keeps the producer honest: if the
		// broker cannot take the rate, Pump falls behind and says so in n.
		if err := lp.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		n += int64(len(msgs))
		return nil
	})
	return n, err
}
