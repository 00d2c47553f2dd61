package processor

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/time/rate"
	"math"
	"slices"
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
	tok      uint64 // the Ledger's
	dead     bool
	accepted bool
	bytes    int64
	sentAt   time.Time
	// A logs batch's: the segment its logs belong to, their windows and
	// what became of them.
	seg      *heldSegment
	tenant   string
	spans    []aggregate.LogSpan
	delivery aggregate.Delivery
}

// partition is one partition's pipeline: an assigned partition's for one
// generation of the group, or a backfill's reader of one partition.
type partition struct {
	p       *Processor
	gen     *kafka.Generation // nil for a backfill
	spec    pipeline
	id      int
	label   string
	seg     *aggregate.Segmenter
	ledger  *aggregate.Ledger
	dec     schemas.Decoder
	answers chan answer
	exited  chan struct{}
	log     *zap.Logger
	out     *partialWriter
	// source names this pipeline's shares (Partial.Source): the partition
	// for the live pipeline, a source of its own for a backfill's reader.
	source int64
	// segs are the segments whose partials wait for their logs' answers,
	// oldest first; the last is the open segment, whose logs are going out.
	segs []*heldSegment

	next int64 // the next offset to read: every record below was handled
	// shared: a segment's shares went out since the last progress record;
	// lastProgress: when that record went.
	shared       bool
	lastProgress time.Time
	hwm          int64 // high watermark last seen, -1 unknown
	lastFetch    time.Time
	lastCommit   int64
	lag          int64
	held         int64 // budget bytes charged by this pipeline and not yet released
	counts       recordCounters
}

// recordCounters are the per-record counters, resolved once: a label lookup
// per record would cost more than the rest of the bookkeeping.
type recordCounters struct {
	exported, skipped prometheus.Counter
	noIntegration     prometheus.Counter
	tooOld            prometheus.Counter
}

func (m *metrics) recordCounters() recordCounters {
	return recordCounters{
		exported:      m.records.WithLabelValues("exported"),
		skipped:       m.records.WithLabelValues("skipped"),
		noIntegration: m.skipped.WithLabelValues("no_integration"),
		tooOld:        m.lateRecords.WithLabelValues("too_old"),
	}
}

// pipeline is what sets a partition pipeline apart: where it starts and
// stops, which records it takes, and where its commits go.
type pipeline struct {
	partition int
	// source names its shares in the partials (Partial.Source).
	source int64
	// start is the offset of its first segment: a commit point.
	start int64
	// end, when >= 0, is the offset it stops before (a backfill's);
	// a live pipeline follows its partition until revoked.
	end int64
	// route says whether a record is exported, and in windows of which
	// length.
	route func(tenant string, eventTime time.Time) (time.Duration, bool)
	// commit makes offset the durable resume point.
	commit func(ctx context.Context, offset int64) error
	// limit, when set, caps the records read per second (a backfill's).
	limit *rate.Limiter
	// backfill marks its logs for the sink's lower priority, and keeps it
	// out of the live lag and readiness.
	backfill bool
	// logs, when set, hears what became of every window's logs, once per
	// segment: share says whether the window got a share (false: it was
	// too old for points).
	logs  func(tenant string, sp aggregate.LogSpan, d aggregate.Delivery, share bool)
	log   *zap.Logger
	label string
}

func (p *Processor) runPartition(gctx context.Context, gen *kafka.Generation, a kafka.PartitionAssignment) {
	log := p.log.With(zap.Int("partition", a.ID), zap.Int32("generation", gen.ID))
	pt := &partition{p: p, gen: gen, id: a.ID, log: log}
	start, err := pt.resumePoint(gctx, a.Offset)
	if err == nil && start < 0 {
		start = pt.firstNeeded(gctx)
	}
	if err == nil && start < 0 {
		start, err = pt.resolve(gctx, start)
	}
	if err != nil {
		log.Warn("finding where to start the partition failed; the partition ends with this generation", zap.Error(err))
		return
	}
	p.runPipeline(gctx, pipeline{
		partition: a.ID, source: int64(a.ID), start: start, end: -1,
		route: p.deps.Router.Route, commit: pt.groupCommit, log: log, label: strconv.Itoa(a.ID),
	}, pt)
}

// runPipeline runs one partition pipeline from spec.start until ctx ends
// or, for a backfill, spec.end is reached; then it drains. pt, when not
// nil, is a partition already holding the group's generation.
func (p *Processor) runPipeline(gctx context.Context, spec pipeline, pt *partition) {
	if pt == nil {
		pt = &partition{p: p, id: spec.partition}
	}
	pt.spec, pt.log, pt.label, pt.source = spec, spec.log, spec.label, spec.source
	pt.answers, pt.exited = make(chan answer, 4096), make(chan struct{})
	pt.hwm, pt.counts = -1, p.metrics.recordCounters()
	log, start := spec.log, spec.start
	defer close(pt.exited)
	var err error
	pt.seg, err = aggregate.NewSegmenter(aggregate.Config{
		Partition:  int32(spec.partition),
		Source:     spec.source,
		MaxTagSets: p.cfg.MaxTagSets,
		Clock:      p.clock,
	})
	if err != nil {
		log.Error("cannot build the segmenter", zap.Error(err))
		return
	}
	pt.next, pt.lastCommit = start, start
	pt.ledger = aggregate.NewLedger(start)
	pt.segs = []*heldSegment{{}}
	if !spec.backfill {
		p.lagTotal.Add(0)
		defer func() { p.lagTotal.Add(-pt.lag); p.metrics.lag.DeleteLabelValues(pt.label) }()
	}

	// The partials writer outlives the generation's context by the drain:
	// what the segmenter handed it before the revoke is still written, and
	// committed, if Kafka takes it within DrainTimeout.
	pt.out = newPartialWriter(p.partialsOut, p.metrics, log)
	outCtx, stopOut := context.WithCancel(context.WithoutCancel(gctx))
	outDone := make(chan struct{})
	go func() { defer close(outDone); pt.out.run(outCtx) }()
	defer func() { stopOut(); <-outDone }()
	// Before this run's first partial: the combiners drop what an earlier
	// run wrote of this partition's segments from start on, which this run
	// writes again (segments ending elsewhere).
	pt.out.reset(spec.source, start, p.partialsPartitions.Load())

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:       p.cfg.Brokers,
		Topic:         p.cfg.Topic,
		Partition:     spec.partition,
		Dialer:        p.dialer,
		MinBytes:      1,
		MaxBytes:      16 << 20,
		MaxWait:       250 * time.Millisecond,
		QueueCapacity: 1024,
		ErrorLogger:   kafka.LoggerFunc(func(msg string, args ...any) { log.Debug("kafka reader: " + fmt.Sprintf(msg, args...)) }),
	})
	if err := r.SetOffset(start); err != nil {
		log.Error("cannot position the reader", zap.Error(err))
		_ = r.Close()
		return
	}
	log.Info("partition assigned", zap.Int64("offset", start))

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
	if pt.finished() && pt.lastCommit >= spec.end {
		pt.sayDone()
	}
}

// sayDone tells every combiner that a backfill's source will send nothing
// more: the windows it fed need not wait for it to read past them.
func (pt *partition) sayDone() {
	ps := make([]aggregate.SourceProgress, max(1, pt.p.partialsPartitions.Load()))
	for i := range ps {
		ps[i] = aggregate.SourceProgress{Source: pt.source, Committed: pt.lastCommit, MaxEvent: math.MaxInt64, To: i}
	}
	written := make(chan bool, 1)
	pt.out.write(partialOut{progress: ps, done: func(ok bool) { written <- ok }})
	select {
	case <-written:
	case <-time.After(pt.p.cfg.DrainTimeout):
		pt.log.Warn("the backfill's last progress record was not written; its windows go out after the combiner's grace")
	}
}

func (pt *partition) charge(n int64)  { pt.held += n; pt.p.budget.charge(n) }
func (pt *partition) release(n int64) { pt.held -= n; pt.p.budget.release(n) }

// resumePoint reads the committed offset: a segment boundary, where this
// run starts its first segment. -1 (kafka.LastOffset) or -2 when none.
func (pt *partition) resumePoint(ctx context.Context, assigned int64) (int64, error) {
	p := pt.p
	res, err := p.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: p.cfg.Group, Topics: map[string][]int{p.cfg.Topic: {pt.id}}})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		return 0, err
	}
	offset := assigned
	for _, op := range res.Topics[p.cfg.Topic] {
		if op.Partition != pt.id {
			continue
		}
		if op.Error != nil {
			return 0, op.Error
		}
		offset = op.CommittedOffset
	}
	return offset, nil
}

// resolve turns kafka.FirstOffset or kafka.LastOffset into the offset it
// stands for now: the run's first segment, and the reset the combiners
// get, start at a real offset.
func (pt *partition) resolve(ctx context.Context, special int64) (int64, error) {
	p := pt.p
	req := kafka.FirstOffsetOf(pt.id)
	if special == kafka.LastOffset {
		req = kafka.LastOffsetOf(pt.id)
	}
	res, err := p.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{p.cfg.Topic: {req}}})
	if err != nil {
		return 0, err
	}
	for _, po := range res.Topics[p.cfg.Topic] {
		if po.Partition != pt.id {
			continue
		}
		if po.Error != nil {
			return 0, po.Error
		}
		if special == kafka.LastOffset {
			return po.LastOffset, nil
		}
		return po.FirstOffset, nil
	}
	return 0, fmt.Errorf("no offsets for partition %d in the answer", pt.id)
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
	lastCut := time.Now()
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
			// flight, waiting would never end: hand on the buffered logs,
			// which only delivery frees. Flushing while answers are due
			// would cut chunks small and multiply requests.
			if !pt.ledger.InFlight() {
				pt.seg.FlushLogs(pt.emit)
			}
		} else {
			paused = false
		}
		select {
		case <-ctx.Done():
			return
		case msgs := <-in:
			if pt.spec.limit != nil {
				if err := pt.spec.limit.WaitN(ctx, len(msgs)); err != nil {
					return
				}
			}
			pt.handle(ctx, msgs)
			clear(msgs) // the values may go as soon as their records are delivered
			select {
			case free <- msgs[:0]:
			default:
			}
			if pt.finished() {
				return
			}
		case a := <-pt.answers:
			pt.answered(a)
			// The answer that completes a segment moves the commit point:
			// commit at once. Every log accepted and not committed is one
			// a kill -9 would send again.
			if pt.ledger.Point() > pt.lastCommit {
				pt.commit(ctx)
			}
		case <-tick.C:
			// A segment ends every commit interval, or sooner once the
			// partition is quiet: its partials and logs go, and its end
			// becomes committable once they are accepted.
			idle := time.Since(pt.lastFetch) >= p.cfg.IdleAfter
			if time.Since(lastCut) >= p.cfg.CommitInterval || (idle && !pt.seg.Empty()) {
				pt.cut()
				lastCut = time.Now()
			}
			pt.commit(ctx)
			if pt.spec.backfill {
				if idle && pt.hwm >= 0 && pt.next >= pt.hwm {
					// Read to the partition's end, below the backfill's
					// end: the offsets between are gone or were never
					// written.
					pt.next = max(pt.next, pt.spec.end)
				}
				if pt.finished() {
					return
				}
				continue
			}
			p.metrics.openWindows.WithLabelValues(pt.label).Set(float64(pt.seg.Stats().Windows))
		}
	}
}

// finished says a backfill's pipeline has read up to its end.
func (pt *partition) finished() bool { return pt.spec.end >= 0 && pt.next >= pt.spec.end }

// cut ends the current segment at the next offset to read.
func (pt *partition) cut() {
	pt.seg.Cut(pt.next, pt.lastCommit, pt.emit)
	pt.ledger.Cut(pt.next)
	// A cut that touched no window (its records too old for points) sent
	// logs only: its segment closes all the same, so that what became of
	// them is told without waiting for a segment with shares.
	if open := pt.segs[len(pt.segs)-1]; open.parts == nil && (open.waiting > 0 || open.byWin != nil) {
		pt.segs = append(pt.segs, &heldSegment{})
		pt.releaseHeld()
	}
}

func (pt *partition) handle(ctx context.Context, msgs []kafka.Message) {
	p := pt.p
	started := time.Now()
	var size int64
	for i := range msgs {
		m := &msgs[i]
		if pt.spec.end >= 0 && m.Offset >= pt.spec.end {
			// A backfill stops at its end: what follows is the live
			// pipeline's. No record lies between the last read and it.
			pt.next = max(pt.next, pt.spec.end)
			break
		}
		size += int64(len(m.Value))
		ev := new(schemas.Event)
		if err := pt.dec.Decode(m.Value, ev); err != nil {
			pt.deadLetter(ctx, m, err)
		} else if length, ok := pt.spec.route(ev.OrgID, ev.Timestamp); !ok {
			pt.counts.skipped.Inc()
			pt.counts.noIntegration.Inc()
		} else {
			pt.counts.exported.Inc()
			pt.charge(eventSize(ev))
			if pt.seg.Add(m.Offset, ev, length, pt.emit) == aggregate.TooOld {
				pt.counts.tooOld.Inc()
			}
		}
		pt.next = m.Offset + 1
		pt.hwm = m.HighWaterMark
	}
	if n := len(msgs); n > 0 {
		p.consumed.Add(int64(n))
		p.metrics.bytes.Add(float64(size))
		p.metrics.decodeTime.Observe(time.Since(started).Seconds() / float64(n))
		pt.lastFetch = time.Now()
		pt.setLag(pt.hwm - pt.next)
	}
}

func (pt *partition) setLag(lag int64) {
	if pt.spec.backfill {
		return
	}
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
	tok := pt.ledger.Sent(m.Offset)
	dl := deadLetterOf(p.cfg.Topic, m, reason, err.Error())
	p.deps.DeadLetters.enqueue(ctx, dl, func() {
		pt.reply(answer{tok: tok, dead: true, accepted: true})
	})
}

// emit hands a segmenter's batch on and arranges for its answer to come
// back to this goroutine: logs to the sink, a segment's partials to the
// partials topic (the combiner sends the metrics).
func (pt *partition) emit(b aggregate.Batch) {
	p := pt.p
	tok := pt.ledger.Sent(b.MinOffset)
	var bytes int64
	for _, ev := range b.Logs {
		bytes += eventSize(ev)
	}
	p.metrics.batches.WithLabelValues(b.Kind.String()).Inc()
	sentAt := time.Now()
	b.Backfill = pt.spec.backfill
	open := pt.segs[len(pt.segs)-1]
	if b.Kind == aggregate.KindSegment {
		open.parts = b.Partials
		open.done = func(accepted bool) {
			pt.reply(answer{tok: tok, accepted: accepted, sentAt: sentAt})
		}
		pt.segs = append(pt.segs, &heldSegment{})
		pt.releaseHeld()
		return
	}
	open.waiting++
	spans, tenant := b.Spans, b.Tenant
	p.deps.Deliverer.Deliver(b, func(r Receipt) {
		pt.reply(answer{tok: tok, accepted: r.Accepted, bytes: bytes, sentAt: sentAt, seg: open, tenant: tenant, spans: spans, delivery: r.Delivery})
	})
}

// heldSegment is a segment's partials waiting for the answers to its logs:
// each partial carries what became of its window's logs (the sync history's
// log figures), known once every logs batch of the segment is answered.
// Holding them adds the logs' delivery time to the window's, not to the
// commit, which waits for both anyway.
type heldSegment struct {
	parts   []*aggregate.Partial // nil until the cut
	done    func(accepted bool)
	waiting int // logs batches not yet answered
	// abandoned: a logs batch was abandoned (the run is ending).
	abandoned bool
	byWin     map[heldKey]*aggregate.Delivery
}

type heldKey struct {
	tenant        string
	start, length int64
}

// logsAnswered counts a logs batch's answer in its segment.
func (pt *partition) logsAnswered(a answer) {
	tenant := a.tenant
	h := a.seg
	h.waiting--
	if !a.accepted {
		// Abandoned: the run is ending, and the segment will be replayed.
		// Its partials, and those after it, never go.
		h.abandoned = true
		return
	}
	// What was dropped goes to the oldest windows first: Datadog drops
	// logs by age. The requests count once, in the first window.
	spans := slices.Clone(a.spans)
	slices.SortFunc(spans, func(x, y aggregate.LogSpan) int { return x.Window.Start.Compare(y.Window.Start) })
	dropped := a.delivery.LogsDropped
	for i, sp := range spans {
		d := aggregate.Delivery{Status: a.delivery.Status}
		if i == 0 {
			d = a.delivery
		}
		d.LogsDropped = min(dropped, sp.Logs)
		d.Logs = sp.Logs - d.LogsDropped
		dropped -= d.LogsDropped
		if h.byWin == nil {
			h.byWin = make(map[heldKey]*aggregate.Delivery, len(spans))
		}
		k := heldKey{tenant: tenant, start: sp.Window.Start.UnixNano(), length: int64(sp.Window.Length)}
		if t := h.byWin[k]; t != nil {
			t.Add(d)
		} else {
			h.byWin[k] = &d
		}
	}
}

// releaseHeld writes out, oldest first, the segments whose logs are all
// answered: in order, as the combiners expect a source's segments.
func (pt *partition) releaseHeld() {
	for len(pt.segs) > 1 && pt.segs[0].waiting == 0 && !pt.segs[0].abandoned {
		h := pt.segs[0]
		pt.segs[0] = nil
		pt.segs = pt.segs[1:]
		hear := pt.spec.logs
		for _, part := range h.parts {
			k := heldKey{tenant: part.Tenant, start: part.Window.Start.UnixNano(), length: int64(part.Window.Length)}
			if d := h.byWin[k]; d != nil {
				part.Delivery = *d
				delete(h.byWin, k)
				if hear != nil {
					hear(k.tenant, aggregate.LogSpan{Window: part.Window, Logs: d.Logs + d.LogsDropped}, *d, true)
				}
			}
		}
		if hear != nil {
			for k, d := range h.byWin {
				hear(k.tenant, aggregate.LogSpan{Window: aggregate.Window{Start: time.Unix(0, k.start).UTC(), Length: time.Duration(k.length)}, Logs: d.Logs + d.LogsDropped}, *d, false)
			}
		}
		if h.done == nil {
			continue // a cut that touched no window: its logs only
		}
		pt.shared = true
		pt.out.write(partialOut{parts: h.parts, done: h.done})
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
	if !a.dead {
		p.metrics.deliveryWait.Observe(time.Since(a.sentAt).Seconds())
	}
	if a.seg != nil {
		pt.logsAnswered(a)
		pt.releaseHeld()
	}
	// An abandoned batch stays pending: its offsets are never committed,
	// and the next owner replays them.
	if a.accepted {
		pt.ledger.Done(a.tok)
	}
}

// commit commits the Ledger's point: the last segment boundary below which
// everything is accepted.
func (pt *partition) commit(ctx context.Context) {
	p := pt.p
	c := pt.ledger.Point()
	if c <= pt.lastCommit {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := pt.spec.commit(cctx, c); err != nil {
		p.metrics.commits.WithLabelValues("error").Inc()
		pt.log.Warn("offset commit failed; retrying at the next interval", zap.Int64("offset", c), zap.Error(err))
		return
	}
	p.metrics.commits.WithLabelValues("ok").Inc()
	if !pt.spec.backfill {
		p.metrics.committed.WithLabelValues(pt.label).Set(float64(c))
	}
	pt.lastCommit = c
	pt.sayProgress()
}

// groupCommit commits offset for the group's generation.
func (pt *partition) groupCommit(ctx context.Context, offset int64) error {
	p := pt.p
	res, err := p.client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID:      pt.gen.GroupID,
		GenerationID: int(pt.gen.ID),
		MemberID:     pt.gen.MemberID,
		Topics:       map[string][]kafka.OffsetCommit{p.cfg.Topic: {{Partition: pt.id, Offset: offset, Metadata: commitMetadata}}},
	})
	if err != nil {
		return err
	}
	for _, r := range res.Topics[p.cfg.Topic] {
		if r.Error != nil {
			return r.Error
		}
	}
	return nil
}

// progressEvery is how often a busy partition tells every combiner how far
// it has got: the combiners that hold none of its current tenants learn it
// from nothing else.
const progressEvery = 5 * time.Second

// sayProgress writes a SourceProgress after a commit when the partition's
// shares since the last one are now final and no later share will say so:
// the partition went quiet, or progressEvery passed. The combiners fold
// those shares (one sum per window) and stop waiting for this partition in
// the windows it has read past.
func (pt *partition) sayProgress() {
	quiet := pt.seg.Empty() && !pt.ledger.InFlight()
	if !pt.shared || (!quiet && time.Since(pt.lastProgress) < progressEvery) {
		return
	}
	pt.shared, pt.lastProgress = false, time.Now()
	pt.out.progress(pt.source, pt.lastCommit, pt.seg.MaxEvent(), pt.p.partialsPartitions.Load())
}

// commitMetadata marks a commit as a segment boundary of this exporter.
const commitMetadata = "prism-exporter v2 segment"

// drain ends the run: the current segment is cut, so that everything read
// goes out, and the run waits, bounded by DrainTimeout, for the answers,
// then commits for the last time.
func (pt *partition) drain() {
	p := pt.p
	pt.cut()
	deadline := time.NewTimer(p.cfg.DrainTimeout)
	defer deadline.Stop()
	for pt.ledger.InFlight() {
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
