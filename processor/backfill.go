package processor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/futureagi/prism-exporter/aggregate"
	"github.com/futureagi/prism-exporter/history"
)

// BackfillJob is one backfill as its runner sees it: one tenant's records
// of the event times [From, Until), read again from the gateway topic; a
// zero From reads from the start of the retained topic. The
// jobs' store keeps it durable; cmd adapts the store to BackfillJobs.
type BackfillJob struct {
	ID          string
	Tenant      string
	From, Until time.Time
	// Token makes the job's sources in the partials its own
	// (aggregate.BackfillSource); it never changes over the job's life, so
	// that a resumed run resets what the run before it wrote.
	Token uint64
	// Length is the tenant's window length for a record of this event
	// time.
	Length func(eventTime time.Time) time.Duration
	// Positions are the partitions' offsets: Next is the durable resume
	// point, a segment boundary below which everything was delivered.
	Positions map[int32]BackfillPosition
	Counts    BackfillCounts
}

// BackfillPosition is one partition's share of a backfill: [Start, End),
// done up to Next. End is -1 until resolved.
type BackfillPosition struct{ Start, End, Next int64 }

// BackfillCounts is what a backfill did, for its view and the history.
type BackfillCounts struct {
	Matched    int64 // the tenant's records in range read
	LogsSent   int64 // accepted by Datadog
	LogsTooOld int64 // not sent: older than Datadog takes logs (18 h), or refused
	// WindowsTooOld windows, holding RecordsMetricsTooOld records, were too
	// old for points (1 h): their records went as logs only.
	WindowsTooOld        int64
	RecordsMetricsTooOld int64
}

// ErrBackfillLost says the job is no longer this runner's: cancelled,
// replaced, or taken over by another replica after a lapse of the lease.
var ErrBackfillLost = errors.New("backfill job lost: cancelled, replaced or taken over")

// BackfillJobs is the durable store of backfill jobs, as the runner uses
// it. Exactly one runner holds a job at a time: Claim gives a job to one
// member, whose lease Progress renews.
type BackfillJobs interface {
	Claim(ctx context.Context, member string, lease time.Duration) (BackfillJob, bool, error)
	// Progress stores job's positions and counts and renews the lease; it
	// returns an error wrapping ErrBackfillLost when the job is no longer
	// member's.
	Progress(ctx context.Context, member string, job BackfillJob, lease time.Duration) error
	// Finish ends the job: done when failure is nil.
	Finish(ctx context.Context, member string, job BackfillJob, failure error) error
	// TooOld reads back what an earlier run of job wrote to the sync
	// history of the windows too old for points: a resumed run adds to it.
	// The history is where those counts are durable.
	TooOld(ctx context.Context, job BackfillJob) (map[aggregate.Window]aggregate.Delivery, error)
}

// Lease timing: a runner renews its lease every backfillBeat; a replica
// killed while running a job leaves it for backfillLease, after which
// another replica (or the restarted one) resumes it from its positions.
const (
	backfillLease = 20 * time.Second
	backfillBeat  = 3 * time.Second
	backfillPoll  = 2 * time.Second
	// backfillAttempts bounds the readings of a job before it fails.
	backfillAttempts = 3
	// The offsets read reach past the event-time range: a record's broker
	// timestamp follows its event time by the gateway's batching, and a
	// late record's by the allowed lateness, which the end adds too.
	backfillStartMargin = time.Minute
	backfillEndMargin   = 10 * time.Second
)

// Backfiller runs backfill jobs, one at a time on this replica, each on
// readers of its own beside the live pipelines: its records go through the
// same segments, logs and partials (under sources of its own), so a window
// that straddles the live cut-off gets its exact total from the combiner.
type Backfiller struct {
	p      *Processor
	jobs   BackfillJobs
	member string
	now    func() time.Time
}

// RunBackfills makes Run also run the backfill jobs of jobs, as member (the
// replica's name in the jobs' leases). Call it before Run.
func (p *Processor) RunBackfills(jobs BackfillJobs, member string) {
	p.backfiller = &Backfiller{p: p, jobs: jobs, member: member, now: time.Now}
}

// Run claims and runs jobs until ctx ends.
func (b *Backfiller) Run(ctx context.Context) error {
	t := time.NewTicker(backfillPoll)
	defer t.Stop()
	for {
		job, ok, err := b.jobs.Claim(ctx, b.member, backfillLease)
		switch {
		case err != nil && ctx.Err() == nil:
			b.p.log.Warn("claiming a backfill job failed; trying again", zap.Error(err))
		case ok:
			b.run(ctx, job)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// runningJob is a job being run: its state, shared by its readers and its
// heartbeat.
type runningJob struct {
	mu      sync.Mutex
	job     BackfillJob
	matched atomic.Int64
	// tooOld sums, per window too old for points, what became of its logs:
	// their history entries.
	tooOld map[aggregate.Window]*aggregate.Delivery
	dirty  map[aggregate.Window]bool
}

func (b *Backfiller) run(ctx context.Context, job BackfillJob) {
	p := b.p
	log := p.log.With(zap.String("backfill", job.ID), zap.String("tenant", job.Tenant))
	jctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	rj := &runningJob{job: job, tooOld: map[aggregate.Window]*aggregate.Delivery{}, dirty: map[aggregate.Window]bool{}}
	rj.matched.Store(job.Counts.Matched)
	if len(job.Positions) > 0 {
		// A resumed run: the windows too old for points keep what the run
		// before wrote, and this one adds what it reads from its resume
		// point (replays since the last commit count twice, as their logs
		// went twice).
		earlier, err := b.jobs.TooOld(ctx, job)
		if err != nil {
			log.Warn("reading back the backfill's earlier history failed; its too-old windows count from this run on", zap.Error(err))
		}
		for w, d := range earlier {
			rj.tooOld[w] = &d
		}
	}

	beatDone := make(chan struct{})
	go func() {
		defer close(beatDone)
		b.heartbeat(jctx, rj, stop, log)
	}()
	err := b.resolve(jctx, rj, log)
	// A reader that stopped early (the broker moved a partition, say) is
	// run again from its commit point a few times before the job fails.
	for attempt := 1; err == nil; attempt++ {
		if err = b.read(jctx, rj, log); err == nil || jctx.Err() != nil || attempt == backfillAttempts {
			break
		}
		log.Warn("a backfill reader stopped before its end; reading again", zap.Int("attempt", attempt), zap.Error(err))
		err = nil
		select {
		case <-jctx.Done():
		case <-time.After(backfillBeat):
		}
	}
	stop(nil)
	<-beatDone
	if ctx.Err() != nil || errors.Is(context.Cause(jctx), ErrBackfillLost) {
		// Stopping, or no longer ours: the store keeps the positions of the
		// last beat, from which the next runner resumes.
		log.Info("backfill stopped", zap.Error(context.Cause(jctx)))
		return
	}
	b.flushHistory(rj)
	final := rj.snapshot()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if perr := b.jobs.Progress(fctx, b.member, final, backfillLease); perr != nil {
		log.Warn("storing the backfill's last progress failed", zap.Error(perr))
		return
	}
	if ferr := b.jobs.Finish(fctx, b.member, final, err); ferr != nil {
		log.Warn("ending the backfill failed", zap.Error(ferr))
		return
	}
	log.Info("backfill finished", zap.Int64("matched", final.Counts.Matched), zap.Int64("logs_sent", final.Counts.LogsSent), zap.Error(err))
}

// heartbeat stores the job's progress every beat, renewing the lease, and
// stops the job when the store says it is no longer ours.
func (b *Backfiller) heartbeat(ctx context.Context, rj *runningJob, stop context.CancelCauseFunc, log *zap.Logger) {
	t := time.NewTicker(backfillBeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.flushHistory(rj)
		err := b.jobs.Progress(ctx, b.member, rj.snapshot(), backfillLease)
		switch {
		case errors.Is(err, ErrBackfillLost):
			stop(err)
			return
		case err != nil && ctx.Err() == nil:
			log.Warn("storing backfill progress failed; the lease runs on until the next beat", zap.Error(err))
		}
	}
}

func (rj *runningJob) snapshot() BackfillJob {
	rj.mu.Lock()
	defer rj.mu.Unlock()
	j := rj.job
	j.Positions = make(map[int32]BackfillPosition, len(rj.job.Positions))
	for k, v := range rj.job.Positions {
		j.Positions[k] = v
	}
	j.Counts.Matched = rj.matched.Load()
	return j
}

// resolve gives every partition of the topic its offsets: from the first
// record stamped at From less a margin, to the first stamped at Until plus
// the allowed lateness and a margin (a record of the range may arrive that
// late; the live pipeline skips it, as it is older than the cut-off). It
// waits until that end has passed.
func (b *Backfiller) resolve(ctx context.Context, rj *runningJob, log *zap.Logger) error {
	p := b.p
	parts, err := p.topicPartitions(ctx)
	if err != nil {
		return err
	}
	rj.mu.Lock()
	job := rj.job
	rj.mu.Unlock()
	if job.Positions == nil {
		job.Positions = map[int32]BackfillPosition{}
	}
	var todo []int
	for _, id := range parts {
		pos, ok := job.Positions[int32(id)]
		if !ok || pos.End < 0 {
			todo = append(todo, id)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	endAt := job.Until.Add(p.cfg.AllowedLateness + backfillEndMargin)
	if wait := endAt.Sub(b.now()); wait > 0 {
		log.Info("backfill waits for its range's late records", zap.Duration("wait", wait))
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(wait):
		}
	}
	from := job.From
	if !from.IsZero() {
		from = from.Add(-backfillStartMargin)
	}
	starts, err := p.offsetsAt(ctx, todo, from)
	if err != nil {
		return err
	}
	ends, err := p.offsetsAt(ctx, todo, endAt)
	if err != nil {
		return err
	}
	rj.mu.Lock()
	defer rj.mu.Unlock()
	if rj.job.Positions == nil {
		rj.job.Positions = map[int32]BackfillPosition{}
	}
	for _, id := range todo {
		s, e := starts[id], ends[id]
		rj.job.Positions[int32(id)] = BackfillPosition{Start: s, End: max(s, e), Next: s}
	}
	return nil
}

// read runs the job's readers, BackfillReaders at a time, over the
// partitions it has not finished, under the job's throughput cap.
func (b *Backfiller) read(ctx context.Context, rj *runningJob, log *zap.Logger) error {
	p := b.p
	rj.mu.Lock()
	job := rj.job
	var ids []int32
	for id, pos := range job.Positions {
		if pos.Next < pos.End {
			ids = append(ids, id)
		}
	}
	rj.mu.Unlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	limit := rate.NewLimiter(rate.Limit(p.cfg.BackfillRate), max(p.cfg.BackfillRate, 512))
	sem := make(chan struct{}, p.cfg.BackfillReaders)
	var wg sync.WaitGroup
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return context.Cause(ctx)
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			b.readPartition(ctx, rj, id, limit, log)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	rj.mu.Lock()
	defer rj.mu.Unlock()
	for id, pos := range rj.job.Positions {
		if pos.Next < pos.End {
			return fmt.Errorf("partition %d stopped at offset %d before its end %d", id, pos.Next, pos.End)
		}
	}
	return nil
}

// readPartition runs one reader: a pipeline like a live partition's, which
// takes the tenant's records in range only and commits to the job.
func (b *Backfiller) readPartition(ctx context.Context, rj *runningJob, id int32, limit *rate.Limiter, log *zap.Logger) {
	p := b.p
	rj.mu.Lock()
	job := rj.job
	pos := job.Positions[id]
	rj.mu.Unlock()
	spec := pipeline{
		partition: int(id),
		source:    aggregate.BackfillSource(job.Token, id),
		start:     pos.Next,
		end:       pos.End,
		route: func(tenant string, at time.Time) (time.Duration, bool) {
			if tenant != job.Tenant || at.Before(job.From) || !at.Before(job.Until) {
				return 0, false
			}
			rj.matched.Add(1)
			return job.Length(at), true
		},
		commit: func(_ context.Context, offset int64) error {
			rj.mu.Lock()
			defer rj.mu.Unlock()
			pp := rj.job.Positions[id]
			pp.Next = offset
			rj.job.Positions[id] = pp
			return nil
		},
		limit:    limit,
		backfill: true,
		logs:     rj.logsAnswered,
		log:      log.With(zap.Int32("partition", id)),
		label:    "backfill-" + strconv.Itoa(int(id)),
	}
	p.runPipeline(ctx, spec, nil)
}

// logsAnswered counts what became of a window's logs in the job: in total,
// and per window for those too old for points, which get no share and so
// no history entry from the combiner.
func (rj *runningJob) logsAnswered(_ string, sp aggregate.LogSpan, d aggregate.Delivery, share bool) {
	rj.mu.Lock()
	defer rj.mu.Unlock()
	c := &rj.job.Counts
	c.LogsSent += d.Logs
	c.LogsTooOld += d.LogsDropped
	if share {
		return
	}
	w := aggregate.Window{Start: sp.Window.Start.UTC(), Length: sp.Window.Length} // a map key: one location
	t := rj.tooOld[w]
	if t == nil {
		t = &aggregate.Delivery{}
		rj.tooOld[w] = t
		c.WindowsTooOld++
	}
	t.Add(d)
	c.RecordsMetricsTooOld += d.Logs + d.LogsDropped
	rj.dirty[w] = true
}

// flushHistory writes the entries of the too-old windows that changed:
// cumulative, each replaces the last for its window.
func (b *Backfiller) flushHistory(rj *runningJob) {
	h := b.p.deps.History
	rj.mu.Lock()
	defer rj.mu.Unlock()
	if h == nil {
		clear(rj.dirty)
		return
	}
	now := b.now().UTC()
	for w := range rj.dirty {
		d := rj.tooOld[w]
		e := history.Entry{
			OrgID: rj.job.Tenant, Start: w.Start.UTC(), End: w.End().UTC(), Source: history.SourceBackfill,
			Records: d.Logs + d.LogsDropped,
		}
		h.Write(finishEntry(e, *d, Receipt{Accepted: true, PointsTooOld: true}, now))
	}
	clear(rj.dirty)
}

// topicPartitions lists the gateway topic's partitions.
func (p *Processor) topicPartitions(ctx context.Context) ([]int, error) {
	res, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{p.cfg.Topic}})
	if err != nil {
		return nil, err
	}
	for _, t := range res.Topics {
		if t.Name != p.cfg.Topic {
			continue
		}
		if t.Error != nil {
			return nil, t.Error
		}
		ids := make([]int, 0, len(t.Partitions))
		for _, pt := range t.Partitions {
			ids = append(ids, pt.ID)
		}
		sort.Ints(ids)
		return ids, nil
	}
	return nil, fmt.Errorf("topic %s not in the metadata", p.cfg.Topic)
}

// offsetsAt is, per partition, the first offset whose record is stamped at
// or after at; the high watermark when none is.
func (p *Processor) offsetsAt(ctx context.Context, ids []int, at time.Time) (map[int]int64, error) {
	// Two requests: Kafka takes one timestamp per partition in each.
	list := func(of func(int) kafka.OffsetRequest) ([]kafka.PartitionOffsets, error) {
		reqs := make([]kafka.OffsetRequest, 0, len(ids))
		for _, id := range ids {
			reqs = append(reqs, of(id))
		}
		res, err := p.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{p.cfg.Topic: reqs}})
		if err != nil {
			return nil, err
		}
		for _, po := range res.Topics[p.cfg.Topic] {
			if po.Error != nil {
				return nil, fmt.Errorf("partition %d: %w", po.Partition, po.Error)
			}
		}
		return res.Topics[p.cfg.Topic], nil
	}
	ends, err := list(kafka.LastOffsetOf)
	if err != nil {
		return nil, err
	}
	out := make(map[int]int64, len(ids))
	for _, po := range ends {
		out[po.Partition] = po.LastOffset
	}
	if at.IsZero() || at.Before(time.Unix(0, 0)) {
		firsts, err := list(kafka.FirstOffsetOf)
		if err != nil {
			return nil, err
		}
		for _, po := range firsts {
			out[po.Partition] = min(out[po.Partition], po.FirstOffset)
		}
		return out, nil
	}
	found, err := list(func(id int) kafka.OffsetRequest { return kafka.TimeOffsetOf(id, at) })
	if err != nil {
		return nil, err
	}
	for _, po := range found {
		for o := range po.Offsets {
			if o >= 0 && o < out[po.Partition] {
				out[po.Partition] = o
			}
		}
	}
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			return nil, fmt.Errorf("no offsets for partition %d in the answer", id)
		}
	}
	return out, nil
}
