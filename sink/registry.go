package sink

import (
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
)

// route is what Route needs about a tenant, in an immutable snapshot that
// every record of every partition reads without a lock.
type route struct {
	length time.Duration
	// from is the earliest event time exported (zero: all).
	from time.Time
	// prevLength is the window length of records before lengthFrom, while
	// a change of sync interval waits for a boundary of both lengths.
	prevLength time.Duration
	lengthFrom time.Time
}

// Route tells the processor whether a record of tenant with this event time
// is exported, and the tenant's window length for it. ok is false when the
// tenant has no integration, is paused, or the record is older than what
// the tenant exports (see Tenant.ConnectedAt). A tenant in Error is routed:
// its batches complete Undeliverable, which the processor may commit.
func (s *Sink) Route(tenant string, eventTime time.Time) (length time.Duration, ok bool) {
	r, ok := (*s.routes.Load())[tenant]
	if !ok || eventTime.Before(r.from) {
		return 0, false
	}
	if r.prevLength > 0 && eventTime.Before(r.lengthFrom) {
		return r.prevLength, true
	}
	return r.length, true
}

// Earliest is the earliest event time some tenant exports: where a
// partition with no committed offset may start reading. bounded is false
// when a tenant exports all history; with no tenant at all it is now.
func (s *Sink) Earliest() (at time.Time, bounded bool) {
	at = s.now()
	for _, r := range *s.routes.Load() {
		if r.from.IsZero() {
			return time.Time{}, false
		}
		if r.from.Before(at) {
			at = r.from
		}
	}
	return at, true
}

// SetTenants applies a tenants list (the whole list: tenants not in it are
// removed). Added tenants are validated; changed keys or site are
// validated again (in-flight batches wait for them); removed or paused
// tenants' batches complete Skipped. An invalid entry is logged and
// ignored; LoadTenants rejects it earlier with the same message.
func (s *Sink) SetTenants(ts []Tenant) {
	s.regMu.Lock()
	defer s.regMu.Unlock()

	next := make(map[string]Tenant, len(ts))
	for i, t := range ts {
		nt, err := t.normalize()
		if err != nil {
			s.log.Error("tenant entry ignored", zap.Int("index", i), zap.String("tenant", t.ID), zap.Error(err))
			continue
		}
		if _, dup := next[nt.ID]; dup {
			s.log.Error("tenant entry ignored: duplicate id", zap.Int("index", i), zap.String("tenant", nt.ID))
			continue
		}
		next[nt.ID] = nt
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	// Removals first, then additions, then the routes: a batch never
	// finds a route without a queue.
	for id, q := range s.queues {
		if _, keep := next[id]; !keep {
			q.remove()
			delete(s.queues, id)
			s.log.Info("tenant removed; its queued batches are skipped", zap.String("tenant", id))
		}
	}
	for id, t := range next {
		q, exists := s.queues[id]
		if !exists {
			s.queues[id] = newTenantQueue(s, t)
			s.log.Info("tenant added", zap.String("tenant", id), zap.String("site", t.Site.Name()),
				zap.Duration("sync_interval", t.SyncInterval), zap.Bool("backfill", t.Backfill),
				zap.Bool("paused", t.Paused), zap.Bool("app_key", t.AppKey != ""))
			continue
		}
		q.mu.Lock()
		changed := diffTenant(q.t, t)
		q.mu.Unlock()
		if len(changed) > 0 {
			q.update(t)
			s.log.Info("tenant changed", zap.String("tenant", id), zap.String("fields", strings.Join(changed, ",")))
		}
	}
	s.mu.Unlock()

	routes := make(map[string]route, len(next))
	for id, t := range next {
		if !t.Paused {
			r := route{length: t.SyncInterval, prevLength: t.PrevSyncInterval, lengthFrom: t.IntervalFrom}
			if !t.Backfill {
				r.from = t.ConnectedAt
			}
			routes[id] = r
		}
	}
	s.routes.Store(&routes)
}

// diffTenant names the fields that differ, never their values (two of them
// are keys).
func diffTenant(a, b Tenant) []string {
	var out []string
	if a.Site != b.Site {
		out = append(out, "site")
	}
	if a.APIKey != b.APIKey {
		out = append(out, "api_key")
	}
	if a.AppKey != b.AppKey {
		out = append(out, "app_key")
	}
	if a.SyncInterval != b.SyncInterval {
		out = append(out, "sync_interval")
	}
	if a.Backfill != b.Backfill {
		out = append(out, "backfill")
	}
	if a.Paused != b.Paused {
		out = append(out, "paused")
	}
	if !a.ConnectedAt.Equal(b.ConnectedAt) {
		out = append(out, "connected_at")
	}
	if a.PrevSyncInterval != b.PrevSyncInterval || !a.IntervalFrom.Equal(b.IntervalFrom) {
		out = append(out, "interval_switch")
	}
	if a.Generation != b.Generation {
		out = append(out, "generation")
	}
	return out
}

// TenantStatus lists every tenant's state and counters, by id.
func (s *Sink) TenantStatus() []TenantStatus {
	s.mu.RLock()
	qs := make([]*tenantQueue, 0, len(s.queues))
	for _, q := range s.queues {
		qs = append(qs, q)
	}
	s.mu.RUnlock()
	out := make([]TenantStatus, 0, len(qs))
	for _, q := range qs {
		q.mu.Lock()
		out = append(out, TenantStatus{
			ID:            q.id,
			Site:          q.t.Site,
			State:         q.effLocked(),
			LastError:     q.lastErr,
			Delivered:     q.delivered,
			Failed:        q.failed,
			DeadLettered:  q.deadLettered,
			LogsSent:      q.logsSent,
			PointsSent:    q.pointsSent,
			LastDelivery:  q.lastDelivery,
			QueuedBatches: len(q.queue) + q.inflight,
		})
		q.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
