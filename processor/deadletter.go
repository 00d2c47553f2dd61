package processor

import (
	"context"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Headers a dead letter carries besides the original record's own.
const (
	HeaderReason          = "prism-dlq-reason"
	HeaderDetail          = "prism-dlq-detail"
	HeaderSourceTopic     = "prism-dlq-source-topic"
	HeaderSourcePartition = "prism-dlq-source-partition"
	HeaderSourceOffset    = "prism-dlq-source-offset"
	HeaderTenant          = "prism-dlq-tenant"
)

type deadLetter struct {
	msg  kafka.Message
	done func()
}

// DeadLetters writes dead letters in batches from its own goroutine, so a
// slow dead-letter topic never slows the partitions that feed it. A write that
// fails is retried until it succeeds or the exporter stops; an unwritten dead
// letter is never acknowledged, so its source offset is never committed.
type DeadLetters struct {
	w   *kafka.Writer
	in  chan deadLetter
	log *zap.Logger
}

// NewDeadLetters prepares the writer of cfg.DLQTopic. It is shared by the
// processor (undecodable records) and the sink (items Datadog refused);
// Processor.Run runs it.
func NewDeadLetters(cfg Config, log *zap.Logger) (*DeadLetters, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	_, transport, err := cfg.connections()
	if err != nil {
		return nil, err
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Topic:        cfg.DLQTopic,
		Transport:    transport,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		BatchSize:    256,
	}
	return &DeadLetters{w: w, in: make(chan deadLetter, 1024), log: log}, nil
}

// record builds the dead letter of a source record: its original key, value
// and headers, plus headers that say why and where from.
func deadLetterOf(topic string, m *kafka.Message, reason, detail string) kafka.Message {
	h := make([]kafka.Header, 0, len(m.Headers)+5)
	h = append(h, m.Headers...)
	h = append(h,
		kafka.Header{Key: HeaderReason, Value: []byte(reason)},
		kafka.Header{Key: HeaderDetail, Value: []byte(detail)},
		kafka.Header{Key: HeaderSourceTopic, Value: []byte(topic)},
		kafka.Header{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
	)
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: h}
}

// enqueue hands a dead letter over; done runs once it is written.
func (d *DeadLetters) enqueue(ctx context.Context, m kafka.Message, done func()) bool {
	select {
	case d.in <- deadLetter{msg: m, done: done}:
		return true
	case <-ctx.Done():
		return false
	}
}

// DeadLetter writes an item Datadog refused (the sink's DeadLetterer). It
// blocks until written or ctx ends.
func (d *DeadLetters) DeadLetter(ctx context.Context, tenant string, item []byte, reason string) error {
	written := make(chan struct{})
	m := kafka.Message{Value: item, Headers: []kafka.Header{
		{Key: HeaderReason, Value: []byte("datadog_rejected")},
		{Key: HeaderDetail, Value: []byte(reason)},
		{Key: HeaderTenant, Value: []byte(tenant)},
	}}
	if !d.enqueue(ctx, m, func() { close(written) }) {
		return ctx.Err()
	}
	select {
	case <-written:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *DeadLetters) run(ctx context.Context) {
	batch := make([]deadLetter, 0, 256)
	msgs := make([]kafka.Message, 0, 256)
	for {
		select {
		case <-ctx.Done():
			return
		case dl := <-d.in:
			batch = append(batch[:0], dl)
		}
	fill:
		for len(batch) < cap(batch) {
			select {
			case dl := <-d.in:
				batch = append(batch, dl)
			default:
				break fill
			}
		}
		msgs = msgs[:0]
		for _, dl := range batch {
			msgs = append(msgs, dl.msg)
		}
		wait := 100 * time.Millisecond
		for {
			err := d.w.WriteMessages(ctx, msgs...)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			d.log.Warn("dead-letter write failed; retrying", zap.Error(err), zap.Int("records", len(msgs)), zap.Duration("wait", wait))
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
			wait = min(wait*2, 10*time.Second)
		}
		for _, dl := range batch {
			dl.done()
		}
		// Cleared, not only truncated: the next batch reuses the arrays, and
		// until then they would keep the last dead letters' bytes alive.
		clear(batch)
		clear(msgs)
	}
}
