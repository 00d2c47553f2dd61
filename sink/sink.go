package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/futureagi/prism-exporter/aggregate"
)

// Config configures a Sink. The zero value of every field is a usable
// default.
type Config struct {
	// Service is the `service` of every log. Default "prism-gateway".
	Service string
	// BaseURL (PRISM_DATADOG_URL), when set, receives every call instead of
	// the tenants' sites: a proxy, or a Datadog stand-in in tests and demos.
	BaseURL string
	// HTTPTimeout bounds one request to Datadog, from dial to the end of the
	// answer. Default 30s.
	HTTPTimeout time.Duration
	// Concurrency is the number of requests in flight per tenant. Default 2.
	Concurrency int
	// MaxBackoff caps the wait between retries (server-requested waits may
	// be longer). Default 30s: after an outage, delivery resumes within that of Datadog coming back.
	MaxBackoff time.Duration
	// Clock tells the time used to decide what Datadog would drop as too
	// old or too far in the future. Default time.Now.
	Clock func() time.Time
}

// Defaults and bounds of Config.
const (
	DefaultService     = "prism-gateway"
	DefaultHTTPTimeout = 30 * time.Second
	DefaultConcurrency = 2
	DefaultMaxBackoff  = 30 * time.Second
	maxConcurrency     = 64
	// baseBackoff is the first retry's ceiling; it doubles per failure.
	baseBackoff = 500 * time.Millisecond
)

// validate fills the defaults and checks everything in one place; errors
// name the field and say what is accepted.
func (c Config) validate() (Config, error) {
	if c.Service == "" {
		c.Service = DefaultService
	}
	if c.HTTPTimeout == 0 {
		c.HTTPTimeout = DefaultHTTPTimeout
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	var errs []error
	if strings.TrimSpace(c.Service) != c.Service || len(c.Service) > 100 {
		errs = append(errs, fmt.Errorf("Service: must be at most 100 characters without surrounding spaces, got %q", c.Service))
	}
	if c.BaseURL != "" {
		if err := parseBaseURL(c.BaseURL); err != nil {
			errs = append(errs, fmt.Errorf("BaseURL (PRISM_DATADOG_URL): %w", err))
		}
	}
	if c.HTTPTimeout < 0 {
		errs = append(errs, fmt.Errorf("HTTPTimeout: must be positive, got %v", c.HTTPTimeout))
	}
	if c.Concurrency < 0 || c.Concurrency > maxConcurrency {
		errs = append(errs, fmt.Errorf("Concurrency: must be between 1 and %d requests per tenant, got %d", maxConcurrency, c.Concurrency))
	}
	if c.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("MaxBackoff: must be positive, got %v", c.MaxBackoff))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("sink config: %w", errors.Join(errs...))
	}
	return c, nil
}

// DeadLetterer records what Datadog refused for good (a malformed or
// oversized item), so that it is kept rather than lost. The processor
// writes to the dead-letter topic. item is the JSON Datadog refused; it
// holds no key.
type DeadLetterer interface {
	DeadLetter(ctx context.Context, tenant string, item []byte, reason string) error
}

// Outcome is how a batch ended.
type Outcome uint8

const (
	// Delivered: Datadog accepted the batch (items it refused for good were
	// dead-lettered; data it would have dropped as too old was not sent).
	Delivered Outcome = iota + 1
	// Undeliverable: the tenant is in Error (its key was refused). The
	// batch is recorded as not deliverable and may be committed.
	Undeliverable
	// Skipped: dropped on purpose: the tenant is not connected, was removed
	// or paused, or everything in the batch was too old for Datadog.
	Skipped
	// Abandoned: the sink closed before the batch could be delivered. It
	// must NOT be committed: it will be delivered after a restart.
	Abandoned
)

func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Undeliverable:
		return "undeliverable"
	case Skipped:
		return "skipped"
	case Abandoned:
		return "abandoned"
	}
	return "unknown"
}

// Committable reports whether the processor may commit the offsets behind a
// batch that ended this way.
func (o Outcome) Committable() bool { return o == Delivered || o == Undeliverable || o == Skipped }

// Why a tenant's in-flight work was stopped, carried as context causes.
var (
	errClosed       = errors.New("sink closed")
	errRemoved      = errors.New("tenant removed from the tenants file")
	errPaused       = errors.New("tenant paused")
	errRejected     = errors.New("tenant in error: Datadog rejected its key")
	errReconfigured = errors.New("tenant keys or site changed")
)

// Sink delivers batches to Datadog. It is safe for concurrent use.
type Sink struct {
	cfg Config
	log *zap.Logger
	dl  DeadLetterer
	m   *sinkMetrics
	dd  *ddClient
	now func() time.Time
	// sleep waits between retries and mono tells the time the waits are
	// measured with; tests replace both to check waits without waiting.
	sleep func(ctx context.Context, d time.Duration) error
	mono  func() time.Time

	encoders freeList[*logEncoder]
	gzips    freeList[*gzip.Writer]
	bufs     freeList[*bytes.Buffer]
	streams  freeList[*gzStream]

	routes atomic.Pointer[map[string]route]

	regMu sync.Mutex // serialises SetTenants

	mu     sync.RWMutex
	queues map[string]*tenantQueue
	closed bool

	root       context.Context // cancelled when Close gives up waiting
	rootCancel context.CancelCauseFunc

	jobs      sync.WaitGroup // batches accepted and not completed
	goMu      sync.Mutex
	goStopped bool
	goWG      sync.WaitGroup // workers and validators

	queuedBytes atomic.Int64
	abandoned   atomic.Int64
}

// New makes a Sink with no tenants: call SetTenants (or WatchTenantsFile).
// reg receives the sink's self-metrics (nil: not exported); log must not be
// nil (use zap.NewNop()); dl receives what Datadog refuses for good.
func New(cfg Config, reg prometheus.Registerer, log *zap.Logger, dl DeadLetterer) (*Sink, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if log == nil {
		return nil, errors.New("sink: a logger is required (zap.NewNop() for none)")
	}
	if dl == nil {
		return nil, errors.New("sink: a DeadLetterer is required: refused items must be kept somewhere")
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newSinkMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := &Sink{
		cfg:      cfg,
		log:      log,
		dl:       dl,
		m:        m,
		dd:       newDDClient(cfg),
		now:      cfg.Clock,
		sleep:    sleepCtx,
		mono:     time.Now,
		queues:   make(map[string]*tenantQueue),
		encoders: newFreeList[*logEncoder](spares),
		gzips:    newFreeList[*gzip.Writer](spares),
		bufs:     newFreeList[*bytes.Buffer](spares),
		streams:  newFreeList[*gzStream](spares),
	}
	s.root, s.rootCancel = context.WithCancelCause(context.Background())
	empty := map[string]route{}
	s.routes.Store(&empty)
	return s, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// spawn runs f on a goroutine that Close waits for, unless Close already
// has.
func (s *Sink) spawn(f func()) bool {
	s.goMu.Lock()
	defer s.goMu.Unlock()
	if s.goStopped {
		return false
	}
	s.goWG.Add(1)
	go func() {
		defer s.goWG.Done()
		f()
	}()
	return true
}

// job is one batch on its way.
type job struct {
	b     aggregate.Batch
	done  func(Receipt)
	tally tally
	bytes int64
	// logsDone: the logs went through; only the series remain (a job put
	// back in the queue after a key change does not resend its logs).
	logsDone bool
	// seriesDone: the series went through and the job waits in the queue
	// for its logs, behind other windows' series.
	seriesDone bool
	completed  atomic.Bool
}

// Deliver queues b on its tenant's queue and returns at once. done is called
// exactly once, never from within Deliver, with the batch's Receipt.
func (s *Sink) Deliver(b aggregate.Batch, done func(Receipt)) {
	if done == nil {
		done = func(Receipt) {}
	}
	j := &job{b: b, done: done, bytes: estimateBytes(b)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		s.abandoned.Add(1)
		s.m.batches.WithLabelValues(Abandoned.String()).Inc()
		go done(Receipt{Outcome: Abandoned})
		return
	}
	q := s.queues[b.Tenant]
	s.jobs.Add(1)
	s.mu.RUnlock()

	s.queuedBytes.Add(j.bytes)
	s.m.queuedBytes.Add(float64(j.bytes))
	s.m.queuedBatches.Inc()
	if q == nil {
		go s.complete(nil, j, Skipped)
		return
	}
	q.enqueue(j)
}

// complete ends a job: exactly once, whatever races to end it.
func (s *Sink) complete(q *tenantQueue, j *job, o Outcome) {
	if !j.completed.CompareAndSwap(false, true) {
		return
	}
	s.queuedBytes.Add(-j.bytes)
	s.m.queuedBytes.Sub(float64(j.bytes))
	s.m.queuedBatches.Dec()
	s.m.batches.WithLabelValues(o.String()).Inc()
	if o != Delivered {
		// Delivered items are counted as they go; the others here.
		if !j.logsDone && len(j.b.Logs) > 0 {
			s.m.items.WithLabelValues(kindLogs, o.String()).Add(float64(len(j.b.Logs)))
		}
		if len(j.b.Series) > 0 && !j.seriesDone {
			s.m.items.WithLabelValues(kindMetrics, o.String()).Add(float64(len(j.b.Series) * seriesPerTagSet))
		}
	}
	if o == Abandoned {
		s.abandoned.Add(1)
	}
	if q != nil {
		q.record(o, j)
	}
	r := j.receipt(o)
	if o == Undeliverable && r.Error == "" && q != nil {
		// Queued while the tenant was in Error: no request of its own says
		// why, the tenant's refusal does.
		q.mu.Lock()
		r.Error, r.StatusCode = q.lastErr, q.lastCode
		q.mu.Unlock()
	}
	j.done(r)
	s.jobs.Done()
}

// completeAll ends jobs taken out of a queue, on a goroutine of its own:
// callers hold locks, and done callbacks must never run under them.
func (s *Sink) completeAll(q *tenantQueue, jobs []*job, o Outcome) {
	if len(jobs) == 0 {
		return
	}
	go func() {
		for _, j := range jobs {
			s.complete(q, j, o)
		}
	}()
}

// estimateBytes is roughly the memory a batch holds until it completes: the
// events with their strings, and the series. It feeds the processor's
// memory budget through QueuedBytes.
func estimateBytes(b aggregate.Batch) int64 {
	n := int64(256)
	for _, ev := range b.Logs {
		n += 400 + int64(len(ev.RequestID)+len(ev.TraceID)+len(ev.Model)+len(ev.ResolvedModel)+
			len(ev.Provider)+len(ev.ErrorMessage)+len(ev.ErrorCode)+len(ev.AuthKeyID)+len(ev.UserID)+
			len(ev.SessionID)+len(ev.OrgID)+len(ev.GatewayID)+len(ev.RoutingStrategy))
	}
	for _, sr := range b.Series {
		n += 300 + int64(len(sr.Tags.Model)+len(sr.Tags.Provider)+len(sr.Tags.Gateway)+len(sr.Tags.Routing))
	}
	return n
}

// QueuedBytes is the estimated memory held by batches accepted and not yet
// completed, for the processor's memory budget.
func (s *Sink) QueuedBytes() int64 { return s.queuedBytes.Load() }

// Close stops accepting batches (later ones complete Abandoned), lets the
// queued and in-flight ones finish until ctx ends, then completes the rest
// as Abandoned. It returns an error when some were abandoned.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	before := s.abandoned.Load()
	drained := make(chan struct{})
	go func() {
		s.jobs.Wait()
		close(drained)
	}()
	var waitErr error
	select {
	case <-drained:
	case <-ctx.Done():
		waitErr = ctx.Err()
	}
	// Stop whatever is still running: requests and waits end at once, and
	// their batches complete Abandoned.
	s.rootCancel(errClosed)
	s.mu.RLock()
	qs := make([]*tenantQueue, 0, len(s.queues))
	for _, q := range s.queues {
		qs = append(qs, q)
	}
	s.mu.RUnlock()
	for _, q := range qs { // done callbacks run without the sink's locks
		q.abandon()
	}
	<-drained

	s.goMu.Lock()
	s.goStopped = true
	s.goMu.Unlock()
	s.goWG.Wait()

	if waitErr != nil {
		n := s.abandoned.Load() - before
		return fmt.Errorf("sink: closed before delivering %d batches (they will be delivered after a restart): %w", n, waitErr)
	}
	return nil
}
