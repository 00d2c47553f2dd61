package integrations

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// topic is a one-partition compacted topic that a replica reads from its
// start and then follows: the integrations, and the replicas' statuses.
type topic struct {
	name, env string // env names the variable that names it, for errors
	brokers   []string
	dialer    *kafka.Dialer
	client    *kafka.Client
	create    bool
	configs   map[string]string
	log       *zap.Logger
	outage    Outage
}

// Outage hears of Kafka not answering and answering again, so that an
// outage shows in the exporter's metrics (the processor implements it).
type Outage interface {
	KafkaUnreachable(op string, err error, wait time.Duration)
	KafkaReachable()
}

func newTopic(name, env string, brokers []string, dialer *kafka.Dialer, transport *kafka.Transport, create bool, configs map[string]string, log *zap.Logger, outage Outage) *topic {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}
	if transport != nil {
		// Only a non-nil one: a nil *Transport in the interface would not
		// fall back to the default.
		client.Transport = transport
	}
	if dialer == nil {
		dialer = kafka.DefaultDialer
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &topic{name: name, env: env, brokers: brokers, dialer: dialer, client: client, create: create, configs: configs, log: log, outage: outage}
}

// follow creates the topic if asked to, reads it from its start, calls
// caughtUp once it has read what the topic held when it began (at once
// when empty), and keeps reading until ctx ends. apply gets every record;
// last is true when it was the last record the topic held when it was
// fetched, so that a burst of changes is acted on once. Kafka not answering
// (a broker restarting, a topic another replica is creating) is waited out
// with backoff.
func (t *topic) follow(ctx context.Context, apply func(m kafka.Message, last bool), caughtUp func()) error {
	var end int64
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		err := error(nil)
		if t.create {
			err = EnsureCompactedTopic(ctx, t.client, t.name, t.env, t.configs)
		}
		if err == nil {
			if end, err = t.endOffset(ctx); err == nil {
				break
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if t.outage != nil {
			t.outage.KafkaUnreachable(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(t.env, "PRISM_"), "_TOPIC")), err, wait)
		} else {
			t.log.Warn("topic cannot be read yet; retrying", zap.String("topic", t.name), zap.Duration("wait", wait), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	if t.outage != nil {
		t.outage.KafkaReachable()
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   t.brokers,
		Topic:     t.name,
		Partition: 0,
		Dialer:    t.dialer,
		MinBytes:  1,
		MaxBytes:  8 << 20,
		// Short: a change made through another replica should be seen here
		// within about a second.
		MaxWait:     200 * time.Millisecond,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) { t.log.Debug("reader: " + fmt.Sprintf(msg, args...)) }),
	})
	defer func() { _ = r.Close() }()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		return err
	}
	caught := end == 0
	if caught {
		caughtUp()
	}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			t.log.Warn("reading the topic; retrying", zap.String("topic", t.name), zap.Error(err))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		now := !caught && m.Offset+1 >= end
		apply(m, m.Offset+1 >= m.HighWaterMark)
		if now {
			caught = true
			caughtUp()
		}
	}
}

// endOffset is the offset the next record of the topic will get.
func (t *topic) endOffset(ctx context.Context) (int64, error) {
	res, err := t.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		t.name: {kafka.LastOffsetOf(0)},
	}})
	if err != nil {
		return 0, fmt.Errorf("reading the end of %q (%s): %w", t.name, t.env, err)
	}
	for _, p := range res.Topics[t.name] {
		if p.Error != nil {
			return 0, fmt.Errorf("reading the end of %q (%s): %w", t.name, t.env, p.Error)
		}
		return p.LastOffset, nil
	}
	return 0, fmt.Errorf("topic %q (%s) has no partition 0", t.name, t.env)
}

// record is a keyed record; a nil value is a tombstone.
func record(key string, value []byte) kafka.Record {
	r := kafka.Record{Key: kafka.NewBytes([]byte(key))}
	if value != nil {
		r.Value = kafka.NewBytes(value)
	}
	return r
}

// maxPerRequest bounds the records of one produce request, so that a
// burst (every status of 10,000 integrations, a large tenants file) stays
// under the broker's message size limit.
const maxPerRequest = 500

// produce writes records, acknowledged by every in-sync replica, in
// requests of at most maxPerRequest, and returns the offset of the last.
func (t *topic) produce(ctx context.Context, recs ...kafka.Record) (last int64, err error) {
	last = -1
	for len(recs) > 0 {
		n := min(len(recs), maxPerRequest)
		res, err := t.client.Produce(ctx, &kafka.ProduceRequest{
			Topic:        t.name,
			Partition:    0,
			RequiredAcks: kafka.RequireAll,
			Records:      kafka.NewRecordReader(recs[:n]...),
		})
		if err == nil && res.Error != nil {
			err = res.Error
		}
		if err != nil {
			return last, fmt.Errorf("writing to %q (%s): %w", t.name, t.env, err)
		}
		last = res.BaseOffset + int64(n) - 1
		recs = recs[n:]
	}
	return last, nil
}

// EnsureCompactedTopic creates a one-partition compacted topic when it is
// missing. configs adds topic configs (retention...). env names the variable
// that names the topic, for the error.
func EnsureCompactedTopic(ctx context.Context, client *kafka.Client, topic, env string, configs map[string]string) error {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("reading metadata of %q (%s): %w", topic, env, err)
	}
	for _, t := range md.Topics {
		if t.Name == topic && t.Error == nil {
			return nil
		}
	}
	entries := []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}
	keys := make([]string, 0, len(configs))
	for k := range configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		entries = append(entries, kafka.ConfigEntry{ConfigName: k, ConfigValue: configs[k]})
	}
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: 1, ReplicationFactor: min(3, len(md.Brokers)), ConfigEntries: entries,
	}}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("creating compacted topic %q (%s): %w", topic, env, err)
	}
	return nil
}

// readMark is how far a follower has applied its topic: a writer waits on
// it to read its own write back, and so to see the fold's verdict on it.
type readMark struct {
	mu      sync.Mutex
	applied int64         // offset of the last record applied, -1 before any
	moved   chan struct{} // closed and replaced whenever applied moves
}

func newReadMark() *readMark { return &readMark{applied: -1, moved: make(chan struct{})} }

func (r *readMark) advance(offset int64) {
	r.mu.Lock()
	r.applied = offset
	close(r.moved)
	r.moved = make(chan struct{})
	r.mu.Unlock()
}

// changed is closed when the next record is applied.
func (r *readMark) changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.moved
}

// wait returns once the record at offset has been applied.
func (r *readMark) wait(ctx context.Context, offset int64) error {
	for {
		r.mu.Lock()
		applied, moved := r.applied, r.moved
		r.mu.Unlock()
		if applied >= offset {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting to read back a write: %w", ctx.Err())
		case <-moved:
		}
	}
}

// watchers are a followed topic's subscribers and whether it has been read
// to the end it had at start: what Store and Jobs tell their users alike.
type watchers struct {
	mu    sync.Mutex
	ready bool
	subs  []func()
}

func (w *watchers) add(f func()) {
	w.mu.Lock()
	w.subs = append(w.subs, f)
	w.mu.Unlock()
}

func (w *watchers) isReady() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ready
}

func (w *watchers) markReady() {
	w.mu.Lock()
	w.ready = true
	w.mu.Unlock()
}

// notify calls every subscriber, without the lock: they read the state.
func (w *watchers) notify() {
	w.mu.Lock()
	subs := slices.Clone(w.subs)
	w.mu.Unlock()
	for _, f := range subs {
		f()
	}
}
