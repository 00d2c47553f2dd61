package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/futureagi/prism-exporter/aggregate"
	"github.com/futureagi/prism-exporter/history"
	"github.com/futureagi/prism-exporter/integrations"
	"github.com/futureagi/prism-exporter/processor"
)

// runnerJobs adapts the integrations' job store to the processor's
// runner: the runner knows offsets and counts, the store knows
// integrations.
type runnerJobs struct {
	jobs *integrations.Jobs
	svc  *integrations.Service
	hist *history.Log // nil: no history to read back

	mu      sync.Mutex
	running map[string]integrations.Job // by job id: the store's view the runner's updates go onto
}

func newRunnerJobs(jobs *integrations.Jobs, svc *integrations.Service, hist *history.Log) *runnerJobs {
	return &runnerJobs{jobs: jobs, svc: svc, hist: hist, running: map[string]integrations.Job{}}
}

func (b *runnerJobs) Claim(ctx context.Context, member string, lease time.Duration) (processor.BackfillJob, bool, error) {
	j, ok, err := b.jobs.Claim(ctx, member, lease)
	if err != nil || !ok {
		return processor.BackfillJob{}, false, err
	}
	in, found := b.svc.Get(j.IntegrationID)
	if !found {
		// Deleted under it: deleting cancels the job, which Claim will not
		// hand out again.
		_ = b.jobs.Finish(ctx, member, j, integrations.JobCancelled, "the integration was deleted")
		return processor.BackfillJob{}, false, nil
	}
	b.mu.Lock()
	b.running[j.ID] = j
	b.mu.Unlock()
	out := processor.BackfillJob{
		ID: j.ID, Tenant: j.OrgID, From: j.From, Until: j.Until, Token: j.Token,
		Length: in.WindowLength,
		Counts: processor.BackfillCounts{
			Matched: j.Matched, LogsSent: j.LogsSent, LogsTooOld: j.LogsTooOld,
			WindowsTooOld: j.WindowsTooOld, RecordsMetricsTooOld: j.RecordsMetricsTooOld,
		},
	}
	// "All" is everything Datadog still takes, and the rest counted: the
	// scan starts at the start of the retained topic, and what is older
	// than Datadog takes is counted, not sent.
	if from, until, ok := in.BackfillRange(); ok && in.Historical.Mode == integrations.All && j.From.Equal(from) && j.Until.Equal(until) {
		out.From = time.Time{}
	}
	if len(j.Partitions) > 0 {
		out.Positions = make(map[int32]processor.BackfillPosition, len(j.Partitions))
		for id, p := range j.Partitions {
			out.Positions[id] = processor.BackfillPosition{Start: p.Start, End: p.End, Next: p.Next}
		}
	}
	return out, true, nil
}

// update puts the runner's positions and counts on the store's view.
func (b *runnerJobs) update(job processor.BackfillJob) (integrations.Job, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, ok := b.running[job.ID]
	if !ok {
		return j, fmt.Errorf("backfill %s: %w", job.ID, processor.ErrBackfillLost)
	}
	j.Partitions = make(map[int32]integrations.PartitionProgress, len(job.Positions))
	for id, p := range job.Positions {
		j.Partitions[id] = integrations.PartitionProgress{Start: p.Start, End: p.End, Next: p.Next}
	}
	c := job.Counts
	j.Matched, j.LogsSent, j.LogsTooOld, j.WindowsTooOld, j.RecordsMetricsTooOld = c.Matched, c.LogsSent, c.LogsTooOld, c.WindowsTooOld, c.RecordsMetricsTooOld
	b.running[job.ID] = j
	return j, nil
}

// TooOld reads back the entries an earlier run of the job wrote for the
// windows too old for points: those written since the job was created.
func (b *runnerJobs) TooOld(ctx context.Context, job processor.BackfillJob) (map[aggregate.Window]aggregate.Delivery, error) {
	if b.hist == nil {
		return nil, nil
	}
	b.mu.Lock()
	created := b.running[job.ID].CreatedAt
	b.mu.Unlock()
	for !b.hist.Ready() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	out := map[aggregate.Window]aggregate.Delivery{}
	q := history.Query{Limit: history.MaxLimit}
	// The runner's own entries: backfilled windows that were more than an
	// hour old when the job was created, so that no combiner sent them.
	tooOld := created.Add(-time.Hour)
	for {
		page := b.hist.Query(job.Tenant, q)
		for _, e := range page.Entries {
			if e.Source != history.SourceBackfill || e.At.Before(created) || !e.Start.Before(tooOld) || !e.End.After(job.From) || !e.Start.Before(job.Until) {
				continue
			}
			out[aggregate.Window{Start: e.Start.UTC(), Length: e.End.Sub(e.Start)}] = aggregate.Delivery{
				Logs: e.Logs, LogsDropped: e.LogsDropped, Requests: e.Requests, Retries: e.Retries,
				Bytes: e.Bytes, Micros: e.DurationMS * 1000, Status: int64(e.StatusCode),
			}
		}
		if page.Next == "" {
			return out, nil
		}
		q.Cursor = page.Next
	}
}

func lost(err error) error {
	if errors.Is(err, integrations.ErrLostLease) {
		return fmt.Errorf("%w: %v", processor.ErrBackfillLost, err)
	}
	return err
}

func (b *runnerJobs) Progress(ctx context.Context, member string, job processor.BackfillJob, lease time.Duration) error {
	j, err := b.update(job)
	if err != nil {
		return err
	}
	_, err = b.jobs.Progress(ctx, member, j, lease)
	return lost(err)
}

func (b *runnerJobs) Finish(ctx context.Context, member string, job processor.BackfillJob, failure error) error {
	j, err := b.update(job)
	if err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.running, job.ID)
	b.mu.Unlock()
	state, text := integrations.JobDone, ""
	if failure != nil {
		state, text = integrations.JobFailed, failure.Error()
	}
	return lost(b.jobs.Finish(ctx, member, j, state, text))
}
