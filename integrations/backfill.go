package integrations

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// A backfill job exports an integration's history, records of the gateway
// topic whose event time is in [From, Until), beside the live export, which
// covers everything from the cut-off on. The jobs live in their own
// compacted topic, one record per integration (its current job), folded the
// same way on every replica in offset order, so that every replica agrees
// on who runs a job and how far it got. The runner (processor/) claims a job,
// writes its progress as it commits, and finishes it; this file is only the
// durable state and its rules.

// Datadog's intake limits, which bound what a backfill can deliver.
const (
	// LogsMaxAge: Datadog refuses logs whose timestamp is older than this.
	LogsMaxAge = 18 * time.Hour
	// MetricsMaxAge: Datadog drops metric points older than this, unless
	// the account has historical metrics ingestion.
	MetricsMaxAge = time.Hour
)

// DefaultBackfillsTopic is the jobs topic when JobsConfig.Topic is empty.
const DefaultBackfillsTopic = "prism.exporter.backfills"

// JobState is where a backfill job is in its life.
type JobState string

const (
	JobPending   JobState = "pending"   // written, no runner yet
	JobRunning   JobState = "running"   // a member holds it under a lease
	JobDone      JobState = "done"      // every partition scanned to its end
	JobCancelled JobState = "cancelled" // by a user, or by deleting the integration
	JobFailed    JobState = "failed"    // the runner gave up; Error says why
)

// Active reports whether a job in this state is still to run or running.
func (s JobState) Active() bool { return s == JobPending || s == JobRunning }

// PartitionProgress is a job's position on one partition of the gateway
// topic.
type PartitionProgress struct {
	Start int64 `json:"start"` // first offset to scan (resolved by the runner; -1 until then)
	End   int64 `json:"end"`   // offset to stop before (-1 until resolved)
	Next  int64 `json:"next"`  // durable position: everything below is delivered (a commit point)
}

// Job is one backfill of one integration.
type Job struct {
	ID            string    `json:"id"` // new per backfill request
	IntegrationID string    `json:"integration_id"`
	OrgID         string    `json:"org_id"`
	From          time.Time `json:"from"` // event-time range [From, Until)
	Until         time.Time `json:"until"`
	// Token is random, below 1<<40, and fixed for the job's life: the
	// runner derives its source ids from it, so that a resumed run and the
	// run it replaces name the same sources.
	Token                uint64                      `json:"token"`
	State                JobState                    `json:"state"`
	Owner                string                      `json:"owner,omitempty"` // member running it
	LeaseUntil           time.Time                   `json:"lease_until,omitzero"`
	Partitions           map[int32]PartitionProgress `json:"partitions,omitempty"`
	Total                int64                       `json:"records_to_scan"`         // sum of End-Start once resolved
	Scanned              int64                       `json:"records_scanned"`         // sum of Next-Start
	Matched              int64                       `json:"records_matched"`         // the org's records in range
	LogsSent             int64                       `json:"logs_sent"`               //
	LogsTooOld           int64                       `json:"logs_too_old"`            // older than 18 h: not sent, counted
	WindowsTooOld        int64                       `json:"metric_windows_too_old"`  // windows older than 1 h: logs only, counted
	RecordsMetricsTooOld int64                       `json:"records_metrics_too_old"` //
	Error                string                      `json:"error,omitempty"`
	CreatedAt            time.Time                   `json:"created_at"`
	UpdatedAt            time.Time                   `json:"updated_at"`
	// StartedAt is when a member first claimed the job.
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Active reports whether the job is pending or running.
func (j Job) Active() bool { return j.State.Active() }

// Percent is how much of the job is scanned, 0 to 100; 0 while the records
// to scan are not known yet.
func (j Job) Percent() float64 {
	if j.Total <= 0 {
		return 0
	}
	return min(100, max(0, float64(j.Scanned)*100/float64(j.Total)))
}

// clone copies the job with its own Partitions map: callers change what
// they get (the runner moves positions), and the fold's state must not
// move with it.
func (j Job) clone() Job {
	if j.Partitions != nil {
		j.Partitions = maps.Clone(j.Partitions)
	}
	return j
}

// tally sets Total and Scanned from the partitions, when the runner keeps
// positions there: Total is known once every partition's range is.
func (j *Job) tally() {
	if len(j.Partitions) == 0 {
		return
	}
	var total, scanned int64
	resolved := true
	for _, p := range j.Partitions {
		if p.Start < 0 || p.End < 0 {
			resolved = false
			continue
		}
		total += max(0, p.End-p.Start)
		scanned += max(0, min(p.Next, p.End)-p.Start)
	}
	if !resolved {
		total = 0
	}
	j.Total, j.Scanned = total, scanned
}

// Errors of the jobs, for errors.Is.
var (
	// ErrLostLease: the member no longer holds the job: another member took
	// it over after its lease ran out, or it was cancelled or replaced.
	ErrLostLease = errors.New("backfill: this member no longer holds the job (its lease was taken over, or the job was cancelled or replaced)")
	// ErrBackfillRunning: the integration has a pending or running job; it
	// must end or be cancelled before another starts.
	ErrBackfillRunning = errors.New("backfill: one is already pending or running for this integration: cancel it first")
	// ErrNoBackfill: nothing to cancel. It wraps ErrNotFound.
	ErrNoBackfill = fmt.Errorf("backfill: none pending or running: %w", ErrNotFound)
	// ErrEmptyRange: from is not before until.
	ErrEmptyRange = errors.New("backfill: the range is empty: from must be before until")
	// ErrBackfillOff: the service was asked for history without jobs to
	// run it (a replica wired without them).
	ErrBackfillOff = errors.New("backfill: this replica has no backfill jobs")
)

// BackfillRange is the history an integration's first backfill covers: for
// All, as far back as Datadog takes logs (LogsMaxAge before the cut-off);
// for Range, From..To. Both end at the cut-off at the latest, where the live
// export begins, so that the two never export the same record. ok is false
// when there is nothing to backfill, and for tenants-file integrations,
// whose `backfill: true` only keeps the live export from skipping what it
// reads (the file says nothing of a range, and has no job).
func (in *Integration) BackfillRange() (from, until time.Time, ok bool) {
	if in.ManagedBy == ManagedByFile {
		return from, until, false
	}
	switch in.Historical.Mode {
	case All:
		from, until = in.ConnectedAt.Add(-LogsMaxAge), in.ConnectedAt
	case Range:
		if in.Historical.From == nil || in.Historical.To == nil {
			return from, until, false
		}
		from, until = *in.Historical.From, *in.Historical.To
		if until.After(in.ConnectedAt) {
			until = in.ConnectedAt
		}
	default:
		return from, until, false
	}
	return from.UTC(), until.UTC(), from.Before(until)
}

// JobsConfig configures Jobs; it mirrors StoreConfig.
type JobsConfig struct {
	// Topic is the compacted topic of the jobs (PRISM_BACKFILLS_TOPIC);
	// empty: DefaultBackfillsTopic.
	Topic   string
	Brokers []string
	// Dialer and Transport carry the cluster's SASL and TLS settings.
	Dialer    *kafka.Dialer
	Transport *kafka.Transport
	// Create makes the topic at start when it is missing.
	Create bool
	Logger *zap.Logger
	// Outage, when set, hears of Kafka not answering.
	Outage Outage
	// Clock stamps records (written_at) and leases; nil: time.Now. Leases
	// compare clocks of different replicas: keep them synchronised (NTP).
	Clock func() time.Time
}

// Record operations. A record is always the whole job as its writer wants
// it; the op says what kind of change it is, which decides the fold's rule.
const (
	opStart    = "start"    // a new job (a user, or a new integration)
	opCancel   = "cancel"   // a user, or the integration deleted
	opClaim    = "claim"    // a member takes the job
	opProgress = "progress" // its owner records positions and counts, renews the lease
	opFinish   = "finish"   // its owner ends it
	opRestate  = "restate"  // the state again, so that the key's last record holds it
)

// jobRecord is a record of the jobs topic.
type jobRecord struct {
	Job
	Op     string `json:"op"`
	Member string `json:"member,omitempty"` // the runner that wrote it
	// WrittenAt is the writer's clock: the fold judges leases by it, so
	// that every replica judges the same.
	WrittenAt time.Time `json:"written_at"`
	// Base is the number of changes of the key the writer had read: a
	// record written from an out-of-date view is refused (compare and set).
	Base int64 `json:"base"`
}

// jobEntry is the fold's state of one key.
type jobEntry struct {
	job Job
	seq int64 // changes accepted: the Base the next writer must carry
	// exact: the key's last record holds job as it is. Compaction keeps
	// only a key's last record; when the fold refused or merged it, the
	// state is written again (settle) so that a replica reading the
	// compacted topic folds the same state.
	exact      bool
	dirtySince time.Time // local clock, for the repair loop
}

// Timings of the jobs' writes.
const (
	writeAttempts = 8
	// A key whose last record is not its state for repairAfter is
	// written again by the repair loop, which looks every repairEvery; the
	// writer of the record normally does it at once.
	repairEvery = time.Second
	repairAfter = 2 * time.Second
	// compactionLag (min.compaction.lag.ms of a new topic) keeps the
	// records of the last hour out of compaction, ample for a refused
	// record to be followed by the state written again.
	compactionLag = time.Hour
)

// Jobs is the backfill jobs topic as every replica sees it: each
// integration's current job, kept up to date by following the topic.
// Writes go to the topic and return once this replica has read them back,
// with the fold's verdict on them.
type Jobs struct {
	cfg   JobsConfig
	topic *topic
	log   *zap.Logger
	now   func() time.Time

	mu    sync.RWMutex
	byID  map[string]*jobEntry // by integration id
	mark  *readMark
	watch watchers
	// verdicts are the fold's verdicts on the latest records, by offset
	// modulo their number, for a writer to learn whether its own record
	// was taken: the state may have moved on by the time it looks.
	verdicts [1024]verdict
}

type verdict struct {
	offset int64
	taken  bool
}

// NewJobs prepares the jobs; Run reads the topic.
func NewJobs(cfg JobsConfig) (*Jobs, error) {
	if cfg.Topic == "" {
		cfg.Topic = DefaultBackfillsTopic
	}
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("integrations: JobsConfig.Brokers is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	configs := map[string]string{"min.compaction.lag.ms": fmt.Sprint(compactionLag.Milliseconds())}
	return &Jobs{
		cfg:   cfg,
		topic: newTopic(cfg.Topic, "PRISM_BACKFILLS_TOPIC", cfg.Brokers, cfg.Dialer, cfg.Transport, cfg.Create, configs, cfg.Logger, cfg.Outage),
		log:   cfg.Logger,
		now:   cfg.Clock,
		byID:  map[string]*jobEntry{},
		mark:  newReadMark(),
	}, nil
}

// OnChange registers f, called (from the jobs' goroutine) after changes read
// from the topic, and once when the jobs are first caught up.
func (j *Jobs) OnChange(f func()) { j.watch.add(f) }

// Ready reports whether the topic has been read to the end it had at start.
func (j *Jobs) Ready() bool { return j.watch.isReady() }

// Run creates the topic if asked to, reads it to its end, calls caughtUp,
// then follows it until ctx ends, writing again the state of any key whose
// last record does not hold it. It returns ctx's error on a stop.
func (j *Jobs) Run(ctx context.Context, caughtUp func()) error {
	go j.repairLoop(ctx)
	pending := false
	return j.topic.follow(ctx, func(m kafka.Message, last bool) {
		pending = j.apply(m) || pending
		if pending && last && j.Ready() {
			pending = false
			j.notify()
		}
	}, func() {
		pending = false
		j.watch.markReady()
		j.mu.RLock()
		n := len(j.byID)
		j.mu.RUnlock()
		j.log.Info("backfills topic read to its end", zap.String("topic", j.cfg.Topic), zap.Int("jobs", n))
		if caughtUp != nil {
			caughtUp()
		}
		j.notify()
	})
}

func (j *Jobs) notify() { j.watch.notify() }

// apply folds one record into the state.
func (j *Jobs) apply(m kafka.Message) (changed bool) {
	key := string(m.Key)
	defer j.advance(m.Offset)
	if len(m.Value) == 0 {
		// Jobs never write tombstones: a late write of a runner after one
		// would start the key afresh and bring its job back. One written by
		// hand removes the key all the same.
		j.mu.Lock()
		_, had := j.byID[key]
		delete(j.byID, key)
		j.mu.Unlock()
		return had
	}
	var rec jobRecord
	err := json.Unmarshal(m.Value, &rec)
	j.mu.Lock()
	defer j.mu.Unlock()
	v := &j.verdicts[m.Offset%int64(len(j.verdicts))]
	*v = verdict{offset: m.Offset}
	prev := j.byID[key]
	if err != nil || key == "" || rec.IntegrationID != key || rec.ID == "" {
		j.log.Error("backfills topic: record skipped: not a job", zap.Int64("offset", m.Offset), zap.String("key", key))
		j.markDirty(prev)
		return false
	}
	next, why := decide(prev, rec)
	if next == nil {
		j.log.Debug("backfills topic: record refused", zap.Int64("offset", m.Offset), zap.String("integration", key),
			zap.String("job", rec.ID), zap.String("op", rec.Op), zap.String("member", rec.Member), zap.String("why", why))
		j.markDirty(prev)
		return false
	}
	v.taken = true
	if !next.exact {
		next.dirtySince = time.Now()
	}
	j.byID[key] = next
	return true
}

func (j *Jobs) markDirty(e *jobEntry) {
	if e == nil {
		return
	}
	if e.exact {
		e.exact, e.dirtySince = false, time.Now()
	}
}

// decide is the fold: from the state before a record and the record alone,
// so that every replica decides the same. It returns the new state, or nil
// and why the record is refused (the state stays as it was).
//
//   - The key's first record is taken as it is: a new job, or, on a
//     compacted topic, the last state written.
//   - A cancel of the key's active job always applies, to the state as the
//     fold has it (the runner's latest progress kept), whatever the
//     canceller had read: no progress record can race it.
//   - Every other record must be written from an up-to-date view (its Base
//     is the key's count of changes; compare and set), and then:
//   - a start needs no active job (a running one is cancelled first);
//   - a claim, progress or finish needs the same job, still active; a
//     claim that changes the owner needs the job unowned, or the previous
//     owner's lease ended before the record's written_at; progress and
//     finish come from the owner only. So a late write of an old owner
//     never brings back a cancelled or replaced job, and of two members
//     claiming at once exactly one wins.
//   - A restate that holds the state as it is changes nothing.
func decide(prev *jobEntry, rec jobRecord) (*jobEntry, string) {
	job := rec.Job.clone()
	if prev == nil {
		return &jobEntry{job: job, seq: rec.Base + 1, exact: true}, ""
	}
	cur := prev.job
	if rec.Op == opRestate && sameJob(cur, job) {
		next := *prev
		next.exact, next.dirtySince = true, time.Time{}
		return &next, ""
	}
	if rec.Op == opCancel {
		if rec.ID != cur.ID || !cur.State.Active() || job.State != JobCancelled {
			return nil, "cancel of a job that is not the integration's active one"
		}
		next := cur.clone()
		next.State, next.LeaseUntil, next.FinishedAt, next.UpdatedAt = JobCancelled, time.Time{}, job.FinishedAt, job.UpdatedAt
		if job.Error != "" {
			next.Error = job.Error
		}
		return &jobEntry{job: next, seq: prev.seq + 1, exact: sameJob(next, job)}, ""
	}
	if rec.Base < prev.seq {
		return nil, "written from an out-of-date view"
	}
	switch rec.Op {
	case opRestate:
	case opStart:
		if cur.State.Active() || rec.ID == cur.ID || job.State != JobPending {
			return nil, "the integration has an active job"
		}
	case opClaim, opProgress, opFinish:
		switch {
		case rec.ID != cur.ID:
			return nil, "the job was replaced"
		case !cur.State.Active():
			return nil, "the job has ended"
		case rec.Member == "" || job.Owner != rec.Member:
			return nil, "not written by the owner it names"
		case rec.Op != opClaim && cur.Owner != rec.Member:
			return nil, "the writer does not own the job"
		case cur.Owner != "" && cur.Owner != rec.Member && !cur.LeaseUntil.Before(rec.WrittenAt):
			return nil, "another member's lease has not ended"
		case rec.Op == opFinish && job.State.Active(), rec.Op != opFinish && job.State != JobRunning:
			return nil, "a state the operation cannot set"
		}
	default:
		return nil, "unknown operation"
	}
	return &jobEntry{job: job, seq: rec.Base + 1, exact: true}, ""
}

// sameJob compares two jobs as the topic holds them.
func sameJob(a, b Job) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

func (j *Jobs) advance(offset int64) { j.mark.advance(offset) }

// waitApplied returns once the record at offset has been read back.
func (j *Jobs) waitApplied(ctx context.Context, offset int64) error {
	if err := j.mark.wait(ctx, offset); err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	return nil
}

// Get returns the integration's current job (active or the last ended one).
func (j *Jobs) Get(integrationID string) (Job, bool) {
	job, _, ok := j.current(integrationID)
	return job, ok
}

// List returns every integration's current job, by integration id.
func (j *Jobs) List() []Job {
	j.mu.RLock()
	out := make([]Job, 0, len(j.byID))
	for _, e := range j.byID {
		out = append(out, e.job.clone())
	}
	j.mu.RUnlock()
	sort.Slice(out, func(a, b int) bool { return out[a].IntegrationID < out[b].IntegrationID })
	return out
}

// current is the key's job and its count of changes.
func (j *Jobs) current(integrationID string) (Job, int64, bool) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	e, ok := j.byID[integrationID]
	if !ok {
		return Job{}, 0, false
	}
	return e.job.clone(), e.seq, true
}

// write produces rec and waits until this replica has read it back. It
// returns the key's state then, and whether the fold took rec.
func (j *Jobs) write(ctx context.Context, rec jobRecord) (Job, bool, error) {
	rec.WrittenAt = j.now().UTC()
	value, err := json.Marshal(rec)
	if err != nil {
		return Job{}, false, err
	}
	off, err := j.topic.produce(ctx, record(rec.IntegrationID, value))
	if err != nil {
		return Job{}, false, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := j.waitApplied(wctx, off); err != nil {
		return Job{}, false, err
	}
	j.mu.RLock()
	defer j.mu.RUnlock()
	v := j.verdicts[off%int64(len(j.verdicts))]
	e, ok := j.byID[rec.IntegrationID]
	if !ok {
		return Job{}, false, nil
	}
	return e.job.clone(), v.offset == off && v.taken, nil
}

// settle writes the key's state again until the key's last record holds
// it: after a refused or merged record, what compaction keeps must fold to
// what every replica has.
func (j *Jobs) settle(ctx context.Context, integrationID string) {
	for range writeAttempts {
		j.mu.RLock()
		e, ok := j.byID[integrationID]
		var job Job
		var seq int64
		exact := true
		if ok {
			job, seq, exact = e.job.clone(), e.seq, e.exact
		}
		j.mu.RUnlock()
		if exact {
			return
		}
		if _, _, err := j.write(ctx, jobRecord{Job: job, Op: opRestate, Base: seq}); err != nil {
			if ctx.Err() == nil {
				j.log.Warn("backfills topic: writing a job's state again failed; retried shortly", zap.String("integration", integrationID), zap.Error(err))
			}
			return
		}
	}
}

// repairLoop settles the keys whose last record is not their state, when
// the writer that should have did not (it stopped, or Kafka failed it).
// Every replica does it; two restating at once write the same state.
func (j *Jobs) repairLoop(ctx context.Context) {
	t := time.NewTicker(repairEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !j.Ready() {
			continue
		}
		var dirty []string
		j.mu.RLock()
		for id, e := range j.byID {
			if !e.exact && time.Since(e.dirtySince) >= repairAfter {
				dirty = append(dirty, id)
			}
		}
		j.mu.RUnlock()
		for _, id := range dirty {
			j.settle(ctx, id)
		}
	}
}

func newJobID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "bf_" + hex.EncodeToString(b[:])
}

// newToken is random, in [1, 1<<40).
func newToken() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return max(1, binary.BigEndian.Uint64(b[:])&(1<<40-1))
}

// Start writes a pending job for the integration over [from, until). It
// replaces an ended job; an active one answers ErrBackfillRunning.
func (j *Jobs) Start(ctx context.Context, in Integration, from, until time.Time) (Job, error) {
	if !from.Before(until) {
		return Job{}, ErrEmptyRange
	}
	id, token := newJobID(), newToken()
	for range writeAttempts {
		cur, seq, exists := j.current(in.ID)
		if exists && cur.Active() {
			return Job{}, ErrBackfillRunning
		}
		now := j.now().UTC()
		job := Job{ID: id, IntegrationID: in.ID, OrgID: in.OrgID, From: from.UTC(), Until: until.UTC(), Token: token,
			State: JobPending, CreatedAt: now, UpdatedAt: now}
		got, ok, err := j.write(ctx, jobRecord{Job: job, Op: opStart, Base: seq})
		if err != nil {
			return Job{}, err
		}
		if ok {
			j.log.Info("backfill job written", zap.String("integration", in.ID), zap.String("tenant", in.OrgID), zap.String("job", got.ID),
				zap.Time("from", got.From), zap.Time("until", got.Until))
			return got, nil
		}
		j.settle(ctx, in.ID)
	}
	return Job{}, fmt.Errorf("backfill: the job of %s kept changing; try again", in.ID)
}

// Cancel cancels the integration's pending or running job. Its runner
// learns it at its next Progress (ErrLostLease). ErrNoBackfill (an
// ErrNotFound) when none is active.
func (j *Jobs) Cancel(ctx context.Context, integrationID string) (Job, error) {
	for range writeAttempts {
		cur, seq, ok := j.current(integrationID)
		if !ok || !cur.Active() {
			return Job{}, ErrNoBackfill
		}
		now := j.now().UTC()
		next := cur
		next.State, next.LeaseUntil, next.FinishedAt, next.UpdatedAt = JobCancelled, time.Time{}, now, now
		got, _, err := j.write(ctx, jobRecord{Job: next, Op: opCancel, Base: seq})
		if err != nil {
			return Job{}, err
		}
		j.settle(ctx, integrationID)
		if got.ID == cur.ID && got.State == JobCancelled {
			j.log.Info("backfill job cancelled", zap.String("integration", integrationID), zap.String("job", got.ID), zap.String("owner", cur.Owner))
			return got, nil
		}
	}
	return Job{}, fmt.Errorf("backfill: the job of %s kept changing; try again", integrationID)
}

// Claim takes one claimable job for member: the oldest pending one, or a
// running one whose owner's lease has ended (its positions kept, so the new
// owner resumes where the old one committed). ok is false when there is
// none, or when another member won it.
func (j *Jobs) Claim(ctx context.Context, member string, lease time.Duration) (Job, bool, error) {
	if member == "" || lease <= 0 {
		return Job{}, false, errors.New("backfill: Claim needs a member id and a positive lease")
	}
	if !j.Ready() {
		return Job{}, false, nil
	}
	now := j.now().UTC()
	var pick *jobEntry
	j.mu.RLock()
	for _, e := range j.byID {
		claimable := e.job.State == JobPending || e.job.State == JobRunning && e.job.LeaseUntil.Before(now)
		if !claimable {
			continue
		}
		if pick == nil || e.job.CreatedAt.Before(pick.job.CreatedAt) ||
			e.job.CreatedAt.Equal(pick.job.CreatedAt) && e.job.IntegrationID < pick.job.IntegrationID {
			pick = e
		}
	}
	var cur Job
	var seq int64
	if pick != nil {
		cur, seq = pick.job.clone(), pick.seq
	}
	j.mu.RUnlock()
	if pick == nil {
		return Job{}, false, nil
	}
	next := cur
	next.State, next.Owner, next.LeaseUntil, next.UpdatedAt = JobRunning, member, now.Add(lease), now
	if next.StartedAt.IsZero() {
		next.StartedAt = now
	}
	got, ok, err := j.write(ctx, jobRecord{Job: next, Op: opClaim, Member: member, Base: seq})
	if err != nil {
		return Job{}, false, err
	}
	if !ok {
		j.settle(ctx, cur.IntegrationID)
		return Job{}, false, nil
	}
	fields := []zap.Field{zap.String("integration", got.IntegrationID), zap.String("job", got.ID), zap.String("member", member)}
	if cur.Owner != "" && cur.Owner != member {
		fields = append(fields, zap.String("taken_over_from", cur.Owner))
	}
	j.log.Info("backfill job claimed", fields...)
	return got, true, nil
}

// Progress records what the runner holds in job (Partitions, the counts,
// Error) and renews member's lease. ErrLostLease when the fold says member
// no longer owns the job, or it was cancelled or replaced: the runner stops
// at once, without committing more.
func (j *Jobs) Progress(ctx context.Context, member string, job Job, lease time.Duration) (Job, error) {
	if lease <= 0 {
		return Job{}, errors.New("backfill: Progress needs a positive lease")
	}
	return j.ownerWrite(ctx, member, job, opProgress, func(next *Job, now time.Time) {
		next.LeaseUntil = now.Add(lease)
	})
}

// Finish ends member's job in state (done, failed or cancelled), with its
// final positions and counts. ErrLostLease as for Progress.
func (j *Jobs) Finish(ctx context.Context, member string, job Job, state JobState, errText string) error {
	if state.Active() || state == "" {
		return fmt.Errorf("backfill: Finish with state %q: want done, failed or cancelled", state)
	}
	_, err := j.ownerWrite(ctx, member, job, opFinish, func(next *Job, now time.Time) {
		next.State, next.Error, next.FinishedAt, next.LeaseUntil = state, errText, now, time.Time{}
	})
	if err == nil {
		j.log.Info("backfill job finished", zap.String("integration", job.IntegrationID), zap.String("job", job.ID),
			zap.String("state", string(state)), zap.Int64("logs_sent", job.LogsSent), zap.Int64("logs_too_old", job.LogsTooOld))
	}
	return err
}

// ownerWrite writes the owner's fields of job over the fold's state of it.
// A refusal for an out-of-date view (a restate landed meanwhile) is tried
// again while member still owns the job.
func (j *Jobs) ownerWrite(ctx context.Context, member string, job Job, op string, change func(*Job, time.Time)) (Job, error) {
	for range writeAttempts {
		cur, seq, ok := j.current(job.IntegrationID)
		if !ok || cur.ID != job.ID || cur.State != JobRunning || cur.Owner != member {
			return Job{}, ErrLostLease
		}
		now := j.now().UTC()
		next := cur
		next.Partitions = maps.Clone(job.Partitions)
		next.Total, next.Scanned, next.Matched = job.Total, job.Scanned, job.Matched
		next.LogsSent, next.LogsTooOld, next.WindowsTooOld, next.RecordsMetricsTooOld = job.LogsSent, job.LogsTooOld, job.WindowsTooOld, job.RecordsMetricsTooOld
		next.Error = job.Error
		next.tally()
		next.UpdatedAt = now
		change(&next, now)
		got, ok, err := j.write(ctx, jobRecord{Job: next, Op: op, Member: member, Base: seq})
		if err != nil {
			return Job{}, err
		}
		if ok {
			return got, nil
		}
		j.settle(ctx, job.IntegrationID)
	}
	return Job{}, fmt.Errorf("backfill: the job of %s kept changing; its progress is not recorded", job.IntegrationID)
}
