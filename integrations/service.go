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

// Errors of the service's operations, for errors.Is.
var (
	ErrNotFound  = errors.New("no such integration")
	ErrConflict  = errors.New("the organisation already has an integration")
	ErrNoKeyring = errors.New("PRISM_SECRETS_KEY is not set: integrations with keys cannot be stored")
)

// ManagedByFileError says an integration comes from the tenants file and
// changes through the API are refused.
type ManagedByFileError struct{ File string }

func (e *ManagedByFileError) Error() string {
	return "managed by the tenants file " + e.File + ": change it there"
}

// ActivationDelay is how far ahead of the moment of a change its cut-off
// is set (a new integration's ConnectedAt, a resume's ResumedAt, an
// interval's switch point). Every replica follows the integrations topic
// within about a second; a record whose event time is at or after the
// cut-off arrives after every replica knows of the change, so none skips
// and commits it for want of an integration.
const ActivationDelay = 3 * time.Second

// Service is the integrations' operations over a Store: what the API and
// the tenants file change, and the tenants the sink exports to.
type Service struct {
	store *Store
	keys  *Keyring // nil: only file-managed integrations
	now   func() time.Time
	log   *zap.Logger

	mu       sync.Mutex
	fileKeys map[string]fileKeys // org id -> keys read from this replica's tenants file
	file     string
	fileSeen map[string]sink.Tenant // the entries of this replica's last file load, by org id

	// jobs holds the backfill jobs: an integration created with history
	// gets one, and deleting it cancels it. Nil: history cannot be asked
	// for (ErrBackfillOff).
	jobs *Jobs
}

type fileKeys struct{ api, app sink.Secret }

// NewService wires the operations. keys may be nil when no integration is
// created through the API.
func NewService(store *Store, keys *Keyring, now func() time.Time, log *zap.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Service{store: store, keys: keys, now: now, log: log, fileKeys: map[string]fileKeys{}}
}

// Store is the store the service writes to.
func (s *Service) Store() *Store { return s.store }

// SetJobs gives the service the backfill jobs, before it serves.
func (s *Service) SetJobs(j *Jobs) { s.jobs = j }

// New is what creating an integration takes. Keys are in clear here and
// only here; they are sealed before anything is written.
type New struct {
	OrgID        string
	Site         sink.Site
	APIKey       string
	AppKey       string
	SyncInterval time.Duration
	Historical   Historical
	Paused       bool
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "dd_" + hex.EncodeToString(b[:])
}

// cutoff is a moment ActivationDelay from now, to the second.
func (s *Service) cutoff() time.Time {
	return s.now().Add(ActivationDelay).Truncate(time.Second).Add(time.Second).UTC()
}

// Create stores a new API-managed integration. The caller has validated
// the keys with Datadog.
func (s *Service) Create(ctx context.Context, n New) (Integration, error) {
	if s.keys == nil {
		return Integration{}, ErrNoKeyring
	}
	if _, taken := s.store.Owner(n.OrgID); taken {
		return Integration{}, ErrConflict
	}
	if n.Historical.Mode == All || n.Historical.Mode == Range {
		if s.jobs == nil {
			return Integration{}, ErrBackfillOff
		}
	}
	now := s.now().UTC()
	in := Integration{
		ID: newID(), OrgID: n.OrgID, Site: n.Site, SyncInterval: n.SyncInterval,
		Historical: n.Historical, Paused: n.Paused,
		ConnectedAt: s.cutoff(), CreatedAt: now, UpdatedAt: now, Version: 1,
		ManagedBy: ManagedByAPI,
	}
	if err := s.sealKeys(&in, n.APIKey, &n.AppKey); err != nil {
		return Integration{}, err
	}
	got, err := s.store.Put(ctx, in)
	if err != nil {
		return Integration{}, err
	}
	// Two replicas may have taken the same org at once: the fold names one
	// owner everywhere, and the other withdraws.
	if owner, _ := s.store.Owner(n.OrgID); owner.ID != got.ID {
		_ = s.store.Delete(ctx, got.ID)
		return Integration{}, ErrConflict
	}
	// History comes from a backfill job up to the cut-off; live export
	// takes over from there. Without its job the integration would look
	// connected with history it never gets: it is withdrawn instead.
	if from, until, ok := got.BackfillRange(); ok {
		if _, err := s.jobs.Start(ctx, got, from, until); err != nil {
			if derr := s.store.Delete(ctx, got.ID); derr != nil {
				s.log.Error("integration created without its backfill job, and withdrawing it failed: delete it and connect again",
					zap.String("integration", got.ID), zap.String("tenant", got.OrgID), zap.Error(derr))
			}
			return Integration{}, fmt.Errorf("writing the backfill job: %w", err)
		}
	}
	return got, nil
}

func (s *Service) sealKeys(in *Integration, apiKey string, appKey *string) error {
	if apiKey != "" {
		box, err := s.keys.Seal(apiKey, in.ID+"/api_key")
		if err != nil {
			return err
		}
		in.APIKey, in.APIKeyHint = &box, KeyHint(apiKey)
	}
	if appKey != nil {
		if *appKey == "" {
			in.AppKey, in.AppKeyHint = nil, ""
			return nil
		}
		box, err := s.keys.Seal(*appKey, in.ID+"/app_key")
		if err != nil {
			return err
		}
		in.AppKey, in.AppKeyHint = &box, KeyHint(*appKey)
	}
	return nil
}

// Patch is a change through the API; nil fields keep their value. AppKey
// pointing at "" removes the application key.
type Patch struct {
	Site         *sink.Site
	APIKey       *string
	AppKey       *string
	SyncInterval *time.Duration
}

// Fields names the fields the patch changes, for audit lines.
func (p Patch) Fields() []string {
	var f []string
	if p.Site != nil {
		f = append(f, "site")
	}
	if p.APIKey != nil {
		f = append(f, "api_key")
	}
	if p.AppKey != nil {
		f = append(f, "app_key")
	}
	if p.SyncInterval != nil {
		f = append(f, "sync_interval")
	}
	return f
}

// update applies change to the current record of id and writes it.
func (s *Service) update(ctx context.Context, id string, change func(*Integration) error) (Integration, error) {
	cur, ok := s.store.Get(id)
	if !ok {
		return Integration{}, ErrNotFound
	}
	if cur.ManagedBy == ManagedByFile {
		return Integration{}, &ManagedByFileError{File: cur.File}
	}
	next := cur
	if err := change(&next); err != nil {
		return Integration{}, err
	}
	next.Version = cur.Version + 1
	next.UpdatedAt = s.now().UTC()
	return s.store.Put(ctx, next)
}

// Update applies p. The caller has validated changed keys or site.
func (s *Service) Update(ctx context.Context, id string, p Patch) (Integration, error) {
	if s.keys == nil && (p.APIKey != nil || p.AppKey != nil) {
		return Integration{}, ErrNoKeyring
	}
	return s.update(ctx, id, func(in *Integration) error {
		if p.Site != nil {
			in.Site = *p.Site
		}
		if p.APIKey != nil || p.AppKey != nil {
			api := ""
			if p.APIKey != nil {
				api = *p.APIKey
			}
			if err := s.sealKeys(in, api, p.AppKey); err != nil {
				return err
			}
		}
		if p.SyncInterval != nil && *p.SyncInterval != in.SyncInterval {
			s.switchInterval(in, *p.SyncInterval)
		}
		if p.Site != nil || p.APIKey != nil || p.AppKey != nil {
			in.Retries++ // keys are checked again everywhere, also from Error
		}
		return nil
	})
}

// switchInterval makes next the sync interval from a boundary of both the
// old and the new length, at least ActivationDelay away: records before it
// keep filling windows of the old length, which all end by then, and
// records after it start windows of the new length there. No window is
// split and none is counted twice. (Lengths whose common multiple exceeds a
// day switch on a boundary of the old length only.)
func (s *Service) switchInterval(in *Integration, next time.Duration) {
	now := s.now()
	old := in.SyncInterval
	if in.PrevInterval > 0 && now.Before(in.IntervalFrom) {
		old = in.PrevInterval // replace a switch that has not happened yet
	}
	step := lcm(old, next)
	if step > 24*time.Hour {
		step = old
	}
	at := now.Add(ActivationDelay)
	from := time.Unix(0, (at.UnixNano()/int64(step)+1)*int64(step)).UTC()
	in.PrevInterval, in.IntervalFrom, in.SyncInterval = old, from, next
}

func lcm(a, b time.Duration) time.Duration {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	return a / x * b
}

// Pause stops exporting the integration's records.
func (s *Service) Pause(ctx context.Context, id string) (Integration, error) {
	return s.update(ctx, id, func(in *Integration) error { in.Paused = true; return nil })
}

// Resume exports again, from ActivationDelay after now.
func (s *Service) Resume(ctx context.Context, id string) (Integration, error) {
	return s.update(ctx, id, func(in *Integration) error {
		if in.Paused {
			in.Paused = false
			in.ResumedAt = s.cutoff()
		}
		return nil
	})
}

// Retry makes every replica check the integration's keys again. The caller
// has checked them already.
func (s *Service) Retry(ctx context.Context, id string) (Integration, error) {
	return s.update(ctx, id, func(in *Integration) error { in.Retries++; return nil })
}

// Delete removes an API-managed integration.
func (s *Service) Delete(ctx context.Context, id string) error {
	cur, ok := s.store.Get(id)
	if !ok {
		return ErrNotFound
	}
	if cur.ManagedBy == ManagedByFile {
		return &ManagedByFileError{File: cur.File}
	}
	// Its backfill is cancelled first, so that no job outlives its
	// integration; and again after, for one started meanwhile through
	// another replica.
	if err := s.cancelJob(ctx, id); err != nil {
		return err
	}
	if err := s.store.Delete(ctx, id); err != nil {
		return err
	}
	return s.cancelJob(ctx, id)
}

// cancelJob cancels the integration's active backfill job, if any.
func (s *Service) cancelJob(ctx context.Context, id string) error {
	if s.jobs == nil {
		return nil
	}
	if job, ok := s.jobs.Get(id); !ok || !job.Active() {
		return nil
	}
	if _, err := s.jobs.Cancel(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("cancelling the integration's backfill: %w", err)
	}
	return nil
}

// FileID is the id of the integration imported from the tenants file for
// an org.
func FileID(org string) string { return "file-" + org }

// SyncFile imports a tenants file into the store. The first call (first is
// true) makes the store match the file: it creates, updates and removes
// file-managed integrations. Later calls apply what changed since this
// replica's previous load only, so that a replica still holding an older
// copy of the file (a rollout in progress) does not undo a newer one.
func (s *Service) SyncFile(ctx context.Context, path string, ts []sink.Tenant, first bool) error {
	s.mu.Lock()
	keys := make(map[string]fileKeys, len(ts))
	seen := make(map[string]sink.Tenant, len(ts))
	for _, t := range ts {
		keys[t.ID] = fileKeys{api: t.APIKey, app: t.AppKey}
		seen[t.ID] = t
	}
	prevSeen := s.fileSeen
	s.fileKeys, s.file, s.fileSeen = keys, path, seen
	s.mu.Unlock()

	var puts []Integration
	var dels []string
	created := map[string]time.Time{} // id -> the cut-off this import wrote
	for _, t := range ts {
		if owner, ok := s.store.Owner(t.ID); ok && owner.ManagedBy == ManagedByAPI {
			s.log.Error("tenants file entry ignored: the organisation has an integration made through the API; delete one of them",
				zap.String("tenant", t.ID), zap.String("integration", owner.ID))
			continue
		}
		if prev, had := prevSeen[t.ID]; !first && had && prev == t {
			continue // unchanged since this replica's last load
		}
		next, exists, changed := s.fileEntry(path, t)
		if !changed {
			continue
		}
		puts = append(puts, next)
		if !exists {
			created[next.ID] = next.ConnectedAt
		}
	}
	for _, in := range s.store.List() {
		if _, inFile := seen[in.OrgID]; in.ManagedBy != ManagedByFile || inFile {
			continue
		}
		if _, had := prevSeen[in.OrgID]; first || had {
			dels = append(dels, in.ID)
			s.log.Info("integration removed: its entry left the tenants file", zap.String("tenant", in.OrgID))
		}
	}
	if err := s.store.Apply(ctx, puts, dels); err != nil {
		return err
	}
	// Another replica may have imported an entry first: its cut-off holds.
	// Write it again, so that the last record of the key, the one
	// compaction keeps, carries the cut-off every replica uses.
	var repairs []Integration
	for id, wrote := range created {
		got, ok := s.store.Get(id)
		if !ok {
			continue
		}
		if !got.ConnectedAt.Equal(wrote) {
			repairs = append(repairs, got)
		} else {
			s.log.Info("tenants file entry imported", zap.String("tenant", got.OrgID), zap.Time("connected_at", got.ConnectedAt))
		}
	}
	return s.store.Apply(ctx, repairs, nil)
}

// fileEntry is the integration a tenants-file entry makes: the stored one
// with the file's fields, or a new one with its cut-off fixed now (a
// connected_at in the file wins). changed is false when nothing differs.
func (s *Service) fileEntry(path string, t sink.Tenant) (next Integration, exists, changed bool) {
	id := FileID(t.ID)
	cur, exists := s.store.Get(id)
	next = cur
	if !exists {
		now := s.now().UTC()
		next = Integration{ID: id, OrgID: t.ID, CreatedAt: now, ManagedBy: ManagedByFile, SyncInterval: t.SyncInterval}
		next.ConnectedAt = t.ConnectedAt.UTC()
		if t.ConnectedAt.IsZero() {
			next.ConnectedAt = s.cutoff()
		}
	}
	next.File = path
	next.Site = t.Site
	next.Historical = Historical{Mode: NewOnly}
	if t.Backfill {
		next.Historical = Historical{Mode: All}
	}
	if exists && t.SyncInterval != cur.SyncInterval {
		s.switchInterval(&next, t.SyncInterval)
	}
	if cur.Paused && !t.Paused {
		next.ResumedAt = s.cutoff()
	}
	next.Paused = t.Paused
	next.APIKeyHint, next.AppKeyHint = KeyHint(string(t.APIKey)), KeyHint(string(t.AppKey))
	if exists && sameFileFields(cur, next) {
		return next, true, false
	}
	next.Version = cur.Version + 1
	next.UpdatedAt = s.now().UTC()
	return next, exists, true
}

func sameFileFields(a, b Integration) bool {
	return a.File == b.File && a.Site == b.Site && a.SyncInterval == b.SyncInterval && a.Historical.Mode == b.Historical.Mode &&
		a.Paused == b.Paused && a.APIKeyHint == b.APIKeyHint && a.AppKeyHint == b.AppKeyHint
}

// Tenants is what the sink exports to: one tenant per org (the org's
// owner, when two integrations claim it), keys opened or taken from the
// tenants file. An integration whose keys this replica cannot open is left
// out and logged.
func (s *Service) Tenants() []sink.Tenant {
	all := s.store.List()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]sink.Tenant, 0, len(all))
	for _, in := range all {
		if owner, _ := s.store.Owner(in.OrgID); owner.ID != in.ID {
			continue
		}
		t := sink.Tenant{
			ID: in.OrgID, Site: in.Site, SyncInterval: in.SyncInterval,
			PrevSyncInterval: in.PrevInterval, IntervalFrom: in.IntervalFrom,
			Paused: in.Paused, Generation: in.Retries,
		}
		// Only the tenants file's `backfill: true` lifts the cut-off of the
		// live export (it then exports whatever older records it reads).
		// An API integration's history comes from its backfill job, which
		// ends at the cut-off: its live export starts there, as new_only's
		// does, so the two never export the same record.
		if in.Historical.Mode == NewOnly || in.Historical.Mode == "" || in.ManagedBy != ManagedByFile {
			t.ConnectedAt = in.ExportFrom()
		} else {
			t.Backfill = true
			t.ConnectedAt = in.ResumedAt
		}
		switch in.ManagedBy {
		case ManagedByFile:
			k, ok := s.fileKeys[in.OrgID]
			if !ok {
				s.log.Warn("integration from the tenants file is not in this replica's copy of the file; its records are not exported here until the file catches up",
					zap.String("tenant", in.OrgID), zap.String("file", in.File))
				continue
			}
			t.APIKey, t.AppKey = k.api, k.app
		default:
			if err := s.openKeys(&in, &t); err != nil {
				s.log.Error("integration's keys cannot be opened; its records are not exported", zap.String("integration", in.ID), zap.String("tenant", in.OrgID), zap.Error(err))
				continue
			}
		}
		out = append(out, t)
	}
	return out
}

func (s *Service) openKeys(in *Integration, t *sink.Tenant) error {
	if s.keys == nil {
		return ErrNoKeyring
	}
	if in.APIKey == nil {
		return errors.New("no API key stored")
	}
	api, err := s.keys.Open(*in.APIKey, in.ID+"/api_key")
	if err != nil {
		return err
	}
	t.APIKey = sink.Secret(api)
	if in.AppKey != nil {
		app, err := s.keys.Open(*in.AppKey, in.ID+"/app_key")
		if err != nil {
			return err
		}
		t.AppKey = sink.Secret(app)
	}
	return nil
}

// CheckKeys opens every stored key, so that a start-up with a missing or
// wrong PRISM_SECRETS_KEY stops with a clear error rather than exporting
// nothing for the integrations made through the API.
func (s *Service) CheckKeys() error {
	var errs []error
	for _, in := range s.store.List() {
		if in.ManagedBy == ManagedByFile {
			continue
		}
		var t sink.Tenant
		if err := s.openKeys(&in, &t); err != nil {
			errs = append(errs, fmt.Errorf("integration %s (org %s): %w", in.ID, in.OrgID, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("PRISM_SECRETS_KEY: cannot open the keys of %d stored integration(s): %w", len(errs), errors.Join(errs...))
	}
	return nil
}

// Reseal seals again, under the keyring's first key, the keys of every
// integration sealed with another: the step of a key rotation that lets the
// old key be dropped afterwards.
func (s *Service) Reseal(ctx context.Context) error {
	if s.keys == nil {
		return nil
	}
	primary := s.keys.PrimaryID()
	n := 0
	for _, in := range s.store.List() {
		if in.ManagedBy == ManagedByFile || in.APIKey == nil {
			continue
		}
		if in.APIKey.KeyID == primary && (in.AppKey == nil || in.AppKey.KeyID == primary) {
			continue
		}
		var t sink.Tenant
		if err := s.openKeys(&in, &t); err != nil {
			return err
		}
		app := string(t.AppKey)
		next := in
		if err := s.sealKeys(&next, string(t.APIKey), &app); err != nil {
			return err
		}
		if _, err := s.store.Put(ctx, next); err != nil {
			return err
		}
		n++
	}
	if n > 0 {
		s.log.Info("integrations' keys sealed again under the first PRISM_SECRETS_KEY", zap.Int("integrations", n), zap.String("key_id", primary))
	}
	return nil
}

// Owner returns the integration that holds an org.
func (s *Service) Owner(org string) (Integration, bool) { return s.store.Owner(org) }

// Get returns the integration with this id.
func (s *Service) Get(id string) (Integration, bool) { return s.store.Get(id) }

// List returns every integration, by id.
func (s *Service) List() []Integration { return s.store.List() }

// Ready reports whether the store, and the backfill jobs when there are
// any, have read their topics to their ends.
func (s *Service) Ready() bool { return s.store.Ready() && (s.jobs == nil || s.jobs.Ready()) }

// OpenKeys returns an API-managed integration's keys in clear, for a key
// check that pairs a stored key with a changed one. Callers never show or
// log them.
func (s *Service) OpenKeys(in Integration) (apiKey, appKey string, err error) {
	var t sink.Tenant
	if err := s.openKeys(&in, &t); err != nil {
		return "", "", err
	}
	return string(t.APIKey), string(t.AppKey), nil
}
