package processor

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/futureagi/prism-exporter/aggregate"
)

// windowKey names one tenant window within a partition. The length is part of
// it because a tenant's sync interval may change while a window is open.
type windowKey struct {
	tenant string
	start  int64
	length time.Duration
}

func keyOf(b *aggregate.Batch) windowKey {
	return windowKey{tenant: b.Tenant, start: b.Window.Start.UnixNano(), length: b.Window.Length}
}

// windowState is what the tracker knows of a window it has seen a batch of.
type windowState struct {
	pending   int   // batches handed to the sink and not yet answered
	closed    bool  // its KindClose was emitted
	minOffset int64 // valid once closed
	end       int64 // unix ns
	bytes     int64 // memory charged for its batches in flight
}

// tracker decides, for one partition, which offset may be committed and with
// what resume metadata. It is owned by the partition goroutine. See
// docs/design.md, "Offsets, windows and replays".
type tracker struct {
	windows map[windowKey]*windowState
	late    map[uint64]int64 // late batch id -> its lowest offset
	dead    map[int64]struct{}
	nextID  uint64
	next    int64 // the next offset to fetch: everything below was seen
}

func newTracker(next int64) *tracker {
	return &tracker{
		windows: make(map[windowKey]*windowState),
		late:    make(map[uint64]int64),
		dead:    make(map[int64]struct{}),
		next:    next,
	}
}

// sent records a batch handed to the sink and returns the token its answer
// must carry back.
func (t *tracker) sent(b *aggregate.Batch) ackToken {
	if b.Kind == aggregate.KindLate {
		t.nextID++
		t.late[t.nextID] = b.MinOffset
		return ackToken{kind: b.Kind, late: t.nextID}
	}
	k := keyOf(b)
	w := t.windows[k]
	if w == nil {
		w = &windowState{end: b.Window.End().UnixNano()}
		t.windows[k] = w
	}
	w.pending++
	if b.Kind == aggregate.KindClose {
		w.closed = true
		w.minOffset = b.MinOffset
	}
	return ackToken{kind: b.Kind, key: k}
}

// answered records the sink's answer for a batch. A batch the sink abandoned
// (shutdown) stays pending, so its offsets are never committed.
func (t *tracker) answered(tok ackToken) {
	if tok.kind == aggregate.KindLate {
		delete(t.late, tok.late)
		return
	}
	if w := t.windows[tok.key]; w != nil {
		w.pending--
	}
}

func (t *tracker) deadLetterPending(offset int64) { t.dead[offset] = struct{}{} }
func (t *tracker) deadLetterDone(offset int64)    { delete(t.dead, offset) }

// commitPoint computes the offset to commit and its resume metadata, and
// forgets windows that can never matter again. frontier is the aggregator's
// closing frontier; heldOpen its lowest offset still inside (open windows,
// unflushed late records), if any.
func (t *tracker) commitPoint(frontier time.Time, heldOpen int64, holding bool) (int64, resumeMeta) {
	d := int64(math.MaxInt64)
	if !frontier.IsZero() {
		d = frontier.UnixNano()
	}
	for _, w := range t.windows {
		if w.closed && w.pending > 0 && w.end-1 < d {
			d = w.end - 1
		}
	}
	c := t.next
	if holding && heldOpen < c {
		c = heldOpen
	}
	for k, w := range t.windows {
		if !w.closed {
			continue // open: the aggregator's heldOpen covers it
		}
		if w.pending == 0 && w.end <= d {
			delete(t.windows, k)
			continue
		}
		if w.minOffset < c {
			c = w.minOffset
		}
	}
	// L starts at the next offset to fetch: a record not yet fetched whose
	// window is already delivered is late, and must not be mistaken on replay
	// for one whose log went out with its window.
	l := t.next
	for _, off := range t.late {
		if off < c {
			c = off
		}
		if off < l {
			l = off
		}
	}
	for off := range t.dead {
		if off < c {
			c = off
		}
	}
	m := resumeMeta{lateFrom: l}
	if d != math.MaxInt64 {
		m.delivered = time.Unix(0, d).UTC()
	}
	return c, m
}

// inFlight reports whether any batch or dead letter awaits an answer.
func (t *tracker) inFlight() bool {
	if len(t.late) > 0 || len(t.dead) > 0 {
		return true
	}
	for _, w := range t.windows {
		if w.pending > 0 {
			return true
		}
	}
	return false
}

// ackToken travels with a batch to the sink and back.
type ackToken struct {
	kind aggregate.Kind
	key  windowKey
	late uint64
}

// resumeMeta is the per-partition state a commit carries in its metadata, so
// that a restart or the partition's next owner does not re-emit windows that
// were already delivered.
type resumeMeta struct {
	delivered time.Time // every window ending at or before it was delivered
	lateFrom  int64     // lowest offset of an unanswered late record, or -1
}

const metaVersion = "v1"

func (m resumeMeta) String() string {
	d := int64(0)
	if !m.delivered.IsZero() {
		d = m.delivered.UnixNano()
	}
	return metaVersion + " d=" + strconv.FormatInt(d, 10) + " l=" + strconv.FormatInt(m.lateFrom, 10)
}

// parseResumeMeta reads commit metadata. Empty metadata (a group committed by
// another tool, or never) means a fresh start.
func parseResumeMeta(s string) (resumeMeta, error) {
	m := resumeMeta{lateFrom: -1}
	if s == "" {
		return m, nil
	}
	f := strings.Fields(s)
	if len(f) != 3 || f[0] != metaVersion || !strings.HasPrefix(f[1], "d=") || !strings.HasPrefix(f[2], "l=") {
		return m, fmt.Errorf("commit metadata %q is not prism-exporter's %s format", s, metaVersion)
	}
	d, err := strconv.ParseInt(f[1][2:], 10, 64)
	if err != nil {
		return m, fmt.Errorf("commit metadata %q: delivered frontier: %w", s, err)
	}
	l, err := strconv.ParseInt(f[2][2:], 10, 64)
	if err != nil {
		return m, fmt.Errorf("commit metadata %q: late offset: %w", s, err)
	}
	// Offsets and this exporter's frontiers are never negative; -1 is "no
	// late record". Anything else would position the resume wrongly.
	if d < 0 || l < -1 {
		return m, fmt.Errorf("commit metadata %q: frontier or late offset out of range", s)
	}
	if d != 0 {
		m.delivered = time.Unix(0, d).UTC()
	}
	m.lateFrom = l
	return m, nil
}
