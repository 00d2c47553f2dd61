package aggregate

import "github.com/futureagi/prism-exporter/schemas"

// checkPartials holds a batch's partials to the model: a whole Partial on
// every KindClose and on a KindLate that corrected a window opened in this
// run, covering exactly the window's records counted so far; a record
// partial for every other late or replayed record young enough for Datadog.
func (h *harness) checkPartials(g *received) {
	h.t.Helper()
	b := &g.b
	k := g.key()
	mapping := h.a.sk.mapping
	wantWhole := false
	var wantRecords []int // record indexes, in batch order
	switch b.Kind {
	case KindClose:
		wantWhole = true
	case KindLate:
		w := h.m.wins[k]
		for _, ev := range b.Logs {
			i := h.recOf[ev]
			c := h.class[i]
			if c == cCorrected && w != nil && !w.lateOpened {
				wantWhole = true
				continue
			}
			if c == cCorrected || c == cDropped || c == cReplayed {
				if h.addNow[i] < k.start+int64(h.m.cfg.MetricMaxAge) {
					wantRecords = append(wantRecords, i)
				}
			}
		}
	}
	if (b.Partial != nil) != wantWhole {
		h.fatalf("%v batch for %v: whole partial present %v, want %v", b.Kind, k, b.Partial != nil, wantWhole)
	}
	if p := b.Partial; p != nil {
		first := h.m.wins[k].minOffset
		var through int64 = -1
		for _, i := range h.arrival {
			if c := h.class[i]; (c == cPlaced || c == cCorrected) && keyOf(h.sc.recs[i].ev, h.sc.recs[i].length) == k {
				through = max(through, h.sc.recs[i].offset)
			}
		}
		if p.Late != 0 || p.First != first || p.Through != through {
			h.fatalf("%v batch for %v: whole partial late %d offsets %d..%d, want 0 and %d..%d", b.Kind, k, p.Late, p.First, p.Through, first, through)
		}
		if len(p.Series) != len(b.Series) || &p.Series[0] != &b.Series[0] {
			h.fatalf("%v batch for %v: whole partial's series are not the batch's", b.Kind, k)
		}
		for i := range p.Series {
			got := b.Series[i]
			derive(&got, &p.Latencies[i], mapping)
			if got != b.Series[i] {
				h.fatalf("%v batch for %v: whole partial's latencies give %+v, the batch's series %+v", b.Kind, k, got, b.Series[i])
			}
		}
	}
	if len(b.RecordPartials) != len(wantRecords) {
		h.fatalf("%v batch for %v: %d record partials, want %d", b.Kind, k, len(b.RecordPartials), len(wantRecords))
	}
	for j, p := range b.RecordPartials {
		r := h.sc.recs[wantRecords[j]]
		if p.Late != r.offset+1 || p.First != r.offset || p.Through != r.offset || len(p.Series) != 1 {
			h.fatalf("%v batch for %v: record partial %+v for offset %d", b.Kind, k, p, r.offset)
		}
		want, _ := totalsOf([]*schemas.Event{r.ev}, 1)
		ws := want[p.Series[0].Tags]
		if ws == nil {
			h.fatalf("record partial of offset %d has tags %v", r.offset, p.Series[0].Tags)
		}
		if msg := seriesMismatch(p.Series[0], ws); msg != "" || p.Latencies[0].Sketched {
			h.fatalf("record partial of offset %d: %s (sketched %v)", r.offset, msg, p.Latencies[0].Sketched)
		}
	}
	if b.Kind == KindLogs && (b.Partial != nil || b.RecordPartials != nil) {
		h.fatalf("KindLogs batch with partials")
	}
}
