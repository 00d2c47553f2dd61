package integrations

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap/zaptest"

	"github.com/futureagi/prism-exporter/sink"
)

const testTopic = "prism.exporter.integrations"

func newCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// startStore runs a store on brokers until the test ends and returns it
// once it has read the topic to its end.
func startStore(t *testing.T, brokers []string) *Store {
	t.Helper()
	s, err := NewStore(StoreConfig{Topic: testTopic, Brokers: brokers, Create: true, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- s.Run(ctx, func() { close(ready) }) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("store stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("store not caught up in 20s")
	}
	return s
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStoreReadsItsWritesAndReplicasAgree(t *testing.T) {
	brokers := newCluster(t)
	a := startStore(t, brokers)
	b := startStore(t, brokers)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

	in := Integration{ID: "dd_1", OrgID: "org_a", Site: sink.SiteEU1, SyncInterval: time.Minute, ConnectedAt: t0, CreatedAt: t0, Version: 1, ManagedBy: ManagedByAPI}
	got, err := a.Put(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if got.OrgID != "org_a" || !got.ConnectedAt.Equal(t0) {
		t.Fatalf("Put returned %+v", got)
	}
	eventually(t, "the other replica sees the integration", func() bool { _, ok := b.Get("dd_1"); return ok })

	// The cut-off is set once: a later record with another one does not move it.
	in.ConnectedAt, in.Version, in.SyncInterval = t0.Add(time.Hour), 2, 2*time.Minute
	got, err = b.Put(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !got.ConnectedAt.Equal(t0) || got.SyncInterval != 2*time.Minute {
		t.Fatalf("after an update: %+v", got)
	}
	eventually(t, "the update reaches the first replica", func() bool { g, _ := a.Get("dd_1"); return g.Version == 2 })
	if g, _ := a.Get("dd_1"); !g.ConnectedAt.Equal(t0) {
		t.Errorf("first replica moved the cut-off to %v", g.ConnectedAt)
	}

	// A restarted replica reads the same state, deletions included.
	if _, err := a.Put(ctx, Integration{ID: "dd_2", OrgID: "org_b", ConnectedAt: t0, CreatedAt: t0, Version: 1}); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, "dd_2"); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Get("dd_2"); ok {
		t.Fatal("a deleted integration is still there after Delete returned")
	}
	c := startStore(t, brokers)
	list := c.List()
	if len(list) != 1 || list[0].ID != "dd_1" || !list[0].ConnectedAt.Equal(t0) || list[0].Version != 2 {
		t.Fatalf("restarted replica reads %+v", list)
	}
}

func TestStoreTopicIsCompacted(t *testing.T) {
	brokers := newCluster(t)
	startStore(t, brokers)
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	res, err := c.DescribeConfigs(context.Background(), &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: testTopic, ConfigNames: []string{"cleanup.policy"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range res.Resources {
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "cleanup.policy" {
				found = true
				if e.ConfigValue != "compact" {
					t.Errorf("cleanup.policy = %q", e.ConfigValue)
				}
			}
		}
	}
	if !found {
		t.Error("cleanup.policy not reported")
	}
}

func TestStoreNotifiesOnChange(t *testing.T) {
	brokers := newCluster(t)
	a := startStore(t, brokers)
	var mu sync.Mutex
	seen := 0
	a.OnChange(func() { mu.Lock(); seen++; mu.Unlock() })
	if _, err := a.Put(context.Background(), Integration{ID: "dd_1", OrgID: "org_a", Version: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "OnChange called", func() bool { mu.Lock(); defer mu.Unlock(); return seen > 0 })
}

// rawTopic reads every record value of the integrations topic.
func rawTopic(t *testing.T, brokers []string) string {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: testTopic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var b strings.Builder
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		m, err := r.ReadMessage(ctx)
		cancel()
		if err != nil {
			return b.String()
		}
		b.Write(m.Key)
		b.Write(m.Value)
		b.WriteByte('\n')
	}
}

// TestProduceSplitsLargeBursts: every status of thousands of integrations
// in one publication is more than the broker takes in one request (its
// message size limit); produce splits it and returns the last offset.
func TestProduceSplitsLargeBursts(t *testing.T) {
	brokers := newCluster(t)
	tp := newTopic("burst", "TEST", brokers, nil, nil, true, nil, nil, nil)
	if err := EnsureCompactedTopic(context.Background(), tp.client, "burst", "TEST", nil); err != nil {
		t.Fatal(err)
	}
	value := []byte(strings.Repeat("x", 2048))
	var recs []kafka.Record
	for i := 0; i < 1500; i++ { // 3 MB
		recs = append(recs, record(fmt.Sprintf("k%d", i), value))
	}
	last, err := tp.produce(context.Background(), recs...)
	if err != nil {
		t.Fatal(err)
	}
	if last != 1499 {
		t.Fatalf("last offset %d, want 1499", last)
	}
}
