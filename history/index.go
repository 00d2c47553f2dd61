package history

import (
	"container/heap"
	"time"
)

// The index holds each org's entries in memory, sorted by key, one per
// (window, source): a later entry for a key replaces the earlier one. It is
// bounded twice: maxPerOrg entries per org and maxTotal in all. Past
// either, the oldest windows (by end, then start, then source) are dropped:
// per org from that org, in all from the org whose oldest window is the
// oldest of every org, so that a busy org cannot push a quiet one's recent
// windows out. It is not safe for concurrent use; the Log locks it.
type index struct {
	maxPerOrg, maxTotal int
	orgs                map[string]*orgRows
	byOldest            orgHeap // every org, by its oldest row
	total               int
}

// key orders an org's entries: by window end, then start, then source.
// Within an org it is unique, so it is also what a cursor names.
type key struct {
	end, start int64 // Unix nanoseconds
	source     string
}

func (a key) less(b key) bool {
	if a.end != b.end {
		return a.end < b.end
	}
	if a.start != b.start {
		return a.start < b.start
	}
	return a.source < b.source
}

// row is an entry as the index keeps it: without the org (the map's key)
// and with times as Unix nanoseconds, about 150 bytes instead of 210,
// which matters at hundreds of thousands of entries.
type row struct {
	key
	at      int64
	counts  [8]int64 // records, logs, dropped, points, bytes, requests, retries, duration_ms
	status  int32
	outcome Outcome
	err     string
}

// indexEntryBytes is the measured memory of one indexed entry, slice
// growth included (TestIndexMemory); docs/operations.md quotes it.
const indexEntryBytes = 160

func toRow(e Entry) row {
	return row{
		key:    key{end: e.End.UnixNano(), start: e.Start.UnixNano(), source: intern(e.Source)},
		at:     e.At.UnixNano(),
		counts: [8]int64{e.Records, e.Logs, e.LogsDropped, e.Points, e.Bytes, e.Requests, e.Retries, e.DurationMS},
		status: int32(min(max(e.StatusCode, 0), 999)), outcome: canonical(e.Outcome), err: e.Error,
	}
}

func (r row) entry(org string) Entry {
	return Entry{
		OrgID: org, Start: time.Unix(0, r.start).UTC(), End: time.Unix(0, r.end).UTC(), Source: r.source,
		Records: r.counts[0], Logs: r.counts[1], LogsDropped: r.counts[2], Points: r.counts[3], Bytes: r.counts[4],
		Requests: r.counts[5], Retries: r.counts[6], DurationMS: r.counts[7], Outcome: r.outcome,
		StatusCode: int(r.status), Error: r.err, At: time.Unix(0, r.at).UTC(),
	}
}

// intern and canonical share one copy of the common strings among every
// row instead of one per decoded record.
func intern(source string) string {
	switch source {
	case SourceLive:
		return SourceLive
	case SourceBackfill:
		return SourceBackfill
	}
	return source
}

func canonical(o Outcome) Outcome {
	for _, v := range outcomes {
		if o == v {
			return v
		}
	}
	return o
}

type orgRows struct {
	id   string
	rows []row // ascending by key
	pos  int   // in byOldest
}

func (o *orgRows) oldest() key { return o.rows[0].key }

// dropOldest removes the org's oldest row; the caller fixes the heap.
func (o *orgRows) dropOldest() {
	o.rows[0] = row{} // let its strings go
	o.rows = o.rows[1:]
}

func newIndex(maxPerOrg, maxTotal int) *index {
	return &index{maxPerOrg: maxPerOrg, maxTotal: maxTotal, orgs: map[string]*orgRows{}}
}

// evictions counts what put and expire dropped, by reason.
type evictions struct {
	perOrg, total, expired int
}

// put adds e, or replaces the entry of its key, then enforces the bounds.
func (ix *index) put(e Entry) evictions {
	var ev evictions
	r := toRow(e)
	o, ok := ix.orgs[e.OrgID]
	if !ok {
		o = &orgRows{id: e.OrgID}
		ix.orgs[e.OrgID] = o
		o.rows = append(o.rows, r)
		heap.Push(&ix.byOldest, o)
		ix.total++
	} else {
		i := o.search(r.key)
		if i < len(o.rows) && o.rows[i].key == r.key {
			o.rows[i] = r // same key: its place and the heap are unchanged
			return ev
		}
		o.rows = append(o.rows, row{})
		copy(o.rows[i+1:], o.rows[i:])
		o.rows[i] = r
		ix.total++
		if len(o.rows) > ix.maxPerOrg {
			o.dropOldest()
			ix.total--
			ev.perOrg++
		}
		heap.Fix(&ix.byOldest, o.pos)
	}
	for ix.total > ix.maxTotal {
		ix.dropGlobalOldest()
		ev.total++
	}
	return ev
}

// expire drops every entry whose window ended before cutoff.
func (ix *index) expire(cutoff time.Time) evictions {
	var ev evictions
	c := cutoff.UnixNano()
	for len(ix.byOldest) > 0 && ix.byOldest[0].oldest().end < c {
		ix.dropGlobalOldest()
		ev.expired++
	}
	return ev
}

func (ix *index) dropGlobalOldest() {
	o := ix.byOldest[0]
	o.dropOldest()
	ix.total--
	if len(o.rows) == 0 {
		heap.Pop(&ix.byOldest)
		delete(ix.orgs, o.id)
		return
	}
	heap.Fix(&ix.byOldest, 0)
}

// search is the position of the first row whose key is not below k.
func (o *orgRows) search(k key) int {
	lo, hi := 0, len(o.rows)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if o.rows[m].key.less(k) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// query pages through an org's entries, newest first. The cursor names the
// last key of the previous page and the page starts below it: entries
// added above it (new windows) or replaced in place do not shift it, so
// no entry is skipped or repeated while the history grows. An invalid
// cursor answers an empty page (the API refuses it before asking).
func (ix *index) query(org string, q Query) Page {
	page := Page{Entries: []Entry{}}
	o := ix.orgs[org]
	if o == nil {
		return page
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	i := len(o.rows) // one past the first row to show
	if q.Cursor != "" {
		after, ok := parseCursor(q.Cursor)
		if !ok {
			return page
		}
		i = o.search(after)
	}
	var last key
	for i--; i >= 0; i-- {
		r := o.rows[i]
		if q.Outcome != "" && r.outcome != q.Outcome {
			continue
		}
		if len(page.Entries) == limit {
			// One more matches: there is a next page.
			page.Next = cursorOf(last)
			break
		}
		page.Entries = append(page.Entries, r.entry(org))
		last = r.key
	}
	return page
}

func (ix *index) len() int { return ix.total }

// orgHeap orders orgs by their oldest row, the next to go when the index
// is over its total; ties by org id, so that eviction is deterministic.
type orgHeap []*orgRows

func (h orgHeap) Len() int { return len(h) }
func (h orgHeap) Less(i, j int) bool {
	a, b := h[i].oldest(), h[j].oldest()
	if a != b {
		return a.less(b)
	}
	return h[i].id < h[j].id
}
func (h orgHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}
func (h *orgHeap) Push(x any) {
	o := x.(*orgRows)
	o.pos = len(*h)
	*h = append(*h, o)
}
func (h *orgHeap) Pop() any {
	old := *h
	o := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return o
}
