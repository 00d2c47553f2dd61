package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// StoreConfig configures a Store.
type StoreConfig struct {
	// Topic is the compacted topic that holds one record per integration
	// (PRISM_INTEGRATIONS_TOPIC).
	Topic   string
	Brokers []string
	// Dialer and Transport carry the cluster's SASL and TLS settings, as the
	// processor's own connections do.
	Dialer    *kafka.Dialer
	Transport *kafka.Transport
	// Create makes the topic at start when it is missing.
	Create bool
	Logger *zap.Logger
}

// Store is the integrations topic as every replica sees it: a map from
// integration id to its latest record, kept up to date by following the
// topic. Writes go to the topic and return once this replica has read them
// back, so a caller reads its own writes.
type Store struct {
	cfg    StoreConfig
	client *kafka.Client
	log    *zap.Logger

	mu      sync.RWMutex
	byID    map[string]*Integration
	applied int64         // offset of the last record read, -1 before any
	moved   chan struct{} // closed and replaced whenever applied moves
	ready   bool
	subs    []func()
}

// NewStore prepares a store; Start reads the topic.
func NewStore(cfg StoreConfig) (*Store, error) {
	if cfg.Topic == "" {
		return nil, errors.New("integrations: StoreConfig.Topic is required")
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("integrations: StoreConfig.Brokers is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Dialer == nil {
		cfg.Dialer = kafka.DefaultDialer
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 15 * time.Second}
	if cfg.Transport != nil {
		// Only a non-nil one: a nil *Transport in the interface would not
		// fall back to the default.
		client.Transport = cfg.Transport
	}
	return &Store{
		cfg:     cfg,
		client:  client,
		log:     cfg.Logger,
		byID:    map[string]*Integration{},
		applied: -1,
		moved:   make(chan struct{}),
	}, nil
}

// OnChange registers f, called (from the store's goroutine) after every
// change read from the topic, and once when the store is first caught up.
func (s *Store) OnChange(f func()) {
	s.mu.Lock()
	s.subs = append(s.subs, f)
	s.mu.Unlock()
}

// Ready reports whether the store has read the topic to the end it had at
// start.
func (s *Store) Ready() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ready
}

// Run creates the topic if asked to, reads it to its end, calls caughtUp,
// then follows it until ctx ends. It returns ctx's error on a stop, or an
// error that stops the exporter (the topic cannot be created).
func (s *Store) Run(ctx context.Context, caughtUp func()) error {
	// Kafka not answering yet (a broker restarting, a topic another replica
	// is creating) is waited out, with backoff, until ctx ends.
	var end int64
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		err := error(nil)
		if s.cfg.Create {
			err = EnsureCompactedTopic(ctx, s.client, s.cfg.Topic, "PRISM_INTEGRATIONS_TOPIC", nil)
		}
		if err == nil {
			if end, err = s.endOffset(ctx); err == nil {
				break
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn("the integrations topic cannot be read yet; retrying", zap.String("topic", s.cfg.Topic), zap.Duration("wait", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   s.cfg.Brokers,
		Topic:     s.cfg.Topic,
		Partition: 0,
		Dialer:    s.cfg.Dialer,
		MinBytes:  1,
		MaxBytes:  8 << 20,
		// Short: a change made through another replica should be seen here
		// within about a second.
		MaxWait:     200 * time.Millisecond,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) { s.log.Debug("integrations reader: " + fmt.Sprintf(msg, args...)) }),
	})
	defer func() { _ = r.Close() }()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		return err
	}
	if end == 0 {
		s.markReady(caughtUp)
	}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.Warn("reading the integrations topic; retrying", zap.String("topic", s.cfg.Topic), zap.Error(err))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		changed := s.apply(m)
		if !s.Ready() && m.Offset+1 >= end {
			s.markReady(caughtUp)
			continue
		}
		if changed && s.Ready() {
			s.notify()
		}
	}
}

func (s *Store) markReady(caughtUp func()) {
	s.mu.Lock()
	s.ready = true
	n := len(s.byID)
	s.mu.Unlock()
	s.log.Info("integrations topic read to its end", zap.String("topic", s.cfg.Topic), zap.Int("integrations", n))
	if caughtUp != nil {
		caughtUp()
	}
	s.notify()
}

func (s *Store) notify() {
	s.mu.RLock()
	subs := append([]func(){}, s.subs...)
	s.mu.RUnlock()
	for _, f := range subs {
		f()
	}
}

// endOffset is the offset the next record of the topic will get.
func (s *Store) endOffset(ctx context.Context) (int64, error) {
	res, err := s.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		s.cfg.Topic: {kafka.LastOffsetOf(0)},
	}})
	if err != nil {
		return 0, fmt.Errorf("integrations: reading the end of %q (PRISM_INTEGRATIONS_TOPIC): %w", s.cfg.Topic, err)
	}
	for _, p := range res.Topics[s.cfg.Topic] {
		if p.Error != nil {
			return 0, fmt.Errorf("integrations: reading the end of %q (PRISM_INTEGRATIONS_TOPIC): %w", s.cfg.Topic, p.Error)
		}
		return p.LastOffset, nil
	}
	return 0, fmt.Errorf("integrations: topic %q (PRISM_INTEGRATIONS_TOPIC) has no partition 0", s.cfg.Topic)
}

// apply folds one record into the map. The fold is the same on every
// replica, which is what makes them agree:
//   - a tombstone removes the integration;
//   - a record for a known id keeps the cut-off (ConnectedAt) and creation
//     time it already had: they are set once;
//   - a record that does not parse is logged and skipped.
func (s *Store) apply(m kafka.Message) (changed bool) {
	id := string(m.Key)
	var next *Integration
	if len(m.Value) > 0 {
		next = new(Integration)
		if err := json.Unmarshal(m.Value, next); err != nil || next.ID != id {
			s.log.Error("integrations topic: record skipped: not an integration", zap.Int64("offset", m.Offset), zap.String("key", id))
			next = nil
			s.advance(m.Offset)
			return false
		}
	}
	s.mu.Lock()
	prev := s.byID[id]
	switch {
	case next == nil:
		changed = prev != nil
		delete(s.byID, id)
	default:
		if prev != nil {
			next.ConnectedAt = prev.ConnectedAt
			next.CreatedAt = prev.CreatedAt
		}
		s.byID[id] = next
		changed = true
	}
	s.mu.Unlock()
	s.advance(m.Offset)
	return changed
}

func (s *Store) advance(offset int64) {
	s.mu.Lock()
	s.applied = offset
	close(s.moved)
	s.moved = make(chan struct{})
	s.mu.Unlock()
}

// waitApplied returns once the record at offset has been read back.
func (s *Store) waitApplied(ctx context.Context, offset int64) error {
	for {
		s.mu.RLock()
		applied, moved := s.applied, s.moved
		s.mu.RUnlock()
		if applied >= offset {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("integrations: waiting to read back a write: %w", ctx.Err())
		case <-moved:
		}
	}
}

// Get returns a copy of the integration with this id.
func (s *Store) Get(id string) (Integration, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in, ok := s.byID[id]
	if !ok {
		return Integration{}, false
	}
	return *in, true
}

// List returns copies of every integration, by id.
func (s *Store) List() []Integration {
	s.mu.RLock()
	out := make([]Integration, 0, len(s.byID))
	for _, in := range s.byID {
		out = append(out, *in)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// OrgOwner returns the integration that holds an org: when two replicas
// created one for the same org at the same moment, the one created first
// (then the lower id) holds it, on every replica.
func OrgOwner(all []Integration, org string) (Integration, bool) {
	var best Integration
	found := false
	for _, in := range all {
		if in.OrgID != org {
			continue
		}
		if !found || in.CreatedAt.Before(best.CreatedAt) || in.CreatedAt.Equal(best.CreatedAt) && in.ID < best.ID {
			best, found = in, true
		}
	}
	return best, found
}

// Put writes in and returns once this replica has read it back, with the
// store's fold applied (a cut-off already stored wins over in's).
func (s *Store) Put(ctx context.Context, in Integration) (Integration, error) {
	value, err := json.Marshal(in)
	if err != nil {
		return Integration{}, err
	}
	if err := s.produce(ctx, in.ID, value); err != nil {
		return Integration{}, err
	}
	got, ok := s.Get(in.ID)
	if !ok {
		return Integration{}, fmt.Errorf("integrations: %s was deleted meanwhile", in.ID)
	}
	return got, nil
}

// Delete writes a tombstone for id and returns once it has been read back.
func (s *Store) Delete(ctx context.Context, id string) error {
	return s.produce(ctx, id, nil)
}

// produce writes one record, acknowledged by every in-sync replica, and
// waits until the follower has read it.
func (s *Store) produce(ctx context.Context, key string, value []byte) error {
	rec := kafka.Record{Key: kafka.NewBytes([]byte(key))}
	if value != nil {
		rec.Value = kafka.NewBytes(value)
	}
	res, err := s.client.Produce(ctx, &kafka.ProduceRequest{
		Topic:        s.cfg.Topic,
		Partition:    0,
		RequiredAcks: kafka.RequireAll,
		Records:      kafka.NewRecordReader(rec),
	})
	if err == nil && res.Error != nil {
		err = res.Error
	}
	if err != nil {
		return fmt.Errorf("integrations: writing to %q: %w", s.cfg.Topic, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return s.waitApplied(wctx, res.BaseOffset)
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
