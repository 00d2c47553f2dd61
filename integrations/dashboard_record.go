package integrations

import (
	"context"
	"encoding/json"
	"maps"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/futureagi/prism-exporter/sink"
)

// Dashboard is what the store keeps of an integration's dashboard and
// recommended monitors: their ids and links in the tenant's account, and
// the template and settings they were made with.
//
// Writes to it are compare-and-set through the store's fold: every writer
// of this field writes the Rev it read plus one, and the fold keeps the
// first record of each Rev (keptDashboard). Of two replicas that claim the
// same Rev at once, the one whose record comes first in the topic wins on
// every replica; the other sees it lost when it reads its write back.
type Dashboard struct {
	ID          string            `json:"id,omitempty"`
	URL         string            `json:"url,omitempty"`
	MonitorIDs  map[string]int64  `json:"monitor_ids,omitempty"`
	MonitorURLs map[string]string `json:"monitor_urls,omitempty"`
	// TemplateVersion is sink.DashboardTemplateVersion when they were last
	// made or updated; 0 before they all were.
	TemplateVersion int                    `json:"template_version,omitempty"`
	Thresholds      sink.MonitorThresholds `json:"thresholds"`
	// SyncInterval is the interval the monitors were fitted to.
	SyncInterval time.Duration `json:"sync_interval,omitempty"`
	UpdatedAt    time.Time     `json:"updated_at,omitzero"`
	// Rev counts the writes of this field (see the type's comment).
	Rev int64 `json:"rev"`
	// Claim, while set and not expired, says a replica is making or
	// updating them: others wait for it rather than make them twice.
	Claim *DashboardClaim `json:"claim,omitempty"`
}

// DashboardClaim is a replica's hold on the integration's dashboard while
// it talks to Datadog. It expires, so that a replica that died holding it
// does not hold it forever; its holder renews it with every id it stores.
type DashboardClaim struct {
	Token string    `json:"token"`
	Until time.Time `json:"until"`
}

// Complete reports whether the dashboard and every monitor have ids.
func (d *Dashboard) Complete() bool {
	if d == nil || d.ID == "" {
		return false
	}
	for _, kind := range sink.MonitorKinds() {
		if d.MonitorIDs[kind] == 0 {
			return false
		}
	}
	return true
}

// claimedBy reports whether a claim other than token holds at now.
func (d *Dashboard) claimedBy(now time.Time) (string, time.Time, bool) {
	if d == nil || d.Claim == nil || !now.Before(d.Claim.Until) {
		return "", time.Time{}, false
	}
	return d.Claim.Token, d.Claim.Until, true
}

func (d *Dashboard) clone() *Dashboard {
	if d == nil {
		return &Dashboard{}
	}
	c := *d
	c.MonitorIDs = maps.Clone(d.MonitorIDs)
	c.MonitorURLs = maps.Clone(d.MonitorURLs)
	if d.Claim != nil {
		cl := *d.Claim
		c.Claim = &cl
	}
	return &c
}

// keptDashboard is the store's fold of the Dashboard field: the record of
// a higher Rev replaces it; a record of the same or a lower Rev (a losing
// claim, or another change written from a copy older than the last
// dashboard write) leaves it as it was; a record without the field (a
// writer that never read it) too.
func keptDashboard(prev, next *Dashboard) *Dashboard {
	if prev == nil || next != nil && next.Rev > prev.Rev {
		return next
	}
	return prev
}

func sameDashboard(a, b *Dashboard) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// keepDashboards writes again, as the store now holds them, the
// integrations among written whose Dashboard the fold did not take: so
// that the last record of each key, the one compaction keeps, carries the
// dashboard every replica folded, not a stale or losing copy. (A write
// that another replica's comes after is that replica's to repair.)
func (s *Store) keepDashboards(ctx context.Context, written []Integration) error {
	for range 5 {
		var again []Integration
		for _, w := range written {
			if got, ok := s.Get(w.ID); ok && !sameDashboard(got.Dashboard, w.Dashboard) {
				again = append(again, got)
			}
		}
		if len(again) == 0 {
			return nil
		}
		if err := s.produceAll(ctx, again); err != nil {
			return err
		}
		written = again
	}
	return nil
}

// produceAll writes integrations as they are and waits to read them back.
func (s *Store) produceAll(ctx context.Context, ins []Integration) error {
	recs := make([]kafka.Record, 0, len(ins))
	for _, in := range ins {
		value, err := json.Marshal(in)
		if err != nil {
			return err
		}
		recs = append(recs, record(in.ID, value))
	}
	last, err := s.topic.produce(ctx, recs...)
	if err != nil || last < 0 {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return s.waitApplied(wctx, last)
}

// changed is closed at the next record the store reads.
func (s *Store) changed() <-chan struct{} { return s.mark.changed() }
