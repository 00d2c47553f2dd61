package sink

import (
	"context"
	"sync"
	"time"
)

// Receipt is how a batch ended and what its delivery took: what the sync
// history shows for the windows the batch carried.
type Receipt struct {
	Outcome Outcome
	// Logs Datadog accepted; LogsDropped were not sent because Datadog
	// drops them (older than 18 h) or were refused for good and
	// dead-lettered, or the tenant was in Error.
	Logs, LogsDropped int64
	// Points Datadog accepted; PointsDropped were not sent: their window is
	// older than Datadog takes (1 h), or the tenant was in Error.
	Points, PointsDropped int64
	// PointsTooOld says the points were not sent for their age alone.
	PointsTooOld bool
	// Requests made for the batch, Retries among them, and the bytes they
	// carried on the wire (compressed).
	Requests, Retries, Bytes int64
	// Duration is the time spent in those requests.
	Duration time.Duration
	// RateLimited says Datadog answered 429 at least once on the way.
	RateLimited bool
	// StatusCode and Error are Datadog's last refusal, when the batch was
	// not delivered: the code and a short text without keys.
	StatusCode int
	Error      string
}

// tally is a job's running Receipt. attempt reaches it through the job's
// context: the requests of a batch are made several calls down (logs are
// split, retried, narrowed to the item Datadog refuses), and a counter
// carried in the context spares each of those calls a parameter.
type tally struct {
	mu sync.Mutex
	r  Receipt
	// sent counts the logs posted, dead those among them Datadog refused
	// for good (dead-lettered): Logs is the difference.
	sent, dead int64
}

type tallyKey struct{}

func withTally(ctx context.Context, t *tally) context.Context {
	return context.WithValue(ctx, tallyKey{}, t)
}

// tallyOf is the job's tally, or nil outside a job (validation requests).
func tallyOf(ctx context.Context) *tally {
	t, _ := ctx.Value(tallyKey{}).(*tally)
	return t
}

func (t *tally) add(f func(r *Receipt)) {
	if t == nil {
		return
	}
	t.mu.Lock()
	f(&t.r)
	t.mu.Unlock()
}

// receipt is the job's Receipt once it ended as o. What was not sent of a
// batch that was not delivered counts as dropped, but for Abandoned: that
// batch is delivered again after a restart.
func (j *job) receipt(o Outcome) Receipt {
	t := &j.tally
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.r
	r.Outcome = o
	r.Logs = t.sent - t.dead
	r.LogsDropped += t.dead
	if o == Undeliverable || o == Skipped {
		if !j.logsDone {
			r.LogsDropped += int64(len(j.b.Logs))
		}
		if !j.seriesDone && r.PointsDropped == 0 {
			r.PointsDropped = int64(len(j.b.Series) * seriesPerTagSet)
		}
	}
	return r
}
