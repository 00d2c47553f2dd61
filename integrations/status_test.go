package integrations

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/futureagi/prism-exporter/sink"
)

// fakeLocal is a sink's status as a board reads it.
type fakeLocal struct {
	mu sync.Mutex
	st []sink.TenantStatus
}

func (f *fakeLocal) get() []sink.TenantStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sink.TenantStatus(nil), f.st...)
}

func (f *fakeLocal) set(st ...sink.TenantStatus) {
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
}

// startBoard runs a board whose clock is the wall clock moved ahead by
// *ahead (nanoseconds), which the test may change while it runs.
func startBoard(t *testing.T, brokers []string, svc *Service, local *fakeLocal, member string, ahead *atomic.Int64) *Board {
	t.Helper()
	b := NewBoard(BoardConfig{Topic: "status", Brokers: brokers, Logger: zaptest.NewLogger(t)}, svc, local.get)
	b.member = member
	b.now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return b
}

// TestBoardSumsReplicas: an integration's counts are summed over the
// replicas, its state is the worst a live replica reports, and a replica
// gone for an hour is folded into the archive without changing the sums.
func TestBoardSumsReplicas(t *testing.T) {
	brokers := newCluster(t)
	store := startStore(t, brokers)
	svc := NewService(store, nil, nil, zaptest.NewLogger(t))
	t0 := time.Now()
	if _, err := store.Put(context.Background(), Integration{ID: "dd_1", OrgID: "org_a", ConnectedAt: t0, CreatedAt: t0, Version: 1}); err != nil {
		t.Fatal(err)
	}
	la, lb := &fakeLocal{}, &fakeLocal{}
	la.set(sink.TenantStatus{ID: "org_a", State: sink.Active, LogsSent: 100, PointsSent: 13, LastDelivery: t0})
	lb.set(sink.TenantStatus{ID: "org_a", State: sink.Error, LastError: "Datadog rejected the API key", LogsSent: 50, PointsSent: 26, Failed: 2})
	var aheadA, aheadB atomic.Int64
	a := startBoard(t, brokers, svc, la, "a", &aheadA)
	b := startBoard(t, brokers, svc, lb, "b", &aheadB)

	want := func(board *Board, logs, points, failed int64, state sink.TenantState) {
		t.Helper()
		eventually(t, "the sums", func() bool {
			l, ok := board.Live("org_a")
			return ok && l.LogsSent == logs && l.PointsSent == points && l.BatchesFailed == failed && l.State == state
		})
	}
	want(a, 150, 39, 2, sink.Error)
	want(b, 150, 39, 2, sink.Error)
	if l, _ := a.Live("org_a"); l.Message != "Datadog rejected the API key" {
		t.Errorf("message %q", l.Message)
	}

	// b stops (its last status stays in the topic); an hour later a folds
	// it into the archive: same sums, and b's state no longer counts.
	lb.set()
	aheadA.Store(int64(statusRetire + time.Minute))
	eventually(t, "b folded", func() bool {
		a.mu.RLock()
		defer a.mu.RUnlock()
		_, bThere := a.entries[statusKey("dd_1", "b")]
		_, archived := a.entries[statusKey("dd_1", archiveMember)]
		return !bThere && archived
	})
	want(a, 150, 39, 2, sink.Active)

	// Deleting the integration removes its statuses.
	if err := store.Delete(context.Background(), "dd_1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "statuses removed", func() bool {
		a.mu.RLock()
		defer a.mu.RUnlock()
		return len(a.entries) == 0
	})
}
