// Package processor consumes the gateway topic as a Kafka consumer group and
// runs one pipeline per assigned partition: decode, dead-letter, route to the
// tenant's segmenter, hand logs to the sink and segment partials to the
// partials topic, and commit at a segment boundary once everything below it
// is accepted. Its second consumer group, the combiner, sums the partials
// into one series per tag set for the sink.
package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/futureagi/prism-exporter/aggregate"
	"github.com/futureagi/prism-exporter/history"
)

// Router says whether a tenant's record is exported, and in windows of which
// length. The sink's tenant registry implements it.
type Router interface {
	Route(tenant string, eventTime time.Time) (length time.Duration, ok bool)
}

// Deliverer takes a batch for delivery and calls done exactly once with
// what became of it.
type Deliverer interface {
	Deliver(b aggregate.Batch, done func(Receipt))
}

// Receipt is a Deliverer's answer for one batch.
type Receipt struct {
	// Accepted is true when the batch needs no more work (Datadog took it,
	// or it was recorded as undeliverable or skipped on purpose), false
	// when it was abandoned and must be replayed.
	Accepted bool
	// Delivery is what became of the batch's logs, and the requests it
	// took (logs or series).
	Delivery aggregate.Delivery
	// Points Datadog accepted, and those not sent: PointsTooOld because
	// the window is older than Datadog takes, PointsDropped otherwise
	// (tenant in error, paused, removed).
	Points, PointsDropped int64
	PointsTooOld          bool
	// Error is Datadog's refusal, short and without keys, when the batch
	// was not delivered.
	Error string
}

// History records one entry per delivered tenant window: the sync
// history.
type History interface {
	Write(e history.Entry)
}

// Horizon tells how far back the integrations reach: the earliest event
// time some integration still exports. bounded is false when one exports
// all history. The sink's tenant registry implements it.
type Horizon interface {
	Earliest() (at time.Time, bounded bool)
}

// Deps are the processor's collaborators.
type Deps struct {
	Router Router
	// Horizon, when set, places partitions that have no committed offset
	// (a new consumer group) at the first offset an integration still
	// needs rather than at the start of the retained log.
	Horizon     Horizon
	Deliverer   Deliverer
	DeadLetters *DeadLetters
	Registerer  prometheus.Registerer
	Logger      *zap.Logger
	Clock       aggregate.Clock // nil: the wall clock
	// History, when set, gets one entry per tenant window the combiner
	// delivers (and a backfill's windows too old for points).
	History History
}

// Processor is one member of the exporter's consumer group.
type Processor struct {
	cfg       Config
	deps      Deps
	dialer    *kafka.Dialer
	client    *kafka.Client
	metrics   *metrics
	budget    *budget
	log       *zap.Logger
	ready     atomic.Bool
	assigned  atomic.Int64
	clock     aggregate.Clock
	consumed  atomic.Int64
	deadCount atomic.Int64
	lagTotal  atomic.Int64

	// partialsOut writes every pipeline's window shares; the combiner,
	// the second stage, sums them.
	partialsOut        *kafka.Writer
	partialsPartitions atomic.Int32 // of the partials topic, read at start
	combiner           *combiner
	backfiller         *Backfiller // nil: this replica runs no backfill
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// New validates cfg and wires the processor. It connects to nothing yet.
func New(cfg Config, deps Deps) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Router == nil || deps.Deliverer == nil || deps.DeadLetters == nil {
		return nil, errors.New("processor: Deps.Router, Deps.Deliverer and Deps.DeadLetters are required")
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	clock := deps.Clock
	if clock == nil {
		clock = wallClock{}
	}
	dialer, transport, err := cfg.connections()
	if err != nil {
		return nil, err
	}
	b := &budget{limit: cfg.MemoryBudget}
	p := &Processor{
		cfg:         cfg,
		deps:        deps,
		dialer:      dialer,
		client:      &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: transport, Timeout: 15 * time.Second},
		metrics:     newMetrics(deps.Registerer, b),
		budget:      b,
		log:         deps.Logger,
		clock:       clock,
		partialsOut: newKafkaPartialsWriter(cfg, transport),
	}
	p.combiner = &combiner{p: p, log: deps.Logger.Named("combiner")}
	return p, nil
}

// Ready reports whether the member has joined the group at least once.
func (p *Processor) Ready() bool { return p.ready.Load() }

// Status is a point-in-time view for the status page and the demo screen.
type Status struct {
	Ready        bool  `json:"ready"`
	Partitions   int64 `json:"partitions_assigned"`
	Consumed     int64 `json:"records_consumed"`
	DeadLettered int64 `json:"records_dead_lettered"`
	Lag          int64 `json:"lag"`
	BudgetUsed   int64 `json:"memory_budget_used_bytes"`
}

// Status reports the member's counters.
func (p *Processor) Status() Status {
	return Status{
		Ready:        p.ready.Load(),
		Partitions:   p.assigned.Load(),
		Consumed:     p.consumed.Load(),
		DeadLettered: p.deadCount.Load(),
		Lag:          p.lagTotal.Load(),
		BudgetUsed:   p.budget.used.Load(),
	}
}

// Run consumes until ctx ends, then stops fetching, lets in-flight deliveries
// finish (bounded by DrainTimeout), commits, and leaves the group. It returns
// nil on a clean stop.
func (p *Processor) Run(ctx context.Context) error {
	// Kafka not answering at start (a broker restarting during a deploy)
	// is an outage to ride out, not a crash: retried with backoff until it
	// answers or ctx ends.
	for wait := 500 * time.Millisecond; ; wait = min(2*wait, 30*time.Second) {
		err := p.ensureTopics(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		var te *topicError
		if errors.As(err, &te) && te.permanent {
			return err
		}
		p.kafkaDown("topic_setup", err, wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	p.metrics.kafkaDown.Set(0)
	// The combiner stops after the first stage has drained, so that it
	// reads and sends the shares the first stage wrote as it stopped.
	combinerCtx, stopCombiner := context.WithCancel(context.WithoutCancel(ctx))
	combinerDone := make(chan struct{})
	go func() { defer close(combinerDone); p.combiner.run(combinerCtx) }()
	defer func() {
		stopCombiner()
		<-combinerDone
		if err := p.partialsOut.Close(); err != nil {
			p.log.Warn("closing the partials writer", zap.Error(err))
		}
	}()
	dlqCtx, stopDLQ := context.WithCancel(context.Background())
	dlqDone := make(chan struct{})
	go func() { defer close(dlqDone); p.deps.DeadLetters.run(dlqCtx) }()
	defer func() { stopDLQ(); <-dlqDone }()
	// Backfills run beside the group, on readers of their own, and stop
	// with it; they write to the partials writer and the dead letters set
	// up above, so they are waited for before those stop.
	backfillsDone := make(chan struct{})
	go func() {
		defer close(backfillsDone)
		if b := p.backfiller; b != nil {
			_ = b.Run(ctx)
		}
	}()
	defer func() { <-backfillsDone }()

	group, err := kafka.NewConsumerGroup(p.groupConfig(p.cfg.Group, p.cfg.Topic, p.log))
	if err != nil {
		return fmt.Errorf("processor: consumer group %q: %w", p.cfg.Group, err)
	}
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				break
			}
			p.kafkaDown("join_group", err, time.Second)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		p.metrics.kafkaDown.Set(0)
		assigned := gen.Assignments[p.cfg.Topic]
		p.metrics.rebalances.Inc()
		p.metrics.assigned.Set(float64(len(assigned)))
		p.assigned.Store(int64(len(assigned)))
		p.ready.Store(true)
		ids := make([]int, 0, len(assigned))
		for _, a := range assigned {
			ids = append(ids, a.ID)
		}
		p.log.Info("joined generation", zap.Int32("generation", gen.ID), zap.String("member", gen.MemberID), zap.Ints("partitions", ids))
		for _, a := range assigned {
			gen.Start(func(gctx context.Context) { p.runPartition(gctx, gen, a) })
		}
	}
	// Closing the group ends the current generation, which waits for every
	// partition to drain and commit, then leaves the group so that the
	// partitions move to the other members at once.
	if err := group.Close(); err != nil {
		p.log.Warn("leaving the consumer group", zap.Error(err))
	}
	p.ready.Store(false)
	p.log.Info("left the consumer group")
	return nil
}

// groupConfig is the consumer group settings both stages share: the
// gateway topic's group and the combiner's group on the partials topic
// join, rebalance and time out alike.
func (p *Processor) groupConfig(id, topic string, log *zap.Logger) kafka.ConsumerGroupConfig {
	return kafka.ConsumerGroupConfig{
		ID:                    id,
		Brokers:               p.cfg.Brokers,
		Dialer:                p.dialer,
		Topics:                []string{topic},
		GroupBalancers:        []kafka.GroupBalancer{kafka.RangeGroupBalancer{}},
		HeartbeatInterval:     p.cfg.SessionTimeout / 5,
		SessionTimeout:        p.cfg.SessionTimeout,
		RebalanceTimeout:      p.cfg.RebalanceTimeout,
		JoinGroupBackoff:      time.Second,
		WatchPartitionChanges: true,
		StartOffset:           kafka.FirstOffset,
		Timeout:               10 * time.Second,
		ErrorLogger:           kafka.LoggerFunc(func(msg string, args ...any) { log.Warn("kafka: " + fmt.Sprintf(msg, args...)) }),
	}
}

// KafkaUnreachable records one failed attempt to reach Kafka, retried after
// wait, and logs it with the brokers it tried, once per backoff step. The
// exporter's other Kafka clients (the integrations store) report here too,
// so that one metric tells an outage.
func (p *Processor) KafkaUnreachable(op string, err error, wait time.Duration) {
	p.kafkaDown(op, err, wait)
}

// KafkaReachable records that Kafka answered again.
func (p *Processor) KafkaReachable() { p.metrics.kafkaDown.Set(0) }

func (p *Processor) kafkaDown(op string, err error, wait time.Duration) {
	p.metrics.kafkaErrors.WithLabelValues(op).Inc()
	p.metrics.kafkaDown.Set(1)
	p.log.Warn("Kafka cannot be reached; retrying", zap.String("op", op), zap.Strings("brokers", p.cfg.Brokers),
		zap.Duration("wait", wait), zap.Error(err))
}

// topicError is a failure to create a topic; permanent when Kafka answered
// and refused (authorization, a bad config), as opposed to not answering.
type topicError struct {
	err       error
	permanent bool
}

func (e *topicError) Error() string { return e.err.Error() }
func (e *topicError) Unwrap() error { return e.err }

// ensureTopics creates the topics the processor writes: the partials
// topic always (the combiner cannot work without it), the dead-letter
// topic when asked to.
func (p *Processor) ensureTopics(ctx context.Context) error {
	if p.cfg.CreateDLQTopic {
		if err := p.ensureTopic(ctx, p.cfg.DLQTopic, "dead-letter topic (PRISM_DLQ_TOPIC)", nil); err != nil {
			return err
		}
	}
	err := p.ensureTopic(ctx, p.cfg.PartialsTopic, "partials topic (PRISM_PARTIALS_TOPIC)", []kafka.ConfigEntry{
		// Compacted: a replay's share overwrites the share it replays.
		// Deleted by age too: nothing older than Datadog's hour plus the
		// longest window is read again.
		{ConfigName: "cleanup.policy", ConfigValue: "compact,delete"},
		{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(p.cfg.PartialsRetention.Milliseconds(), 10)},
		{ConfigName: "segment.ms", ConfigValue: strconv.FormatInt(min(p.cfg.PartialsRetention/6, time.Hour).Milliseconds(), 10)},
	})
	if err != nil {
		return err
	}
	// Each run's resets go to every partition of the partials topic.
	md, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{p.cfg.PartialsTopic}})
	if err != nil {
		return fmt.Errorf("processor: reading metadata of %q: %w", p.cfg.PartialsTopic, err)
	}
	for _, t := range md.Topics {
		if t.Name == p.cfg.PartialsTopic && t.Error == nil && len(t.Partitions) > 0 {
			p.partialsPartitions.Store(int32(len(t.Partitions)))
			return nil
		}
	}
	return fmt.Errorf("processor: the partials topic %q has no partitions yet", p.cfg.PartialsTopic)
}

// ensureTopic creates topic with the source topic's partition count when it
// does not exist; what names it in errors.
func (p *Processor) ensureTopic(ctx context.Context, topic, what string, configs []kafka.ConfigEntry) error {
	md, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{p.cfg.Topic, topic}})
	if err != nil {
		return fmt.Errorf("processor: reading metadata of %q: %w", p.cfg.Topic, err)
	}
	partitions := 1
	for _, t := range md.Topics {
		if t.Name == topic && t.Error == nil {
			return nil
		}
		if t.Name == p.cfg.Topic && t.Error == nil {
			partitions = len(t.Partitions)
		}
	}
	rf := min(3, len(md.Brokers))
	res, err := p.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: rf, ConfigEntries: configs,
	}}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		var ke kafka.Error
		return &topicError{
			err:       fmt.Errorf("processor: creating %s %q: %w", what, topic, err),
			permanent: errors.As(err, &ke) && !ke.Temporary(),
		}
	}
	return nil
}
