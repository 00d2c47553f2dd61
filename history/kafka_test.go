package history

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap/zaptest"
)

const testTopic = "prism.exporter.history"

func newCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// run starts f until the test ends.
func run(t *testing.T, f func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func startLog(t *testing.T, cfg Config) *Log {
	t.Helper()
	l, err := NewLog(cfg, prometheus.NewRegistry(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// Entries of the test are from 2026: the clock is set just after.
	l.now = func() time.Time { return t0.Add(3 * time.Hour) }
	run(t, l.Run)
	eventually(t, "the log is ready", l.Ready)
	return l
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 15s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWriterToTopicToLog: entries written by one replica's Writer reach
// another replica's Log through the topic, later entries of a window
// replace earlier ones (a backfill's too_old entry included), a record
// that is not an entry is skipped, and a replica started afterwards reads
// the same history from the topic.
func TestWriterToTopicToLog(t *testing.T) {
	brokers := newCluster(t)
	cfg := Config{Brokers: brokers, Topic: testTopic, Retention: 48 * time.Hour}
	reg := prometheus.NewRegistry()
	w, err := NewWriter(cfg, reg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, w.Run)
	a := startLog(t, cfg)

	win := func(i int, source string) Entry {
		start := t0.Add(time.Duration(i) * time.Minute)
		return Entry{OrgID: "org_a", Start: start, End: start.Add(time.Minute), Source: source, Records: 10, Logs: 10, Points: 13,
			Bytes: 900, Requests: 2, DurationMS: 120, Outcome: Success, At: start.Add(75 * time.Second)}
	}
	for i := range 5 {
		w.Write(win(i, SourceLive))
	}
	late := win(2, SourceLive) // window 2 sent again with a late record: cumulative counts
	late.Records, late.Logs, late.At = 11, 11, late.At.Add(time.Minute)
	w.Write(late)
	old := win(1, SourceBackfill)
	old.Outcome, old.Logs, old.LogsDropped, old.Points = TooOld, 0, 10, 0
	w.Write(old)
	old.Outcome, old.Logs, old.LogsDropped, old.Records = Partial, 4, 10, 14 // the backfill reached more of it
	w.Write(old)
	failed := win(5, SourceLive)
	failed.Outcome, failed.StatusCode, failed.Error, failed.Logs, failed.Points = Failed, 403, "Datadog refused the API key (403)\n\tat stack", 0, 0
	w.Write(failed)
	w.Write(Entry{OrgID: "org_b", Start: t0, End: t0.Add(5 * time.Minute), Source: SourceLive, Outcome: RateLimited, StatusCode: 429, At: t0.Add(6 * time.Minute)})
	w.Write(Entry{OrgID: "", Start: t0, End: t0.Add(time.Minute), Source: SourceLive, Outcome: Success}) // dropped: no org

	// Garbage beside the entries: skipped, counted, never fatal.
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	if _, err := client.Produce(context.Background(), &kafka.ProduceRequest{Topic: testTopic, Partition: 0, RequiredAcks: kafka.RequireAll,
		Records: kafka.NewRecordReader(kafka.Record{Key: kafka.NewBytes([]byte("org_a")), Value: kafka.NewBytes([]byte(`{"org_id":`))})}); err != nil {
		t.Fatal(err)
	}

	want := func(l *Log) func() bool {
		return func() bool {
			p := l.Query("org_a", Query{})
			return len(p.Entries) == 7 && p.Entries[0].Outcome == Failed && l.Query("org_b", Query{}).Entries != nil &&
				len(l.Query("org_b", Query{}).Entries) == 1 && testutil.ToFloat64(l.invalid) == 1
		}
	}
	eventually(t, "the log reads every entry", want(a))
	check := func(l *Log) {
		t.Helper()
		p := l.Query("org_a", Query{})
		// Newest first: window 5 (failed), 4, 3, 2 (replaced), 1 live, 1 backfill, 0.
		if p.Entries[0].Error != "Datadog refused the API key (403)" || p.Entries[0].StatusCode != 403 {
			t.Errorf("failed entry: %+v", p.Entries[0])
		}
		if e := p.Entries[3]; !e.Start.Equal(t0.Add(2*time.Minute)) || e.Records != 11 {
			t.Errorf("window 2 not replaced by its later entry: %+v", e)
		}
		if e := p.Entries[5]; e.Source != SourceBackfill || e.Outcome != Partial || e.Records != 14 {
			t.Errorf("backfill window 1: %+v", e)
		}
		if p := l.Query("org_a", Query{Outcome: TooOld}); len(p.Entries) != 0 {
			t.Errorf("the replaced too_old entry is still there")
		}
		// Five successes (windows 4, 3, 2, 1 and 0, live) in pages of two.
		var ends []time.Time
		cursor := ""
		for page := 1; ; page++ {
			p := l.Query("org_a", Query{Outcome: Success, Limit: 2, Cursor: cursor})
			for _, e := range p.Entries {
				ends = append(ends, e.End)
			}
			if p.Next == "" || page == 5 {
				break
			}
			cursor = p.Next
		}
		if len(ends) != 5 || !ends[0].Equal(t0.Add(5*time.Minute)) || !ends[4].Equal(t0.Add(time.Minute)) {
			t.Errorf("successes paged by two: window ends %v", ends)
		}
	}
	check(a)
	if got := testutil.ToFloat64(w.written); got != 10 {
		t.Errorf("written = %v, want 10", got)
	}
	if got := testutil.ToFloat64(w.dropped.WithLabelValues(dropInvalid)); got != 1 {
		t.Errorf("dropped invalid = %v, want 1", got)
	}
	if got := testutil.ToFloat64(a.indexed); got != 8 {
		t.Errorf("indexed = %v, want 8", got)
	}

	// A replica started now reads the same history.
	b := startLog(t, cfg)
	eventually(t, "a new replica reads the history", want(b))
	check(b)

	// The topic is a delete-policy topic with the configured retention.
	res, err := client.DescribeConfigs(context.Background(), &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: testTopic, ConfigNames: []string{"cleanup.policy", "retention.ms"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res.Resources {
		for _, e := range r.ConfigEntries {
			got[e.ConfigName] = e.ConfigValue
		}
	}
	if got["cleanup.policy"] != "delete" || got["retention.ms"] != "172800000" {
		t.Errorf("topic configs %v", got)
	}
}

// TestWriteNeverBlocks: with nobody writing the queue to Kafka, Write
// returns at once, and what does not fit is dropped and counted.
func TestWriteNeverBlocks(t *testing.T) {
	reg := prometheus.NewRegistry()
	w, err := NewWriter(Config{Brokers: []string{"127.0.0.1:1"}, QueueSize: 3}, reg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	e := Entry{OrgID: "org_a", Start: t0, End: t0.Add(time.Minute), Source: SourceLive, Outcome: Success}
	done := make(chan struct{})
	go func() {
		for range 100 {
			w.Write(e)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked")
	}
	if got := testutil.ToFloat64(w.dropped.WithLabelValues(dropQueueFull)); got != 97 {
		t.Errorf("dropped queue_full = %v, want 97", got)
	}
	// After Run has stopped, entries are dropped as stopped.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = w.Run(ctx)
	w.Write(e)
	if got := testutil.ToFloat64(w.dropped.WithLabelValues(dropStopped)); got < 1 {
		t.Errorf("dropped stopped = %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "prism_exporter_history_entries_dropped_total"); err != nil || n != 3 {
		t.Errorf("dropped series: %d, %v", n, err)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	err := Config{Topic: "", Retention: time.Hour, MaxPerOrg: 0, MaxEntries: -1}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, v := range []string{"PRISM_KAFKA_BROKERS", "PRISM_HISTORY_TOPIC", "PRISM_HISTORY_RETENTION", "PRISM_HISTORY_MAX_PER_ORG", "PRISM_HISTORY_MAX_ENTRIES"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error does not name %s: %v", v, err)
		}
	}
	if _, err := NewLog(Config{Brokers: []string{"x:1"}}, nil, nil); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	reg := prometheus.NewRegistry()
	if _, err := NewWriter(Config{Brokers: []string{"x:1"}}, reg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := NewWriter(Config{Brokers: []string{"x:1"}}, reg, nil); err == nil {
		t.Error("a second writer on one registry was accepted")
	}
}

// TestLogForgetsWindowsPastRetention: a replica running for weeks answers
// what one started today does: windows that ended more than the retention
// ago are dropped on arrival and by the periodic expiry.
func TestLogForgetsWindowsPastRetention(t *testing.T) {
	l, err := NewLog(Config{Brokers: []string{"x:1"}, Retention: 24 * time.Hour}, prometheus.NewRegistry(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(25 * time.Hour)
	l.now = func() time.Time { return now }
	for i := range 3 {
		start := t0.Add(time.Duration(i) * time.Hour)
		value, _ := encode(Entry{OrgID: "org", Start: start, End: start.Add(time.Minute), Source: SourceLive, Outcome: Success, At: start})
		l.apply([]byte("org"), value)
	}
	if n := len(l.Query("org", Query{}).Entries); n != 2 || testutil.ToFloat64(l.evicted.WithLabelValues("expired")) != 1 {
		t.Fatalf("%d entries after a window past the retention arrived", n)
	}
	now = now.Add(time.Hour)
	l.expire()
	if p := l.Query("org", Query{}); len(p.Entries) != 1 || !p.Entries[0].Start.Equal(t0.Add(2*time.Hour)) || testutil.ToFloat64(l.indexed) != 1 {
		t.Fatalf("after expiry: %d entries, indexed %v", len(p.Entries), testutil.ToFloat64(l.indexed))
	}
	l.apply([]byte("org"), []byte("not json"))
	if testutil.ToFloat64(l.invalid) != 1 {
		t.Error("an invalid record was not counted")
	}
}
