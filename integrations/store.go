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
	// Outage, when set, hears of Kafka not answering.
	Outage Outage
}

// Store is the integrations topic as every replica sees it: a map from
// integration id to its latest record, kept up to date by following the
// topic. Writes go to the topic and return once this replica has read them
// back, so a caller reads its own writes.
type Store struct {
	cfg   StoreConfig
	topic *topic
	log   *zap.Logger

	mu    sync.RWMutex
	byID  map[string]*Integration
	byOrg map[string]map[string]bool // org id -> integration ids
	mark  *readMark
	watch watchers
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
	return &Store{
		cfg:   cfg,
		topic: newTopic(cfg.Topic, "PRISM_INTEGRATIONS_TOPIC", cfg.Brokers, cfg.Dialer, cfg.Transport, cfg.Create, nil, cfg.Logger, cfg.Outage),
		log:   cfg.Logger,
		byID:  map[string]*Integration{},
		byOrg: map[string]map[string]bool{},
		mark:  newReadMark(),
	}, nil
}

// OnChange registers f, called (from the store's goroutine) after every
// change read from the topic, and once when the store is first caught up.
func (s *Store) OnChange(f func()) { s.watch.add(f) }

// Ready reports whether the store has read the topic to the end it had at
// start.
func (s *Store) Ready() bool { return s.watch.isReady() }

// Run creates the topic if asked to, reads it to its end, calls caughtUp,
// then follows it until ctx ends. It returns ctx's error on a stop.
func (s *Store) Run(ctx context.Context, caughtUp func()) error {
	pending := false
	return s.topic.follow(ctx, func(m kafka.Message, last bool) {
		// Subscribers rebuild every tenant: a burst of changes (a tenants
		// file of thousands imported at once) is told once, at its end.
		pending = s.apply(m) || pending
		if pending && last && s.Ready() {
			pending = false
			s.notify()
		}
	}, func() { pending = false; s.markReady(caughtUp) })
}

func (s *Store) markReady(caughtUp func()) {
	s.watch.markReady()
	s.mu.RLock()
	n := len(s.byID)
	s.mu.RUnlock()
	s.log.Info("integrations topic read to its end", zap.String("topic", s.cfg.Topic), zap.Int("integrations", n))
	if caughtUp != nil {
		caughtUp()
	}
	s.notify()
}

func (s *Store) notify() { s.watch.notify() }

// apply folds one record into the map. The fold is the same on every
// replica, which is what makes them agree:
//   - a tombstone removes the integration;
//   - a record for a known id keeps the cut-off (ConnectedAt) and creation
//     time it already had: they are set once;
//   - and its Dashboard unless the record's is a later revision
//     (keptDashboard: writes of it are compare-and-set);
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
	if prev != nil {
		delete(s.byOrg[prev.OrgID], id)
		if len(s.byOrg[prev.OrgID]) == 0 {
			delete(s.byOrg, prev.OrgID)
		}
	}
	switch {
	case next == nil:
		changed = prev != nil
		delete(s.byID, id)
	default:
		if prev != nil {
			next.ConnectedAt = prev.ConnectedAt
			next.CreatedAt = prev.CreatedAt
			next.Dashboard = keptDashboard(prev.Dashboard, next.Dashboard)
		}
		s.byID[id] = next
		if s.byOrg[next.OrgID] == nil {
			s.byOrg[next.OrgID] = map[string]bool{}
		}
		s.byOrg[next.OrgID][id] = true
		changed = true
	}
	s.mu.Unlock()
	s.advance(m.Offset)
	return changed
}

func (s *Store) advance(offset int64) { s.mark.advance(offset) }

// waitApplied returns once the record at offset has been read back.
func (s *Store) waitApplied(ctx context.Context, offset int64) error {
	if err := s.mark.wait(ctx, offset); err != nil {
		return fmt.Errorf("integrations: %w", err)
	}
	return nil
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

// Owner returns the integration that holds an org: when two replicas
// created one for the same org at the same moment, the one created first
// (then the lower id) holds it, on every replica.
func (s *Store) Owner(org string) (Integration, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var best *Integration
	for id := range s.byOrg[org] {
		in := s.byID[id]
		if best == nil || in.CreatedAt.Before(best.CreatedAt) || in.CreatedAt.Equal(best.CreatedAt) && in.ID < best.ID {
			best = in
		}
	}
	if best == nil {
		return Integration{}, false
	}
	return *best, true
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
	if err := s.keepDashboards(ctx, []Integration{in}); err != nil {
		return Integration{}, err
	}
	got, ok := s.Get(in.ID)
	if !ok {
		return Integration{}, fmt.Errorf("integrations: %s was deleted meanwhile", in.ID)
	}
	return got, nil
}

// Apply writes many changes at once (puts, then tombstones for dels), in
// requests of at most 500 records, and returns once this replica has read
// the last back: a tenants file of thousands imports in a few requests, not
// one round trip each.
func (s *Store) Apply(ctx context.Context, puts []Integration, dels []string) error {
	recs := make([]kafka.Record, 0, len(puts)+len(dels))
	for _, in := range puts {
		value, err := json.Marshal(in)
		if err != nil {
			return err
		}
		recs = append(recs, record(in.ID, value))
	}
	for _, id := range dels {
		recs = append(recs, record(id, nil))
	}
	last, err := s.topic.produce(ctx, recs...)
	if err != nil {
		return err
	}
	if last < 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := s.waitApplied(wctx, last); err != nil {
		return err
	}
	return s.keepDashboards(ctx, puts)
}

// Delete writes a tombstone for id and returns once it has been read back.
func (s *Store) Delete(ctx context.Context, id string) error {
	return s.produce(ctx, id, nil)
}

// produce writes one record and waits until the follower has read it.
func (s *Store) produce(ctx context.Context, key string, value []byte) error {
	last, err := s.topic.produce(ctx, record(key, value))
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return s.waitApplied(wctx, last)
}
