package processor

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/futureagi/prism-exporter/aggregate"
	"github.com/futureagi/prism-exporter/history"
)

// The second stage. The first stage's pipelines write each partition's share
// of a tenant window (a Partial) to the partials topic, partitioned by
// tenant. The combiner is a consumer group of its own on that topic: for
// each partials partition it owns, it keeps the latest share per key in an
// aggregate.Combiner, sums a window's shares over every source partition,
// and hands the window's totals to the sink, one series per tag set.
//
// It keeps no state of its own: after a restart or a rebalance, the next
// owner rebuilds an hour of windows (all Datadog still accepts) from the
// compacted topic. Its committed offset says how far what it read was also
// accepted by Datadog: every partial below it is in a total Datadog took, so
// a rebuild sends again only the windows that changed after it.

// Shares a window may still change by arrive within Datadog's hour; the
// rebuild reads this much further back for producers whose clocks run
// ahead of the broker's.
const combinerRebuildMargin = 10 * time.Minute

// combiner runs the second stage's consumer group.
type combiner struct {
	p   *Processor
	log *zap.Logger
}

func (c *combiner) run(ctx context.Context) {
	p := c.p
	group, err := kafka.NewConsumerGroup(p.groupConfig(p.cfg.CombinerGroup, p.cfg.PartialsTopic, c.log))
	if err != nil {
		c.log.Error("cannot build the combiner's consumer group; no metrics are sent", zap.Error(err))
		return
	}
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				break
			}
			p.kafkaDown("join_combiner_group", err, time.Second)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		assigned := gen.Assignments[p.cfg.PartialsTopic]
		ids := make([]int, 0, len(assigned))
		for _, a := range assigned {
			ids = append(ids, a.ID)
		}
		c.log.Info("joined generation", zap.Int32("generation", gen.ID), zap.Ints("partitions", ids))
		memory := p.cfg.CombinerMemory / int64(max(1, len(assigned)))
		for _, a := range assigned {
			gen.Start(func(gctx context.Context) { c.runPartition(gctx, gen, a.ID, memory) })
		}
	}
	if err := group.Close(); err != nil {
		c.log.Warn("leaving the combiner's consumer group", zap.Error(err))
	}
}

// combinedKey names a tenant window.
type combinedKey struct {
	tenant string
	start  int64
	length time.Duration
}

func keyOfWindow(tenant string, w aggregate.Window) combinedKey {
	return combinedKey{tenant: tenant, start: w.Start.UnixNano(), length: w.Length}
}

// combined is the sink's answer for one window's totals.
type combined struct {
	due     aggregate.Pending
	receipt Receipt
	entry   history.Entry      // the window's history entry, but for what follows
	logs    aggregate.Delivery // what became of its logs, over its shares
}

// cpart is one owned partials partition for one generation.
type cpart struct {
	c     *combiner
	gen   *kafka.Generation
	id    int
	label string
	comb  *aggregate.Combiner
	log   *zap.Logger

	// unsent holds, per window changed since it was last accepted, the
	// offset of the first partial that changed it: the commit point is
	// the least of them.
	unsent   map[combinedKey]int64
	inflight map[combinedKey]bool
	answers  chan combined
	exited   chan struct{}

	next       int64 // the next offset to read
	hwm        int64 // the high watermark last seen
	sentBefore int64 // the last run's commit: partials below it were sent
	rebuildTo  int64 // the high watermark at assignment: Due waits for it
	rebuilt    bool
	markedAll  bool
	lastCommit int64
	reported   [4]float64 // windows, partials, bytes, unsent, as last added to the gauges

	// mutation lets the property test break the commit rule on purpose, to
	// show that it notices. Zero in production.
	mutation struct{ commitAll bool }
}

func (c *combiner) runPartition(gctx context.Context, gen *kafka.Generation, id int, memory int64) {
	p := c.p
	log := c.log.With(zap.Int("partition", id), zap.Int32("generation", gen.ID))
	comb, err := aggregate.NewCombiner(aggregate.CombinerConfig{
		Clock: p.clock,
		// A window goes out once its partitions read past its end (Settle);
		// Grace bounds the wait for one that went quiet inside it.
		Grace:      p.cfg.AllowedLateness + 5*time.Second,
		Settle:     p.cfg.CombinerSettle,
		MaxBytes:   memory,
		MaxTagSets: p.cfg.MaxTagSets,
	})
	if err != nil {
		log.Error("cannot build the combiner", zap.Error(err))
		return
	}
	cp := &cpart{
		c: c, gen: gen, id: id, label: strconv.Itoa(id), comb: comb, log: log,
		unsent: map[combinedKey]int64{}, inflight: map[combinedKey]bool{},
		answers: make(chan combined, 1024), exited: make(chan struct{}),
	}
	defer close(cp.exited)
	defer func() {
		p.metrics.combinerLag.DeleteLabelValues(cp.label)
		m := p.metrics
		m.combinerHeld.WithLabelValues("windows").Sub(cp.reported[0])
		m.combinerHeld.WithLabelValues("partials").Sub(cp.reported[1])
		m.combinerHeld.WithLabelValues("bytes").Sub(cp.reported[2])
		m.combinerUnsent.Sub(cp.reported[3])
	}()
	start, err := cp.positions(gctx)
	if err != nil {
		log.Warn("reading the partials partition's positions failed; the partition ends with this generation", zap.Error(err))
		return
	}
	cp.next, cp.lastCommit = start, cp.sentBefore
	log.Info("partials partition assigned: rebuilding", zap.Int64("from", start), zap.Int64("to", cp.rebuildTo), zap.Int64("sent_before", cp.sentBefore))

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   p.cfg.Brokers,
		Topic:     p.cfg.PartialsTopic,
		Partition: id,
		Dialer:    p.dialer,
		MinBytes:  1,
		MaxBytes:  16 << 20,
		MaxWait:   100 * time.Millisecond,
	})
	if err := r.SetOffset(start); err != nil {
		log.Error("cannot position the partials reader", zap.Error(err))
		_ = r.Close()
		return
	}
	// The fetcher outlives the generation by finish: what the first stage
	// wrote as it stopped is read and sent before this partition goes.
	fetchCtx, stopFetch := context.WithCancel(context.WithoutCancel(gctx))
	msgs := make(chan kafka.Message, 256)
	fetchDone := make(chan struct{})
	go func() {
		defer close(fetchDone)
		for {
			m, err := r.FetchMessage(fetchCtx)
			if err != nil {
				if fetchCtx.Err() == nil {
					log.Warn("fetching partials failed; the partition ends with this generation", zap.Error(err))
				}
				return
			}
			select {
			case msgs <- m:
			case <-fetchCtx.Done():
				return
			}
		}
	}()
	cp.loop(gctx, msgs, fetchDone)
	cp.finish(msgs, fetchDone)
	stopFetch()
	_ = r.Close()
	<-fetchDone
}

// positions reads where this partition's run starts: an hour and a margin
// back (the rebuild), the last run's commit, and the high watermark.
func (cp *cpart) positions(ctx context.Context) (start int64, err error) {
	p := cp.c.p
	topic := p.cfg.PartialsTopic
	res, err := p.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: p.cfg.CombinerGroup, Topics: map[string][]int{topic: {cp.id}}})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		return 0, err
	}
	cp.sentBefore = -1
	for _, op := range res.Topics[topic] {
		if op.Partition == cp.id {
			if op.Error != nil {
				return 0, op.Error
			}
			cp.sentBefore = op.CommittedOffset
		}
	}
	ends, err := p.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(cp.id)}}})
	if err != nil {
		return 0, err
	}
	first := int64(-1)
	for _, po := range ends.Topics[topic] {
		if po.Partition == cp.id {
			if po.Error != nil {
				return 0, po.Error
			}
			cp.rebuildTo = po.LastOffset
		}
	}
	from := p.clock.Now().Add(-aggregate.DefaultCombinerMaxAge - combinerRebuildMargin)
	byTime, err := p.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.TimeOffsetOf(cp.id, from)}}})
	if err != nil {
		return 0, err
	}
	for _, po := range byTime.Topics[topic] {
		if po.Partition != cp.id || po.Error != nil {
			continue
		}
		for off := range po.Offsets {
			first = off
		}
	}
	if first < 0 || first > cp.rebuildTo {
		first = cp.rebuildTo // nothing that recent: nothing to rebuild
	}
	if cp.sentBefore < 0 || cp.sentBefore > cp.rebuildTo {
		// A new group, or a commit past the end of a recreated topic: every
		// window read is sent.
		cp.sentBefore = first
	}
	return first, nil
}

func (cp *cpart) loop(ctx context.Context, msgs <-chan kafka.Message, fetchDone <-chan struct{}) {
	p := cp.c.p
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	lastCommit := time.Now()
	cp.checkRebuilt()
	for {
		select {
		case <-ctx.Done():
			return
		case <-fetchDone:
			return
		case m := <-msgs:
			cp.add(m)
		case a := <-cp.answers:
			cp.answered(a)
		case <-tick.C:
			cp.send()
			if time.Since(lastCommit) >= p.cfg.CommitInterval {
				cp.commit(ctx)
				lastCommit = time.Now()
			}
			cp.report()
		}
	}
}

// checkRebuilt marks everything sent on reaching the last run's commit, and
// lets totals go out once the rebuild reached the high watermark seen at
// assignment: a window rebuilt from part of its shares would overwrite its
// full total in Datadog with a smaller one.
func (cp *cpart) checkRebuilt() {
	if !cp.markedAll && cp.next >= cp.sentBefore {
		cp.comb.MarkAllSent()
		clear(cp.unsent)
		cp.markedAll = true
	}
	if !cp.rebuilt && cp.next >= cp.rebuildTo {
		cp.rebuilt = true
		cp.log.Info("partials partition rebuilt", zap.Int64("offset", cp.next), zap.Int("windows", cp.comb.Stats().Windows))
	}
}

func (cp *cpart) add(m kafka.Message) {
	p := cp.c.p
	cp.checkRebuilt()
	defer cp.checkRebuilt()
	cp.next, cp.hwm = m.Offset+1, m.HighWaterMark
	// Only this exporter writes the topic: a record it cannot read was
	// written by a newer version (rolled back) or by hand.
	skip := func(what string, err error) {
		p.metrics.combined.WithLabelValues("invalid").Inc()
		cp.log.Warn(what+" skipped: not one this version reads", zap.Int64("offset", m.Offset), zap.Error(err))
	}
	switch {
	case aggregate.IsSourceProgress(m.Value):
		var pg aggregate.SourceProgress
		if err := pg.UnmarshalBinary(m.Value); err != nil {
			skip("progress record", err)
			return
		}
		cp.comb.Progress(pg.Source, pg.Committed, pg.MaxEvent)
		p.metrics.combined.WithLabelValues("progress").Inc()
		return
	case aggregate.IsSourceReset(m.Value):
		var rs aggregate.SourceReset
		if err := rs.UnmarshalBinary(m.Value); err != nil {
			skip("reset", err)
			return
		}
		p.metrics.combined.WithLabelValues("reset").Inc()
		for _, d := range cp.comb.Reset(rs.Source, rs.From) {
			cp.changed(d.Tenant, d.Window, m.Offset)
		}
		return
	}
	part := new(aggregate.Partial)
	if err := part.UnmarshalBinary(m.Value); err != nil {
		skip("partial", err)
		return
	}
	before := cp.comb.Stats()
	changed := cp.comb.Add(part)
	after := cp.comb.Stats()
	switch {
	case changed && !cp.markedAll:
		p.metrics.combined.WithLabelValues("rebuilt").Inc()
	case changed:
		p.metrics.combined.WithLabelValues("changed").Inc()
		cp.changed(part.Tenant, part.Window, m.Offset)
	case after.DroppedTooOld > before.DroppedTooOld:
		p.metrics.combined.WithLabelValues("too_old").Inc()
	case after.DroppedEvicted > before.DroppedEvicted:
		p.metrics.combined.WithLabelValues("evicted").Inc()
	default:
		p.metrics.combined.WithLabelValues("unchanged").Inc()
	}
}

// changed records that the partial at offset changed the window: until its
// totals are accepted, the commit stays at or below the first such offset.
// Before the last run's commit is reached, everything read was sent.
func (cp *cpart) changed(tenant string, w aggregate.Window, offset int64) {
	if !cp.markedAll {
		return
	}
	k := keyOfWindow(tenant, w)
	if _, ok := cp.unsent[k]; !ok {
		cp.unsent[k] = offset
	}
}

// send hands every due window's totals to the sink, one at a time per
// window: a window changed while its totals are on their way goes again
// once they are answered.
func (cp *cpart) send() {
	if !cp.rebuilt {
		return
	}
	for k := range cp.unsent {
		if !cp.comb.Holds(k.tenant, aggregate.Window{Start: time.Unix(0, k.start), Length: k.length}) {
			delete(cp.unsent, k) // expired or evicted: Datadog would refuse it now
		}
	}
	cp.sendDue(cp.comb.Due())
}

// sendDue hands due windows' totals to the sink, skipping those on their
// way already.
func (cp *cpart) sendDue(due []aggregate.Pending) {
	if !cp.rebuilt {
		return // a window rebuilt from part of its shares would undercount
	}
	p := cp.c.p
	for _, d := range due {
		k := keyOfWindow(d.Tenant, d.Window)
		if cp.inflight[k] {
			continue
		}
		cp.inflight[k] = true
		due := d
		b := aggregate.Batch{Kind: aggregate.KindTotals, Tenant: d.Tenant, Partition: -1, Window: d.Window,
			Series: cp.comb.Totals(d.Tenant, d.Window)}
		entry, logs := cp.entryOf(b)
		p.deps.Deliverer.Deliver(b, func(r Receipt) {
			select {
			case cp.answers <- combined{due: due, receipt: r, entry: entry, logs: logs}:
			case <-cp.exited:
			}
		})
	}
}

// report updates the gauges: this partition's part of the sums.
func (cp *cpart) report() {
	m := cp.c.p.metrics
	st := cp.comb.Stats()
	now := [4]float64{float64(st.Windows), float64(st.Partials), float64(st.Bytes), float64(len(cp.unsent))}
	m.combinerHeld.WithLabelValues("windows").Add(now[0] - cp.reported[0])
	m.combinerHeld.WithLabelValues("partials").Add(now[1] - cp.reported[1])
	m.combinerHeld.WithLabelValues("bytes").Add(now[2] - cp.reported[2])
	m.combinerUnsent.Add(now[3] - cp.reported[3])
	cp.reported = now
	m.combinerLag.WithLabelValues(cp.label).Set(float64(max(0, cp.hwm-cp.next)))
}

func (cp *cpart) answered(a combined) {
	p := cp.c.p
	k := keyOfWindow(a.due.Tenant, a.due.Window)
	delete(cp.inflight, k)
	if a.receipt.Accepted && p.deps.History != nil {
		p.deps.History.Write(finishEntry(a.entry, a.logs, a.receipt, time.Now()))
	}
	switch {
	case !a.receipt.Accepted:
		p.metrics.combinerSends.WithLabelValues("abandoned").Inc()
	case cp.comb.MarkSent(a.due):
		p.metrics.combinerSends.WithLabelValues("accepted").Inc()
		delete(cp.unsent, k)
	default:
		// Changed while on its way: due again with the newer totals.
		p.metrics.combinerSends.WithLabelValues("superseded").Inc()
	}
}

// commitPoint is the offset below which every partial read is in totals
// Datadog accepted.
func (cp *cpart) commitPoint() int64 {
	c := cp.next
	if cp.mutation.commitAll {
		return c
	}
	for _, off := range cp.unsent {
		c = min(c, off)
	}
	return c
}

func (cp *cpart) commit(ctx context.Context) {
	if !cp.markedAll {
		return // still below the last commit: nothing new to say
	}
	c := cp.commitPoint()
	if c <= cp.lastCommit {
		return
	}
	p := cp.c.p
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	res, err := p.client.OffsetCommit(cctx, &kafka.OffsetCommitRequest{
		GroupID:      cp.gen.GroupID,
		GenerationID: int(cp.gen.ID),
		MemberID:     cp.gen.MemberID,
		Topics:       map[string][]kafka.OffsetCommit{p.cfg.PartialsTopic: {{Partition: cp.id, Offset: c}}},
	})
	if err == nil {
		for _, r := range res.Topics[p.cfg.PartialsTopic] {
			if r.Error != nil {
				err = r.Error
			}
		}
	}
	if err != nil {
		p.metrics.commits.WithLabelValues("error").Inc()
		cp.log.Warn("combiner commit failed; retrying at the next interval", zap.Int64("offset", c), zap.Error(err))
		return
	}
	cp.lastCommit = c
}

// finish ends this partition's run, bounded by DrainTimeout: it reads the
// partials written up to now (the first stage wrote its last ones as it
// stopped), sends every changed window, ended or not, without
// waiting for Grace or Settle, waits for the answers and commits. The next
// owner then sends a window again only if it changes after that.
func (cp *cpart) finish(msgs <-chan kafka.Message, fetchDone <-chan struct{}) {
	p := cp.c.p
	deadline := time.NewTimer(p.cfg.DrainTimeout)
	defer deadline.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), min(2*time.Second, p.cfg.DrainTimeout))
	end := cp.next
	res, err := p.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		p.cfg.PartialsTopic: {kafka.LastOffsetOf(cp.id)},
	}})
	cancel()
	if err == nil {
		for _, po := range res.Topics[p.cfg.PartialsTopic] {
			if po.Partition == cp.id && po.Error == nil {
				end = po.LastOffset
			}
		}
	}
read:
	for cp.next < end {
		select {
		case m := <-msgs:
			cp.add(m)
		case a := <-cp.answers:
			cp.answered(a)
		case <-fetchDone:
			break read
		case <-deadline.C:
			cp.log.Warn("combiner stop: the last partials were not all read; the next owner sends their windows", zap.Int64("read", cp.next), zap.Int64("end", end))
			cp.commit(context.Background())
			return
		}
	}
	cp.sendDue(cp.comb.DueNow())
	for len(cp.inflight) > 0 {
		select {
		case a := <-cp.answers:
			cp.answered(a)
			continue
		case <-deadline.C:
			cp.log.Warn("combiner stop timed out; the next owner sends those windows again")
		}
		break
	}
	cp.commit(context.Background())
}
