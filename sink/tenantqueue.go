package sink

import (
	"context"
	"errors"
	"math/bits"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// tenantQueue is one tenant's delivery: its queue of batches, its workers
// (at most Config.Concurrency, started when there is work and gone when
// there is none), its backoff and its state. Nothing here is shared with
// another tenant, which is what keeps a failing account from slowing the
// others.
type tenantQueue struct {
	s  *Sink
	id string

	mu        sync.Mutex
	t         Tenant
	cn        *conn
	connErr   error
	state     TenantState // Validating, Active, Paused or Error; Syncing is derived
	validated bool        // cn's keys passed validation
	removed   bool
	lastErr   string
	lastCode  int // the HTTP status of the refusal that put the tenant in Error, 0 if none
	queue     []*job
	workers   int // goroutines taking jobs
	inflight  int // jobs being delivered
	// run is the context of the jobs being delivered. It is cancelled, with
	// the reason as its cause, when they must stop (pause, removal, key
	// rejected, keys changed), and replaced for the jobs that follow.
	run     context.Context
	stop    context.CancelCauseFunc
	valStop context.CancelFunc // cancels a running key validation

	failures  int       // consecutive retryable failures
	notBefore time.Time // no request before this (shared by the workers)

	delivered, failed, deadLettered int64
	logsSent, pointsSent            int64
	lastDelivery                    time.Time
}

func newTenantQueue(s *Sink, t Tenant) *tenantQueue {
	q := &tenantQueue{s: s, id: t.ID}
	q.run, q.stop = context.WithCancelCause(s.root)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.t = t
	q.cn, q.connErr = s.dd.newConn(t)
	if t.Paused {
		q.setLocked(func() { q.state = Paused })
		return q
	}
	q.validateLocked()
	return q
}

// effLocked is the state as reported: Active with a delivery in flight is
// Syncing; a removed tenant has none (0).
func (q *tenantQueue) effLocked() TenantState {
	if q.removed {
		return 0
	}
	if q.state == Active && q.inflight > 0 {
		return Syncing
	}
	return q.state
}

// setLocked applies f and moves the tenant between the state gauge's
// counts if its reported state changed.
func (q *tenantQueue) setLocked(f func()) {
	prev := q.effLocked()
	f()
	if next := q.effLocked(); next != prev {
		if prev != 0 {
			q.s.m.tenants.WithLabelValues(prev.String()).Dec()
		}
		if next != 0 {
			q.s.m.tenants.WithLabelValues(next.String()).Inc()
		}
	}
}

// restartRunLocked stops the in-flight jobs with cause and gives the next
// ones a fresh context.
func (q *tenantQueue) restartRunLocked(cause error) {
	q.stop(cause)
	q.run, q.stop = context.WithCancelCause(q.s.root)
}

// takeQueueLocked empties the queue and returns what was in it.
func (q *tenantQueue) takeQueueLocked() []*job {
	jobs := q.queue
	q.queue = nil
	return jobs
}

// enqueue adds a job, or completes it at once when the tenant cannot take
// it.
func (q *tenantQueue) enqueue(j *job) {
	q.mu.Lock()
	var out Outcome
	switch {
	case q.removed, q.state == Paused:
		out = Skipped
	case q.state == Error:
		out = Undeliverable
	default:
		switch {
		case j.needsSeries():
			// A window's totals go ahead of queued chunks of logs: they are
			// what dashboards wait for, and they are small.
			q.insertAfterSeriesLocked(j)
		case j.b.Backfill:
			q.queue = append(q.queue, j)
		default:
			// A backfill's logs wait behind the live traffic: history must
			// not delay what is happening now, nor take its share of
			// Datadog's rate limits first.
			i := len(q.queue)
			for i > 0 && q.queue[i-1].b.Backfill {
				i--
			}
			q.queue = slices.Insert(q.queue, i, j)
		}
		q.pumpLocked()
	}
	q.mu.Unlock()
	if out != 0 {
		go q.s.complete(q, j, out)
	}
}

// needsSeries says whether a job still has series to send.
func (j *job) needsSeries() bool { return len(j.b.Series) > 0 && !j.seriesDone }

// seriesQueued says whether a queued job still has series to send.
func (q *tenantQueue) seriesQueued() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue) > 0 && q.queue[0].needsSeries()
}

// insertAfterSeriesLocked queues j after the jobs that still have series to
// send (they are always at the front) and ahead of the rest.
func (q *tenantQueue) insertAfterSeriesLocked(j *job) {
	i := 0
	for i < len(q.queue) && q.queue[i].needsSeries() {
		i++
	}
	q.queue = slices.Insert(q.queue, i, j)
}

// pumpLocked starts workers while there are jobs nobody is taking yet.
func (q *tenantQueue) pumpLocked() {
	for q.state == Active && q.workers < q.s.cfg.Concurrency && q.workers-q.inflight < len(q.queue) {
		if !q.s.spawn(q.work) {
			return
		}
		q.workers++
	}
}

// work delivers jobs one after the other until there are none, or the
// tenant stops being Active.
func (q *tenantQueue) work() {
	for {
		q.mu.Lock()
		if q.state != Active || len(q.queue) == 0 || q.s.root.Err() != nil {
			q.workers--
			q.mu.Unlock()
			return
		}
		j := q.queue[0]
		q.queue[0] = nil
		q.queue = q.queue[1:]
		q.setLocked(func() { q.inflight++ })
		run, cn := q.run, q.cn
		q.mu.Unlock()

		out, requeue, later := q.process(run, cn, j)

		q.mu.Lock()
		q.setLocked(func() { q.inflight-- })
		if later {
			// Its series are in; its logs wait behind the queued series.
			q.insertAfterSeriesLocked(j)
			q.pumpLocked()
			q.mu.Unlock()
			continue
		}
		if requeue && !q.removed && q.state != Paused && q.state != Error && q.s.root.Err() == nil {
			// Keys changed under it: deliver it again once they validate,
			// series included (the account may have changed).
			j.seriesDone = false
			q.queue = append([]*job{j}, q.queue...)
			q.pumpLocked()
			q.mu.Unlock()
			continue
		}
		q.mu.Unlock()
		if requeue {
			out = q.outcomeNow()
		}
		q.s.complete(q, j, out)
	}
}

// outcomeNow is how a job that cannot be delivered now ends, given the
// tenant's state.
func (q *tenantQueue) outcomeNow() Outcome {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.s.root.Err() != nil:
		return Abandoned
	case q.state == Error:
		return Undeliverable
	}
	return Skipped
}

// record keeps the /status counters.
func (q *tenantQueue) record(o Outcome, j *job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch o {
	case Delivered:
		q.delivered++
		q.lastDelivery = q.s.now()
		if j.logsDone {
			q.logsSent += int64(len(j.b.Logs))
		}
		if j.seriesDone {
			q.pointsSent += int64(len(j.b.Series) * seriesPerTagSet)
		}
	case Undeliverable:
		q.failed++
	}
}

// stopped maps the cause of a cancelled job context to the job's fate.
func stopped(cause error) (out Outcome, requeue bool) {
	switch {
	case errors.Is(cause, errRejected):
		return Undeliverable, false
	case errors.Is(cause, errRemoved), errors.Is(cause, errPaused):
		return Skipped, false
	case errors.Is(cause, errReconfigured):
		return 0, true
	}
	return Abandoned, false
}

// update applies a changed tenants-file entry.
func (q *tenantQueue) update(t Tenant) {
	q.mu.Lock()
	defer q.mu.Unlock()
	old := q.t
	q.t = t
	// A new Generation asks for the keys to be checked again (a retry
	// through the API), as new keys do.
	keysChanged := old.APIKey != t.APIKey || old.AppKey != t.AppKey || old.Site != t.Site || old.Generation != t.Generation
	if keysChanged {
		q.cn, q.connErr = q.s.dd.newConn(t)
		q.validated = false
	}
	switch {
	case t.Paused:
		if q.state == Paused {
			return
		}
		if q.valStop != nil {
			q.valStop()
		}
		q.restartRunLocked(errPaused)
		q.setLocked(func() { q.state = Paused; q.lastErr = "" })
		q.s.completeAll(q, q.takeQueueLocked(), Skipped)
	case q.state == Paused && q.validated:
		q.setLocked(func() { q.state = Active })
		q.pumpLocked()
	case q.state == Paused, q.state == Error:
		// An Error tenant is given another chance whenever its entry
		// changes: the key may have been fixed, or re-enabled in Datadog.
		q.validateLocked()
	case keysChanged:
		// In-flight jobs go back in the queue and wait for the new keys.
		q.restartRunLocked(errReconfigured)
		q.validateLocked()
	}
}

// remove ends the tenant: its queued and in-flight batches are Skipped.
func (q *tenantQueue) remove() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.valStop != nil {
		q.valStop()
	}
	q.restartRunLocked(errRemoved)
	q.setLocked(func() { q.removed = true })
	q.s.completeAll(q, q.takeQueueLocked(), Skipped)
}

// abandon completes the queued batches as Abandoned (Close gave up).
func (q *tenantQueue) abandon() {
	q.mu.Lock()
	jobs := q.takeQueueLocked()
	q.mu.Unlock()
	for _, j := range jobs {
		q.s.complete(q, j, Abandoned)
	}
}

// rejectLocked puts the tenant in Error: Datadog refused a key. Everything
// queued and in flight completes Undeliverable; later batches too, at once.
func (q *tenantQueue) rejectLocked(advice string, err error) {
	q.restartRunLocked(errRejected)
	q.setLocked(func() {
		q.state = Error
		q.validated = false
		q.lastErr = advice
		q.lastCode = 0
		var se *statusError
		if errors.As(err, &se) {
			q.lastCode = se.code
		}
	})
	q.s.completeAll(q, q.takeQueueLocked(), Undeliverable)
}

// reject is rejectLocked for a key refused during delivery with cn. It does
// nothing when the keys changed since (the refusal was for the old ones).
func (q *tenantQueue) reject(cn *conn, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.cn != cn || q.removed || q.state == Error {
		return
	}
	advice := apiKeyAdvice(cn.site)
	q.s.log.Error("Datadog rejected the tenant's API key; its batches are undeliverable until its keys or site change, or a retry is asked for",
		zap.String("tenant", q.id), zap.String("site", cn.site.Name()), zap.String("advice", advice), zap.String("answer", err.Error()))
	q.rejectLocked(advice, err)
}

func apiKeyAdvice(site Site) string {
	return "Datadog rejected the API key: check the API key and the site (" + site.Name() + ")"
}

func appKeyAdvice(site Site) string {
	return "Datadog rejected the application key: check the application key and the site (" + site.Name() + ")"
}

// waitTurn sleeps until the tenant's backoff allows a request.
func (q *tenantQueue) waitTurn(ctx context.Context) error {
	q.mu.Lock()
	d := q.notBefore.Sub(q.s.mono())
	q.mu.Unlock()
	if d <= 0 {
		return nil
	}
	return q.s.sleep(ctx, d)
}

// backOff records a retryable failure and pushes the tenant's next request
// back: full jitter on its consecutive failures, and at least what the
// server asked. It returns the wait.
func (q *tenantQueue) backOff(be *backoffError) (time.Duration, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.failures++
	d := max(backoff(q.failures, min(baseBackoff, q.s.cfg.MaxBackoff), q.s.cfg.MaxBackoff), be.wait)
	if nb := q.s.mono().Add(d); nb.After(q.notBefore) {
		q.notBefore = nb
	}
	if q.state != Error {
		q.lastErr = be.Error()
	}
	return d, q.failures
}

func (q *tenantQueue) succeeded() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.failures = 0
	if q.state != Error {
		q.lastErr = ""
	}
}

// attempt sends a request until Datadog answers something other than
// "retry": it returns nil (accepted), a *statusError (400, 401/403, 413), or
// the cause of ctx's cancellation. There is no limit in time: the data
// must not be lost, and the tenant's queue backs up meanwhile.
func (q *tenantQueue) attempt(ctx context.Context, cn *conn, endpoint string, send func(context.Context) answer) error {
	for {
		if err := q.waitTurn(ctx); err != nil {
			return context.Cause(ctx)
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		start := time.Now()
		a := send(ctx)
		took := time.Since(start)
		q.s.m.requestSeconds.WithLabelValues(endpoint).Observe(took.Seconds())
		q.s.m.requests.WithLabelValues(endpoint, codeLabel(a)).Inc()
		err := classify(ctx, endpoint, a, cn.secrets()...)
		t := tallyOf(ctx)
		t.add(func(r *Receipt) {
			r.Requests++
			r.Duration += took
			if err != nil {
				r.StatusCode, r.Error = a.status, err.Error()
			}
			if a.status == http.StatusTooManyRequests {
				r.RateLimited = true
			}
		})
		if err == nil {
			q.succeeded()
			return nil
		}
		var be *backoffError
		if !errors.As(err, &be) {
			return err
		}
		t.add(func(r *Receipt) { r.Retries++ })
		q.s.m.retries.WithLabelValues(be.reason).Inc()
		wait, n := q.backOff(be)
		// 1st, 2nd, 4th, 8th... failure in a row: a storm is visible
		// without flooding the log.
		if bits.OnesCount(uint(n)) == 1 {
			q.s.log.Warn("Datadog request failed; retrying",
				zap.String("tenant", q.id), zap.String("endpoint", endpoint),
				zap.Int("consecutive_failures", n), zap.Duration("wait", wait), zap.String("error", be.Error()))
		}
	}
}

func codeLabel(a answer) string {
	switch {
	case a.err != nil:
		return "error"
	case a.status >= 200 && a.status < 300:
		return "2xx"
	case a.status == 400, a.status == 401, a.status == 403, a.status == 408, a.status == 413, a.status == 429:
		return itoa3(a.status)
	case a.status >= 500:
		return "5xx"
	}
	return "4xx"
}

func itoa3(n int) string {
	return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
}
