package aggregate

import (
	"fmt"
	"slices"
	"time"

	"github.com/futureagi/prism-exporter/schemas"
)

// Segmenter is the first phase of two-phase aggregation for one partition.
// It cuts the partition's records into segments, each from one commit point
// to the next, and hands on:
//
//   - every record's log, in chunks of ChunkSize per tenant (KindLogs),
//     each chunk on its way no later than the cut that ends its segment;
//   - at each cut, one Partial per tenant window the segment touched
//     (KindSegment): the segment's share of that window's totals, under the
//     key (tenant, window, partition, segment start).
//
// A window's total is the sum of its partials over every partition and
// segment; a Combiner makes it. Nothing waits for a window to close: a
// record is held only until its log is on its way, and the partition may
// commit at a cut once everything of the segments before it is accepted.
// A replay starts at a commit point, which is a segment's start, and
// rebuilds the segments from there under the same keys; the Combiner drops
// the partials of segments a replay rewrites (Combiner.Reset), whose ends
// may differ from the replay's.
//
// It is pure logic: no I/O, no goroutines, the clock injected (for Datadog's
// age limit only). One goroutine uses it.
type Segmenter struct {
	cfg Config
	sk  sketches

	start    int64 // first offset of the current segment; -1 before the first record
	windows  map[windowID]*window
	touched  []*window // the current segment's windows, in first-touch order
	chunks   map[string]*logChunk
	buffered []*logChunk // chunks holding logs, in first-log order
	recent   *logChunk
	stats    SegmentStats
	maxAge   int64
	pendMin  int64 // lowest offset among buffered logs (valid while any)
	pendSome bool
	maxEvent int64 // latest event time read, Unix ns
}

// SegmentStats is what a Segmenter holds and has done, for self-metrics.
type SegmentStats struct {
	Windows      int   // tenant windows the current segment touched
	BufferedLogs int   // logs not yet handed on
	Segments     int64 // cuts that handed on partials
	Partials     int64 // partials handed on
	TooOld       int64 // records whose window Datadog no longer takes: logs only
	Folded       int64 // records whose new tag set went to Other (MaxTagSets)
}

type logChunk struct {
	tenant string
	logs   []*schemas.Event
	spans  []LogSpan
	min    int64
	full   bool // a full chunk went out: the next buffer is sized for one
	listed bool
}

// NewSegmenter returns a Segmenter for one partition. Zero-valued Config
// fields take their defaults (AllowedLateness and RetainClosed are not
// used); an out-of-range field is an error naming it.
func NewSegmenter(cfg Config) (*Segmenter, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	sk, err := newSketches()
	if err != nil {
		return nil, fmt.Errorf("aggregate: latency sketch: %w", err)
	}
	return &Segmenter{
		cfg: cfg, sk: sk, start: -1, maxAge: int64(cfg.MetricMaxAge),
		windows: make(map[windowID]*window), chunks: make(map[string]*logChunk),
	}, nil
}

// Add counts the record at offset in its tenant's window of the given
// length (the tenant's sync interval; it must be > 0, and Add panics
// otherwise) and buffers its log, handing on a full chunk. Offsets must
// increase, as Kafka hands them. A record whose window Datadog would no
// longer take a point for goes out as a log only: Add reports TooOld.
func (s *Segmenter) Add(offset int64, ev *schemas.Event, length time.Duration, emit func(Batch)) Placement {
	if length <= 0 {
		panic(fmt.Sprintf("aggregate: Add for tenant %q with window length %v: the length (sync interval) must be > 0", ev.OrgID, length))
	}
	if s.start < 0 {
		s.start = offset
	}
	placed := Placed
	ts := ev.Timestamp.UnixNano()
	s.maxEvent = max(s.maxEvent, ts)
	start := windowStart(ts, int64(length))
	if s.cfg.Clock.Now().UnixNano() >= start+s.maxAge {
		s.stats.TooOld++
		placed = TooOld
	} else {
		id := windowID{tenant: ev.OrgID, start: start, length: int64(length)}
		w := s.windows[id]
		if w == nil {
			w = &window{tenant: ev.OrgID, start: start, length: int64(length), end: start + int64(length)}
			s.windows[id] = w
			s.touched = append(s.touched, w)
			s.stats.Windows++
		}
		if s.addMetrics(w, ev) {
			s.stats.Folded++
		}
	}
	c := s.chunkOf(ev.OrgID)
	c.add(offset, ev, s.cfg.ChunkSize)
	c.count(start, int64(length))
	if !c.listed {
		c.listed = true
		s.buffered = append(s.buffered, c)
	}
	if !s.pendSome || offset < s.pendMin {
		s.pendMin, s.pendSome = offset, true
	}
	s.stats.BufferedLogs++
	if len(c.logs) >= s.cfg.ChunkSize {
		c.full = true
		s.emitChunk(c, emit)
	}
	return placed
}

// addMetrics adds a record to its tag set's totals in w, folding a new tag
// set into Other once w has MaxTagSets; it reports a fold.
func (s *Segmenter) addMetrics(w *window, ev *schemas.Event) (folded bool) {
	tags := tagsOf(ev)
	i, ok := w.find(tags)
	if !ok {
		other := otherTags()
		isOther := tags == other
		if !isOther && w.distinct >= s.cfg.MaxTagSets {
			folded = true
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
	w.series[i].add(ev, s.sk)
	return folded
}

func (s *Segmenter) chunkOf(tenant string) *logChunk {
	if s.recent != nil && s.recent.tenant == tenant {
		return s.recent
	}
	c := s.chunks[tenant]
	if c == nil {
		c = &logChunk{tenant: tenant} // interned by schemas.Decode
		s.chunks[tenant] = c
	}
	s.recent = c
	return c
}

// add appends a log. The buffer grows by doubling up to the chunk size, so
// that a quiet tenant holds a small slice and a busy one allocates once per
// chunk.
func (c *logChunk) add(offset int64, ev *schemas.Event, chunk int) {
	if len(c.logs) == 0 || offset < c.min {
		c.min = offset
	}
	if len(c.logs) == cap(c.logs) {
		n := firstLogsCap
		if c.full {
			n = chunk
		} else if len(c.logs) > 0 {
			n = 2 * len(c.logs)
		}
		grown := make([]*schemas.Event, len(c.logs), min(n, chunk))
		copy(grown, c.logs)
		c.logs = grown
	}
	c.logs = append(c.logs, ev)
}

// count adds a log to its window's span: the logs of a chunk fall in one or
// two windows, and the last span is nearly always the one.
func (c *logChunk) count(start, length int64) {
	for i := len(c.spans) - 1; i >= 0; i-- {
		if sp := &c.spans[i]; sp.Window.Length == time.Duration(length) && sp.Window.Start.UnixNano() == start {
			sp.Logs++
			return
		}
	}
	c.spans = append(c.spans, LogSpan{Window: windowOf(start, length), Logs: 1})
}

func (s *Segmenter) emitChunk(c *logChunk, emit func(Batch)) {
	logs, first, spans := c.logs, c.min, c.spans
	c.logs, c.spans = nil, nil
	s.stats.BufferedLogs -= len(logs)
	emit(Batch{Kind: KindLogs, Tenant: c.tenant, Partition: s.cfg.Partition, Logs: logs, Spans: spans, MinOffset: first})
}

// FlushLogs hands on every buffered log without ending the segment (for
// memory pressure).
func (s *Segmenter) FlushLogs(emit func(Batch)) {
	for _, c := range s.buffered {
		c.listed = false
		if len(c.logs) > 0 {
			s.emitChunk(c, emit)
		}
	}
	clear(s.buffered)
	s.buffered = s.buffered[:0]
	s.pendSome = false
	// A chunk map entry per tenant seen would grow without bound with
	// tenant churn; the chunks are empty now.
	clear(s.chunks)
	s.recent = nil
}

// Cut ends the current segment before offset next: it hands on every
// buffered log, then one KindSegment batch with a Partial per tenant
// window the segment touched (none when it touched none), and starts the
// next segment at next. next must be past every offset added; committed is
// the partition's committed offset (-1: none), which the partials carry
// (Partial.Committed). Once every batch handed on with a MinOffset below
// next is accepted, next may be committed.
func (s *Segmenter) Cut(next, committed int64, emit func(Batch)) {
	s.FlushLogs(emit)
	if s.start < 0 {
		s.start = next
		return
	}
	if len(s.touched) > 0 {
		parts := make([]*Partial, 0, len(s.touched))
		for _, w := range s.touched {
			p := w.partial(s.source(), s.sk)
			p.Segment, p.First, p.Through, p.Committed, p.MaxEvent = s.start, s.start, next-1, committed, s.maxEvent
			parts = append(parts, p)
		}
		slices.SortFunc(parts, func(a, b *Partial) int { return comparePartialKeys(a.Key(), b.Key()) })
		s.stats.Segments++
		s.stats.Partials += int64(len(parts))
		emit(Batch{Kind: KindSegment, Partition: s.cfg.Partition, Partials: parts, MinOffset: s.start})
	}
	clear(s.windows)
	clear(s.touched)
	s.touched = s.touched[:0]
	s.stats.Windows = 0
	s.start = next
}

// Start is the current segment's first offset: every record from it on is
// in the current segment. ok is false before the first record or cut.
func (s *Segmenter) Start() (offset int64, ok bool) { return s.start, s.start >= 0 }

// Empty reports whether the current segment holds nothing: no window
// touched, no log buffered.
func (s *Segmenter) Empty() bool { return len(s.touched) == 0 && !s.pendSome }

// MaxEvent is the latest event time read (Unix ns), as the partials carry
// it.
func (s *Segmenter) MaxEvent() int64 { return s.maxEvent }

// Stats returns the current counts.
func (s *Segmenter) Stats() SegmentStats { return s.stats }

// source is the Partial.Source of this Segmenter's shares.
func (s *Segmenter) source() int64 {
	if s.cfg.Source != 0 {
		return s.cfg.Source
	}
	return int64(s.cfg.Partition)
}
