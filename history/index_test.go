package history

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// model is the brute-force index: every entry in a map, the bounds and
// the order computed by sorting everything on each call.
type model struct {
	maxPerOrg, maxTotal int
	entries             map[string]map[key]Entry // org -> key -> entry
}

func newModel(maxPerOrg, maxTotal int) *model {
	return &model{maxPerOrg: maxPerOrg, maxTotal: maxTotal, entries: map[string]map[key]Entry{}}
}

func keyOf(e Entry) key {
	return key{end: e.End.UnixNano(), start: e.Start.UnixNano(), source: e.Source}
}

func (m *model) put(e Entry) {
	if m.entries[e.OrgID] == nil {
		m.entries[e.OrgID] = map[key]Entry{}
	}
	m.entries[e.OrgID][keyOf(e)] = e
	if of := m.entries[e.OrgID]; len(of) > m.maxPerOrg {
		delete(of, m.sorted(e.OrgID)[0]) // the org's oldest
	}
	for m.total() > m.maxTotal {
		m.dropOldest()
	}
}

func (m *model) expire(cutoff time.Time) {
	for _, of := range m.entries {
		for k := range of {
			if k.end < cutoff.UnixNano() {
				delete(of, k)
			}
		}
	}
}

func (m *model) total() int {
	n := 0
	for _, of := range m.entries {
		n += len(of)
	}
	return n
}

// dropOldest removes the oldest entry of every org (ties: the lower org).
func (m *model) dropOldest() {
	var org string
	var oldest key
	found := false
	for o, of := range m.entries {
		for k := range of {
			if !found || k.less(oldest) || k == oldest && o < org {
				org, oldest, found = o, k, true
			}
		}
	}
	delete(m.entries[org], oldest)
}

// sorted is org's keys, oldest first.
func (m *model) sorted(org string) []key {
	var ks []key
	for k := range m.entries[org] {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b key) int {
		if a.less(b) {
			return -1
		}
		if b.less(a) {
			return 1
		}
		return 0
	})
	return ks
}

// all is org's entries matching outcome, newest first.
func (m *model) all(org string, outcome Outcome) []Entry {
	ks := m.sorted(org)
	var out []Entry
	for i := len(ks) - 1; i >= 0; i-- {
		e := m.entries[org][ks[i]]
		if outcome == "" || e.Outcome == outcome {
			out = append(out, e)
		}
	}
	return out
}

func sameEntry(a, b Entry) bool {
	return a.OrgID == b.OrgID && a.Start.Equal(b.Start) && a.End.Equal(b.End) && a.Source == b.Source &&
		a.Records == b.Records && a.Logs == b.Logs && a.LogsDropped == b.LogsDropped && a.Points == b.Points &&
		a.Bytes == b.Bytes && a.Requests == b.Requests && a.Retries == b.Retries && a.DurationMS == b.DurationMS &&
		a.Outcome == b.Outcome && a.StatusCode == b.StatusCode && a.Error == b.Error && a.At.Equal(b.At)
}

func fmtEntries(es []Entry) string {
	s := ""
	for _, e := range es {
		s += fmt.Sprintf("[%s %s-%s %s %s r=%d] ", e.OrgID, e.Start.Format("15:04"), e.End.Format("15:04"), e.Source, e.Outcome, e.Records)
	}
	return s
}

// randomEntry draws from a small space of orgs, windows and sources, so
// that replacements and ties in window end are common.
func randomEntry(r *rand.Rand, orgs int) Entry {
	length := []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute}[r.IntN(3)]
	start := t0.Add(time.Duration(r.IntN(40)) * time.Minute)
	source := SourceLive
	if r.IntN(4) == 0 {
		source = SourceBackfill
	}
	e := Entry{
		OrgID: fmt.Sprintf("org_%d", r.IntN(orgs)), Start: start, End: start.Add(length), Source: source,
		Records: r.Int64N(1000), Logs: r.Int64N(1000), Points: r.Int64N(100), Bytes: r.Int64N(1 << 20),
		Requests: r.Int64N(5), Retries: r.Int64N(3), DurationMS: r.Int64N(5000),
		Outcome: outcomes[r.IntN(len(outcomes))], At: t0.Add(time.Duration(r.IntN(3600)) * time.Second),
	}
	if e.Outcome != Success {
		e.StatusCode, e.Error = 500+r.IntN(5), "Datadog answered 5xx"
	}
	return e
}

// pages reads every page of org's history with outcome and limit.
func pages(ix *index, org string, outcome Outcome, limit int) ([]Entry, int) {
	var all []Entry
	cursor := ""
	n := 0
	for {
		p := ix.query(org, Query{Outcome: outcome, Limit: limit, Cursor: cursor})
		all = append(all, p.Entries...)
		n++
		if p.Next == "" || n > 10_000 { // a cursor that does not move would loop
			return all, n
		}
		cursor = p.Next
	}
}

// TestIndexAgreesWithModel: after any sequence of puts and expiries, every
// way of paging through any org's history (any filter, any limit) reads
// exactly the brute-force model's entries, newest first, and the index
// holds as many entries as the model.
func TestIndexAgreesWithModel(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 60
	}
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		orgs := 1 + r.IntN(4)
		maxPerOrg, maxTotal := 1+r.IntN(30), 1+r.IntN(80)
		ix, m := newIndex(maxPerOrg, maxTotal), newModel(maxPerOrg, maxTotal)
		for op := range 200 {
			if r.IntN(40) == 0 {
				cutoff := t0.Add(time.Duration(r.IntN(30)) * time.Minute)
				ix.expire(cutoff)
				m.expire(cutoff)
			} else {
				e := randomEntry(r, orgs)
				ix.put(e)
				m.put(e)
			}
			if ix.len() != m.total() {
				t.Fatalf("seed %d op %d: index holds %d, model %d", seed, op, ix.len(), m.total())
			}
			if op%10 != 9 {
				continue
			}
			org := fmt.Sprintf("org_%d", r.IntN(orgs))
			var outcome Outcome
			if r.IntN(2) == 0 {
				outcome = outcomes[r.IntN(len(outcomes))]
			}
			limit := 1 + r.IntN(12)
			got, n := pages(ix, org, outcome, limit)
			want := m.all(org, outcome)
			if len(got) != len(want) || !slices.EqualFunc(got, want, sameEntry) {
				t.Fatalf("seed %d op %d: %s outcome %q limit %d:\n got  %s\n want %s", seed, op, org, outcome, limit, fmtEntries(got), fmtEntries(want))
			}
			if wantPages := max(1, (len(want)+limit-1)/limit); n != wantPages {
				t.Fatalf("seed %d op %d: %d pages for %d entries of limit %d, want %d", seed, op, n, len(want), limit, wantPages)
			}
		}
	}
}

// TestCursorStableWhileHistoryGrows: paging through an org's history while
// new windows arrive at the head and existing ones are sent again (the
// later entry replacing the earlier) neither skips nor repeats a window:
// the pages hold exactly the windows there were at the first call.
func TestCursorStableWhileHistoryGrows(t *testing.T) {
	for seed := range 50 {
		r := rand.New(rand.NewPCG(uint64(seed), 11))
		ix := newIndex(100_000, 1_000_000)
		var windows []key
		entry := func(i int, records int64) Entry {
			start := t0.Add(time.Duration(i) * time.Minute)
			return Entry{OrgID: "org", Start: start, End: start.Add(time.Minute), Source: SourceLive, Records: records, Outcome: Success, At: start.Add(time.Minute)}
		}
		n := 20 + r.IntN(100)
		for i := range n {
			e := entry(i, 1)
			ix.put(e)
			windows = append(windows, keyOf(e))
		}
		slices.Reverse(windows) // newest first, as the pages read
		next := n
		var got []key
		cursor := ""
		for {
			p := ix.query("org", Query{Limit: 1 + r.IntN(9), Cursor: cursor})
			for _, e := range p.Entries {
				got = append(got, keyOf(e))
			}
			// Between pages: new windows at the head, and some windows,
			// read or not, sent again with more records.
			for range r.IntN(4) {
				ix.put(entry(next, 1))
				next++
			}
			for range r.IntN(3) {
				ix.put(entry(r.IntN(next), 2))
			}
			if p.Next == "" || len(got) > 2*len(windows) {
				break
			}
			cursor = p.Next
		}
		if !slices.Equal(got, windows) {
			t.Fatalf("seed %d: paged %d windows, %d were there when paging began (skipped or repeated)", seed, len(got), len(windows))
		}
	}
}

func TestReplaceKeepsTheLaterEntry(t *testing.T) {
	ix := newIndex(10, 100)
	w := Entry{OrgID: "org", Start: t0, End: t0.Add(time.Minute), Source: SourceBackfill, Outcome: TooOld, LogsDropped: 40, At: t0.Add(time.Hour)}
	ix.put(w)
	w.Outcome, w.Logs, w.LogsDropped, w.Records, w.At = Partial, 10, 40, 50, t0.Add(2*time.Hour) // cumulative
	ix.put(w)
	live := w
	live.Source, live.Outcome, live.Logs, live.LogsDropped, live.Records = SourceLive, Success, 7, 0, 7
	ix.put(live)
	p := ix.query("org", Query{})
	if len(p.Entries) != 2 || p.Next != "" {
		t.Fatalf("got %s", fmtEntries(p.Entries))
	}
	// Same window: the source orders them, backfill before live.
	if p.Entries[0].Source != SourceLive || p.Entries[1].Source != SourceBackfill || !sameEntry(p.Entries[1], w) {
		t.Fatalf("got %s", fmtEntries(p.Entries))
	}
	if p := ix.query("org", Query{Outcome: TooOld}); len(p.Entries) != 0 {
		t.Fatalf("the replaced too_old entry is still found: %s", fmtEntries(p.Entries))
	}
}

func TestQueryLimits(t *testing.T) {
	ix := newIndex(10_000, 10_000)
	for i := range 600 {
		start := t0.Add(time.Duration(i) * time.Minute)
		ix.put(Entry{OrgID: "org", Start: start, End: start.Add(time.Minute), Source: SourceLive, Outcome: Success, At: start})
	}
	if p := ix.query("org", Query{}); len(p.Entries) != DefaultLimit || p.Next == "" {
		t.Errorf("default limit: %d entries, next %q", len(p.Entries), p.Next)
	}
	if p := ix.query("org", Query{Limit: 10_000}); len(p.Entries) != MaxLimit {
		t.Errorf("limit over the max: %d entries", len(p.Entries))
	}
	if p := ix.query("org", Query{Cursor: "not-a-cursor"}); len(p.Entries) != 0 || p.Next != "" {
		t.Errorf("a bad cursor answered %d entries", len(p.Entries))
	}
	if p := ix.query("nobody", Query{}); p.Entries == nil || len(p.Entries) != 0 {
		t.Errorf("an unknown org answered %v", p.Entries)
	}
	for _, c := range []string{"", "x", cursorOf(key{end: 1, start: 0, source: "live"}) + "=", "aDEuMS4yLg"} {
		if ValidCursor(c) {
			t.Errorf("ValidCursor(%q) = true", c)
		}
	}
	if p := ix.query("org", Query{Limit: 1}); !ValidCursor(p.Next) {
		t.Errorf("a cursor Query gave is not valid: %q", p.Next)
	}
}

// TestIndexMemory holds indexEntryBytes, which docs/operations.md uses to
// size PRISM_HISTORY_MAX_ENTRIES, to what the index takes.
func TestIndexMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~30 MB")
	}
	const orgs, per = 100, 2000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ix := newIndex(per, orgs*per)
	for i := range per {
		start := t0.Add(time.Duration(i) * time.Minute)
		for o := range orgs {
			ix.put(Entry{OrgID: fmt.Sprintf("org_%03d", o), Start: start, End: start.Add(time.Minute), Source: SourceLive,
				Records: 1, Outcome: canonical(Outcome(string([]byte("success")))), At: start})
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per1 := float64(after.HeapAlloc-before.HeapAlloc) / float64(ix.len())
	t.Logf("%.0f bytes per indexed entry", per1)
	if per1 > indexEntryBytes {
		t.Errorf("%.0f bytes per entry, over indexEntryBytes (%d): update it and docs/operations.md", per1, indexEntryBytes)
	}
	runtime.KeepAlive(ix)
}
