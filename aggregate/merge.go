package aggregate

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/DataDog/sketches-go/ddsketch/mapping"
)

// Defaults of CombinerConfig fields left at zero.
const (
	DefaultCombinerGrace    = 15 * time.Second
	DefaultCombinerMaxAge   = time.Hour
	DefaultCombinerMaxBytes = 256 << 20
)

// CombinerConfig sets up a Combiner. Zero values select the defaults.
type CombinerConfig struct {
	// Clock is the wall clock; required.
	Clock Clock
	// Grace: a changed window whose end has passed is due once Grace has
	// passed since its last change, whatever its sources read: the bound
	// for a source that stopped, or went quiet, before it moved past the
	// window. Usually a window is due sooner (see Settle).
	Grace time.Duration
	// MaxAge: a window is dropped, with its partials, once its end + MaxAge
	// has passed (its start is older than MaxAge + its length), and later
	// partials of it are refused. Datadog refuses points older than one
	// hour, so nothing older is of use.
	MaxAge time.Duration
	// MaxBytes bounds the memory the retained partials take (an estimate:
	// struct sizes, strings and sketch bins). Past it, the windows that
	// would expire first are dropped whole (Evicted, and EvictedUnsent if
	// their last change was not yet sent), and later partials of them are
	// refused until they would have expired: a window rebuilt from the
	// partials that arrive after its eviction would overwrite its full total
	// in Datadog with a smaller one.
	MaxBytes int64
	// Settle: a changed window is due once every source that sent a share
	// of it has read past its end (Partial.MaxEvent) and no share changed
	// it for Settle, which lets the sources' last shares of it, cut at
	// about the same moment, go out in one write. A straggler that comes
	// later makes it due again; Datadog keeps the last write. Under a
	// backlog, where wall time says nothing of event time, this is what
	// keeps a window from going out once per share.
	Settle time.Duration
	// MaxTagSets is how many tag sets one tenant window sends; past it, the
	// ones with the fewest requests fold into TagSet{Other, ...}. Each
	// partition applies its own cap, so a window may gather more across
	// partitions.
	MaxTagSets int
}

// Combiner is the second phase of two-phase aggregation: it keeps the latest
// Partial per key and sums a tenant window's partials over every source
// partition into one set of series. It is pure logic: no I/O, no
// goroutines, the clock injected; one goroutine uses it.
type Combiner struct {
	cfg     CombinerConfig
	mapping mapping.IndexMapping

	windows map[windowID]*cwindow
	byEnd   indexedHeap[*cwindow] // every window, by end (then tenant, start, length): expiry and eviction order
	dirty   []*cwindow            // windows changed since last marked sent (and maybe stale entries)
	// evicted holds the windows dropped by MaxBytes until they would have
	// expired (the value: end + MaxAge), to refuse their later partials.
	evicted   map[windowID]int64
	nextSweep int64
	bytes     int64
	partials  int
	stats     CombinerStats

	// mutation lets tests break the Combiner on purpose, to show that the
	// property tests catch it. Zero in production.
	mutation struct {
		keyOf       func(*Partial) PartialKey // replaces Partial.Key
		ignoreReset bool                      // Reset drops nothing
		foldAll     bool                      // folds segments whether final or not
	}
	// committed is, per source partition, the highest Partial.Committed
	// seen: its segments below it are final.
	committed map[int64]int64
	// maxEvent is, per source partition, the highest Partial.MaxEvent seen.
	maxEvent map[int64]int64
	// unfolded lists, per source, the shares not yet folded in the order
	// they came (segment order, but for a replay after a reset): a commit
	// that makes them final folds them from the front.
	unfolded map[int64][]foldRef
}

// CombinerStats is what the Combiner holds and has done, for self-metrics.
type CombinerStats struct {
	Windows  int   // windows held
	Partials int   // partials held
	Bytes    int64 // estimated memory they take

	Replaced       int64 // partials that replaced the one held under their key
	ResetDropped   int64 // windows a Reset took partials from
	Folded         int64 // final segments folded into their source's sum
	ResetTooLate   int64 // Resets below a folded segment: cannot be undone (a bug upstream)
	Duplicates     int64 // of those, equal to the one they replaced: nothing changed
	DroppedTooOld  int64 // partials refused: their window's end + MaxAge had passed
	DroppedEvicted int64 // partials refused: their window was evicted by MaxBytes
	Expired        int64 // windows dropped by age
	ExpiredUnsent  int64 // of those, with a change never marked sent
	Evicted        int64 // windows dropped by MaxBytes, the first to expire first
	EvictedUnsent  int64 // of those, with a change never marked sent
}

type windowID struct {
	tenant        string
	start, length int64
}

// cwindow is one tenant window's partials.
type cwindow struct {
	id      windowID
	end     int64
	sources []*csource // by source partition; a few
	bytes   int64
	count   int // partials

	// folded sums every source's final segments, by tag set: a window
	// holds one share however many partitions and segments it spans.
	// folders are the sources with final segments and none other left.
	folded  map[TagSet]*mergeAcc
	folders []int64
	// delivered sums the Delivery of the folded shares.
	delivered Delivery

	version uint64 // bumped by every change
	changed int64  // when it last changed, Unix ns
	sent    uint64 // version last marked sent
	listed  bool   // in Combiner.dirty
	heapIdx int    // in Combiner.byEnd; -1 once dropped
}

// csource is what one source partition sent of a window: the latest
// partial of each segment not yet final. Its final segments are in the
// window's folded sum; a source with none left leaves the window's
// sources for its folders.
type csource struct {
	source   int64
	segments map[int64]*Partial // by Segment
}

// NewCombiner returns an empty Combiner. Zero-valued Config fields take their
// defaults; an out-of-range field is an error naming it.
func NewCombiner(cfg CombinerConfig) (*Combiner, error) {
	if cfg.Grace == 0 {
		cfg.Grace = DefaultCombinerGrace
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultCombinerMaxAge
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultCombinerMaxBytes
	}
	if cfg.MaxTagSets == 0 {
		cfg.MaxTagSets = DefaultMaxTagSets
	}
	switch {
	case cfg.Clock == nil:
		return nil, fmt.Errorf("aggregate: CombinerConfig.Clock must be set")
	case cfg.Settle < 0:
		return nil, fmt.Errorf("aggregate: CombinerConfig.Settle must be >= 0, got %v", cfg.Settle)
	case cfg.Grace < 0:
		return nil, fmt.Errorf("aggregate: CombinerConfig.Grace must be >= 0, got %v", cfg.Grace)
	case cfg.MaxAge < 0:
		return nil, fmt.Errorf("aggregate: CombinerConfig.MaxAge must be >= 0 (0 selects %v), got %v", DefaultCombinerMaxAge, cfg.MaxAge)
	case cfg.MaxBytes < 0:
		return nil, fmt.Errorf("aggregate: CombinerConfig.MaxBytes must be >= 0 (0 selects %d), got %d", DefaultCombinerMaxBytes, cfg.MaxBytes)
	case cfg.MaxTagSets < 1 || cfg.MaxTagSets > maxTagSetsLimit:
		return nil, fmt.Errorf("aggregate: CombinerConfig.MaxTagSets must be between 1 and %d (0 selects %d), got %d",
			maxTagSetsLimit, DefaultMaxTagSets, cfg.MaxTagSets)
	}
	sk, err := newSketches()
	if err != nil {
		return nil, fmt.Errorf("aggregate: latency mapping: %w", err)
	}
	return &Combiner{
		cfg:       cfg,
		mapping:   sk.mapping,
		windows:   make(map[windowID]*cwindow),
		committed: make(map[int64]int64),
		maxEvent:  make(map[int64]int64),
		unfolded:  make(map[int64][]foldRef),
		byEnd: indexedHeap[*cwindow]{
			less:  func(a, b *cwindow) bool { return compareWindows(a, b) < 0 },
			place: func(w *cwindow) *int { return &w.heapIdx },
		},
	}, nil
}

// Add keeps p as the latest partial under its key, replacing the one held,
// and marks its window changed unless p equals what it replaces. p must be
// valid (as UnmarshalBinary and the Aggregator make them) and is not
// modified afterwards. Partials of windows past MaxAge or evicted by
// MaxBytes are refused (counted in Stats). It reports whether the window's
// totals changed: the caller that tracks what is still to send needs it.
func (c *Combiner) Add(p *Partial) (changed bool) {
	now := c.cfg.Clock.Now().UnixNano()
	c.expire(now)
	k := p.Key()
	if c.mutation.keyOf != nil {
		k = c.mutation.keyOf(p)
	}
	id := windowID{tenant: k.Tenant, start: k.Start, length: int64(k.Length)}
	end := k.Start + int64(k.Length)
	if now >= end+int64(c.cfg.MaxAge) {
		c.stats.DroppedTooOld++
		return false
	}
	if _, ok := c.evicted[id]; ok {
		c.stats.DroppedEvicted++
		return false
	}
	w := c.windows[id]
	if w == nil {
		w = &cwindow{id: id, end: end, bytes: windowOverhead}
		c.windows[id] = w
		c.byEnd.push(w)
		c.bytes += w.bytes
	}
	if cm, ok := c.committed[k.Source]; ok && k.Segment < cm && !c.mutation.foldAll {
		// A copy of a segment already final, and folded: a producer retry
		// that landed twice. The share itself came before any record that
		// carried this commit (it was acked before the commit), so this is
		// not its first arrival.
		c.stats.Duplicates++
		return false
	}
	src := w.source(k.Source)
	old := src.segments[k.Segment]
	src.segments[k.Segment] = p
	size := partialSize(p)
	if old != nil {
		c.stats.Replaced++
		size -= partialSize(old)
	} else {
		w.count++
		c.partials++
	}
	w.bytes += size
	c.bytes += size
	if old != nil && equalPartials(old, p) {
		c.stats.Duplicates++
	} else {
		changed = true
		w.version++
		w.changed = now
		if !w.listed {
			w.listed = true
			c.dirty = append(c.dirty, w)
		}
	}
	if old == nil {
		c.unfolded[k.Source] = append(c.unfolded[k.Source], foldRef{w: w, src: src, segment: k.Segment})
	}
	c.progress(k.Source, p.Committed, p.MaxEvent)
	c.bound()
	return changed && w.heapIdx >= 0
}

// foldRef names one share waiting to be folded.
type foldRef struct {
	w       *cwindow
	src     *csource
	segment int64
}

// Progress records how far source has got when no share says it (see
// SourceProgress): its committed offset, which makes its shares below it
// final and folds them, and the latest event time it read, which lets its
// windows go out.
func (c *Combiner) Progress(source int64, committed, maxEvent int64) {
	c.progress(source, committed, maxEvent)
	c.bound()
}

func (c *Combiner) progress(source int64, committed, maxEvent int64) {
	if maxEvent > c.maxEvent[source] {
		c.maxEvent[source] = maxEvent
	}
	limit := committed
	switch {
	case c.mutation.foldAll:
		limit = int64(1) << 62
	case committed <= c.committed[source]:
		return
	}
	if committed > c.committed[source] {
		c.committed[source] = committed
	}
	q := c.unfolded[source]
	i := 0
	for ; i < len(q); i++ {
		r := q[i]
		if r.segment >= limit {
			break
		}
		c.foldOne(r)
	}
	if i > 0 {
		n := copy(q, q[i:])
		clear(q[n:])
		c.unfolded[source] = q[:n]
	}
}

// foldExact is how many exact latencies a folded tag set keeps before it
// moves them into its sketch bins: percentiles stay exact for small
// windows, and a busy one holds bins, not every latency.
const foldExact = 64

// foldOne moves one final share into its window's sum: memory per window
// stays one share and the recent, not yet final, segments of its sources,
// however many partitions and segments fed it. A share a reset dropped, or
// whose window was dropped, is skipped.
func (c *Combiner) foldOne(r foldRef) {
	w, src := r.w, r.src
	p, ok := src.segments[r.segment]
	if !ok || w.heapIdx < 0 {
		return
	}
	if w.folded == nil {
		w.folded = make(map[TagSet]*mergeAcc, len(p.Series))
	}
	var grown int64
	for i := range p.Series {
		s := &p.Series[i]
		a := w.folded[s.Tags]
		if a == nil {
			a = &mergeAcc{tags: s.Tags}
			w.folded[s.Tags] = a
			grown += int64(seriesOverhead + len(s.Tags.Model) + len(s.Tags.Provider) + len(s.Tags.Gateway) + len(s.Tags.Routing))
		}
		before := int64(4*cap(a.exact) + binBytes*cap(a.bins))
		a.add(s, &p.Latencies[i])
		a.compact(c.mapping)
		grown += int64(4*cap(a.exact)+binBytes*cap(a.bins)) - before
	}
	w.delivered.Add(p.Delivery)
	size := partialSize(p)
	delta := grown - size
	w.bytes += delta
	c.bytes += delta
	w.count--
	c.partials--
	delete(src.segments, r.segment)
	if len(src.segments) == 0 {
		// Nothing of this source is left to replace or reset: a window
		// fed by 48 partitions keeps their sum, not 48 empty maps.
		if i := slices.Index(w.sources, src); i >= 0 {
			w.sources = slices.Delete(w.sources, i, i+1)
		}
		if !slices.Contains(w.folders, src.source) {
			w.folders = append(w.folders, src.source)
		}
	}
	c.stats.Folded++
}

func (w *cwindow) source(s int64) *csource {
	for _, x := range w.sources {
		if x.source == s {
			return x
		}
	}
	x := &csource{source: s, segments: make(map[int64]*Partial, 1)}
	w.sources = append(w.sources, x)
	return x
}

// Reset drops every partial of source from segment from on, in every
// window: a new run reads the source again from from, a commit point, and
// writes its own (see SourceReset). It returns the windows it changed,
// which are due again like any changed window.
func (c *Combiner) Reset(source int64, from int64) []Pending {
	if c.mutation.ignoreReset {
		return nil
	}
	if cm, ok := c.committed[source]; ok && from < cm {
		// The source committed past from before; a run that starts below
		// its own commit would be a bug upstream. What is folded stays.
		c.stats.ResetTooLate++
	}
	now := c.cfg.Clock.Now().UnixNano()
	var changed []Pending
	for _, w := range c.windows {
		for _, src := range w.sources {
			if src.source != source {
				continue
			}
			dropped := false
			for seg, p := range src.segments {
				if seg < from {
					continue
				}
				size := partialSize(p)
				w.bytes -= size
				c.bytes -= size
				w.count--
				c.partials--
				delete(src.segments, seg)
				dropped = true
				// The replay counts its records again, but the logs the
				// dropped run got accepted did reach Datadog: the window's
				// history keeps them (they are the replay's duplicates).
				w.delivered.Add(p.Delivery)
			}
			if dropped {
				c.stats.ResetDropped++
				w.version++
				w.changed = now
				if !w.listed {
					w.listed = true
					c.dirty = append(c.dirty, w)
				}
				changed = append(changed, Pending{Tenant: w.id.tenant, Window: windowOf(w.id.start, w.id.length), version: w.version})
			}
		}
	}
	return changed
}

// Pending names a window whose totals are due, at the version Due saw.
type Pending struct {
	Tenant  string
	Window  Window
	version uint64
}

// Due lists the windows whose totals changed since they were last marked
// sent and that every source has moved past and that were quiet for Settle,
// or whose end has passed and that were quiet for Grace, in order of end,
// then tenant. Send Totals of each, then MarkSent.
func (c *Combiner) Due() []Pending { return c.due(false) }

// DueNow is every changed window, ended or not, without waiting for Grace
// or Settle. A combiner that stops or loses its partition sends these
// before it goes, so that what Datadog has reflects every share read: the
// next owner sends a window again only if it changes after that.
func (c *Combiner) DueNow() []Pending { return c.due(true) }

func (c *Combiner) due(now0 bool) []Pending {
	now := c.cfg.Clock.Now().UnixNano()
	c.expire(now)
	var due []*cwindow
	keep := c.dirty[:0]
	for _, w := range c.dirty {
		if w.heapIdx < 0 || w.version == w.sent {
			w.listed = false
			continue
		}
		keep = append(keep, w)
		settled := now >= w.changed+int64(c.cfg.Settle) && now >= w.end && c.passed(w)
		stale := now >= w.changed+int64(c.cfg.Grace) && now >= w.end
		if now0 || settled || stale {
			due = append(due, w)
		}
	}
	clear(c.dirty[len(keep):])
	c.dirty = keep
	slices.SortFunc(due, func(a, b *cwindow) int { return compareWindows(a, b) })
	out := make([]Pending, len(due))
	for i, w := range due {
		out[i] = Pending{Tenant: w.id.tenant, Window: windowOf(w.id.start, w.id.length), version: w.version}
	}
	return out
}

// passed reports whether every source of w has read past its end.
func (c *Combiner) passed(w *cwindow) bool {
	for _, src := range w.sources {
		if c.maxEvent[src.source] < w.end {
			return false
		}
	}
	for _, s := range w.folders {
		if c.maxEvent[s] < w.end {
			return false
		}
	}
	return len(w.sources)+len(w.folders) > 0
}

// MarkSent records that p's totals were accepted. It reports false when
// the window changed since Due listed it (or was dropped): it will be due
// again with the newer totals.
func (c *Combiner) MarkSent(p Pending) bool {
	w := c.windows[windowID{tenant: p.Tenant, start: p.Window.Start.UnixNano(), length: int64(p.Window.Length)}]
	if w == nil || w.version != p.version {
		return false
	}
	w.sent = w.version
	return true
}

// MarkAllSent records every window's current totals as accepted. A
// Combiner rebuilt from the partials topic calls it on reaching the offset
// its last run committed: everything before it was sent.
func (c *Combiner) MarkAllSent() {
	for _, w := range c.windows {
		w.sent = w.version
	}
	for _, w := range c.dirty {
		w.listed = false
	}
	clear(c.dirty)
	c.dirty = c.dirty[:0]
}

// Holds reports whether the window is still held: not expired or evicted.
func (c *Combiner) Holds(tenant string, w Window) bool {
	_, ok := c.windows[windowID{tenant: tenant, start: w.Start.UnixNano(), length: int64(w.Length)}]
	return ok
}

// Stats returns the current counts.
func (c *Combiner) Stats() CombinerStats {
	s := c.stats
	s.Windows, s.Partials, s.Bytes = len(c.windows), c.partials, c.bytes
	return s
}

// expire drops the windows whose end + MaxAge has passed.
func (c *Combiner) expire(now int64) {
	for {
		w, ok := c.byEnd.peek()
		if !ok || now < w.end+int64(c.cfg.MaxAge) {
			break
		}
		c.stats.Expired++
		if w.version != w.sent {
			c.stats.ExpiredUnsent++
		}
		c.drop(w)
	}
	if now >= c.nextSweep {
		for id, deadline := range c.evicted {
			if now >= deadline {
				delete(c.evicted, id)
			}
		}
		// A source that stopped for good leaves shares no commit will fold:
		// forget those of windows dropped since.
		for source, q := range c.unfolded {
			keep := q[:0]
			for _, r := range q {
				if r.w.heapIdx >= 0 {
					keep = append(keep, r)
				}
			}
			clear(q[len(keep):])
			c.unfolded[source] = keep
		}
		c.nextSweep = now + int64(time.Minute)
	}
}

// bound drops the windows that expire first while the partials take more
// than MaxBytes.
func (c *Combiner) bound() {
	for c.bytes > c.cfg.MaxBytes {
		w, ok := c.byEnd.peek()
		if !ok {
			return
		}
		c.stats.Evicted++
		if w.version != w.sent {
			c.stats.EvictedUnsent++
		}
		if c.evicted == nil {
			c.evicted = make(map[windowID]int64)
		}
		c.evicted[w.id] = w.end + int64(c.cfg.MaxAge)
		c.drop(w)
	}
}

func (c *Combiner) drop(w *cwindow) {
	c.byEnd.remove(w)
	delete(c.windows, w.id)
	c.bytes -= w.bytes
	c.partials -= w.count
	w.sources = nil
}

// Sizes for the memory estimate: struct sizes with map and slice overhead,
// rounded up.
const (
	windowOverhead  = 256
	partialOverhead = 160
	seriesOverhead  = 200
	binBytes        = 16
)

func partialSize(p *Partial) int64 {
	n := int64(partialOverhead + len(p.Tenant))
	for i := range p.Series {
		t := &p.Series[i].Tags
		n += int64(seriesOverhead + len(t.Model) + len(t.Provider) + len(t.Gateway) + len(t.Routing) + binBytes*len(p.Latencies[i].Bins))
	}
	return n
}

// equalPartials compares what the Combiner reads: the key, the offsets
// covered, the sums and the latencies (the derived fields follow from them).
func equalPartials(a, b *Partial) bool {
	return a.Tenant == b.Tenant && a.Window.Start.Equal(b.Window.Start) && a.Window.Length == b.Window.Length &&
		a.Source == b.Source && a.Segment == b.Segment && a.First == b.First && a.Through == b.Through &&
		slices.EqualFunc(a.Series, b.Series, func(x, y Series) bool {
			return x.Tags == y.Tags && x.Requests == y.Requests && x.Errors == y.Errors &&
				x.InputTokens == y.InputTokens && x.OutputTokens == y.OutputTokens && x.Cost == y.Cost &&
				x.CacheHits == y.CacheHits && x.GuardrailTriggers == y.GuardrailTriggers && x.Fallbacks == y.Fallbacks &&
				x.LatencySumMS == y.LatencySumMS && x.LatencyMaxMS == y.LatencyMaxMS
		}) &&
		slices.EqualFunc(a.Latencies, b.Latencies, func(x, y Latencies) bool {
			return x.Sketched == y.Sketched && x.Exact == y.Exact && x.Zeros == y.Zeros && slices.Equal(x.Bins, y.Bins)
		}) && a.Delivery == b.Delivery
}

func compareWindows(a, b *cwindow) int {
	return cmp.Or(cmp.Compare(a.end, b.end), cmp.Compare(a.id.tenant, b.id.tenant),
		cmp.Compare(a.id.start, b.id.start), cmp.Compare(a.id.length, b.id.length))
}
