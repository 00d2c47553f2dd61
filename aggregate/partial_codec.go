package aggregate

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/DataDog/sketches-go/ddsketch/mapping"
)

// The partial's binary form, version 3, in order (varint and uvarint as in
// encoding/binary, strings as a uvarint length and the bytes):
//
//	byte     version (2)
//	string   tenant
//	varint   window start, Unix ns
//	uvarint  window length, ns
//	uvarint  source partition
//	uvarint  segment (its first offset)
//	uvarint  through - segment
//	uvarint  committed + 1
//	varint   max event time, Unix ns
//	uvarint  number of series, then per series, sorted by tags:
//	  string   model, provider, gateway, routing
//	  uvarint  requests, errors, cache hits, guardrail triggers, fallbacks
//	  varint   input tokens, output tokens, latency sum, latency max
//	  8 bytes  cost, IEEE 754, little endian
//	  byte     0: exact latencies, then `requests` uvarints
//	           1: sketch, then uvarint zero count, uvarint number of bins,
//	              varint first index, uvarint count, then per further bin
//	              uvarint index step (>= 1) and uvarint count
//	uvarint  Delivery: logs, logs dropped, requests, retries, bytes,
//	         micros, rate limited, status
//
// Version 2 is version 3 without the Delivery: it still reads, with a zero
// Delivery (partials written before an upgrade).
//
// The sketch is written as bins rather than with sketches-go's own
// encoding: its decoder ignores a truncated store (returns no error) and
// sizes its pages by the decoded index range, so that 13 bytes of input can
// allocate about 100 MiB. These bins are checked against the one mapping
// this format allows (cubically interpolated, 1%): a different accuracy
// needs a new version.
const (
	partialVersion   = 3
	partialVersionV2 = 2
)

// Bin index bounds of the latency mapping (cubically interpolated, 1%
// relative accuracy) for latencies 1 ms .. 2^63 ms; 0 goes to the zero
// count. TestBinBoundsMatchMapping holds them to the mapping.
const (
	minBinIndex = 0
	maxBinIndex = 2204
)

const (
	kindExact  = 0
	kindSketch = 1
	// minSeriesBytes is the fewest bytes one encoded series takes: it bounds
	// what a count read from the input may allocate.
	minSeriesBytes = 4 + 5 + 4 + 8 + 1 + 1
)

// PartialError is the error UnmarshalBinary (and AppendBinary, for a
// partial it would refuse) returns: the input is not a partial of a version
// this build reads. A processor reading the partials topic skips and counts
// such records; they cannot become valid by retrying.
type PartialError struct{ Reason string }

func (e *PartialError) Error() string { return "aggregate: bad partial: " + e.Reason }

func badPartial(format string, args ...any) error {
	return &PartialError{Reason: fmt.Sprintf(format, args...)}
}

// MarshalBinary is AppendBinary to a new slice.
func (p *Partial) MarshalBinary() ([]byte, error) { return p.AppendBinary(nil) }

// AppendBinary appends the partial's binary form (version 3) to b. It
// refuses a partial that UnmarshalBinary would refuse, so that nothing
// undecodable reaches the topic.
func (p *Partial) AppendBinary(b []byte) ([]byte, error) {
	if err := p.validate(); err != nil {
		return b, err
	}
	return appendPartial(b, p), nil
}

// appendPartial encodes p, valid or not (tests build invalid encodings
// with it to check the decoder refuses them).
func appendPartial(b []byte, p *Partial) []byte {
	b = append(b, partialVersion)
	b = appendString(b, p.Tenant)
	b = binary.AppendVarint(b, p.Window.Start.UnixNano())
	b = binary.AppendUvarint(b, uint64(p.Window.Length))
	b = binary.AppendUvarint(b, uint64(p.Source))
	b = binary.AppendUvarint(b, uint64(p.Segment))
	b = binary.AppendUvarint(b, uint64(p.Through-p.Segment))
	b = binary.AppendUvarint(b, uint64(p.Committed+1))
	b = binary.AppendVarint(b, p.MaxEvent)
	b = binary.AppendUvarint(b, uint64(len(p.Series)))
	for i := range p.Series {
		b = appendSeries(b, &p.Series[i], &p.Latencies[i])
	}
	for _, v := range p.Delivery.fields() {
		b = binary.AppendUvarint(b, uint64(*v))
	}
	return b
}

func appendSeries(b []byte, s *Series, lat *Latencies) []byte {
	b = appendString(b, s.Tags.Model)
	b = appendString(b, s.Tags.Provider)
	b = appendString(b, s.Tags.Gateway)
	b = appendString(b, s.Tags.Routing)
	for _, v := range [...]int64{s.Requests, s.Errors, s.CacheHits, s.GuardrailTriggers, s.Fallbacks} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	for _, v := range [...]int64{s.InputTokens, s.OutputTokens, s.LatencySumMS, s.LatencyMaxMS} {
		b = binary.AppendVarint(b, v)
	}
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.Cost))
	if !lat.Sketched {
		b = append(b, kindExact)
		for _, v := range lat.Exact[:s.Requests] {
			b = binary.AppendUvarint(b, uint64(v))
		}
		return b
	}
	b = append(b, kindSketch)
	b = binary.AppendUvarint(b, uint64(lat.Zeros))
	b = binary.AppendUvarint(b, uint64(len(lat.Bins)))
	for i, bin := range lat.Bins {
		if i == 0 {
			b = binary.AppendVarint(b, int64(bin.Index))
		} else {
			b = binary.AppendUvarint(b, uint64(bin.Index-lat.Bins[i-1].Index))
		}
		b = binary.AppendUvarint(b, uint64(bin.Count))
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// UnmarshalBinary sets p from its binary form. Bad input (truncated,
// trailing bytes, an unknown version, values out of range, inconsistent
// counts) returns a *PartialError and leaves p unchanged; it
// never panics, and what it allocates is bounded by len(data).
func (p *Partial) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	v := r.byte()
	if !r.err && v != partialVersion && v != partialVersionV2 {
		return badPartial("version %d, this build reads %d and %d", v, partialVersionV2, partialVersion)
	}
	var q Partial
	q.Tenant = r.str()
	start := r.varint()
	length := r.uvarint()
	source := r.uvarint()
	first := r.uvarint()
	span := r.uvarint()
	committed := r.uvarint()
	maxEvent := r.varint()
	n := r.uvarint()
	if r.err {
		return r.fail()
	}
	switch {
	case length == 0 || length > math.MaxInt64:
		return badPartial("window length %d ns", length)
	case source > math.MaxInt64:
		return badPartial("source partition %d", source)
	case first > math.MaxInt64 || span > math.MaxInt64-first || committed > math.MaxInt64:
		return badPartial("offsets out of range")
	case n > uint64(len(r.b)/minSeriesBytes):
		return badPartial("%d series in %d bytes", n, len(r.b))
	}
	q.Window = Window{Start: time.Unix(0, start).UTC(), Length: time.Duration(length)}
	q.Source = int64(source)
	q.Segment = int64(first)
	q.First = int64(first)
	q.Through = int64(first + span)
	q.Committed = int64(committed) - 1
	q.MaxEvent = maxEvent
	q.Series = make([]Series, n)
	q.Latencies = make([]Latencies, n)
	for i := range q.Series {
		if err := r.series(&q.Series[i], &q.Latencies[i]); err != nil {
			return err
		}
	}
	if v == partialVersion {
		for _, f := range q.Delivery.fields() {
			d := r.uvarint()
			if r.err {
				return r.fail()
			}
			if d > math.MaxInt64 {
				return badPartial("delivery count %d", d)
			}
			*f = int64(d)
		}
	}
	if len(r.b) != 0 {
		return badPartial("%d bytes after the last series", len(r.b))
	}
	if err := q.validate(); err != nil {
		return err
	}
	// What the source would have sent alone: the average and percentiles
	// are not carried, they follow from the rest.
	var m mapping.IndexMapping
	for i := range q.Series {
		if q.Latencies[i].Sketched && m == nil {
			var err error
			if m, err = latencyMapping(); err != nil {
				return err
			}
		}
		derive(&q.Series[i], &q.Latencies[i], m)
	}
	*p = q
	return nil
}

func (r *reader) series(s *Series, lat *Latencies) error {
	s.Tags = TagSet{Model: r.str(), Provider: r.str(), Gateway: r.str(), Routing: r.str()}
	var counts [5]int64
	for i := range counts {
		v := r.uvarint()
		if v > math.MaxInt64 {
			return badPartial("count %d out of range", v)
		}
		counts[i] = int64(v)
	}
	s.Requests, s.Errors, s.CacheHits, s.GuardrailTriggers, s.Fallbacks = counts[0], counts[1], counts[2], counts[3], counts[4]
	s.InputTokens, s.OutputTokens = r.varint(), r.varint()
	s.LatencySumMS, s.LatencyMaxMS = r.varint(), r.varint()
	s.Cost = math.Float64frombits(r.u64())
	kind := r.byte()
	if r.err {
		return r.fail()
	}
	switch kind {
	case kindExact:
		if s.Requests < 1 || s.Requests > exactLatencies {
			return badPartial("%d exact latencies (at most %d)", s.Requests, exactLatencies)
		}
		for i := range s.Requests {
			v := r.uvarint()
			if v > math.MaxInt32 {
				return badPartial("exact latency %d out of range", v)
			}
			lat.Exact[i] = int32(v)
		}
	case kindSketch:
		lat.Sketched = true
		zeros, n := r.uvarint(), r.uvarint()
		if r.err {
			return r.fail()
		}
		if zeros > math.MaxInt64 || n > uint64(len(r.b)/2) {
			return badPartial("sketch of %d zeros and %d bins in %d bytes", zeros, n, len(r.b))
		}
		lat.Zeros = int64(zeros)
		if n > 0 {
			lat.Bins = make([]Bin, n)
		}
		var index int64
		for i := range lat.Bins {
			if i == 0 {
				index = r.varint()
			} else if step := r.uvarint(); step == 0 || step > maxBinIndex-minBinIndex {
				return badPartial("bin index step %d", step)
			} else {
				index += int64(step)
			}
			if index < minBinIndex || index > maxBinIndex {
				return badPartial("bin index %d outside %d..%d", index, minBinIndex, maxBinIndex)
			}
			c := r.uvarint()
			if c > math.MaxInt64 {
				return badPartial("bin count %d out of range", c)
			}
			lat.Bins[i] = Bin{Index: int32(index), Count: int64(c)}
		}
	default:
		return badPartial("latency kind %d", kind)
	}
	if r.err {
		return r.fail()
	}
	return nil
}

// validate checks what the Combiner relies on and the canonical form
// (sorted, distinct tag sets; sorted exact latencies; increasing bins) that
// makes equal partials encode alike.
func (p *Partial) validate() error {
	start, length := p.Window.Start.UnixNano(), int64(p.Window.Length)
	switch {
	case length <= 0 || windowStart(start, length) != start:
		return badPartial("window %v + %v is not aligned to its length", p.Window.Start, p.Window.Length)
	case p.Source < 0:
		return badPartial("source partition %d", p.Source)
	case p.Segment < 0 || p.First != p.Segment || p.Through < p.First:
		return badPartial("segment %d with offsets %d..%d", p.Segment, p.First, p.Through)
	case p.Committed < -1 || p.Committed == math.MaxInt64:
		return badPartial("committed offset %d", p.Committed)
	case !p.Delivery.valid():
		return badPartial("negative delivery counts %+v", p.Delivery)
	case len(p.Series) == 0 || len(p.Latencies) != len(p.Series):
		return badPartial("%d series with %d latencies", len(p.Series), len(p.Latencies))
	}
	for i := range p.Series {
		if i > 0 && compareTags(p.Series[i-1].Tags, p.Series[i].Tags) >= 0 {
			return badPartial("series not sorted by distinct tags at %d", i)
		}
		if err := validateSeries(&p.Series[i], &p.Latencies[i]); err != nil {
			return err
		}
	}
	return nil
}

func validateSeries(s *Series, lat *Latencies) error {
	n := s.Requests
	for _, c := range [...]int64{s.Errors, s.CacheHits, s.GuardrailTriggers, s.Fallbacks} {
		if c < 0 || c > n {
			return badPartial("tag set %v: a count of %d out of %d requests", s.Tags, c, n)
		}
	}
	switch {
	case n < 1:
		return badPartial("tag set %v: %d requests", s.Tags, n)
	case math.IsNaN(s.Cost) || math.IsInf(s.Cost, 0):
		return badPartial("tag set %v: cost %v", s.Tags, s.Cost)
	case !lat.Sketched:
		if n > exactLatencies || lat.Zeros != 0 || lat.Bins != nil {
			return badPartial("tag set %v: %d exact latencies (at most %d)", s.Tags, n, exactLatencies)
		}
		for i, v := range lat.Exact {
			if v < 0 || int64(i) >= n && v != 0 || i > 0 && int64(i) < n && v < lat.Exact[i-1] {
				return badPartial("tag set %v: exact latencies %v", s.Tags, lat.Exact[:])
			}
		}
		return nil
	case lat.Zeros < 0:
		return badPartial("tag set %v: zero count %d", s.Tags, lat.Zeros)
	}
	total := lat.Zeros
	for i, b := range lat.Bins {
		if b.Index < minBinIndex || b.Index > maxBinIndex || i > 0 && b.Index <= lat.Bins[i-1].Index {
			return badPartial("tag set %v: bin index %d out of order or range", s.Tags, b.Index)
		}
		if b.Count < 1 || b.Count > n-total {
			return badPartial("tag set %v: sketch counts exceed %d requests", s.Tags, n)
		}
		total += b.Count
	}
	if total != n {
		return badPartial("tag set %v: sketch counts %d latencies, %d requests", s.Tags, total, n)
	}
	return nil
}

// latencyMapping is the sketches' index mapping.
func latencyMapping() (mapping.IndexMapping, error) {
	m, err := mapping.NewCubicallyInterpolatedMapping(sketchAccuracy)
	if err != nil {
		return nil, badPartial("latency mapping: %v", err)
	}
	return m, nil
}

// AppendBinary appends the key's binary form, the record key on the
// partials topic: compaction keeps the last record per key, so equal keys
// must encode to equal bytes, and this encoding is deterministic.
func (k PartialKey) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, partialVersion)
	b = appendString(b, k.Tenant)
	b = binary.AppendVarint(b, k.Start)
	b = binary.AppendUvarint(b, uint64(k.Length))
	b = binary.AppendUvarint(b, uint64(k.Source))
	b = binary.AppendUvarint(b, uint64(k.Segment))
	return b, nil
}

// resetVersion leads a SourceReset's key and value: no partial starts with
// it.
const resetVersion = 0x80 | partialVersion

// SourceReset tells the Combiner that a source partition is read again from
// From, a commit point, by a new run: the partials of that source's segments
// from From on were written by a run that did not commit them, and the new
// run writes its own (Combiner.Reset). The processor writes one to every
// partition of the partials topic (To) before the run's first partial.
type SourceReset struct {
	Source int64
	From   int64
	To     int // the partials partition this copy goes to
}

// AppendBinary appends the reset's binary form, its record key and value:
//
//	byte     0x82
//	uvarint  source partition
//	uvarint  from
//	uvarint  the partials partition it is written to
func (r SourceReset) AppendBinary(b []byte) []byte {
	b = append(b, resetVersion)
	b = binary.AppendUvarint(b, uint64(r.Source))
	b = binary.AppendUvarint(b, uint64(r.From))
	return binary.AppendUvarint(b, uint64(r.To))
}

// IsSourceReset tells a SourceReset from a partial by its first byte.
func IsSourceReset(data []byte) bool { return len(data) > 0 && data[0] == resetVersion }

// UnmarshalBinary sets r from its binary form; bad input returns a
// *PartialError.
func (r *SourceReset) UnmarshalBinary(data []byte) error {
	rd := reader{b: data}
	if v := rd.byte(); !rd.err && v != resetVersion {
		return badPartial("reset version %d, this build reads %d", v, resetVersion)
	}
	source, from, to := rd.uvarint(), rd.uvarint(), rd.uvarint()
	switch {
	case rd.err:
		return rd.fail()
	case len(rd.b) != 0:
		return badPartial("%d bytes after a reset", len(rd.b))
	case source > math.MaxInt64 || from > math.MaxInt64 || to > math.MaxInt32:
		return badPartial("reset out of range")
	}
	*r = SourceReset{Source: int64(source), From: int64(from), To: int(to)}
	return nil
}

// KeyTenant is the tenant of a key in its binary form, without copying:
// the partials topic is partitioned by it, so that all of a tenant's
// partials meet on one partition. ok is false for bytes that are not a key
// of this version.
//
// A SourceReset's or SourceProgress's key names its partials partition
// instead: see ControlTo.
func KeyTenant(key []byte) (tenant []byte, ok bool) {
	if len(key) < 2 || key[0] != partialVersion {
		return nil, false
	}
	n, w := binary.Uvarint(key[1:])
	if w <= 0 || n > uint64(len(key)-1-w) {
		return nil, false
	}
	return key[1+w : 1+w+int(n)], true
}

// progressVersion leads a SourceProgress's key and value.
const progressVersion = 0x80 | (partialVersion + 1)

// SourceProgress tells the Combiner how far a source partition has got
// when it has no share to carry it (Partial.Committed, Partial.MaxEvent):
// the processor writes one to every partition of the partials topic (To)
// when the partition goes quiet after a commit, so that the Combiner folds
// the source's last shares and stops waiting for it in windows it has read
// past.
type SourceProgress struct {
	Source    int64
	Committed int64
	MaxEvent  int64
	To        int
}

// AppendBinary appends the progress record's binary form, its key and
// value:
//
//	byte     0x83
//	uvarint  source partition
//	uvarint  committed + 1
//	varint   max event time, Unix ns
//	uvarint  the partials partition it is written to
func (r SourceProgress) AppendBinary(b []byte) []byte {
	b = append(b, progressVersion)
	b = binary.AppendUvarint(b, uint64(r.Source))
	b = binary.AppendUvarint(b, uint64(r.Committed+1))
	b = binary.AppendVarint(b, r.MaxEvent)
	return binary.AppendUvarint(b, uint64(r.To))
}

// IsSourceProgress tells a SourceProgress by its first byte.
func IsSourceProgress(data []byte) bool { return len(data) > 0 && data[0] == progressVersion }

// UnmarshalBinary sets r from its binary form; bad input returns a
// *PartialError.
func (r *SourceProgress) UnmarshalBinary(data []byte) error {
	rd := reader{b: data}
	if v := rd.byte(); !rd.err && v != progressVersion {
		return badPartial("progress version %d, this build reads %d", v, progressVersion)
	}
	source, committed, maxEvent, to := rd.uvarint(), rd.uvarint(), rd.varint(), rd.uvarint()
	switch {
	case rd.err:
		return rd.fail()
	case len(rd.b) != 0:
		return badPartial("%d bytes after a progress record", len(rd.b))
	case source > math.MaxInt64 || committed > math.MaxInt64 || to > math.MaxInt32:
		return badPartial("progress record out of range")
	}
	*r = SourceProgress{Source: int64(source), Committed: int64(committed) - 1, MaxEvent: maxEvent, To: int(to)}
	return nil
}

// ControlTo is the partials partition a SourceReset's or SourceProgress's
// key is for.
func ControlTo(key []byte) (int, bool) {
	switch {
	case IsSourceReset(key):
		var r SourceReset
		if r.UnmarshalBinary(key) == nil {
			return r.To, true
		}
	case IsSourceProgress(key):
		var r SourceProgress
		if r.UnmarshalBinary(key) == nil {
			return r.To, true
		}
	}
	return 0, false
}

// reader reads the binary form; after the first error every read returns
// zero and err stays set, with the first reason.
type reader struct {
	b      []byte
	err    bool
	reason string
}

func (r *reader) fail() error { return badPartial("%s", r.reason) }

func (r *reader) byte() byte {
	if r.err || len(r.b) == 0 {
		r.setErr("truncated")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u64() uint64 {
	if r.err || len(r.b) < 8 {
		r.setErr("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.setErr("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.setErr("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.setErr("truncated")
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) setErr(reason string) {
	if !r.err {
		r.err, r.reason = true, reason
	}
}
