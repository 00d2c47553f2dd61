package processor

import (
	"time"

	"github.com/futureagi/prism-exporter/aggregate"
	"github.com/futureagi/prism-exporter/history"
)

// entryOf is a window's history entry as far as the combiner knows it when
// it hands the totals on: the records counted and what became of their
// logs, summed over the window's shares. finishEntry adds the answer.
func (cp *cpart) entryOf(b aggregate.Batch) (history.Entry, aggregate.Delivery) {
	var records int64
	for i := range b.Series {
		records += b.Series[i].Requests
	}
	d := cp.comb.Delivery(b.Tenant, b.Window)
	source := history.SourceLive
	if cp.comb.BackfillOnly(b.Tenant, b.Window) {
		source = history.SourceBackfill
	}
	return history.Entry{OrgID: b.Tenant, Start: b.Window.Start.UTC(), End: b.Window.End().UTC(), Source: source, Records: records}, d
}

// finishEntry completes a window's entry with what became of its logs
// (summed over its shares) and the answer to its totals.
func finishEntry(e history.Entry, logs aggregate.Delivery, r Receipt, at time.Time) history.Entry {
	d := logs
	d.Add(r.Delivery)
	e.Logs, e.LogsDropped = d.Logs, d.LogsDropped
	e.Points = r.Points
	e.Bytes, e.Requests, e.Retries = d.Bytes, d.Requests, d.Retries
	e.DurationMS = d.Micros / 1000
	e.StatusCode = int(d.Status)
	e.Error = r.Error
	e.At = at.UTC()
	e.Outcome = outcomeOf(d, r.PointsDropped, r.PointsTooOld)
	return e
}

// outcomeOf tells how a window went from what became of its logs and
// points:
//   - too_old: Datadog no longer takes the window's points (its logs went
//     if they were younger than 18 h), and nothing was refused;
//   - failed: nothing was accepted (the key was refused, say);
//   - partial: some logs or points were refused or not sent;
//   - rate_limited: all went through, after Datadog answered 429;
//   - success: all went through.
func outcomeOf(d aggregate.Delivery, pointsDropped int64, pointsTooOld bool) history.Outcome {
	switch {
	case pointsTooOld && d.Status == 0:
		return history.TooOld
	case d.Logs == 0 && (d.LogsDropped > 0 || pointsDropped > 0):
		return history.Failed
	case d.LogsDropped > 0 || pointsDropped > 0 || pointsTooOld:
		return history.Partial
	case d.RateLimited > 0:
		return history.RateLimited
	}
	return history.Success
}
