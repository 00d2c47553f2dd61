package integrations

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"

	"github.com/futureagi/prism-exporter/sink"
)

func fileTenants(ids ...string) []sink.Tenant {
	var out []sink.Tenant
	for _, id := range ids {
		out = append(out, sink.Tenant{ID: id, Site: sink.SiteUS1, APIKey: sink.Secret("key-" + id + "-0123456789abcdef0123"), SyncInterval: time.Minute})
	}
	return out
}

// TestSyncFileFirstLoadReconcilesLaterLoadsApplyTheirDiff: the first load of
// a process makes the store match the file; later loads apply only what
// changed since that process's previous load, so a replica with an older
// copy of the file does not undo a newer one.
func TestSyncFileFirstLoadReconcilesLaterLoadsApplyTheirDiff(t *testing.T) {
	brokers := newCluster(t)
	ctx := context.Background()
	newer := NewService(startStore(t, brokers), nil, nil, zaptest.NewLogger(t))
	older := NewService(startStore(t, brokers), nil, nil, zaptest.NewLogger(t))

	if err := older.SyncFile(ctx, "/f", fileTenants("org_a", "org_b"), true); err != nil {
		t.Fatal(err)
	}
	// The newer replica starts after the older one's import (its store has
	// read it), with a file that dropped org_a and added org_c.
	eventually(t, "the newer replica reads the older import", func() bool { return len(newer.List()) == 2 })
	if err := newer.SyncFile(ctx, "/f", fileTenants("org_b", "org_c"), true); err != nil {
		t.Fatal(err)
	}
	ids := func(svc *Service) string {
		var out []string
		for _, in := range svc.List() {
			out = append(out, in.OrgID)
		}
		return strings.Join(out, ",")
	}
	eventually(t, "both replicas see b and c only", func() bool { return ids(older) == "org_b,org_c" && ids(newer) == "org_b,org_c" })

	// The older replica reloads its (unchanged, old) file: nothing of the
	// newer file is undone.
	if err := older.SyncFile(ctx, "/f", fileTenants("org_a", "org_b"), false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if got := ids(newer); got != "org_b,org_c" {
		t.Fatalf("an old copy of the file undid the new one: %s", got)
	}
	// A change to the file removes what left it and keeps cut-offs.
	b0, _ := newer.Get(FileID("org_b"))
	if err := newer.SyncFile(ctx, "/f", fileTenants("org_b"), false); err != nil {
		t.Fatal(err)
	}
	if got := ids(newer); got != "org_b" {
		t.Fatalf("after removing org_c: %s", got)
	}
	if b1, _ := newer.Get(FileID("org_b")); !b1.ConnectedAt.Equal(b0.ConnectedAt) {
		t.Errorf("the cut-off moved on reload: %v -> %v", b0.ConnectedAt, b1.ConnectedAt)
	}
	if in, _ := newer.Get(FileID("org_b")); in.APIKey != nil || in.APIKeyHint == "" {
		t.Errorf("a file entry's key reached the topic, or its hint did not: %+v", in)
	}
}

// TestConcurrentImportsAgreeOnOneCutoff: replicas that import the same new
// entry at the same moment end with one cut-off, and the last record of the
// key (the one compaction keeps) carries it.
func TestConcurrentImportsAgreeOnOneCutoff(t *testing.T) {
	brokers := newCluster(t)
	ctx := context.Background()
	var svcs []*Service
	for i := 0; i < 3; i++ {
		// Each replica's clock is a little apart, so their cut-offs differ.
		skew := time.Duration(i) * 2 * time.Second
		svcs = append(svcs, NewService(startStore(t, brokers), nil, func() time.Time { return time.Now().Add(skew) }, zaptest.NewLogger(t)))
	}
	var wg sync.WaitGroup
	for _, svc := range svcs {
		wg.Add(1)
		go func() { defer wg.Done(); _ = svc.SyncFile(ctx, "/f", fileTenants("org_x"), true) }()
	}
	wg.Wait()
	var cut []time.Time
	for _, svc := range svcs {
		in, ok := svc.Get(FileID("org_x"))
		if !ok {
			t.Fatal("not imported")
		}
		cut = append(cut, in.ConnectedAt)
	}
	eventually(t, "every replica has the same cut-off", func() bool {
		for i, svc := range svcs {
			in, _ := svc.Get(FileID("org_x"))
			cut[i] = in.ConnectedAt
		}
		return cut[0].Equal(cut[1]) && cut[1].Equal(cut[2])
	})
	// The last record of the key carries it.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: testTopic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var last Integration
	for {
		c, cancel := context.WithTimeout(ctx, time.Second)
		m, err := r.ReadMessage(c)
		cancel()
		if err != nil {
			break
		}
		if string(m.Key) == FileID("org_x") {
			_ = json.Unmarshal(m.Value, &last)
		}
	}
	if !last.ConnectedAt.Equal(cut[0]) {
		t.Errorf("the key's last record carries %v, replicas use %v", last.ConnectedAt, cut[0])
	}
}

// TestSwitchIntervalOnACommonBoundary: a new sync interval applies from a
// multiple of both lengths at least ActivationDelay ahead, for every pair
// the product offers.
func TestSwitchIntervalOnACommonBoundary(t *testing.T) {
	lengths := []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute}
	now := time.Date(2026, 12, 1, 10, 7, 31, 0, time.UTC)
	svc := &Service{now: func() time.Time { return now }}
	for _, a := range lengths {
		for _, b := range lengths {
			if a == b {
				continue
			}
			in := Integration{SyncInterval: a}
			svc.switchInterval(&in, b)
			from := in.IntervalFrom
			if from.UnixNano()%int64(a) != 0 || from.UnixNano()%int64(b) != 0 {
				t.Errorf("%v -> %v: switch at %v is not a boundary of both", a, b, from)
			}
			if from.Sub(now) < ActivationDelay || from.Sub(now) > lcm(a, b)+ActivationDelay {
				t.Errorf("%v -> %v: switch at %v is %v away", a, b, from, from.Sub(now))
			}
			if in.intervalAt(from.Add(-time.Nanosecond)) != a || in.intervalAt(from) != b {
				t.Errorf("%v -> %v: lengths around the switch wrong", a, b)
			}
		}
	}
}
