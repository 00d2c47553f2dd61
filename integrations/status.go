package integrations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/futureagi/prism-exporter/sink"
)

// Each replica delivers for the partitions it owns, so each knows part of
// an integration's story. Every replica publishes what it knows to the
// status topic (compacted, one record per integration and replica run) and
// reads everyone's: an integration's counts are the sum over every replica
// run that ever delivered for it, its state the worst state a live replica
// reports.

// Timings of the status topic.
const (
	// statusEvery is how often a replica publishes the statuses that
	// changed; statusBeat how often it publishes all of them, to say it is
	// alive.
	statusEvery = 2 * time.Second
	statusBeat  = 15 * time.Second
	// statusLive: a replica not heard from for this long no longer decides
	// an integration's state (its counts still count).
	statusLive = 45 * time.Second
	// statusRetire: the entries of a replica silent this long are folded
	// into the integration's archive entry and removed, so that the topic
	// does not grow with every restart.
	statusRetire = time.Hour
)

// status is one replica run's view of one integration, as published.
type status struct {
	Integration string           `json:"integration"`
	Member      string           `json:"member"`
	State       sink.TenantState `json:"state"`
	Message     string           `json:"message,omitempty"`
	LastSynced  time.Time        `json:"last_synced_at,omitzero"`
	LogsSent    int64            `json:"logs_sent"`
	PointsSent  int64            `json:"points_sent"`
	Failed      int64            `json:"batches_failed"`
	At          time.Time        `json:"at"`
	// Folded, on an archive entry, lists the members whose counts it
	// holds; their own entries are removed once it is written.
	Folded []string `json:"folded,omitempty"`
}

const archiveMember = "archive"

func statusKey(integration, member string) string { return integration + "/" + member }

// Board publishes this replica's statuses and sums everyone's.
type Board struct {
	topic  *topic
	member string
	svc    *Service
	local  LocalStatus
	now    func() time.Time
	log    *zap.Logger

	mu      sync.RWMutex
	entries map[string]status            // by key
	byInt   map[string]map[string]status // integration -> member -> status
	ready   bool
}

// BoardConfig configures a Board.
type BoardConfig struct {
	Topic     string // PRISM_STATUS_TOPIC
	Brokers   []string
	Dialer    *kafka.Dialer
	Transport *kafka.Transport
	Logger    *zap.Logger
	Outage    Outage
}

// NewBoard prepares the status board of this replica run: a member id of
// its own (host name and a random suffix), the integrations it reports on,
// and the sink's local status.
func NewBoard(cfg BoardConfig, svc *Service, local LocalStatus) *Board {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	member := strings.ReplaceAll(host, "/", "-") + "-" + hex.EncodeToString(b[:])
	return &Board{
		topic:  newTopic(cfg.Topic, "PRISM_STATUS_TOPIC", cfg.Brokers, cfg.Dialer, cfg.Transport, true, nil, cfg.Logger, cfg.Outage),
		member: member, svc: svc, local: local, now: time.Now, log: cfg.Logger,
		entries: map[string]status{},
		byInt:   map[string]map[string]status{},
	}
}

// Member is this replica run's id: what it publishes its statuses under,
// and the owner it claims backfill jobs as.
func (b *Board) Member() string { return b.member }

// Run follows the status topic and publishes this replica's statuses until
// ctx ends.
func (b *Board) Run(ctx context.Context) error {
	go b.publishLoop(ctx)
	return b.topic.follow(ctx, func(m kafka.Message, _ bool) {
		key := string(m.Key)
		b.mu.Lock()
		defer b.mu.Unlock()
		if old, ok := b.entries[key]; ok {
			delete(b.byInt[old.Integration], old.Member)
			if len(b.byInt[old.Integration]) == 0 {
				delete(b.byInt, old.Integration)
			}
			delete(b.entries, key)
		}
		if len(m.Value) == 0 {
			return
		}
		var st status
		if err := json.Unmarshal(m.Value, &st); err != nil {
			b.log.Warn("status topic: record skipped", zap.String("key", key), zap.Error(err))
			return
		}
		b.entries[key] = st
		if b.byInt[st.Integration] == nil {
			b.byInt[st.Integration] = map[string]status{}
		}
		b.byInt[st.Integration][st.Member] = st
	}, func() { b.mu.Lock(); b.ready = true; b.mu.Unlock() })
}

func (b *Board) publishLoop(ctx context.Context) {
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	last := map[string]status{}
	var lastBeat time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := b.now()
		beat := now.Sub(lastBeat) >= statusBeat
		var recs []kafka.Record
		for _, st := range b.mine(now) {
			prev, seen := last[st.Integration]
			if !beat && seen && sameStatus(prev, st) {
				continue
			}
			value, _ := json.Marshal(st)
			recs = append(recs, record(statusKey(st.Integration, b.member), value))
			last[st.Integration] = st
		}
		recs = append(recs, b.cleanup(now)...)
		if len(recs) == 0 {
			continue
		}
		if _, err := b.topic.produce(ctx, recs...); err != nil {
			if ctx.Err() == nil {
				b.log.Warn("publishing statuses failed; retrying at the next beat", zap.Error(err))
			}
			last = map[string]status{} // publish everything again
			continue
		}
		if beat {
			lastBeat = now
		}
	}
}

func sameStatus(a, b status) bool {
	return a.State == b.State && a.Message == b.Message && a.LastSynced.Equal(b.LastSynced) &&
		a.LogsSent == b.LogsSent && a.PointsSent == b.PointsSent && a.Failed == b.Failed
}

// mine is this replica's status of every integration its sink holds.
func (b *Board) mine(now time.Time) []status {
	var out []status
	for _, ts := range b.local() {
		owner, ok := b.svc.Owner(ts.ID)
		if !ok {
			continue
		}
		id := owner.ID
		l := liveOf(ts)
		out = append(out, status{Integration: id, Member: b.member, State: l.State, Message: l.Message, LastSynced: l.LastSyncedAt,
			LogsSent: l.LogsSent, PointsSent: l.PointsSent, Failed: l.BatchesFailed, At: now})
	}
	return out
}

// cleanup removes what no one needs: the entries of deleted integrations,
// and, folded into the integration's archive entry, those of replica runs
// silent for statusRetire. Any replica may do it: two doing it at once
// write the same archive from the same entries, and an entry already
// folded is listed in the archive, so it is never counted twice.
func (b *Board) cleanup(now time.Time) []kafka.Record {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if !b.ready {
		return nil
	}
	var recs []kafka.Record
	archives := map[string]status{}
	for _, st := range b.entries {
		if st.Member == archiveMember {
			archives[st.Integration] = st
		}
	}
	retire := map[string][]status{}
	for key, st := range b.entries {
		if _, exists := b.svc.Get(st.Integration); !exists {
			recs = append(recs, record(key, nil))
			continue
		}
		if st.Member == archiveMember || st.Member == b.member || now.Sub(st.At) < statusRetire {
			continue
		}
		if folded(archives[st.Integration], st.Member) {
			recs = append(recs, record(key, nil)) // folded earlier; its removal was lost
			continue
		}
		retire[st.Integration] = append(retire[st.Integration], st)
	}
	for id, sts := range retire {
		a := archives[id]
		a.Integration, a.Member, a.At = id, archiveMember, now
		// Keep listing only members whose entries are still there.
		var keep []string
		for _, m := range a.Folded {
			if _, there := b.entries[statusKey(id, m)]; there {
				keep = append(keep, m)
			}
		}
		a.Folded = keep
		for _, st := range sts {
			a.LogsSent += st.LogsSent
			a.PointsSent += st.PointsSent
			a.Failed += st.Failed
			if st.LastSynced.After(a.LastSynced) {
				a.LastSynced = st.LastSynced
			}
			a.Folded = append(a.Folded, st.Member)
		}
		value, _ := json.Marshal(a)
		recs = append(recs, record(statusKey(id, archiveMember), value))
		for _, st := range sts {
			recs = append(recs, record(statusKey(id, st.Member), nil))
		}
	}
	return recs
}

func folded(archive status, member string) bool {
	for _, m := range archive.Folded {
		if m == member {
			return true
		}
	}
	return false
}

// Live sums an org's statuses over every replica: this one's from its sink
// (the freshest), the others' from the topic.
func (b *Board) Live(org string) (Live, bool) {
	in, ok := b.svc.Owner(org)
	if !ok {
		return Live{}, false
	}
	now := b.now()
	var out Live
	found := false
	worst := func(st sink.TenantState, msg string) {
		if !found || rank(st) > rank(out.State) {
			out.State, out.Message = st, msg
		}
		found = true
	}
	if mine, ok := b.local.Live(org); ok {
		worst(mine.State, mine.Message)
		out.LogsSent, out.PointsSent, out.BatchesFailed, out.LastSyncedAt = mine.LogsSent, mine.PointsSent, mine.BatchesFailed, mine.LastSyncedAt
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	of := b.byInt[in.ID]
	archive := of[archiveMember]
	for _, st := range of {
		if st.Member == b.member {
			continue
		}
		if st.Member != archiveMember && folded(archive, st.Member) {
			continue
		}
		out.LogsSent += st.LogsSent
		out.PointsSent += st.PointsSent
		out.BatchesFailed += st.Failed
		if st.LastSynced.After(out.LastSyncedAt) {
			out.LastSyncedAt = st.LastSynced
		}
		if st.Member != archiveMember && now.Sub(st.At) < statusLive {
			worst(st.State, st.Message)
		}
	}
	return out, found
}

// rank orders states by how much they say about a problem: one replica in
// Error makes the integration's state Error.
func rank(s sink.TenantState) int {
	switch s {
	case sink.Error:
		return 4
	case sink.Validating:
		return 3
	case sink.Syncing:
		return 2
	case sink.Active:
		return 1
	}
	return 0
}
