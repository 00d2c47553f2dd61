package aggregate

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/futureagi/prism-exporter/schemas"
)

// The codec's bin bounds are the mapping's indexes of 1 ms and 2^63 ms.
func TestBinBoundsMatchMapping(t *testing.T) {
	sk, err := newSketches()
	if err != nil {
		t.Fatal(err)
	}
	if got := sk.mapping.Index(1); got != minBinIndex {
		t.Errorf("Index(1) = %d, minBinIndex %d", got, minBinIndex)
	}
	if got := sk.mapping.Index(float64(math.MaxInt64)); got != maxBinIndex {
		t.Errorf("Index(2^63) = %d, maxBinIndex %d", got, maxBinIndex)
	}
}

// Percentiles from a snapshot's bins are exactly the library's.
func TestBinsQuantileMatchesDDSketch(t *testing.T) {
	sk, err := newSketches()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		var s seriesAcc
		n := 1 + r.IntN(3000)
		for range n {
			l := r.Int64N(1 << uint(1+r.IntN(40)))
			if r.IntN(10) == 0 {
				l = 0
			}
			s.add(&schemas.Event{LatencyMS: l}, sk)
		}
		if s.latency == nil {
			continue
		}
		p := ownLatencies(&s)
		for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
			want, err := s.latency.GetValueAtQuantile(q)
			if err != nil {
				t.Fatal(err)
			}
			if got := binsQuantile(p.Zeros, p.Bins, q, sk.mapping); got != want {
				t.Fatalf("round %d (n %d) q %v: bins %v, sketch %v", round, n, q, got, want)
			}
		}
	}
}

// event is a record of tenant at ts with the given latency.
func event(tenant string, ts time.Time, latency int64) *schemas.Event {
	return &schemas.Event{OrgID: tenant, Timestamp: ts, Model: "m", Provider: "p", GatewayID: "g", LatencyMS: latency, StatusCode: 200}
}

// segmentPartial runs records of one window through a Segmenter on
// partition 3 from offset 100 and returns the partial of its one segment.
func segmentPartial(t *testing.T, latencies []int64, models []string) *Partial {
	t.Helper()
	s, err := NewSegmenter(Config{Partition: 3, Clock: &fakeClock{now: t0}})
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range latencies {
		ev := event("org-a", t0.Add(time.Duration(i)*time.Millisecond), l)
		ev.Model = models[i%len(models)]
		ev.Cost = 0.001 * float64(i)
		ev.PromptTokens = int64(10 * i)
		s.Add(int64(100+i), ev, time.Minute, func(Batch) {})
	}
	var out *Partial
	s.Cut(int64(100+len(latencies)), -1, func(b Batch) {
		if b.Kind == KindSegment {
			if len(b.Partials) != 1 {
				t.Fatalf("%d partials for one window", len(b.Partials))
			}
			out = b.Partials[0]
		}
	})
	if out == nil {
		t.Fatal("no KindSegment")
	}
	return out
}

func TestPartialRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name      string
		latencies []int64
		models    []string
	}{
		{"exact", []int64{30, 10, 20}, []string{"m"}},
		{"sketch", []int64{5, 0, 900, 12, 0, 40000, 7, 3}, []string{"m"}},
		{"too large for exact", []int64{1, 3_000_000_000}, []string{"m"}},
		{"tag sets", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, []string{"a", "b", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := segmentPartial(t, tc.latencies, tc.models)
			if p.Segment != 100 || p.Source != 3 || p.First != 100 || p.Through != int64(99+len(tc.latencies)) {
				t.Fatalf("partial %+v", p)
			}
			enc, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var back Partial
			if err := back.UnmarshalBinary(enc); err != nil {
				t.Fatal(err)
			}
			if !equalPartials(p, &back) || back.Key() != p.Key() || !slicesEqual(back.Series, p.Series) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", back, *p)
			}
			again, _ := back.AppendBinary([]byte("prefix"))
			if !bytes.Equal(again[len("prefix"):], enc) {
				t.Fatal("re-encoding differs")
			}
		})
	}
}

func TestUnmarshalPartialRejects(t *testing.T) {
	good := segmentPartial(t, []int64{5, 0, 900, 12, 0, 40000, 7, 3, 100, 200, 300, 400}, []string{"a", "b"})
	if !good.Latencies[0].Sketched || len(good.Latencies[0].Bins) < 2 {
		t.Fatalf("want a sketched first series: %+v", good.Latencies[0])
	}
	enc, err := good.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	reject := func(name string, data []byte) {
		t.Helper()
		p := Partial{Tenant: "untouched"}
		err := p.UnmarshalBinary(data)
		var pe *PartialError
		if !errors.As(err, &pe) {
			t.Errorf("%s: err %v, want a *PartialError", name, err)
		}
		if p.Tenant != "untouched" {
			t.Errorf("%s: the partial was changed", name)
		}
	}
	for n := range len(enc) {
		reject("truncated", enc[:n])
	}
	reject("trailing byte", append(bytes.Clone(enc), 0))
	v1 := bytes.Clone(enc)
	v1[0] = 1
	reject("version 1 (whole and record partials, before segments)", v1)
	v4 := bytes.Clone(enc)
	v4[0] = 4
	reject("version 4", v4)
	// Version 2 is version 3 without the Delivery (eight uvarints, here
	// zeros): partials written before an upgrade still read.
	if good.Delivery == (Delivery{}) {
		v2 := bytes.Clone(enc[:len(enc)-8])
		v2[0] = 2
		var back Partial
		if err := back.UnmarshalBinary(v2); err != nil {
			t.Errorf("version 2: %v", err)
		} else if !equalPartials(&back, good) {
			t.Errorf("version 2 read back as %+v, want %+v", back, *good)
		}
	} else {
		t.Errorf("the version 2 check wants a partial with no Delivery")
	}

	mutate := func(name string, f func(p *Partial)) {
		t.Helper()
		p := *good
		p.Series = append([]Series(nil), good.Series...)
		p.Latencies = append([]Latencies(nil), good.Latencies...)
		for i := range p.Latencies {
			p.Latencies[i].Bins = append([]Bin(nil), p.Latencies[i].Bins...)
		}
		f(&p)
		if _, err := p.MarshalBinary(); err == nil {
			t.Errorf("%s: MarshalBinary accepted it", name)
		}
		// Bypass the encoder's check to hand the decoder the bad form.
		reject(name, appendUnchecked(&p))
	}
	mutate("errors above requests", func(p *Partial) { p.Series[0].Errors = p.Series[0].Requests + 1 })
	mutate("unsorted tags", func(p *Partial) {
		p.Series[0], p.Series[1] = p.Series[1], p.Series[0]
		p.Latencies[0], p.Latencies[1] = p.Latencies[1], p.Latencies[0]
	})
	mutate("no series", func(p *Partial) { p.Series, p.Latencies = nil, nil })
	mutate("sketch counts short", func(p *Partial) { p.Series[0].Requests++ })
	mutate("bin out of range", func(p *Partial) { p.Latencies[0].Bins[len(p.Latencies[0].Bins)-1].Index = maxBinIndex + 1 })
	mutate("bins out of order", func(p *Partial) {
		bs := p.Latencies[0].Bins
		bs[0], bs[1] = bs[1], bs[0]
	})
	mutate("exact latencies unsorted", func(p *Partial) {
		p.Latencies[0] = Latencies{Exact: [exactLatencies]int32{5, 3}}
		p.Series[0].Requests, p.Series[0].Errors, p.Series[0].CacheHits, p.Series[0].GuardrailTriggers, p.Series[0].Fallbacks = 2, 0, 0, 0, 0
	})
	mutate("misaligned window", func(p *Partial) { p.Window.Start = p.Window.Start.Add(time.Second) })
	mutate("through before the segment", func(p *Partial) { p.Through = p.Segment - 1 })
	mutate("negative segment", func(p *Partial) { p.Segment, p.First = -1, -1 })
	mutate("NaN cost", func(p *Partial) { p.Series[0].Cost = math.NaN() })
	mutate("negative source", func(p *Partial) { p.Source = -1 })
	mutate("negative logs", func(p *Partial) { p.Delivery.Logs = -1 })
}

// appendUnchecked encodes p without validating it.
func appendUnchecked(p *Partial) []byte { return appendPartial(nil, p) }

func slicesEqual(a, b []Series) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPartialKeyBinary(t *testing.T) {
	k := PartialKey{Tenant: "org", Start: t0.UnixNano(), Length: time.Minute, Source: 4, Segment: 0}
	a, _ := k.AppendBinary(nil)
	b, _ := k.AppendBinary(nil)
	if !bytes.Equal(a, b) {
		t.Fatal("the key's encoding is not deterministic")
	}
	seen := map[string]PartialKey{string(a): k}
	for _, o := range []PartialKey{
		{Tenant: "org2", Start: k.Start, Length: k.Length, Source: 4},
		{Tenant: "org", Start: k.Start + 1, Length: k.Length, Source: 4},
		{Tenant: "org", Start: k.Start, Length: 2 * time.Minute, Source: 4},
		{Tenant: "org", Start: k.Start, Length: k.Length, Source: 5},
		{Tenant: "org", Start: k.Start, Length: k.Length, Source: 4, Segment: 1},
	} {
		e, _ := o.AppendBinary(nil)
		if prev, dup := seen[string(e)]; dup {
			t.Errorf("keys %+v and %+v encode alike", prev, o)
		}
		seen[string(e)] = o
	}
}

// FuzzDecodePartial: whatever the input (a partials-topic record: a partial
// or a reset), decoding does not panic, and what it accepts encodes again
// to the same bytes.
func FuzzDecodePartial(f *testing.F) {
	for _, lat := range [][]int64{{30, 10, 20}, {5, 0, 900, 12, 0, 40000, 7, 3}, {1, 3_000_000_000}} {
		sk, _ := newSketches()
		var s seriesAcc
		s.tags = TagSet{"m", "p", "g", "r"}
		for _, l := range lat {
			s.add(&schemas.Event{LatencyMS: l, Cost: 0.5}, sk)
		}
		p := &Partial{Tenant: "org", Window: windowOf(t0.UnixNano(), int64(time.Minute)), Source: 2, Segment: 7, First: 7, Through: 90,
			Series: make([]Series, 1), Latencies: make([]Latencies, 1)}
		p.Latencies[0] = ownLatencies(&s)
		p.Series[0] = s.seriesWith(&p.Latencies[0], sk.mapping)
		enc, err := p.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add(SourceReset{Source: 3, From: 1234, To: 5}.AppendBinary(nil))
	f.Add([]byte{})
	f.Add([]byte{partialVersion})
	f.Add(SourceProgress{Source: 3, Committed: 99, MaxEvent: -5, To: 2}.AppendBinary(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		if IsSourceProgress(data) {
			var r, back SourceProgress
			if err := r.UnmarshalBinary(data); err != nil {
				var pe *PartialError
				if !errors.As(err, &pe) {
					t.Fatalf("error %v is not a *PartialError", err)
				}
				return
			}
			if to, ok := ControlTo(data); !ok || to != r.To || back.UnmarshalBinary(r.AppendBinary(nil)) != nil || back != r {
				t.Fatalf("progress %+v does not round-trip", r)
			}
			return
		}
		if IsSourceReset(data) {
			var r SourceReset
			if err := r.UnmarshalBinary(data); err != nil {
				var pe *PartialError
				if !errors.As(err, &pe) {
					t.Fatalf("error %v is not a *PartialError", err)
				}
				return
			}
			var back SourceReset
			if to, ok := ControlTo(data); !ok || to != r.To || back.UnmarshalBinary(r.AppendBinary(nil)) != nil || back != r {
				t.Fatalf("reset %+v does not round-trip", r)
			}
			return
		}
		var p Partial
		if err := p.UnmarshalBinary(data); err != nil {
			var pe *PartialError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *PartialError", err)
			}
			return
		}
		enc, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded partial does not encode: %v", err)
		}
		var back Partial
		if err := back.UnmarshalBinary(enc); err != nil {
			t.Fatalf("re-encoded partial does not decode: %v", err)
		}
		if !equalPartials(&p, &back) || !slicesEqual(p.Series, back.Series) {
			t.Fatalf("round trip differs:\n%+v\n%+v", p, back)
		}
		again, _ := back.MarshalBinary()
		if !bytes.Equal(enc, again) {
			t.Fatal("encoding is not stable")
		}
		// What the Combiner derives from it must not panic either.
		c, err := NewCombiner(CombinerConfig{Clock: &fakeClock{now: p.Window.Start}})
		if err != nil {
			t.Fatal(err)
		}
		c.Add(&p)
		c.Totals(p.Tenant, p.Window)
	})
}
