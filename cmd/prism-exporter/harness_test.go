package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/futureagi/prism-exporter/integrations"
	"github.com/futureagi/prism-exporter/schemas"
	"github.com/futureagi/prism-exporter/schemas/gen"
	"github.com/futureagi/prism-exporter/sink/ddfake"
)

const partitions = 6

// testTenant is one tenant of a test: its integration and its account in the
// local Datadog.
type testTenant struct {
	ID       string
	Site     string
	APIKey   string
	Interval time.Duration
	Paused   bool
	NoIntegr bool // records for it are skipped: no tenants file entry
}

// env is one test's world: a broker (kfake in-process, or the real Apache
// Kafka broker from deployments/with-kafka.sh), its topics, the local
// Datadog, and a tenants file.
type env struct {
	t        *testing.T
	brokers  []string
	real     bool
	topic    string
	dlq      string
	intTopic string // the integrations topic
	group    string
	dd       *ddfake.Server
	ddURL    string
	tenants  []testTenant
	tenantsF string
	lateness time.Duration
	run      atomic.Pointer[running] // the in-process exporter, when one runs
	// newOnly writes the tenants file as the README's example does: no
	// connected_at, no backfill. cutoff then holds each tenant's cut-off as
	// the integrations topic fixed it (readCutoffs), and the model expects
	// only records at or after it.
	newOnly bool
	cutoff  map[string]time.Time
	members []*member // exporter processes started, for their logs
}

func newEnv(t *testing.T, tenants []testTenant) *env {
	t.Helper()
	e := &env{t: t, tenants: tenants, lateness: 5 * time.Second}
	suffix := fmt.Sprintf("%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), rand.IntN(1_000_000))
	e.topic, e.dlq, e.group = "gw-"+suffix, "gw-"+suffix+".dlq", "grp-"+suffix
	e.intTopic = "gw-" + suffix + ".integrations"
	if os.Getenv("PRISM_TEST_BROKER") == "kafka" && os.Getenv("KAFKA_BROKERS") != "" {
		e.real = true
		e.brokers = strings.Split(os.Getenv("KAFKA_BROKERS"), ",")
	} else {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		e.brokers = c.ListenAddrs()
	}
	e.createTopics()

	var accounts []ddfake.Account
	for _, tt := range tenants {
		accounts = append(accounts, ddfake.Account{Name: tt.ID, APIKeys: []string{tt.APIKey}})
	}
	e.dd = ddfake.New(ddfake.WithAccounts(accounts...))
	url, err := e.dd.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.dd.Close() })
	e.ddURL = url
	e.writeTenants()
	return e
}

func (e *env) createTopics() {
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 30 * time.Second}
	res, err := c.CreateTopics(context.Background(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: e.topic, NumPartitions: partitions, ReplicationFactor: 1},
		{Topic: e.dlq, NumPartitions: partitions, ReplicationFactor: 1},
	}})
	if err != nil {
		e.t.Fatalf("creating topics: %v", err)
	}
	for topic, err := range res.Errors {
		if err != nil {
			e.t.Fatalf("creating topic %s: %v", topic, err)
		}
	}
}

func (e *env) writeTenants() {
	var b strings.Builder
	b.WriteString("tenants:\n")
	for _, tt := range e.tenants {
		if tt.NoIntegr {
			continue
		}
		site := tt.Site
		if site == "" {
			site = "US1"
		}
		if e.newOnly {
			fmt.Fprintf(&b, "  - id: %s\n    site: %s\n    api_key: %q\n    sync_interval: %s\n", tt.ID, site, tt.APIKey, tt.Interval)
			continue
		}
		fmt.Fprintf(&b, "  - id: %s\n    site: %s\n    api_key: %q\n    sync_interval: %s\n    backfill: true\n    paused: %v\n",
			tt.ID, site, tt.APIKey, tt.Interval, tt.Paused)
	}
	e.tenantsF = filepath.Join(e.t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(e.tenantsF, []byte(b.String()), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// settings is the exporter's configuration for this env, as the environment
// would give it.
func (e *env) settings() settings {
	return settings{
		KafkaBrokers: e.brokers, KafkaTopic: e.topic, KafkaGroup: e.group, DLQTopic: e.dlq, CreateDLQ: false,
		TenantsFile: e.tenantsF, TenantsReload: time.Second,
		DatadogURL: e.ddURL, DatadogService: "prism-gateway", DatadogTimeout: 10 * time.Second, DatadogConcurrency: 2,
		AllowedLateness: e.lateness, MaxTagSets: 1000, MemoryBudgetMiB: 256,
		CommitInterval: 500 * time.Millisecond, DrainTimeout: 5 * time.Second,
		KafkaSessionTimeout: 6 * time.Second, KafkaRebalanceTimeout: 30 * time.Second,
		HTTPAddr: "127.0.0.1:0", LogLevel: "info",
		IntegrationsTopic: e.intTopic, StatusTopic: e.intTopic + ".status",
		// Each test its own: a shared partials topic would hand one test's
		// windows to another's combiner (the tenants' ids repeat).
		PartialsTopic:  e.topic + ".partials",
		HistoryTopic:   e.topic + ".history",
		BackfillsTopic: e.topic + ".backfills",
	}
}

// environ is the same configuration as PRISM_* variables, for a child process.
func (e *env) environ() []string {
	s := e.settings()
	return append(os.Environ(),
		"PRISM_KAFKA_BROKERS="+strings.Join(s.KafkaBrokers, ","),
		"PRISM_KAFKA_TOPIC="+s.KafkaTopic,
		"PRISM_KAFKA_GROUP="+s.KafkaGroup,
		"PRISM_DLQ_TOPIC="+s.DLQTopic,
		"PRISM_CREATE_DLQ_TOPIC=false",
		"PRISM_TENANTS_FILE="+s.TenantsFile,
		"PRISM_INTEGRATIONS_TOPIC="+s.IntegrationsTopic,
		"PRISM_STATUS_TOPIC="+s.StatusTopic,
		"PRISM_PARTIALS_TOPIC="+s.PartialsTopic,
		"PRISM_HISTORY_TOPIC="+s.HistoryTopic,
		"PRISM_BACKFILLS_TOPIC="+s.BackfillsTopic,
		"PRISM_TENANTS_RELOAD_INTERVAL=1s",
		"PRISM_DATADOG_URL="+s.DatadogURL,
		"PRISM_DATADOG_TIMEOUT=10s",
		"PRISM_ALLOWED_LATENESS="+s.AllowedLateness.String(),
		"PRISM_COMMIT_INTERVAL=500ms",
		"PRISM_DRAIN_TIMEOUT=5s",
		// The brokers' minimum: a killed member's partitions move on sooner.
		"PRISM_KAFKA_SESSION_TIMEOUT=6s",
		"PRISM_HTTP_ADDR=127.0.0.1:0",
		"PRISM_LOG_LEVEL=info",
	)
}

// sent is one produced record as the checker knows it.
type sent struct {
	partition int
	offset    int64
	value     []byte
	bad       bool
	ev        schemas.Event // when good
}

// traffic generates n records over the last span of event time, spread
// round-robin over the partitions, with every malformedEvery-th malformed.
func (e *env) traffic(n int, span time.Duration, malformedEvery int, seed int64) []sent {
	ids := make([]string, len(e.tenants))
	for i, tt := range e.tenants {
		ids[i] = tt.ID
	}
	g := gen.New(gen.Config{Tenants: ids, Seed: seed, MalformedEvery: malformedEvery})
	start := time.Now().Add(-span)
	step := span / time.Duration(n)
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	out := make([]sent, 0, n)
	for i := 0; i < n; i++ {
		// Event times wander up to 0.5 s around arrival order: out of order,
		// but within the allowed lateness.
		jitter := time.Duration(rng.Int64N(int64(time.Second))) - 500*time.Millisecond
		_, v, bad := g.Next(start.Add(time.Duration(i)*step + jitter))
		s := sent{partition: i % partitions, value: v, bad: bad}
		if !bad {
			if err := schemas.Decode(v, &s.ev); err != nil {
				e.t.Fatalf("generator made a good record the decoder refuses: %v", err)
			}
		}
		out = append(out, s)
	}
	return out
}

// produce writes records to their partitions and fills in their offsets.
func (e *env) produce(recs []sent) {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.DefaultProduceTopic(e.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for i := range recs {
		wg.Add(1)
		r := &kgo.Record{Partition: int32(recs[i].partition), Value: recs[i].value}
		i := i
		cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			recs[i].offset = r.Offset
		})
	}
	wg.Wait()
	if firstErr != nil {
		e.t.Fatalf("producing: %v", firstErr)
	}
}

// endOffsets are the partitions' high watermarks.
func (e *env) endOffsets() map[int]int64 {
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 10 * time.Second}
	req := make([]kafka.OffsetRequest, partitions)
	for p := range req {
		req[p] = kafka.LastOffsetOf(p)
	}
	res, err := c.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{e.topic: req}})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[int]int64{}
	for _, po := range res.Topics[e.topic] {
		out[po.Partition] = po.LastOffset
	}
	return out
}

// committed reads the group's committed offsets.
func (e *env) committed() map[int]int64 {
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 10 * time.Second}
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	res, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: e.group, Topics: map[string][]int{e.topic: ps}})
	out := map[int]int64{}
	if err != nil {
		return out
	}
	for _, p := range res.Topics[e.topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// waitCommitted waits until every partition's commit reached its end.
func (e *env) waitCommitted(timeout time.Duration) {
	e.t.Helper()
	end := e.endOffsets()
	deadline := time.Now().Add(timeout)
	for {
		got := e.committed()
		done := true
		for p, off := range end {
			if got[p] < off {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			if r := e.run.Load(); r != nil {
				e.t.Logf("exporter: %+v", r.proc.Status())
				for _, ts := range r.sink.TenantStatus() {
					e.t.Logf("tenant %+v", ts)
				}
			}
			e.t.Logf("local Datadog: %+v", e.dd.Stats())
			if n := len(e.members); n > 0 {
				out, _ := os.ReadFile(e.members[n-1].log)
				e.t.Logf("last member's log:\n%s", tail(out, 6000))
			}
			e.t.Fatalf("committed offsets %v did not reach the end %v within %s", got, end, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runInProcess runs the exporter in this process until the returned stop is
// called.
func (e *env) runInProcess(s settings) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel))
	go func() { done <- serve(ctx, s, log, func(r *running) { e.run.Store(r) }) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("exporter: %v", err)
				}
			case <-time.After(60 * time.Second):
				e.t.Errorf("exporter did not stop within 60s of its context ending")
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// readDLQ reads the dead-letter topic until it has read want records or
// nothing more arrives.
func (e *env) readDLQ(want int) []kafka.Message {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ConsumeTopics(e.dlq), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	// Dead letters are written at least once, so count distinct source
	// positions, and read on a little after reaching want in case of more.
	var out []kafka.Message
	seen := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(seen) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			e.t.Errorf("read %d of %d dead letters: %v", len(seen), want, fs.Errors())
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			m := kafka.Message{Partition: int(r.Partition), Offset: r.Offset, Key: r.Key, Value: r.Value}
			for _, h := range r.Headers {
				m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
			}
			out = append(out, m)
			seen[header(m, "prism-dlq-source-partition")+"/"+header(m, "prism-dlq-source-offset")] = true
		})
	}
	return out
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// seriesKey names one metric point: tenant, normalised sorted tags,
// timestamp.
type seriesKey struct {
	tenant string
	tags   string
	ts     int64
}

type totals struct {
	requests, errors, input, output float64
	cost                            float64
}

func (e *env) tenant(id string) (testTenant, bool) {
	for _, tt := range e.tenants {
		if tt.ID == id {
			return tt, true
		}
	}
	return testTenant{}, false
}

func exported(tt testTenant, ok bool) bool { return ok && !tt.Paused && !tt.NoIntegr }

// model computes, by brute force, what each tenant's account must hold.
func (e *env) model(recs []sent) (map[seriesKey]*totals, map[string]map[string]bool) {
	series := map[seriesKey]*totals{}
	logs := map[string]map[string]bool{} // tenant -> request ids
	for _, r := range recs {
		if r.bad {
			continue
		}
		tt, ok := e.tenant(r.ev.OrgID)
		if !exported(tt, ok) {
			continue
		}
		if from, set := e.cutoff[tt.ID]; set && r.ev.Timestamp.Before(from) {
			continue
		}
		if logs[tt.ID] == nil {
			logs[tt.ID] = map[string]bool{}
		}
		logs[tt.ID][r.ev.RequestID] = true
		length := tt.Interval
		start := time.Unix(0, r.ev.Timestamp.UnixNano()/int64(length)*int64(length))
		tags := []string{
			ddfake.NormalizeTag("gateway:" + orUnknown(r.ev.GatewayID)),
			ddfake.NormalizeTag("model:" + orUnknown(r.ev.Model)),
			ddfake.NormalizeTag("provider:" + orUnknown(r.ev.Provider)),
			ddfake.NormalizeTag("routing:" + orNone(r.ev.RoutingStrategy)),
		}
		sort.Strings(tags)
		k := seriesKey{tenant: tt.ID, tags: strings.Join(tags, ","), ts: start.Unix()}
		t := series[k]
		if t == nil {
			t = &totals{}
			series[k] = t
		}
		t.requests++
		if r.ev.Failed() {
			t.errors++
		}
		t.input += float64(r.ev.PromptTokens)
		t.output += float64(r.ev.CompletionTokens)
		t.cost += r.ev.Cost
	}
	return series, logs
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// checkDatadog holds what the local Datadog received against the model: every
// record's log in its own tenant's account (exactly once when exactlyOnce, at
// least once otherwise) and in no other, and every window's metric totals
// exact. It returns the number of duplicate logs.
func (e *env) checkDatadog(recs []sent, exactlyOnce bool) int {
	e.t.Helper()
	series, want := e.model(recs)
	dups := 0
	owner := map[string]string{}
	for tenant, ids := range want {
		for id := range ids {
			owner[id] = tenant
		}
	}
	for _, tt := range e.tenants {
		seen := map[string]int{}
		for _, l := range e.dd.Logs(tt.ID) {
			id, _ := l.Attributes["request_id"].(string)
			seen[id]++
			if owner[id] != tt.ID {
				e.t.Errorf("account %s holds log %q that belongs to %q", tt.ID, id, owner[id])
			}
		}
		for id := range want[tt.ID] {
			n := seen[id]
			switch {
			case n == 0:
				e.t.Errorf("account %s: log of request %s missing", tt.ID, id)
			case n > 1 && exactlyOnce:
				e.t.Errorf("account %s: log of request %s arrived %d times", tt.ID, id, n)
			}
			if n > 1 {
				dups += n - 1
			}
		}
	}

	// The metrics come from the second stage, which sends a window's totals
	// after the first stage committed the records: wait for them to settle
	// on the model, then report what still differs.
	deadline := time.Now().Add(metricsSettle)
	for {
		diffs := e.metricsDiff(series)
		if len(diffs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, d := range diffs {
				e.t.Error(d)
			}
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return dups
}

// metricsSettle bounds how long checkDatadog waits for the combiner's
// totals to match the model: its grace (allowed lateness + 5 s) and a
// margin for a rebuild after a crash.
const metricsSettle = 45 * time.Second

// metricsDiff compares the local Datadog's latest points with the model:
// one series per tag set (no partition tag), every window's totals exact.
func (e *env) metricsDiff(series map[seriesKey]*totals) []string {
	got := map[seriesKey]*totals{}
	for _, tt := range e.tenants {
		for _, p := range e.dd.Points(tt.ID) {
			k := seriesKey{tenant: tt.ID, tags: strings.Join(p.Tags, ","), ts: p.Timestamp}
			t := got[k]
			if t == nil {
				t = &totals{}
				got[k] = t
			}
			switch p.Metric {
			case "prism.gateway.requests":
				t.requests = p.Value
			case "prism.gateway.errors":
				t.errors = p.Value
			case "prism.gateway.input_tokens":
				t.input = p.Value
			case "prism.gateway.output_tokens":
				t.output = p.Value
			case "prism.gateway.cost":
				t.cost = p.Value
			}
		}
	}
	var diffs []string
	for k := range got {
		if strings.Contains(","+k.tags, ",partition:") {
			diffs = append(diffs, fmt.Sprintf("series %+v carries a partition tag: one series per tag set is the contract", k))
		}
	}
	for k, w := range series {
		g := got[k]
		if g == nil {
			diffs = append(diffs, fmt.Sprintf("metrics missing for %+v (want %+v)", k, *w))
			continue
		}
		if g.requests != w.requests || g.errors != w.errors || g.input != w.input || g.output != w.output ||
			math.Abs(g.cost-w.cost) > 1e-6*math.Max(1, w.cost) {
			diffs = append(diffs, fmt.Sprintf("metrics for %+v: got %+v, want %+v", k, *g, *w))
		}
	}
	for k := range got {
		if series[k] == nil {
			diffs = append(diffs, fmt.Sprintf("unexpected series %+v in Datadog", k))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// checkDeadLetters holds the dead-letter topic against the malformed records
// produced: each is there with its reason and source position.
func (e *env) checkDeadLetters(recs []sent) {
	e.t.Helper()
	bad := 0
	for _, r := range recs {
		if r.bad {
			bad++
		}
	}
	dls := e.readDLQ(bad)
	byPos := map[string]kafka.Message{}
	for _, m := range dls {
		byPos[header(m, "prism-dlq-source-partition")+"/"+header(m, "prism-dlq-source-offset")] = m
	}
	for _, r := range recs {
		if !r.bad {
			continue
		}
		m, ok := byPos[strconv.Itoa(r.partition)+"/"+strconv.FormatInt(r.offset, 10)]
		if !ok {
			e.t.Errorf("malformed record at %d/%d is not in the dead-letter topic", r.partition, r.offset)
			continue
		}
		if string(m.Value) != string(r.value) {
			e.t.Errorf("dead letter %d/%d does not carry the original bytes", r.partition, r.offset)
		}
		if header(m, "prism-dlq-reason") == "" || header(m, "prism-dlq-source-topic") != e.topic {
			e.t.Errorf("dead letter %d/%d lacks its reason or source topic: %v", r.partition, r.offset, m.Headers)
		}
	}
	if e.t.Failed() {
		hist := map[string]int{}
		for _, m := range dls {
			hist[header(m, "prism-dlq-source-partition")+" reason="+header(m, "prism-dlq-reason")]++
		}
		e.t.Logf("dead letters read: %d, by source partition: %v", len(dls), hist)
	}
	if len(byPos) < bad {
		e.t.Errorf("dead-letter topic holds %d distinct records, want %d", len(byPos), bad)
	}
}

// readCutoffs reads each tenant's cut-off from the integrations topic, as a
// replica would, once every tenant has been imported.
func (e *env) readCutoffs(timeout time.Duration) {
	e.t.Helper()
	store, err := integrations.NewStore(integrations.StoreConfig{Topic: e.intTopic, Brokers: e.brokers})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- store.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(timeout)
	e.cutoff = map[string]time.Time{}
	for _, tt := range e.tenants {
		if tt.NoIntegr {
			continue
		}
		for {
			if in, ok := store.Get(integrations.FileID(tt.ID)); ok {
				e.cutoff[tt.ID] = in.ConnectedAt
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("tenant %s not in the integrations topic after %s", tt.ID, timeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
