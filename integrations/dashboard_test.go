package integrations

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/futureagi/prism-exporter/sink"
	"github.com/futureagi/prism-exporter/sink/ddfake"
)

const (
	dashAPIKey = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
	dashAppKey = "app0123456789abcdef0123456789abcdef012345"
)

type noDeadLetters struct{}

func (noDeadLetters) DeadLetter(context.Context, string, []byte, string) error { return nil }

// replica is one exporter's view: its store, service and dashboards, over
// a shared cluster and Datadog stand-in.
type replica struct {
	svc  *Service
	dash *Dashboards
}

func dashboardWorld(t *testing.T, n int) (*ddfake.Server, []replica, Integration) {
	t.Helper()
	brokers := newCluster(t)
	dd := ddfake.New(ddfake.WithAccounts(ddfake.Account{Name: "org_a", APIKeys: []string{dashAPIKey}, AppKeys: []string{dashAppKey}}))
	url, err := dd.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dd.Close() })
	kr, err := ParseKeyring(base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	var rs []replica
	for i := 0; i < n; i++ {
		snk, err := sink.New(sink.Config{BaseURL: url, MaxBackoff: 10 * time.Millisecond, HTTPTimeout: 10 * time.Second},
			prometheus.NewRegistry(), zap.NewNop(), noDeadLetters{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = snk.Close(context.Background()) })
		svc := NewService(startStore(t, brokers), kr, nil, zaptest.NewLogger(t))
		rs = append(rs, replica{svc: svc, dash: NewDashboards(svc, snk, zaptest.NewLogger(t))})
	}
	in, err := rs[0].svc.Create(context.Background(), New{OrgID: "org_a", Site: sink.SiteUS1, APIKey: dashAPIKey, AppKey: dashAppKey,
		SyncInterval: 5 * time.Minute, Historical: Historical{Mode: NewOnly}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		eventually(t, "every replica reads the integration", func() bool { _, ok := r.svc.Get(in.ID); return ok })
	}
	return dd, rs, in
}

// ensureAll asks every replica, twice each, at once.
func ensureAll(t *testing.T, rs []replica, id string) []Integration {
	t.Helper()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		out []Integration
	)
	for _, r := range rs {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in, _, err := r.dash.Ensure(context.Background(), id, sink.MonitorThresholds{})
				if err != nil {
					t.Errorf("ensure: %v", err)
					return
				}
				mu.Lock()
				out = append(out, in)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return out
}

func checkOne(t *testing.T, dd *ddfake.Server, got []Integration) {
	t.Helper()
	boards, mons := dd.Dashboards("org_a"), dd.Monitors("org_a")
	if len(boards) != 1 || len(mons) != 3 {
		t.Fatalf("%d dashboards and %d monitors in Datadog, want 1 and 3", len(boards), len(mons))
	}
	for _, in := range got {
		d := in.Dashboard
		if !d.Complete() || d.ID != boards[0].ID || d.Claim != nil || d.TemplateVersion != sink.DashboardTemplateVersion {
			t.Errorf("a caller got %+v, Datadog holds %s", d, boards[0].ID)
		}
	}
}

// TestDashboardOnceAcrossReplicas: asked twice on each of three replicas at
// once, one dashboard and one of each monitor are made; deleted in Datadog,
// it is made again exactly once; with an older template version, both are
// updated in place.
func TestDashboardOnceAcrossReplicas(t *testing.T) {
	dd, rs, in := dashboardWorld(t, 3)
	got := ensureAll(t, rs, in.ID)
	checkOne(t, dd, got)
	first := dd.Dashboards("org_a")[0]
	if first.Updates != 0 {
		t.Errorf("the new dashboard was updated %d times", first.Updates)
	}
	for _, r := range rs {
		eventually(t, "every replica reads the ids", func() bool { x, _ := r.svc.Get(in.ID); return x.Dashboard.Complete() })
	}

	dd.DeleteDashboard("org_a", first.ID)
	got = ensureAll(t, rs, in.ID)
	checkOne(t, dd, got)
	if dd.Dashboards("org_a")[0].ID == first.ID {
		t.Error("the deleted dashboard's id came back")
	}

	// A template older than this build's: updated in place.
	cur, _ := rs[0].svc.Get(in.ID)
	old := cur.Dashboard.clone()
	old.Rev++
	old.TemplateVersion = sink.DashboardTemplateVersion - 1
	if _, err := rs[0].dash.writeDashboard(context.Background(), in.ID, old); err != nil {
		t.Fatal(err)
	}
	before := dd.Dashboards("org_a")[0]
	got = ensureAll(t, rs, in.ID)
	checkOne(t, dd, got)
	after := dd.Dashboards("org_a")[0]
	if after.ID != before.ID || after.Updates != before.Updates+1 {
		t.Errorf("template bump: %s updated %d times, was %s %d", after.ID, after.Updates, before.ID, before.Updates)
	}
	for _, m := range dd.Monitors("org_a") {
		if m.Updates != 1 {
			t.Errorf("monitor %d updated %d times", m.ID, m.Updates)
		}
	}

	// New thresholds through one replica: the monitors follow, in place.
	out, ch, err := rs[1].dash.Ensure(context.Background(), in.ID, sink.MonitorThresholds{P95LatencyMS: 1200})
	if err != nil || len(ch.Updated) != 3 || out.Dashboard.Thresholds.P95LatencyMS != 1200 || out.Dashboard.Thresholds.ErrorRate != 0.05 {
		t.Fatalf("thresholds: %+v %+v %v", out.Dashboard, ch, err)
	}
	checkOne(t, dd, []Integration{out})
}

// TestDashboardSurvivesStaleWrites: a change written from a copy older
// than the dashboard's ids (a pause read before they were stored) keeps
// them, on every replica and in the key's last record.
func TestDashboardSurvivesStaleWrites(t *testing.T) {
	dd, rs, in := dashboardWorld(t, 2)
	stale, _ := rs[1].svc.Get(in.ID)
	made, _, err := rs[0].dash.Ensure(context.Background(), in.ID, sink.MonitorThresholds{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other replica reads the ids", func() bool { x, _ := rs[1].svc.Get(in.ID); return x.Dashboard.Complete() })
	stale.Paused = true
	got, err := rs[1].svc.Store().Put(context.Background(), stale)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Paused || got.Dashboard == nil || got.Dashboard.ID != made.Dashboard.ID {
		t.Fatalf("after a stale write: paused %v, dashboard %+v", got.Paused, got.Dashboard)
	}
	// A new replica folds the topic from its start to the same.
	fresh := startStore(t, rs[0].svc.Store().cfg.Brokers)
	if x, _ := fresh.Get(in.ID); x.Dashboard == nil || x.Dashboard.ID != made.Dashboard.ID || !x.Paused {
		t.Errorf("a new replica reads %+v", x.Dashboard)
	}
	if last := lastRecord(t, rs[0].svc.Store().cfg.Brokers, in.ID); last.Dashboard == nil || last.Dashboard.ID != made.Dashboard.ID {
		t.Errorf("the key's last record (what compaction keeps) carries %+v", last.Dashboard)
	}
	if len(dd.Dashboards("org_a")) != 1 {
		t.Error("more than one dashboard")
	}
}

func lastRecord(t *testing.T, brokers []string, id string) Integration {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: testTopic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var last Integration
	for {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		m, err := r.ReadMessage(c)
		cancel()
		if err != nil {
			return last
		}
		if string(m.Key) == id {
			last = Integration{}
			_ = json.Unmarshal(m.Value, &last)
		}
	}
}

// TestDashboardClaimExpires: a claim left by a replica that died holds the
// others back until it expires, then another replica finishes the work,
// finding what the dead one made.
func TestDashboardClaimExpires(t *testing.T) {
	dd, rs, in := dashboardWorld(t, 2)
	cur, _ := rs[0].svc.Get(in.ID)
	dead := cur.Dashboard.clone()
	dead.Rev++
	dead.Claim = &DashboardClaim{Token: "dead", Until: time.Now().Add(700 * time.Millisecond)}
	if _, err := rs[0].dash.writeDashboard(context.Background(), in.ID, dead); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other replica reads the claim", func() bool { x, _ := rs[1].svc.Get(in.ID); return x.Dashboard != nil })

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, _, err := rs[1].dash.Ensure(ctx, in.ID, sink.MonitorThresholds{})
	cancel()
	if !errors.Is(err, ErrDashboardBusy) {
		t.Fatalf("while claimed: %v", err)
	}
	start := time.Now()
	got, _, err := rs[1].dash.Ensure(context.Background(), in.ID, sink.MonitorThresholds{})
	if err != nil || !got.Dashboard.Complete() {
		t.Fatalf("after the claim expired: %+v %v", got.Dashboard, err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("waited %v", time.Since(start))
	}
	checkOne(t, dd, []Integration{got})
}

func TestDashboardNeedsAppKey(t *testing.T) {
	_, rs, in := dashboardWorld(t, 1)
	empty := ""
	if _, err := rs[0].svc.Update(context.Background(), in.ID, Patch{AppKey: &empty}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rs[0].dash.Ensure(context.Background(), in.ID, sink.MonitorThresholds{}); !errors.Is(err, ErrNoAppKey) {
		t.Errorf("without an app key: %v", err)
	}
	if _, _, err := rs[0].dash.Ensure(context.Background(), "dd_nope", sink.MonitorThresholds{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
}

func TestKeptDashboard(t *testing.T) {
	a := &Dashboard{ID: "a", Rev: 2}
	for _, c := range []struct {
		prev, next, want *Dashboard
	}{
		{nil, a, a},
		{a, nil, a},
		{a, &Dashboard{ID: "b", Rev: 2}, a}, // a losing claim of the same revision
		{a, &Dashboard{ID: "c", Rev: 1}, a}, // a stale copy
		{a, &Dashboard{ID: "d", Rev: 3}, nil},
	} {
		got := keptDashboard(c.prev, c.next)
		want := c.want
		if want == nil {
			want = c.next
		}
		if got != want {
			t.Errorf("keptDashboard(%+v, %+v) = %+v", c.prev, c.next, got)
		}
	}
}
