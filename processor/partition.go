package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/futureagi/prism-exporter/aggregate"
	"github.com/futureagi/prism-exporter/schemas"
)

// answer is a sink's or the dead-letter writer's reply, carried back to the
// partition goroutine that owns the tracker.
type answer struct {
	tok      ackToken
	dead     bool
	offset   int64 // dead letters
	accepted bool
	bytes    int64
	sentAt   time.Time
}

// partition is one assigned partition's pipeline for one generation.
type partition struct {
	p       *Processor
	gen     *kafka.Generation
	id      int
	label   string
	agg     *aggregate.Aggregator
	track   *tracker
	dec     schemas.Decoder
	answers chan answer
	exited  chan struct{}
	log     *zap.Logger
	out     *partialWriter

	hwm        int64 // high watermark last seen, -1 unknown
	lastFetch  time.Time
	lastCommit int64
	lastMeta   string
	lag        int64
	held       int64 // budget bytes charged by this pipeline and not yet released
	counts     recordCounters
}

// recordCounters are the per-record counters, resolved once: a label lookup
// per record would cost more than the rest of the bookkeeping.
type recordCounters struct {
	exported, skipped, replaySkipped prometheus.Counter
	noIntegration                    prometheus.Counter
	late, replayed, skippedReplay    prometheus.Counter
}

func (m *metrics) recordCounters() recordCounters {
	return recordCounters{
		exported:      m.records.WithLabelValues("exported"),
		skipped:       m.records.WithLabelValues("skipped"),
		replaySkipped: m.records.WithLabelValues("replay_skipped"),
		noIntegration: m.skipped.WithLabelValues("no_integration"),
		late:          m.lateRecords.WithLabelValues("late"),
		replayed:      m.lateRecords.WithLabelValues("replayed"),
		skippedReplay: m.lateRecords.WithLabelValues("skipped"),
	}
}

func (p *Processor) runPartition(gctx context.Context, gen *kafka.Generation, a kafka.PartitionAssignment) {
	log := p.log.With(zap.Int("partition", a.ID), zap.Int32("generation", gen.ID))
	pt := &partition{
		p: p, gen: gen, id: a.ID, label: strconv.Itoa(a.ID),
		answers: make(chan answer, 4096), exited: make(chan struct{}),
		log: log, hwm: -1, lastCommit: a.Offset, counts: p.metrics.recordCounters(),
	}
	defer close(pt.exited)
	start, meta, err := pt.resumePoint(gctx, a.Offset)
	if err != nil {
		log.Warn("reading the partition's commit metadata failed; the partition ends with this generation", zap.Error(err))
		return
	}
	pt.lastMeta = meta.String()
	pt.agg, err = aggregate.New(aggregate.Config{
		Partition:       int32(a.ID),
		AllowedLateness: p.cfg.AllowedLateness,
		MaxTagSets:      p.cfg.MaxTagSets,
		Clock:           p.clock,
	}, aggregate.Resume{Delivered: meta.delivered, LateFrom: meta.lateFrom})
	if err != nil {
		log.Error("cannot build the window aggregator", zap.Error(err))
		return
	}
	next := start
	if next < 0 {
		next = -1 // unknown until the first record
	}
	pt.track = newTracker(next)
	p.lagTotal.Add(0)
	defer func() { p.lagTotal.Add(-pt.lag); p.metrics.lag.DeleteLabelValues(pt.label) }()

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:       p.cfg.Brokers,
		Topic:         p.cfg.Topic,
		Partition:     a.ID,
		Dialer:        p.dialer,
		MinBytes:      1,
		MaxBytes:      16 << 20,
		MaxWait:       250 * time.Millisecond,
		QueueCapacity: 1024,
		ErrorLogger:   kafka.LoggerFunc(func(msg string, args ...any) { log.Debug("kafka reader: " + fmt.Sprintf(msg, args...)) }),
	})
	if start < 0 {
		start = pt.firstNeeded(gctx)
	}
	err = r.SetOffset(start)
	if err != nil {
		log.Error("cannot position the reader", zap.Error(err))
		_ = r.Close()
		return
	}
	log.Info("partition assigned", zap.Int64("offset", start), zap.Time("delivered_through", meta.delivered), zap.Int64("late_from", meta.lateFrom))

	// The partials writer outlives the generation's context by the drain:
	// what the aggregator handed it before the revoke is still written, and
	// committed, if Kafka takes it within DrainTimeout.
	pt.out = newPartialWriter(p.partialsOut, p.metrics, log)
	outCtx, stopOut := context.WithCancel(context.WithoutCancel(gctx))
	outDone := make(chan struct{})
	go func() { defer close(outDone); pt.out.run(outCtx) }()
	defer func() { stopOut(); <-outDone }()

	fetchCtx, stopFetch := context.WithCancel(gctx)
	batches := make(chan []kafka.Message, 4)
	free := make(chan []kafka.Message, 6)
	fetchDone := make(chan struct{})
	go func() { defer close(fetchDone); fetch(fetchCtx, r, batches, free, log) }()

	pt.loop(gctx, batches, free)

	stopFetch()
	_ = r.Close()
	<-fetchDone
	pt.drain()
	p.budget.release(pt.held)
}

func (pt *partition) charge(n int64)  { pt.held += n; pt.p.budget.charge(n) }
func (pt *partition) release(n int64) { pt.held -= n; pt.p.budget.release(n) }

// resumePoint reads the committed offset and the metadata the exporter
// committed with it.
func (pt *partition) resumePoint(ctx context.Context, assigned int64) (int64, resumeMeta, error) {
	p := pt.p
	res, err := p.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: p.cfg.Group, Topics: map[string][]int{p.cfg.Topic: {pt.id}}})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		return 0, resumeMeta{}, err
	}
	offset, meta := assigned, resumeMeta{lateFrom: -1}
	for _, op := range res.Topics[p.cfg.Topic] {
		if op.Partition != pt.id {
			continue
		}
		if op.Error != nil {
			return 0, resumeMeta{}, op.Error
		}
		offset = op.CommittedOffset
		m, err := parseResumeMeta(op.Metadata)
		if err != nil {
			pt.log.Warn("ignoring commit metadata not written by prism-exporter", zap.Error(err))
		} else {
			meta = m
		}
	}
	return offset, meta, nil
}

// firstNeeded is where a partition with no committed offset starts: the
// first record whose broker timestamp is at or after the earliest event time
// some integration exports, less the allowed lateness and a minute for the
// gateway's clock and its producer's batching. Decoding days of retained
// history that no integration exports would only delay the first export.
// Without a Horizon, or when an integration exports all history, or when
// the broker cannot tell, it is the start of the log.
func (pt *partition) firstNeeded(ctx context.Context) int64 {
	p := pt.p
	if p.deps.Horizon == nil {
		return kafka.FirstOffset
	}
	at, bounded := p.deps.Horizon.Earliest()
	if !bounded {
		return kafka.FirstOffset
	}
	at = at.Add(-p.cfg.AllowedLateness - time.Minute)
	res, err := p.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		p.cfg.Topic: {kafka.TimeOffsetOf(pt.id, at)},
	}})
	if err != nil {
		pt.log.Warn("finding the first offset an integration needs failed; starting at the start of the log", zap.Error(err))
		return kafka.FirstOffset
	}
	for _, po := range res.Topics[p.cfg.Topic] {
		if po.Partition != pt.id || po.Error != nil {
			continue
		}
		for off := range po.Offsets {
			pt.log.Info("no committed offset: starting at the first record an integration needs", zap.Time("from", at), zap.Int64("offset", off))
			return off
		}
		// No record at or after that time: everything retained is older.
		return kafka.LastOffset
	}
	return kafka.FirstOffset
}

// fetch reads records and hands them over in slices, so that a busy partition
// pays one channel hand-off per slice rather than per record. A partial slice
// waits at most a couple of milliseconds for more records. Handled slices come
// back on free: at 256 records a slice is some 40 KB, one per 256 records.
func fetch(ctx context.Context, r *kafka.Reader, out chan<- []kafka.Message, free <-chan []kafka.Message, log *zap.Logger) {
	const size = 256
	buf := make([]kafka.Message, 0, size)
	send := func() bool {
		select {
		case out <- buf:
			select {
			case buf = <-free:
			default:
				buf = make([]kafka.Message, 0, size)
			}
			return true
		case <-ctx.Done():
			return false
		}
	}
	// One deadline per slice, set when its first record arrives: a context
	// per record would cost an allocation and a timer each.
	dl := sliceDeadline{parent: ctx}
	defer dl.clear()
	dl.clear()
	for {
		m, err := r.FetchMessage(dl.ctx)
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				dl.clear()
				if !send() {
					return
				}
				continue
			}
			if ctx.Err() == nil {
				log.Warn("fetch failed", zap.Error(err))
			}
			return
		}
		if len(buf) == 0 {
			dl.start(2 * time.Millisecond)
		}
		buf = append(buf, m)
		if len(buf) == size {
			dl.clear()
			if !send() {
				return
			}
		}
	}
}

// sliceDeadline is the fetch context of the slice being filled.
type sliceDeadline struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelFunc
}

func (d *sliceDeadline) start(after time.Duration) {
	d.ctx, d.cancel = context.WithTimeout(d.parent, after)
}

func (d *sliceDeadline) clear() {
	if d.cancel != nil {
		d.cancel()
	}
	d.ctx, d.cancel = d.parent, nil
}

func (pt *partition) loop(ctx context.Context, batches <-chan []kafka.Message, free chan<- []kafka.Message) {
	p := pt.p
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	lastCommit := time.Now()
	pt.lastFetch = time.Now()
	paused := false
	for {
		in := batches
		if p.budget.over() {
			in = nil // stop fetching: the reader's queue fills and it stops asking the broker
			if !paused {
				paused = true
				p.metrics.paused.Inc()
			}
			// Answers to what is in flight free memory. With nothing in
			// flight, waiting would never end: hand on the partial chunks
			// of logs, which only delivery frees. Flushing while answers
			// are due would cut chunks small and multiply requests.
			if !pt.track.inFlight() {
				pt.agg.Flush(pt.emit)
			}
		} else {
			paused = false
		}
		select {
		case <-ctx.Done():
			return
		case msgs := <-in:
			pt.handle(ctx, msgs)
			clear(msgs) // the values may go as soon as their records are delivered
			select {
			case free <- msgs[:0]:
			default:
			}
		case a := <-pt.answers:
			pt.answered(a)
			// Traffic has stopped and the last answer is in: commit it now
			// rather than at the next interval. While records flow, the
			// interval alone paces commits.
			if pt.lag == 0 && !pt.track.inFlight() && time.Since(pt.lastFetch) >= p.cfg.IdleAfter {
				pt.commit(ctx)
				lastCommit = time.Now()
			}
		case <-tick.C:
			pt.advance(ctx)
			if time.Since(lastCommit) >= p.cfg.CommitInterval {
				pt.commit(ctx)
				lastCommit = time.Now()
			}
		}
	}
}

func (pt *partition) handle(ctx context.Context, msgs []kafka.Message) {
	p := pt.p
	started := time.Now()
	var size int64
	for i := range msgs {
		m := &msgs[i]
		size += int64(len(m.Value))
		ev := new(schemas.Event)
		if err := pt.dec.Decode(m.Value, ev); err != nil {
			pt.deadLetter(ctx, m, err)
		} else if length, ok := p.deps.Router.Route(ev.OrgID, ev.Timestamp); !ok {
			pt.counts.skipped.Inc()
			pt.counts.noIntegration.Inc()
		} else {
			switch pt.agg.Add(m.Offset, ev, length, pt.emit) {
			case aggregate.Skipped:
				pt.counts.skippedReplay.Inc()
				pt.counts.replaySkipped.Inc()
			case aggregate.Late:
				pt.counts.late.Inc()
				pt.counts.exported.Inc()
				pt.charge(eventSize(ev))
			case aggregate.Replayed:
				pt.counts.replayed.Inc()
				pt.counts.exported.Inc()
				pt.charge(eventSize(ev))
			default:
				pt.counts.exported.Inc()
				pt.charge(eventSize(ev))
			}
		}
		pt.track.next = m.Offset + 1
		pt.hwm = m.HighWaterMark
	}
	if n := len(msgs); n > 0 {
		p.consumed.Add(int64(n))
		p.metrics.bytes.Add(float64(size))
		p.metrics.decodeTime.Observe(time.Since(started).Seconds() / float64(n))
		pt.lastFetch = time.Now()
		pt.setLag(pt.hwm - pt.track.next)
	}
}

func (pt *partition) setLag(lag int64) {
	if lag < 0 {
		lag = 0
	}
	pt.p.lagTotal.Add(lag - pt.lag)
	pt.lag = lag
	pt.p.metrics.lag.WithLabelValues(pt.label).Set(float64(lag))
}

func (pt *partition) deadLetter(ctx context.Context, m *kafka.Message, err error) {
	p := pt.p
	reason := "invalid"
	var de *schemas.DecodeError
	if errors.As(err, &de) {
		reason = string(de.Reason)
	}
	p.metrics.records.WithLabelValues("dead_lettered").Inc()
	p.metrics.deadLetters.WithLabelValues(reason).Inc()
	p.deadCount.Add(1)
	pt.log.Warn("record dead-lettered", zap.Int64("offset", m.Offset), zap.String("reason", reason), zap.Error(err))
	offset := m.Offset
	pt.track.deadLetterPending(offset)
	dl := deadLetterOf(p.cfg.Topic, m, reason, err.Error())
	p.deps.DeadLetters.enqueue(ctx, dl, func() {
		pt.reply(answer{dead: true, offset: offset, accepted: true})
	})
}

// emit hands an aggregator's batch on and arranges for its answer to come
// back to this goroutine: its logs to the sink, its window shares to the
// partials topic (the combiner sends the metrics). It counts as accepted
// once both are.
func (pt *partition) emit(b aggregate.Batch) {
	p := pt.p
	tok := pt.track.sent(&b)
	var bytes int64
	for _, ev := range b.Logs {
		bytes += eventSize(ev)
	}
	p.metrics.batches.WithLabelValues(b.Kind.String()).Inc()
	sentAt := time.Now()
	done := func(accepted bool) {
		pt.reply(answer{tok: tok, accepted: accepted, bytes: bytes, sentAt: sentAt})
	}
	parts := b.RecordPartials
	if b.Partial != nil {
		parts = append(parts[:len(parts):len(parts)], b.Partial)
	}
	// This partition's series are a share, not a total: they reach
	// Datadog only summed with the other partitions' shares.
	b.Series, b.Partial, b.RecordPartials = nil, nil, nil
	switch {
	case len(parts) == 0:
		p.deps.Deliverer.Deliver(b, done)
	case len(b.Logs) == 0:
		pt.out.write(partialOut{parts: parts, done: done})
	default:
		both := joinAnswers(2, done)
		pt.out.write(partialOut{parts: parts, done: both})
		p.deps.Deliverer.Deliver(b, both)
	}
}

// reply carries an answer back, or drops it when this pipeline has ended: the
// generation is over and the next owner replays from the last commit.
func (pt *partition) reply(a answer) {
	select {
	case pt.answers <- a:
	case <-pt.exited: // its bytes were released with the rest of pt.held
	}
}

func (pt *partition) answered(a answer) {
	p := pt.p
	pt.release(a.bytes)
	if a.dead {
		pt.track.deadLetterDone(a.offset)
		return
	}
	p.metrics.deliveryWait.Observe(time.Since(a.sentAt).Seconds())
	if a.accepted {
		pt.track.answered(a.tok)
	}
}

// advance lets the frontier move and closes windows. The wall clock may move
// it only while the partition is caught up and quiet, so that a backlog of old
// records is windowed by event time, not closed early by the clock.
func (pt *partition) advance(ctx context.Context) {
	idle := false
	if time.Since(pt.lastFetch) >= pt.p.cfg.IdleAfter {
		idle = pt.caughtUp(ctx)
	}
	pt.agg.Advance(idle, pt.emit)
	pt.p.metrics.openWindows.WithLabelValues(pt.label).Set(float64(pt.agg.Stats().OpenWindows))
}

func (pt *partition) caughtUp(ctx context.Context) bool {
	p := pt.p
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := p.client.ListOffsets(qctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{p.cfg.Topic: {kafka.LastOffsetOf(pt.id)}}})
	if err != nil {
		return false
	}
	for _, po := range res.Topics[p.cfg.Topic] {
		if po.Partition == pt.id && po.Error == nil {
			pt.hwm = po.LastOffset
			next := pt.track.next
			if next < 0 {
				next = po.FirstOffset
			}
			pt.setLag(po.LastOffset - next)
			return next >= po.LastOffset
		}
	}
	return false
}

// commit commits the highest offset below which everything is handled, with
// the resume metadata for whoever reads the partition next.
func (pt *partition) commit(ctx context.Context) {
	if pt.track.next < 0 {
		return
	}
	p := pt.p
	held, holding := pt.agg.MinOffset()
	c, meta := pt.track.commitPoint(pt.agg.Frontier(), held, holding)
	ms := meta.String()
	if c < pt.lastCommit || (c == pt.lastCommit && ms == pt.lastMeta) {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	res, err := p.client.OffsetCommit(cctx, &kafka.OffsetCommitRequest{
		GroupID:      pt.gen.GroupID,
		GenerationID: int(pt.gen.ID),
		MemberID:     pt.gen.MemberID,
		Topics:       map[string][]kafka.OffsetCommit{p.cfg.Topic: {{Partition: pt.id, Offset: c, Metadata: ms}}},
	})
	if err == nil {
		for _, r := range res.Topics[p.cfg.Topic] {
			if r.Error != nil {
				err = r.Error
			}
		}
	}
	if err != nil {
		p.metrics.commits.WithLabelValues("error").Inc()
		pt.log.Warn("offset commit failed; retrying at the next interval", zap.Int64("offset", c), zap.Error(err))
		return
	}
	p.metrics.commits.WithLabelValues("ok").Inc()
	p.metrics.committed.WithLabelValues(pt.label).Set(float64(c))
	pt.lastCommit, pt.lastMeta = c, ms
}

// drain waits, bounded by DrainTimeout, for the sink to answer what is in
// flight, then commits for the last time. Open windows are not closed: the
// partition's next owner rebuilds them from the committed offset.
func (pt *partition) drain() {
	p := pt.p
	deadline := time.NewTimer(p.cfg.DrainTimeout)
	defer deadline.Stop()
	for pt.track.inFlight() {
		select {
		case a := <-pt.answers:
			pt.answered(a)
			continue
		case <-deadline.C:
			pt.log.Warn("drain timed out; unanswered batches stay uncommitted and will be replayed")
		}
		break
	}
	for {
		select {
		case a := <-pt.answers:
			pt.answered(a)
			continue
		default:
		}
		break
	}
	pt.commit(context.Background())
	pt.log.Info("partition released", zap.Int64("committed", pt.lastCommit))
}
