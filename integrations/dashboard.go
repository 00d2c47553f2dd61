package integrations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/futureagi/prism-exporter/sink"
)

// DashboardMaker makes an integration's dashboard and monitors in its
// Datadog account; *sink.Sink implements it.
type DashboardMaker interface {
	EnsureDashboard(ctx context.Context, site sink.Site, apiKey, appKey sink.Secret, req sink.DashboardRequest) (sink.DashboardResult, error)
}

// Errors of Dashboards.Ensure besides the sink's (sink.ErrAppKeyForbidden,
// sink.ErrDatadogUnavailable, sink.ErrTemplateRefused), for errors.Is.
var (
	// ErrNoAppKey: the integration has no application key.
	ErrNoAppKey = sink.ErrNoAppKey
	// ErrDashboardBusy: another replica held the integration's dashboard
	// for as long as the caller could wait.
	ErrDashboardBusy = errors.New("another replica is making or updating this integration's dashboard: try again in a minute")
	errClaimLost     = errors.New("the claim on the integration's dashboard expired and another replica took it over")
)

// DashboardChanges says what one Ensure did in Datadog: "dashboard" or
// "monitor:<kind>" (see sink.DashboardResult).
type DashboardChanges struct {
	Created, Updated, Recreated []string
}

// Dashboards makes the integrations' dashboards and recommended monitors,
// once per integration across every replica:
//
//   - within a replica, concurrent calls for an integration run one at a
//     time, and a call asking the same as the one running takes its result;
//   - across replicas, a caller first claims the integration's dashboard
//     through the store (a compare-and-set, see Dashboard); a caller that
//     finds a live claim, or loses the race to write one, waits for the
//     holder's result;
//   - every id is stored as soon as Datadog gives it, with the claim
//     renewed, so that a holder that dies leaves what it made findable.
type Dashboards struct {
	svc *Service
	dd  DashboardMaker
	log *zap.Logger
	now func() time.Time
	// claimTTL is how long a claim holds without renewal; the holder's
	// work with Datadog is bounded to three quarters of it.
	claimTTL time.Duration

	mu    sync.Mutex
	calls map[string]*dashboardCall
}

type dashboardCall struct {
	done chan struct{}
	th   sink.MonitorThresholds
	in   Integration
	ch   DashboardChanges
	err  error
}

// DefaultDashboardClaim is how long a replica's claim on a dashboard holds.
const DefaultDashboardClaim = 2 * time.Minute

// NewDashboards wires the dashboards' operation over the service's store.
func NewDashboards(svc *Service, dd DashboardMaker, log *zap.Logger) *Dashboards {
	if log == nil {
		log = zap.NewNop()
	}
	return &Dashboards{svc: svc, dd: dd, log: log, now: svc.now, claimTTL: DefaultDashboardClaim, calls: map[string]*dashboardCall{}}
}

// Ensure makes, or brings up to date, the dashboard and recommended
// monitors of integration id, and returns the integration with its
// Dashboard. Zero fields of th keep the thresholds stored (or the
// defaults); other fields replace them, and the monitors are updated in
// place to them.
func (d *Dashboards) Ensure(ctx context.Context, id string, th sink.MonitorThresholds) (Integration, DashboardChanges, error) {
	for {
		d.mu.Lock()
		c := d.calls[id]
		if c == nil {
			c = &dashboardCall{done: make(chan struct{}), th: th}
			d.calls[id] = c
			d.mu.Unlock()
			c.in, c.ch, c.err = d.ensure(ctx, id, th)
			d.mu.Lock()
			delete(d.calls, id)
			d.mu.Unlock()
			close(c.done)
			return c.in, c.ch, c.err
		}
		d.mu.Unlock()
		select {
		case <-ctx.Done():
			return Integration{}, DashboardChanges{}, ctx.Err()
		case <-c.done:
		}
		if c.th == th && c.err == nil {
			return c.in, c.ch, nil
		}
		// Another question, or the first asker gave up: ask ours.
	}
}

func claimToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// wanted is what the monitors should be fitted to: the thresholds asked
// for, else those stored, else the defaults.
func wanted(cur *Dashboard, th sink.MonitorThresholds) sink.MonitorThresholds {
	stored := sink.MonitorThresholds{}
	if cur != nil {
		stored = cur.Thresholds
	}
	return th.Or(stored).Or(sink.DefaultMonitorThresholds())
}

// upToDate reports whether what is stored needs no call to Datadog beyond
// the ones a new request makes anyway.
func upToDate(in Integration, want sink.MonitorThresholds) bool {
	d := in.Dashboard
	return d.Complete() && d.TemplateVersion == sink.DashboardTemplateVersion &&
		d.Thresholds == want && d.SyncInterval == in.SyncInterval
}

func (d *Dashboards) ensure(ctx context.Context, id string, th sink.MonitorThresholds) (Integration, DashboardChanges, error) {
	token := claimToken()
	waited := false
	for {
		cur, ok := d.svc.store.Get(id)
		if !ok {
			return Integration{}, DashboardChanges{}, ErrNotFound
		}
		apiKey, appKey, err := d.svc.dashboardKeys(cur)
		if err != nil {
			return cur, DashboardChanges{}, err
		}
		if appKey == "" {
			return cur, DashboardChanges{}, ErrNoAppKey
		}
		want := wanted(cur.Dashboard, th)
		now := d.now()
		if _, until, held := cur.Dashboard.claimedBy(now); held {
			// Someone is at it: its result is ours too, or at least what
			// ours starts from.
			waited = true
			changed := d.svc.store.changed()
			t := time.NewTimer(until.Sub(now) + 10*time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return cur, DashboardChanges{}, fmt.Errorf("%w (%v)", ErrDashboardBusy, ctx.Err())
			case <-changed:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		if waited && upToDate(cur, want) {
			return cur, DashboardChanges{}, nil
		}
		next := cur.Dashboard.clone()
		next.Rev++
		next.Claim = &DashboardClaim{Token: token, Until: now.Add(d.claimTTL)}
		got, err := d.writeDashboard(ctx, id, next)
		if err != nil {
			return cur, DashboardChanges{}, err
		}
		if got.Dashboard == nil || got.Dashboard.Claim == nil || got.Dashboard.Claim.Token != token {
			// Another replica's claim came first in the topic: wait for it.
			waited = true
			continue
		}
		return d.run(ctx, got, token, want, apiKey, appKey)
	}
}

// run does the work under the claim, storing every id as it comes, and
// releases the claim with the result.
func (d *Dashboards) run(ctx context.Context, in Integration, token string, want sink.MonitorThresholds, apiKey, appKey sink.Secret) (Integration, DashboardChanges, error) {
	dash := in.Dashboard.clone()
	refit := dash.TemplateVersion != 0 && (dash.Thresholds != want || dash.SyncInterval != in.SyncInterval)
	req := sink.DashboardRequest{
		IntegrationID: in.ID, OrgID: in.OrgID, SyncInterval: in.SyncInterval, Thresholds: want,
		DashboardID: dash.ID, MonitorIDs: dash.MonitorIDs, TemplateVersion: dash.TemplateVersion, Refit: refit,
	}
	req.Record = func(ctx context.Context, r sink.DashboardResult) error {
		next := dash.clone()
		next.Rev++
		setResult(next, r)
		next.Claim.Until = d.now().Add(d.claimTTL)
		got, err := d.writeDashboard(ctx, in.ID, next)
		if err != nil {
			return err
		}
		if got.Dashboard == nil || got.Dashboard.Claim == nil || got.Dashboard.Claim.Token != token {
			return errClaimLost
		}
		dash = got.Dashboard.clone()
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, d.claimTTL*3/4)
	res, err := d.dd.EnsureDashboard(wctx, in.Site, apiKey, appKey, req)
	cancel()
	ch := DashboardChanges{Created: res.Created, Updated: res.Updated, Recreated: res.Recreated}
	if errors.Is(err, errClaimLost) {
		d.log.Warn("the claim on an integration's dashboard was taken over before this replica was done; the other replica finishes it",
			zap.String("integration", in.ID))
		return in, ch, fmt.Errorf("%w (%v)", ErrDashboardBusy, err)
	}
	// The claim is released whatever happened, even if the caller left:
	// the next call should not wait for it to expire.
	final := dash.clone()
	final.Rev++
	final.Claim = nil
	if res.DashboardID != "" {
		setResult(final, res)
	}
	if err == nil {
		final.TemplateVersion = sink.DashboardTemplateVersion
		final.Thresholds = want
		final.SyncInterval = in.SyncInterval
		final.UpdatedAt = d.now().UTC()
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer rcancel()
	out, werr := d.writeDashboard(rctx, in.ID, final)
	if err != nil {
		d.log.Warn("making the integration's dashboard or monitors failed", zap.String("integration", in.ID),
			zap.String("tenant", in.OrgID), zap.Error(err))
		return out, ch, err
	}
	if werr != nil {
		return out, ch, fmt.Errorf("storing the dashboard's ids: %w", werr)
	}
	if len(ch.Created)+len(ch.Recreated)+len(ch.Updated) > 0 {
		d.log.Info("integration's dashboard and monitors made or updated", zap.String("integration", in.ID),
			zap.String("tenant", in.OrgID), zap.Strings("created", ch.Created), zap.Strings("recreated", ch.Recreated),
			zap.Strings("updated", ch.Updated), zap.String("dashboard", final.ID))
	}
	return out, ch, nil
}

func setResult(d *Dashboard, r sink.DashboardResult) {
	d.ID, d.URL = r.DashboardID, r.DashboardURL
	if d.MonitorIDs == nil {
		d.MonitorIDs = map[string]int64{}
	}
	if d.MonitorURLs == nil {
		d.MonitorURLs = map[string]string{}
	}
	for kind, id := range r.MonitorIDs {
		d.MonitorIDs[kind] = id
	}
	for kind, u := range r.MonitorURLs {
		d.MonitorURLs[kind] = u
	}
}

// writeDashboard stores dash as the integration's, on its latest record,
// and returns the integration as the fold left it.
func (d *Dashboards) writeDashboard(ctx context.Context, id string, dash *Dashboard) (Integration, error) {
	cur, ok := d.svc.store.Get(id)
	if !ok {
		return Integration{}, ErrNotFound
	}
	cur.Dashboard = dash
	return d.svc.store.Put(ctx, cur)
}

// dashboardKeys are the integration's keys in clear: sealed in the store,
// or from this replica's tenants file.
func (s *Service) dashboardKeys(in Integration) (apiKey, appKey sink.Secret, err error) {
	if in.ManagedBy == ManagedByFile {
		s.mu.Lock()
		k, ok := s.fileKeys[in.OrgID]
		s.mu.Unlock()
		if !ok {
			return "", "", fmt.Errorf("integration %s is not in this replica's copy of the tenants file %s", in.ID, in.File)
		}
		return k.api, k.app, nil
	}
	var t sink.Tenant
	if err := s.openKeys(&in, &t); err != nil {
		return "", "", err
	}
	return t.APIKey, t.AppKey, nil
}
