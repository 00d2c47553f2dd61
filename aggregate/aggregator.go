// Package aggregate turns one Kafka partition's gateway records into
// per-tenant, event-time tumbling windows: logs in chunks, and per-window
// metric totals when a window closes, corrected when late records arrive.
//
// With the totals goes a Partial, the first phase of two-phase
// aggregation: a Combiner (merge.go) keeps the latest partial per key from
// every partition and sums them into one set of series per tenant window
// (see Partial for the keys and why replays and late records are counted
// once).
//
// It is pure logic: no I/O, no goroutines, and the wall clock is injected. One
// Aggregator serves one partition and is used by one goroutine. The rules on
// frontiers, late records and replays are in docs/design.md ("Offsets,
// windows and replays").
package aggregate

import (
	"fmt"
	"time"

	"github.com/futureagi/prism-exporter/schemas"
)

// Aggregator holds one partition's windows. Its methods hand batches to an
// emit callback, which owns each Batch (and its Logs and Series slices and
// partials) from then on; a batch's Partial shares its Series slice, so
// neither may be modified. emit may read the Aggregator (MinOffset, Stats,
// Frontier) but must not call Add, Advance or Flush.
type Aggregator struct {
	cfg      Config
	lateness int64 // nanoseconds
	maxAge   int64 // nanoseconds
	sk       sketches

	// frontier is the closing frontier F; every window with end <= F is
	// closed. Unset until the first record or idle Advance (or a resume).
	frontier    int64
	hasFrontier bool
	maxEvent    int64
	hasEvent    bool

	resumed   bool
	delivered int64 // D, when resumed
	lateFrom  int64 // L, when resumed

	tenants map[string]*tenant
	closing closingHeap
	// first and last link the open windows in creation order. While offsets
	// arrive in increasing order, as Kafka hands them, the first window holds
	// the lowest offset; ordered turns false otherwise and MinOffset scans.
	first, last *window
	lastOffset  int64
	hasOffset   bool
	ordered     bool

	retained    indexedHeap[*window]
	pendingLate []*lateGroup

	// evicted holds the windows pushed out of a tenant's RetainClosed while
	// young enough for Datadog, until they are not (the value is their
	// start + MetricMaxAge): a late record for one of them must not start
	// its totals again, which would overwrite the whole window's. A late
	// record's window that is neither kept nor here never existed in this
	// Aggregator, and gets totals of its own. Swept once a minute.
	evicted   map[evictedKey]int64
	nextSweep int64

	// recent is the tenant of the previous record: partitions are often
	// keyed by tenant, so runs of one tenant skip the map lookup.
	recent *tenant

	stats Stats
}

// New returns an Aggregator for one partition, resuming after a commit when
// resume.Delivered is set. Zero-valued Config fields take their defaults; an
// out-of-range field is an error naming it.
func New(cfg Config, resume Resume) (*Aggregator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := resume.validate(); err != nil {
		return nil, err
	}
	sk, err := newSketches()
	if err != nil {
		return nil, fmt.Errorf("aggregate: latency sketch: %w", err)
	}
	a := &Aggregator{
		cfg:      cfg,
		lateness: int64(cfg.AllowedLateness),
		maxAge:   int64(cfg.MetricMaxAge),
		sk:       sk,
		tenants:  make(map[string]*tenant),
		ordered:  true,
		retained: indexedHeap[*window]{
			less:  func(x, y *window) bool { return x.start < y.start },
			place: func(w *window) *int { return &w.retainIdx },
		},
	}
	if !resume.Delivered.IsZero() {
		a.resumed = true
		a.delivered = resume.Delivered.UnixNano()
		a.lateFrom = resume.LateFrom
		// Windows up to D were delivered: nothing may reopen them.
		a.frontier, a.hasFrontier = a.delivered, true
	}
	return a, nil
}

// Add places one record at offset into its tenant's window of the given
// length (the tenant's sync interval; it must be > 0, and Add panics
// otherwise, as the tenant registry only hands out 1 s .. 1 h). It may emit a
// full KindLogs or KindLate chunk, and KindClose batches for windows that the
// record's event time closes: after Add, every window with end <= Frontier()
// is closed, so Frontier() is always safe to derive the delivered frontier
// from.
func (a *Aggregator) Add(offset int64, ev *schemas.Event, length time.Duration, emit func(Batch)) Placement {
	if length <= 0 {
		panic(fmt.Sprintf("aggregate: Add for tenant %q with window length %v: the length (sync interval) must be > 0", ev.OrgID, length))
	}
	if a.hasOffset && offset < a.lastOffset {
		a.ordered = false
	}
	a.lastOffset, a.hasOffset = offset, true

	ts := ev.Timestamp.UnixNano()
	p := a.place(offset, ev, ts, int64(length), emit)

	if !a.hasEvent || ts > a.maxEvent {
		a.maxEvent, a.hasEvent = ts, true
	}
	if a.raise(a.maxEvent-a.lateness) && a.closeDue() {
		a.closeWindows(a.cfg.Clock.Now().UnixNano(), emit)
	}
	return p
}

func (a *Aggregator) place(offset int64, ev *schemas.Event, ts, length int64, emit func(Batch)) Placement {
	start := windowStart(ts, length)
	end := start + length

	if a.resumed && end <= a.delivered {
		if a.lateFrom >= 0 && offset >= a.lateFrom {
			// Its log may not have been accepted. Its metrics may or may
			// not be in the window's whole partial (placed before the
			// crash, or a correction whose answer was lost): a partial of
			// its own is right either way, as the Combiner drops it where
			// a whole partial covers its offset.
			a.stats.Replayed++
			own := a.ownPartial(ev, start, length, offset, a.cfg.Clock.Now().UnixNano())
			a.addLate(a.tenantOf(ev.OrgID), start, length, offset, ev, nil, own, emit)
			return Replayed
		}
		a.stats.ReplaySkipped++
		return Skipped
	}

	t := a.tenantOf(ev.OrgID)
	w := t.openWindow(start, length)
	if w == nil && a.hasFrontier && end <= a.frontier {
		// Late: Add closes windows as soon as F passes them, so no open
		// window can have end <= F.
		//
		// Series (for the sink) and partials (for the combiner) differ
		// here: a retained window that opened in this run takes the record
		// into its whole totals, and both go out corrected. Any other
		// record young enough for Datadog goes out as a partial of its
		// own (see Partial), whether or not the Series could be corrected.
		var corrected *window
		var own *Partial
		now := a.cfg.Clock.Now().UnixNano()
		c := t.closedWindow(start, length)
		switch {
		case c != nil && c.retained() && now < c.start+a.maxAge:
			a.addMetrics(c, ev)
			corrected = c
			a.stats.LateCorrected++
			if c.lateOpened {
				own = a.ownPartial(ev, start, length, offset, now)
			} else {
				c.through = max(c.through, offset)
			}
		case c == nil && now < start+a.maxAge && !a.wasEvicted(t, start, length):
			// The window never existed here: no totals of it have left
			// this partition since the resume point, so the record's are
			// the window's whole totals so far. It is kept like a closed
			// window, for the late records that may follow.
			c = &window{tenant: t, start: start, length: length, end: end, minOffset: offset, through: offset, lateOpened: true, retainIdx: -1}
			a.retain(t, c, now)
			a.addMetrics(c, ev)
			corrected = c
			a.stats.LateCorrected++
			a.stats.LateOpened++
			own = a.ownPartial(ev, start, length, offset, now)
		default:
			a.stats.LateMetricDropped++
			own = a.ownPartial(ev, start, length, offset, now)
		}
		a.addLate(t, start, length, offset, ev, corrected, own, emit)
		return Late
	}
	if w == nil {
		w = a.openNew(t, start, length, offset)
	}
	a.addMetrics(w, ev)
	if offset < w.minOffset {
		w.minOffset = offset
	}
	if offset > w.through {
		w.through = offset
	}
	w.bufferLog(offset, ev, a.cfg.ChunkSize)
	a.stats.BufferedLogs++
	if len(w.logs) >= a.cfg.ChunkSize {
		w.fullChunk = true
		a.emitLogs(w, emit)
	}
	return Placed
}

// emitLogs hands on an open window's buffered logs as KindLogs; the window
// keeps holding its offsets until it closes.
func (a *Aggregator) emitLogs(w *window, emit func(Batch)) {
	first := w.logsMin
	logs := w.takeLogs()
	a.stats.BufferedLogs -= len(logs)
	emit(Batch{
		Kind:      KindLogs,
		Tenant:    w.tenant.name,
		Partition: a.cfg.Partition,
		Window:    windowOf(w.start, w.length),
		Logs:      logs,
		MinOffset: first,
	})
}

func (a *Aggregator) tenantOf(name string) *tenant {
	if a.recent != nil && a.recent.name == name {
		return a.recent
	}
	t := a.tenants[name]
	if t == nil {
		t = &tenant{name: name} // interned by schemas.Decode, like the tags
		a.tenants[t.name] = t
	}
	a.recent = t
	return t
}

func (a *Aggregator) openNew(t *tenant, start, length, offset int64) *window {
	w := &window{tenant: t, start: start, length: length, end: start + length, minOffset: offset, through: offset, retainIdx: -1}
	t.open = append(t.open, w)
	a.closing.push(w)
	w.prev = a.last
	if a.last != nil {
		a.last.next = w
	} else {
		a.first = w
	}
	a.last = w
	a.stats.OpenWindows++
	return w
}

// addMetrics adds a record to its tag set's totals in w (open, or closed and
// retained), folding a new tag set into Other once w has MaxTagSets.
func (a *Aggregator) addMetrics(w *window, ev *schemas.Event) {
	tags := tagsOf(ev)
	i, ok := w.find(tags)
	if !ok {
		other := otherTags()
		isOther := tags == other
		if !isOther && w.distinct >= a.cfg.MaxTagSets {
			a.stats.TagSetsFolded++
			tags, isOther = other, true
			i, ok = w.find(tags)
		}
		if !ok {
			i = w.addSeries(tags)
			if !isOther {
				w.distinct++
			}
		}
	}
	w.series[i].add(ev, a.sk)
}

// raise moves the frontier to f if that is ahead; F never goes back.
func (a *Aggregator) raise(f int64) bool {
	if a.hasFrontier && f <= a.frontier {
		return false
	}
	a.frontier, a.hasFrontier = f, true
	return true
}

func (a *Aggregator) closeDue() bool {
	w := a.closing.peek()
	return w != nil && a.hasFrontier && w.end <= a.frontier
}

// closeWindows closes every open window with end <= F, in order of end, then
// tenant.
func (a *Aggregator) closeWindows(now int64, emit func(Batch)) {
	for a.closeDue() {
		a.close(a.closing.pop(), now, emit)
	}
}

func (a *Aggregator) close(w *window, now int64, emit func(Batch)) {
	t := w.tenant
	b := Batch{
		Kind:      KindClose,
		Tenant:    t.name,
		Partition: a.cfg.Partition,
		Window:    windowOf(w.start, w.length),
		Logs:      w.takeLogs(),
		MinOffset: w.minOffset,
	}
	b.Series, b.Partial = w.totals(a.cfg.Partition, a.sk, true)
	a.stats.BufferedLogs -= len(b.Logs)
	a.stats.OpenWindows--
	t.removeOpen(w)
	a.unlink(w)
	a.retain(t, w, now)
	a.forgetIfIdle(t)
	emit(b)
}

func (a *Aggregator) unlink(w *window) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		a.first = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		a.last = w.prev
	}
	w.prev, w.next = nil, nil
}

// retain keeps a just-closed window's totals for late corrections, if it is
// young enough, and evicts the tenant's oldest closed window past
// RetainClosed.
func (a *Aggregator) retain(t *tenant, w *window, now int64) {
	if len(t.closed) == a.cfg.RetainClosed {
		old := t.closed[0]
		if old.retained() {
			a.retained.remove(old)
			a.stats.RetainedWindows--
		}
		if now < old.start+a.maxAge {
			if a.evicted == nil {
				a.evicted = make(map[evictedKey]int64)
			}
			a.evicted[evictedKey{t.name, old.start, old.length}] = old.start + a.maxAge
		}
		// Not dropTotals: a pending late chunk may still need old's totals;
		// they go with the last reference.
		copy(t.closed, t.closed[1:])
		t.closed[len(t.closed)-1] = nil
		t.closed = t.closed[:len(t.closed)-1]
	}
	t.closed = append(t.closed, w)
	if now < w.start+a.maxAge {
		a.retained.push(w)
		a.stats.RetainedWindows++
	} else {
		w.dropTotals()
	}
}

// expire drops the totals of retained windows too old for Datadog to take a
// correction.
func (a *Aggregator) expire(now int64) {
	if len(a.evicted) > 0 && now >= a.nextSweep {
		for k, deadline := range a.evicted {
			if now >= deadline {
				delete(a.evicted, k)
			}
		}
		a.nextSweep = now + int64(time.Minute)
	}
	for {
		w, ok := a.retained.peek()
		if !ok || now < w.start+a.maxAge {
			return
		}
		a.retained.remove(w)
		a.stats.RetainedWindows--
		w.dropTotals()
		a.forgetIfIdle(w.tenant)
	}
}

// ownPartial is the partial of a late or replayed record under its own key,
// or nil when its window is too old for Datadog (counted in LateTooOld).
func (a *Aggregator) ownPartial(ev *schemas.Event, start, length, offset, now int64) *Partial {
	if now >= start+a.maxAge {
		a.stats.LateTooOld++
		return nil
	}
	a.stats.LatePartials++
	return recordPartial(ev, a.cfg.Partition, windowOf(start, length), offset, a.sk)
}

// evictedKey names a window pushed out of its tenant's RetainClosed.
type evictedKey struct {
	tenant        string
	start, length int64
}

func (a *Aggregator) wasEvicted(t *tenant, start, length int64) bool {
	_, ok := a.evicted[evictedKey{t.name, start, length}]
	return ok
}

func (a *Aggregator) forgetIfIdle(t *tenant) {
	if t.idle() && a.tenants[t.name] == t {
		delete(a.tenants, t.name)
		if a.recent == t {
			a.recent = nil
		}
	}
}

// Advance recomputes the frontier (when idle, the wall clock may drive it:
// F = max(F, now - lateness)), closes every window with end <= F, hands on
// the late records buffered since the last call, and drops retained totals
// that are too old to correct.
func (a *Aggregator) Advance(idle bool, emit func(Batch)) {
	now := a.cfg.Clock.Now().UnixNano()
	// Add already keeps F at or past maxEvent - lateness; only the wall
	// clock can move it here.
	if idle {
		a.raise(now - a.lateness)
	}
	a.closeWindows(now, emit)
	a.emitLate(emit)
	// After emitLate: a chunk accepted as a correction before expiry still
	// carried its totals.
	a.expire(now)
}

// Flush hands on every buffered log without closing anything: open windows'
// partial chunks as KindLogs and pending late records as KindLate (for
// memory pressure and shutdown). Open windows keep holding their offsets.
func (a *Aggregator) Flush(emit func(Batch)) {
	for w := a.first; w != nil; w = w.next {
		if len(w.logs) > 0 {
			a.emitLogs(w, emit)
		}
	}
	a.emitLate(emit)
}

// Frontier is the closing frontier F: every window ending at or before it is
// closed. The zero time before the first record (on a fresh start).
func (a *Aggregator) Frontier() time.Time {
	if !a.hasFrontier {
		return time.Time{}
	}
	return time.Unix(0, a.frontier).UTC()
}

// MinOffset is the lowest offset the Aggregator still holds: the first
// offset of every open window and of every late record not yet emitted. ok
// is false when it holds none.
func (a *Aggregator) MinOffset() (offset int64, ok bool) {
	if a.ordered {
		if a.first != nil {
			offset, ok = a.first.minOffset, true
		}
	} else {
		for w := a.first; w != nil; w = w.next {
			if !ok || w.minOffset < offset {
				offset, ok = w.minOffset, true
			}
		}
	}
	if m, lok := a.lateMin(); lok && (!ok || m < offset) {
		offset, ok = m, true
	}
	return offset, ok
}

func windowOf(start, length int64) Window {
	return Window{Start: time.Unix(0, start).UTC(), Length: time.Duration(length)}
}
