//go:build kafkacompat

// Compatibility smoke test of github.com/segmentio/kafka-go against a real
// Apache Kafka 4.x broker and against kfake (franz-go's in-process broker).
//
// Kafka 4.0 removed old protocol versions (KIP-896) while kafka-go's
// ConsumerGroup hard-codes some of them, so this exercises every request the
// exporter's consumer path sends: CreateTopics, Produce (Writer), Fetch and
// ListOffsets (Reader), FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
// OffsetFetch, OffsetCommit and LeaveGroup (ConsumerGroup), the low-level
// Client.OffsetCommit/OffsetFetch with metadata, and a rebalance between two
// members.
//
// It is excluded from the normal suite by the build tag. Run it with
//
//	export "$(deployments/kafka-local/kafka.sh start)"   # KAFKA_BROKERS=127.0.0.1:39092
//	go test -tags kafkacompat -run TestKafkaGoCompat -v ./processor/
//	deployments/kafka-local/kafka.sh stop
//
// Without KAFKA_BROKERS only the kfake subtest runs. KAFKA_COMPAT_DEBUG=1
// prints kafka-go's consumer-group log and kfake's debug log.
package processor_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

const (
	compatPartitions = 6
	compatPhase1     = 10000
	compatPhase2     = 1000
	compatSeedTopic  = "t" // seeded in kfake, used if CreateTopics fails there
)

func TestKafkaGoCompat(t *testing.T) {
	t.Run("kafka", func(t *testing.T) {
		brokers := os.Getenv("KAFKA_BROKERS")
		if brokers == "" {
			t.Skip("KAFKA_BROKERS not set; start a broker with deployments/kafka-local/kafka.sh start")
		}
		runCompat(t, strings.Split(brokers, ","), "")
	})
	t.Run("kfake", func(t *testing.T) {
		opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(compatPartitions, compatSeedTopic)}
		if os.Getenv("KAFKA_COMPAT_DEBUG") != "" {
			opts = append(opts, kfake.WithLogger(kfake.BasicLogger(os.Stderr, kfake.LogLevelDebug)))
		}
		c, err := kfake.NewCluster(opts...)
		if err != nil {
			t.Fatalf("kfake.NewCluster: %v", err)
		}
		defer c.Close()
		runCompat(t, c.ListenAddrs(), compatSeedTopic)
	})
}

// compatReport records, per operation, whether it worked and the distinct
// errors seen, and prints a table at the end of each subtest.
type compatReport struct {
	mu    sync.Mutex
	order []string
	ok    map[string]int
	errs  map[string]map[string]int
	notes []string
}

func newCompatReport() *compatReport {
	return &compatReport{ok: map[string]int{}, errs: map[string]map[string]int{}}
}

func (r *compatReport) touch(op string) {
	if _, seen := r.ok[op]; !seen {
		r.ok[op] = 0
		r.order = append(r.order, op)
	}
}

// record counts a success or an error for op. Errors that kafka-go itself
// classifies as temporary (and retries), e.g. GROUP_COORDINATOR_NOT_AVAILABLE
// while __consumer_offsets is being created, are filed under a separate
// "retried:" entry that does not fail the test.
func (r *compatReport) record(op string, err error) {
	var kerr kafka.Error
	if err != nil && errors.As(err, &kerr) && kerr.Temporary() {
		op = "retried: " + op
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.touch(op)
	if err == nil {
		r.ok[op]++
		return
	}
	if r.errs[op] == nil {
		r.errs[op] = map[string]int{}
	}
	r.errs[op][err.Error()]++
}

func (r *compatReport) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func (r *compatReport) failed(op string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errs[op]) > 0
}

func (r *compatReport) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.WriteString("kafka-go compatibility report:\n")
	for _, op := range r.order {
		status := "OK   "
		switch {
		case len(r.errs[op]) == 0:
		case strings.HasPrefix(op, "retried:") || strings.HasPrefix(op, "info:"):
			status = "NOTE "
		case r.ok[op] > 0:
			status = "MIXED"
		default:
			status = "FAIL "
		}
		fmt.Fprintf(&b, "  %s %-40s ok=%d", status, op, r.ok[op])
		msgs := make([]string, 0, len(r.errs[op]))
		for m := range r.errs[op] {
			msgs = append(msgs, m)
		}
		sort.Strings(msgs)
		for _, m := range msgs {
			fmt.Fprintf(&b, "\n         error x%d: %s", r.errs[op][m], m)
		}
		b.WriteByte('\n')
	}
	for _, n := range r.notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

// syncLog collects kafka-go's logs so they can be printed when debugging.
type syncLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *syncLog) logger(prefix string) kafka.LoggerFunc {
	return func(format string, args ...any) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, time.Now().Format("15:04:05.000 ")+prefix+fmt.Sprintf(format, args...))
	}
}

func (l *syncLog) dump(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("kafka-go log (%d lines):\n%s", len(l.lines), strings.Join(l.lines, "\n"))
}

type consumedMsg struct {
	member    string
	gen       int32
	partition int
	offset    int64
	value     string
}

type genInfo struct {
	member string
	gen    *kafka.Generation
	parts  []kafka.PartitionAssignment
}

func (g genInfo) partitionIDs() []int {
	ids := make([]int, 0, len(g.parts))
	for _, p := range g.parts {
		ids = append(ids, p.ID)
	}
	sort.Ints(ids)
	return ids
}

type compatMember struct {
	name string
	cg   *kafka.ConsumerGroup
	gens chan genInfo
	done chan struct{}
}

type compatEnv struct {
	t       *testing.T
	brokers []string
	topic   string
	group   string
	client  *kafka.Client
	report  *compatReport
	log     *syncLog
	out     chan consumedMsg

	mu       sync.Mutex
	seen     map[string]int // value -> deliveries
	received []consumedMsg
}

func runCompat(t *testing.T, brokers []string, fallbackTopic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	env := &compatEnv{
		t:       t,
		brokers: brokers,
		topic:   "kafkacompat-" + suffix,
		group:   "kafkacompat-group-" + suffix,
		client:  &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second},
		report:  newCompatReport(),
		log:     &syncLog{},
		out:     make(chan consumedMsg, 1024),
		seen:    map[string]int{},
	}
	defer func() {
		t.Log(env.report.String())
		if t.Failed() || os.Getenv("KAFKA_COMPAT_DEBUG") != "" {
			env.log.dump(t)
		}
	}()
	go env.collect(ctx)

	env.apiVersions(ctx)
	env.createTopics(ctx, fallbackTopic)
	if env.topic == "" {
		t.Fatal("no topic to work with")
	}

	// Phase 1: produce 10,000 messages, one member consumes all 6 partitions.
	if n := env.produce(ctx, "p1", compatPhase1); n != compatPhase1 {
		t.Fatalf("produced %d/%d messages", n, compatPhase1)
	}
	env.listOffsets(ctx)
	a := env.startMember(ctx, "A")
	defer a.cg.Close()
	g1, err := env.waitGen(ctx, a, -1, 60*time.Second)
	if err != nil {
		t.Fatalf("member A: first generation: %v", err)
	}
	t.Logf("member A: generation %d, member %s, partitions %v", g1.gen.ID, g1.gen.MemberID, g1.partitionIDs())
	if len(g1.parts) != compatPartitions {
		t.Errorf("member A alone got %d partitions, want %d", len(g1.parts), compatPartitions)
	}
	if !env.waitReceived(ctx, "p1", compatPhase1, 90*time.Second) {
		t.Fatalf("phase 1: consumed %d/%d distinct messages", env.countPrefix("p1"), compatPhase1)
	}
	env.report.record("consume 10k via ConsumerGroup+Reader", nil)
	committed, err := env.waitCommitted(ctx, 20*time.Second)
	if err != nil {
		t.Errorf("gen.CommitOffsets did not reach the end offsets: %v", err)
	}

	// Low-level commit with metadata, in member A's generation.
	env.commitWithMetadata(ctx, g1, committed)

	// Phase 2: a second member joins; both must get a disjoint half and resume
	// from the committed offsets.
	joinStart := time.Now()
	b := env.startMember(ctx, "B")
	defer b.cg.Close()
	ga, gb, err := env.waitRebalance(ctx, a, b, g1.gen.ID, 90*time.Second)
	if err != nil {
		env.report.record("rebalance to 2 members", err)
		t.Errorf("rebalance with 2 members: %v", err)
	} else {
		t.Logf("rebalance in %v: generation %d, A=%v B=%v", time.Since(joinStart).Round(time.Millisecond),
			ga.gen.ID, ga.partitionIDs(), gb.partitionIDs())
		env.report.record("rebalance to 2 members", env.checkSplit(ga, gb, committed))
		env.describeGroup(ctx, 2)
		if n := env.produce(ctx, "p2", compatPhase2); n != compatPhase2 {
			t.Errorf("phase 2: produced %d/%d messages", n, compatPhase2)
		}
		if !env.waitReceived(ctx, "p2", compatPhase2, 60*time.Second) {
			env.report.record("consume after rebalance", fmt.Errorf("consumed %d/%d", env.countPrefix("p2"), compatPhase2))
			t.Errorf("phase 2: consumed %d/%d distinct messages", env.countPrefix("p2"), compatPhase2)
		} else {
			env.report.record("consume after rebalance", nil)
			byMember := env.phaseByMember("p2")
			t.Logf("phase 2 messages by member: %v", byMember)
			if byMember["A"] == 0 || byMember["B"] == 0 {
				t.Errorf("phase 2: one member consumed nothing: %v", byMember)
			}
		}
	}

	// Phase 3: B leaves (LeaveGroup); A takes all partitions again.
	closeStart := time.Now()
	err = b.cg.Close()
	env.report.record("ConsumerGroup.Close (LeaveGroup v0)", err)
	t.Logf("member B closed in %v", time.Since(closeStart).Round(time.Millisecond))
	leaveStart := time.Now()
	g3, err := env.waitGen(ctx, a, g1.gen.ID+1, 60*time.Second)
	for err == nil && len(g3.parts) != compatPartitions {
		// A may first see the generation in which B was still a member.
		g3, err = env.waitGen(ctx, a, g3.gen.ID+1, 60*time.Second)
	}
	if err != nil {
		env.report.record("rebalance back to 1 member", err)
		t.Errorf("member A after B left: %v", err)
	} else {
		env.report.record("rebalance back to 1 member", nil)
		t.Logf("member A after %v: generation %d, partitions %v", time.Since(leaveStart).Round(time.Millisecond),
			g3.gen.ID, g3.partitionIDs())
	}
	_ = a.cg.Close()

	dups := env.duplicates()
	if dups > 0 {
		t.Errorf("%d messages were delivered more than once (committed offsets not honoured)", dups)
	}
	env.deleteTopics(ctx)

	for _, op := range env.report.order {
		if env.report.failed(op) && !strings.HasPrefix(op, "info:") && !strings.HasPrefix(op, "retried:") {
			t.Errorf("operation failed: %s", op)
		}
	}
}

// apiVersions logs the broker's supported ranges for the requests kafka-go
// sends with a hard-coded version from Conn (ConsumerGroup, Reader).
func (e *compatEnv) apiVersions(ctx context.Context) {
	resp, err := e.client.ApiVersions(ctx, &kafka.ApiVersionsRequest{})
	if err == nil && resp.Error != nil {
		err = resp.Error
	}
	e.report.record("Client.ApiVersions", err)
	if err != nil {
		return
	}
	type fixed struct {
		name     string
		versions []int
	}
	// Versions used by kafka-go v0.4.51's Conn-based code paths.
	used := map[int]fixed{
		0:  {"Produce (Conn; Writer negotiates)", nil},
		1:  {"Fetch (Conn: v2|v5|v10 negotiated)", []int{2, 5, 10}},
		2:  {"ListOffsets (Conn.ReadOffsets)", []int{1}},
		3:  {"Metadata (Conn: v1|v6 negotiated)", []int{1, 6}},
		8:  {"OffsetCommit (Generation.CommitOffsets)", []int{2}},
		9:  {"OffsetFetch (ConsumerGroup)", []int{1}},
		10: {"FindCoordinator (ConsumerGroup)", []int{0}},
		11: {"JoinGroup (ConsumerGroup: v1|v2 negotiated)", []int{1, 2}},
		12: {"Heartbeat (Generation)", []int{0}},
		13: {"LeaveGroup (ConsumerGroup)", []int{0}},
		14: {"SyncGroup (ConsumerGroup)", []int{0}},
		18: {"ApiVersions", []int{0}},
		19: {"CreateTopics (Conn)", []int{0, 2}},
	}
	keys := make([]int, 0, len(used))
	for k := range used {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var lines []string
	for _, k := range keys {
		u := used[k]
		line := fmt.Sprintf("  key %2d %-45s broker: not advertised", k, u.name)
		for _, ak := range resp.ApiKeys {
			if ak.ApiKey != k {
				continue
			}
			var in, out []string
			for _, v := range u.versions {
				if v >= ak.MinVersion && v <= ak.MaxVersion {
					in = append(in, "v"+strconv.Itoa(v))
				} else {
					out = append(out, "v"+strconv.Itoa(v))
				}
			}
			line = fmt.Sprintf("  key %2d %-45s broker: v%d-v%d", k, u.name, ak.MinVersion, ak.MaxVersion)
			if len(out) > 0 {
				line += " UNSUPPORTED " + strings.Join(out, ",")
				e.report.note("broker does not support %s %s (supports v%d-v%d)", u.name, strings.Join(out, ","), ak.MinVersion, ak.MaxVersion)
			}
			if len(in) > 0 {
				line += " ok " + strings.Join(in, ",")
			}
		}
		lines = append(lines, line)
	}
	e.t.Logf("ApiVersions vs kafka-go's fixed versions:\n%s", strings.Join(lines, "\n"))
}

func (e *compatEnv) createTopics(ctx context.Context, fallback string) {
	resp, err := e.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: e.topic, NumPartitions: compatPartitions, ReplicationFactor: 1}},
	})
	if err == nil {
		err = resp.Errors[e.topic]
	}
	e.report.record("Client.CreateTopics", err)

	// The older Conn API, against the controller.
	connTopic := e.topic + "-conn"
	connErr := func() error {
		conn, err := kafka.DialContext(ctx, "tcp", e.brokers[0])
		if err != nil {
			return err
		}
		defer conn.Close()
		ctrl, err := conn.Controller()
		if err != nil {
			return fmt.Errorf("Controller: %w", err)
		}
		cc, err := kafka.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
		if err != nil {
			return err
		}
		defer cc.Close()
		return cc.CreateTopics(kafka.TopicConfig{Topic: connTopic, NumPartitions: compatPartitions, ReplicationFactor: 1})
	}()
	e.report.record("Conn.CreateTopics", connErr)
	if connErr == nil {
		e.connRoundTrip(ctx, connTopic)
	}

	if err != nil {
		if connErr == nil {
			e.topic = connTopic
		} else {
			e.topic = fallback
		}
		e.report.note("using topic %q", e.topic)
	}
	if e.topic == "" {
		return
	}
	// Topic metadata can lag creation a little; wait for all partitions.
	deadline := time.Now().Add(20 * time.Second)
	for {
		md, err := e.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{e.topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == compatPartitions {
			e.report.record("Client.Metadata", nil)
			return
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("topic %s not ready: %+v", e.topic, md.Topics)
			}
			e.report.record("Client.Metadata", err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// connRoundTrip uses the low-level Conn, whose versions are negotiated from a
// fixed list: Produce v2|v3|v7, ListOffsets v1, Fetch v2|v5|v10.
func (e *compatEnv) connRoundTrip(ctx context.Context, topic string) {
	dial := func() (*kafka.Conn, error) {
		conn, err := kafka.DialLeader(ctx, "tcp", e.brokers[0], topic, 0)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
		}
		return conn, err
	}
	// Right after CreateTopics the partition may have no leader yet
	// (NOT_LEADER_OR_FOLLOWER). A Conn must not be reused after a produce
	// error: kafka-go stops parsing the response at the partition error and
	// leaves the rest in the read buffer, so redial for every attempt.
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		var conn *kafka.Conn
		if conn, err = dial(); err == nil {
			_, err = conn.WriteMessages(kafka.Message{Value: []byte("conn-0")}, kafka.Message{Value: []byte("conn-1")})
			conn.Close()
		}
		var kerr kafka.Error
		if err == nil || !errors.As(err, &kerr) || !kerr.Temporary() {
			break
		}
		e.report.record("Conn.WriteMessages (Produce)", err) // filed as retried
		time.Sleep(100 * time.Millisecond)
	}
	e.report.record("Conn.WriteMessages (Produce)", err)
	if err != nil {
		return
	}
	conn, err := dial()
	if err != nil {
		e.report.record("Conn.ReadOffsets (ListOffsets v1)", err)
		return
	}
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	if err == nil && last-first != 2 {
		err = fmt.Errorf("offsets [%d,%d), want 2 messages", first, last)
	}
	e.report.record("Conn.ReadOffsets (ListOffsets v1)", err)
	if _, err = conn.Seek(0, kafka.SeekAbsolute); err == nil {
		batch := conn.ReadBatch(1, 1<<20)
		var got []string
		for {
			m, rerr := batch.ReadMessage()
			if rerr != nil {
				break
			}
			got = append(got, string(m.Value))
		}
		err = batch.Close()
		if err == nil && strings.Join(got, ",") != "conn-0,conn-1" {
			err = fmt.Errorf("read back %q", got)
		}
	}
	e.report.record("Conn.ReadBatch (Fetch)", err)
}

func (e *compatEnv) produce(ctx context.Context, prefix string, n int) int {
	w := &kafka.Writer{
		Addr:         kafka.TCP(e.brokers...),
		Topic:        e.topic,
		Balancer:     &kafka.RoundRobin{},
		BatchSize:    500,
		BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
		ErrorLogger:  e.log.logger("writer: "),
	}
	defer w.Close()
	start := time.Now()
	written := 0
	const chunk = 1000
	for i := 0; i < n; i += chunk {
		msgs := make([]kafka.Message, 0, chunk)
		for j := i; j < i+chunk && j < n; j++ {
			msgs = append(msgs, kafka.Message{
				Key:   []byte(fmt.Sprintf("k-%d", j)),
				Value: []byte(fmt.Sprintf("%s-%06d", prefix, j)),
			})
		}
		err := w.WriteMessages(ctx, msgs...)
		e.report.record("Writer.WriteMessages", err)
		if err != nil {
			e.t.Logf("WriteMessages: %v", err)
			return written
		}
		written += len(msgs)
	}
	e.t.Logf("produced %d messages (%s) in %v", written, prefix, time.Since(start).Round(time.Millisecond))
	return written
}

func (e *compatEnv) endOffsets(ctx context.Context) (map[int]int64, error) {
	reqs := make([]kafka.OffsetRequest, 0, compatPartitions)
	for p := 0; p < compatPartitions; p++ {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	resp, err := e.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{e.topic: reqs}})
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for _, po := range resp.Topics[e.topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("partition %d: %w", po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out, nil
}

func (e *compatEnv) listOffsets(ctx context.Context) {
	ends, err := e.endOffsets(ctx)
	e.report.record("Client.ListOffsets", err)
	if err == nil {
		e.t.Logf("end offsets: %v", ends)
	}
}

func (e *compatEnv) startMember(ctx context.Context, name string) *compatMember {
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                e.group,
		Brokers:           e.brokers,
		Topics:            []string{e.topic},
		HeartbeatInterval: 500 * time.Millisecond,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  500 * time.Millisecond,
		Timeout:           10 * time.Second,
		StartOffset:       kafka.FirstOffset,
		Logger:            e.log.logger("cg " + name + ": "),
		ErrorLogger:       e.log.logger("cg " + name + " ERROR: "),
	})
	e.report.record("NewConsumerGroup", err)
	if err != nil {
		e.t.Fatalf("NewConsumerGroup: %v", err)
	}
	m := &compatMember{name: name, cg: cg, gens: make(chan genInfo, 32), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			gen, err := cg.Next(ctx)
			if err != nil {
				if errors.Is(err, kafka.ErrGroupClosed) || ctx.Err() != nil {
					return
				}
				// Join/sync/fetch-offsets errors surface here; the group retries.
				e.report.record("ConsumerGroup.Next (FindCoordinator/JoinGroup/SyncGroup/OffsetFetch)", err)
				continue
			}
			e.report.record("ConsumerGroup.Next (FindCoordinator/JoinGroup/SyncGroup/OffsetFetch)", nil)
			parts := gen.Assignments[e.topic]
			m.gens <- genInfo{member: name, gen: gen, parts: parts}
			for _, pa := range parts {
				pa := pa
				gen.Start(func(gctx context.Context) { e.consumePartition(gctx, name, gen, pa) })
			}
		}
	}()
	return m
}

func (e *compatEnv) consumePartition(ctx context.Context, member string, gen *kafka.Generation, pa kafka.PartitionAssignment) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     e.brokers,
		Topic:       e.topic,
		Partition:   pa.ID,
		MinBytes:    1,
		MaxBytes:    1 << 20,
		MaxWait:     200 * time.Millisecond,
		ErrorLogger: e.log.logger(fmt.Sprintf("reader %s/%d ERROR: ", member, pa.ID)),
	})
	defer r.Close()
	err := r.SetOffset(pa.Offset)
	e.report.record("Reader.SetOffset", err)
	if err != nil {
		// Returning would end the generation; wait for it to end instead.
		<-ctx.Done()
		return
	}
	for {
		msg, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.report.record("Reader.ReadMessage (Fetch)", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		select {
		case e.out <- consumedMsg{member: member, gen: gen.ID, partition: msg.Partition, offset: msg.Offset, value: string(msg.Value)}:
		case <-ctx.Done():
			return
		}
		next := msg.Offset + 1
		if next == msg.HighWaterMark || next%500 == 0 {
			err := gen.CommitOffsets(map[string]map[int]int64{e.topic: {pa.ID: next}})
			e.report.record("Generation.CommitOffsets (OffsetCommit v2)", err)
		}
	}
}

func (e *compatEnv) collect(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-e.out:
			e.mu.Lock()
			e.seen[m.value]++
			e.received = append(e.received, m)
			e.mu.Unlock()
		}
	}
}

func (e *compatEnv) countPrefix(prefix string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for v := range e.seen {
		if strings.HasPrefix(v, prefix+"-") {
			n++
		}
	}
	return n
}

func (e *compatEnv) phaseByMember(prefix string) map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]int{}
	for _, m := range e.received {
		if strings.HasPrefix(m.value, prefix+"-") {
			out[m.member]++
		}
	}
	return out
}

func (e *compatEnv) duplicates() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.seen {
		if c > 1 {
			n++
		}
	}
	return n
}

func (e *compatEnv) waitReceived(ctx context.Context, prefix string, want int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if e.countPrefix(prefix) >= want {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return e.countPrefix(prefix) >= want
}

// waitGen returns the member's next generation whose ID is at least minID.
func (e *compatEnv) waitGen(ctx context.Context, m *compatMember, minID int32, timeout time.Duration) (genInfo, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case g := <-m.gens:
			if g.gen.ID >= minID {
				return g, nil
			}
		case <-m.done:
			return genInfo{}, fmt.Errorf("member %s stopped", m.name)
		case <-timer.C:
			return genInfo{}, fmt.Errorf("member %s: no generation >= %d within %v", m.name, minID, timeout)
		case <-ctx.Done():
			return genInfo{}, ctx.Err()
		}
	}
}

// waitRebalance waits until A and B report the same generation, newer than
// after, with every partition assigned.
func (e *compatEnv) waitRebalance(ctx context.Context, a, b *compatMember, after int32, timeout time.Duration) (genInfo, genInfo, error) {
	deadline := time.Now().Add(timeout)
	var ga, gb genInfo
	for {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return ga, gb, fmt.Errorf("no common generation within %v (A=%v, B=%v)", timeout, genID(ga), genID(gb))
		}
		select {
		case g := <-a.gens:
			ga = g
		case g := <-b.gens:
			gb = g
		case <-time.After(remaining):
			continue
		case <-ctx.Done():
			return ga, gb, ctx.Err()
		}
		if ga.gen != nil && gb.gen != nil && ga.gen.ID == gb.gen.ID && ga.gen.ID > after &&
			len(ga.parts)+len(gb.parts) == compatPartitions {
			return ga, gb, nil
		}
	}
}

func genID(g genInfo) any {
	if g.gen == nil {
		return "none"
	}
	return g.gen.ID
}

func (e *compatEnv) checkSplit(ga, gb genInfo, committed map[int]int64) error {
	owner := map[int]string{}
	for _, g := range []genInfo{ga, gb} {
		if len(g.parts) == 0 {
			return fmt.Errorf("member %s got no partition", g.member)
		}
		for _, p := range g.parts {
			if prev, dup := owner[p.ID]; dup {
				return fmt.Errorf("partition %d assigned to %s and %s", p.ID, prev, g.member)
			}
			owner[p.ID] = g.member
			if want, ok := committed[p.ID]; ok && p.Offset != want {
				return fmt.Errorf("member %s partition %d resumes at %d, committed %d", g.member, p.ID, p.Offset, want)
			}
		}
	}
	if len(owner) != compatPartitions {
		return fmt.Errorf("only %d/%d partitions assigned", len(owner), compatPartitions)
	}
	return nil
}

func (e *compatEnv) fetchCommitted(ctx context.Context) (map[int]kafka.OffsetFetchPartition, error) {
	parts := make([]int, compatPartitions)
	for i := range parts {
		parts[i] = i
	}
	resp, err := e.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{
		GroupID: e.group,
		Topics:  map[string][]int{e.topic: parts},
	})
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	out := map[int]kafka.OffsetFetchPartition{}
	for _, p := range resp.Topics[e.topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("partition %d: %w", p.Partition, p.Error)
		}
		out[p.Partition] = p
	}
	return out, nil
}

// waitCommitted polls Client.OffsetFetch until every partition's committed
// offset equals its end offset, and returns the committed offsets.
func (e *compatEnv) waitCommitted(ctx context.Context, timeout time.Duration) (map[int]int64, error) {
	ends, err := e.endOffsets(ctx)
	if err != nil {
		return nil, fmt.Errorf("ListOffsets: %w", err)
	}
	deadline := time.Now().Add(timeout)
	var last map[int]int64
	for {
		got, err := e.fetchCommitted(ctx)
		if err != nil {
			e.report.record("Client.OffsetFetch", err)
			return nil, err
		}
		last = map[int]int64{}
		done := true
		for p, end := range ends {
			last[p] = got[p].CommittedOffset
			if got[p].CommittedOffset != end {
				done = false
			}
		}
		if done {
			e.report.record("Client.OffsetFetch", nil)
			e.t.Logf("committed offsets: %v", last)
			return last, nil
		}
		if time.Now().After(deadline) {
			return last, fmt.Errorf("committed %v, end offsets %v", last, ends)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *compatEnv) commitWithMetadata(ctx context.Context, g genInfo, committed map[int]int64) {
	const p = 0
	meta := fmt.Sprintf("prism-exporter compat gen=%d at=%d", g.gen.ID, time.Now().UnixMilli())
	offset := committed[p]
	resp, err := e.client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID:      e.group,
		GenerationID: int(g.gen.ID),
		MemberID:     g.gen.MemberID,
		Topics:       map[string][]kafka.OffsetCommit{e.topic: {{Partition: p, Offset: offset, Metadata: meta}}},
	})
	if err == nil {
		for _, pr := range resp.Topics[e.topic] {
			if pr.Error != nil {
				err = fmt.Errorf("partition %d: %w", pr.Partition, pr.Error)
			}
		}
		if len(resp.Topics[e.topic]) == 0 {
			err = fmt.Errorf("empty response: %+v", resp.Topics)
		}
	}
	e.report.record("Client.OffsetCommit with metadata", err)
	if err != nil {
		return
	}
	got, err := e.fetchCommitted(ctx)
	if err == nil {
		switch {
		case got[p].Metadata != meta:
			err = fmt.Errorf("metadata read back %q, want %q", got[p].Metadata, meta)
		case got[p].CommittedOffset != offset:
			err = fmt.Errorf("offset read back %d, want %d", got[p].CommittedOffset, offset)
		}
	}
	e.report.record("Client.OffsetFetch metadata round trip", err)

	// A commit with a stale generation must be refused (the coordinator
	// really checks the generation/member the low-level API sends).
	resp, err = e.client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID:      e.group,
		GenerationID: int(g.gen.ID) + 100,
		MemberID:     g.gen.MemberID,
		Topics:       map[string][]kafka.OffsetCommit{e.topic: {{Partition: p, Offset: offset, Metadata: "stale"}}},
	})
	if err == nil && len(resp.Topics[e.topic]) > 0 {
		err = resp.Topics[e.topic][0].Error
	}
	if err == nil {
		e.report.note("OffsetCommit with a wrong generation id was accepted")
	} else {
		e.report.note("OffsetCommit with a wrong generation id refused as expected: %v", err)
	}
}

func (e *compatEnv) describeGroup(ctx context.Context, wantMembers int) {
	resp, err := e.client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{e.group}})
	if err == nil && len(resp.Groups) == 1 && resp.Groups[0].Error != nil {
		err = resp.Groups[0].Error
	}
	if err == nil && len(resp.Groups) == 1 {
		g := resp.Groups[0]
		e.report.note("DescribeGroups: state=%s members=%d", g.GroupState, len(g.Members))
		if len(g.Members) != wantMembers {
			err = fmt.Errorf("%d members, want %d", len(g.Members), wantMembers)
		}
	}
	e.report.record("info: Client.DescribeGroups", err)
}

func (e *compatEnv) deleteTopics(ctx context.Context) {
	topics := []string{e.topic}
	if !strings.HasSuffix(e.topic, "-conn") && e.topic != compatSeedTopic {
		topics = append(topics, e.topic+"-conn")
	}
	resp, err := e.client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err == nil {
		for _, tp := range topics {
			if terr := resp.Errors[tp]; terr != nil && !errors.Is(terr, kafka.UnknownTopicOrPartition) {
				err = fmt.Errorf("%s: %w", tp, terr)
			}
		}
	}
	e.report.record("info: Client.DeleteTopics", err)
}
