package sink

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"github.com/klauspost/compress/gzip"
	"go.uber.org/zap"

	"github.com/futureagi/prism-exporter/schemas"
)

// What Datadog silently drops although it answers 202 (see the API notes):
// it is not sent, but counted.
const (
	maxLogAge      = 18 * time.Hour
	maxPointAge    = time.Hour
	maxPointFuture = 10 * time.Minute
)

// process delivers one batch: its series, then its logs. requeue says the
// job must wait for the tenant's new keys rather than complete; later says
// its series went and its logs wait behind other windows' series.
func (q *tenantQueue) process(ctx context.Context, cn *conn, j *job) (out Outcome, requeue, later bool) {
	now := q.s.now()
	b := &j.b
	t := &j.tally
	ctx = withTally(ctx, t)

	logs := b.Logs
	if !j.logsDone {
		logs = q.dropOldLogs(logs, now)
		if old := int64(len(b.Logs) - len(logs)); old > 0 {
			t.add(func(r *Receipt) { r.LogsDropped = old })
		}
	} else {
		logs = nil
	}
	series := b.Series
	if j.seriesDone {
		series = nil
	}
	if len(series) > 0 {
		// Every point of a batch has the window's start as its timestamp.
		ts := b.Window.Start
		reason := ""
		switch {
		case ts.Before(now.Add(-maxPointAge)):
			reason = dropTooOld
		case ts.After(now.Add(maxPointFuture)):
			reason = dropFuture
		}
		if reason != "" {
			n := float64(len(series) * seriesPerTagSet)
			q.s.m.droppedOld.WithLabelValues(kindMetrics, reason).Add(n)
			q.s.m.items.WithLabelValues(kindMetrics, "dropped").Add(n)
			t.add(func(r *Receipt) { r.PointsDropped, r.PointsTooOld = int64(n), true })
			q.s.log.Debug("metric points not sent: Datadog would drop them",
				zap.String("tenant", q.id), zap.String("reason", reason), zap.Time("window_start", ts))
			series = nil
		}
	}
	if len(logs) == 0 && len(series) == 0 {
		switch {
		case j.logsDone && len(b.Logs) > 0, j.seriesDone:
			return Delivered, false, false // the rest went through earlier
		case len(b.Logs) > 0 || len(b.Series) > 0:
			return Skipped, false, false // everything was too old (or too new) for Datadog
		}
		return Delivered, false, false // an empty batch: nothing to send
	}

	// Series first: they are small and dashboards wait for them. Sending
	// them again after a failure of the logs is harmless: they are whole
	// totals, and Datadog keeps the last.
	if len(series) > 0 {
		if err := q.sendSeries(ctx, cn, b.Window, series); err != nil {
			out, requeue = q.failedWith(ctx, cn, err)
			return out, requeue, false
		}
		j.seriesDone = true
		t.add(func(r *Receipt) { r.Points = int64(len(series) * seriesPerTagSet) })
		// The partitions close a window at about the same moment, and each
		// close is a job: their series all go before any of their logs,
		// or the last partition's totals would wait behind the others'.
		if len(logs) > 0 && q.seriesQueued() {
			return 0, false, true
		}
	}
	if len(logs) > 0 {
		if err := q.sendLogs(ctx, cn, logs); err != nil {
			out, requeue = q.failedWith(ctx, cn, err)
			return out, requeue, false
		}
		j.logsDone = true
		t.mu.Lock()
		t.sent = int64(len(logs))
		t.mu.Unlock()
	}
	return Delivered, false, false
}

// failedWith is the fate of a job whose delivery stopped on err.
func (q *tenantQueue) failedWith(ctx context.Context, cn *conn, err error) (Outcome, bool) {
	if errors.Is(err, errKeyRejected) {
		q.reject(cn, err)
		q.mu.Lock()
		stale := q.cn != cn
		q.mu.Unlock()
		if stale {
			return 0, true // refused for keys since replaced: try the new ones
		}
		return Undeliverable, false
	}
	if ctx.Err() != nil {
		return stopped(context.Cause(ctx))
	}
	// attempt returns only the above; anything else is a bug. Not
	// committing is the safe way out.
	q.s.log.Error("delivery stopped by an unexpected error; batch abandoned", zap.String("tenant", q.id), zap.Error(err))
	return Abandoned, false
}

func (q *tenantQueue) dropOldLogs(logs []*schemas.Event, now time.Time) []*schemas.Event {
	cutoff := now.Add(-maxLogAge)
	old := 0
	for _, ev := range logs {
		if ev.Timestamp.Before(cutoff) {
			old++
		}
	}
	if old == 0 {
		return logs
	}
	q.s.m.droppedOld.WithLabelValues(kindLogs, dropTooOld).Add(float64(old))
	q.s.m.items.WithLabelValues(kindLogs, "dropped").Add(float64(old))
	kept := make([]*schemas.Event, 0, len(logs)-old)
	for _, ev := range logs {
		if !ev.Timestamp.Before(cutoff) {
			kept = append(kept, ev)
		}
	}
	return kept
}

// deadLetter hands a refused item to the DeadLetterer, retrying until it
// takes it or ctx ends: a refused item must not be lost either.
func (q *tenantQueue) deadLetter(ctx context.Context, kind, reason string, item []byte, detail string) error {
	msg := reason
	if detail != "" {
		msg += ": " + detail
	}
	q.s.log.Warn("Datadog refused an item; sent to the dead-letter topic",
		zap.String("tenant", q.id), zap.String("kind", kind), zap.String("reason", msg), zap.Int("bytes", len(item)))
	for attempt := 1; ; attempt++ {
		err := q.s.dl.DeadLetter(ctx, q.id, item, msg)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if bitsPow2(attempt) {
			q.s.log.Warn("dead-letter write failed; retrying", zap.String("tenant", q.id), zap.Int("attempt", attempt), zap.Error(err))
		}
		if q.s.sleep(ctx, backoff(attempt, baseBackoff, q.s.cfg.MaxBackoff)) != nil {
			return context.Cause(ctx)
		}
	}
	label := dlBadRequest
	if reason == reasonTooLarge {
		label = dlTooLarge
	}
	q.s.m.deadLettered.WithLabelValues(kind, label).Inc()
	if kind == kindLogs {
		if t := tallyOf(ctx); t != nil {
			t.mu.Lock()
			t.dead++
			t.mu.Unlock()
		}
	}
	q.s.m.items.WithLabelValues(kind, "dead_lettered").Inc()
	q.mu.Lock()
	q.deadLettered++
	q.mu.Unlock()
	return nil
}

// Dead-letter reasons (the start of the reason string).
const (
	reasonTooLarge   = "datadog: item too large"
	reasonBadRequest = "datadog: item refused as malformed"
)

// gzipTo compresses parts, in order, into dst with a pooled writer at the
// fastest level: on the logs path compression costs more than encoding,
// and Datadog's limits are on the uncompressed size anyway.
func (s *Sink) gzipTo(dst *bytes.Buffer, parts ...[]byte) error {
	zw, err := s.gzipWriter(dst)
	if err != nil {
		return err
	}
	defer s.gzips.put(zw)
	for _, p := range parts {
		if _, err := zw.Write(p); err != nil {
			return err
		}
	}
	return zw.Close()
}

// gzipWriter returns a spare gzip writer, or a new one, writing to dst at
// the fastest level. Give it back with s.gzips.put.
func (s *Sink) gzipWriter(dst io.Writer) (*gzip.Writer, error) {
	if zw, ok := s.gzips.get(); ok {
		zw.Reset(dst)
		return zw, nil
	}
	return gzip.NewWriterLevel(dst, gzip.BestSpeed)
}

func (s *Sink) getBuf() *bytes.Buffer {
	b, ok := s.bufs.get()
	if !ok {
		return new(bytes.Buffer)
	}
	b.Reset()
	return b
}

func (s *Sink) putBuf(b *bytes.Buffer) {
	if b.Cap() <= 8<<20 {
		s.bufs.put(b)
	}
}

func (s *Sink) getEncoder() *logEncoder {
	e, ok := s.encoders.get()
	if !ok {
		e = &logEncoder{service: s.cfg.Service}
	}
	e.reset()
	return e
}

func (s *Sink) putEncoder(e *logEncoder) {
	if cap(e.buf) <= 16<<20 {
		s.encoders.put(e)
	}
}

// spares is how many encoders, gzip writers and buffers the sink keeps
// between requests: enough for the requests of a busy moment on two cores,
// few enough that what they hold (about 1 MB each at most) stays small.
const spares = 16

// freeList keeps up to a fixed number of spare values. Unlike sync.Pool it
// survives garbage collections, which at full load come several times a
// second: with a sync.Pool most 500-log requests built their ~0.5 MB encoder
// and their gzip writer anew.
type freeList[T any] struct{ ch chan T }

func newFreeList[T any](n int) freeList[T] { return freeList[T]{make(chan T, n)} }

func (f freeList[T]) get() (T, bool) {
	select {
	case v := <-f.ch:
		return v, true
	default:
		var zero T
		return zero, false
	}
}

func (f freeList[T]) put(v T) {
	select {
	case f.ch <- v:
	default:
	}
}

// gzStream is one request's body being compressed as its logs are encoded.
// It holds a gzip writer (a few hundred KB of state) only while writing:
// finish hands it back before the request is sent, so a request waiting for
// its answer holds just its compressed body.
type gzStream struct {
	s   *Sink
	zw  *gzip.Writer
	out bytes.Buffer
	err error
	one [1]byte // a separator, written without allocating
}

// start begins a new body.
func (z *gzStream) start() {
	z.out.Reset()
	z.zw, z.err = z.s.gzipWriter(&z.out)
}

func (z *gzStream) write(c byte) {
	if z.err == nil {
		z.one[0] = c
		_, z.err = z.zw.Write(z.one[:])
	}
}

func (z *gzStream) writeItem(b []byte) {
	if z.err == nil {
		_, z.err = z.zw.Write(b)
	}
}

// finish closes the array and the gzip stream and returns the body, valid
// until the next start.
func (z *gzStream) finish() ([]byte, error) {
	z.write(']')
	if z.err == nil {
		z.err = z.zw.Close()
	}
	if z.zw != nil {
		z.s.gzips.put(z.zw)
		z.zw = nil
	}
	return z.out.Bytes(), z.err
}

func (s *Sink) getStream() *gzStream {
	if z, ok := s.streams.get(); ok {
		return z
	}
	return &gzStream{s: s}
}

func (s *Sink) putStream(z *gzStream) {
	z.zw = nil // left by an error between start and finish
	if z.out.Cap() <= 8<<20 {
		s.streams.put(z)
	}
}
