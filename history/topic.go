package history

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// The history topic has one partition. Its volume is small (one record per
// tenant window delivered: with 1,000 tenants on 1-minute windows, 17
// records a second of a few hundred bytes), every replica reads all of it
// anyway, and one partition keeps each org's entries in the order they were
// written, so that the later of two entries for one window is the one read
// last and kept.
const partition = 0

func newClient(cfg Config) *kafka.Client {
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 15 * time.Second}
	if cfg.Transport != nil {
		// Only a non-nil one: a nil *Transport in the interface would not
		// fall back to the default.
		client.Transport = cfg.Transport
	}
	return client
}

// ensureTopic creates the history topic when it is missing: delete policy
// (entries expire, none replaces another in Kafka: the Log does that),
// retention.ms from cfg, one partition, replication factor min(3, brokers)
// as the other internal topics. Another replica creating it at the same
// moment is not an error.
func ensureTopic(ctx context.Context, client *kafka.Client, cfg Config) error {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{cfg.Topic}})
	if err != nil {
		return fmt.Errorf("reading metadata of %q (PRISM_HISTORY_TOPIC): %w", cfg.Topic, err)
	}
	for _, t := range md.Topics {
		if t.Name == cfg.Topic && t.Error == nil {
			return nil
		}
	}
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: cfg.Topic, NumPartitions: 1, ReplicationFactor: min(3, len(md.Brokers)),
		ConfigEntries: []kafka.ConfigEntry{
			{ConfigName: "cleanup.policy", ConfigValue: "delete"},
			{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(cfg.Retention.Milliseconds(), 10)},
		},
	}}})
	if err == nil {
		err = res.Errors[cfg.Topic]
	}
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("creating history topic %q (PRISM_HISTORY_TOPIC): %w", cfg.Topic, err)
	}
	return nil
}

// bounds are the first offset the topic still holds and the offset its
// next record will get; equal when it holds nothing (retention may have
// deleted everything written, so the end alone does not tell).
func bounds(ctx context.Context, client *kafka.Client, topic string) (first, end int64, err error) {
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.FirstOffsetOf(partition), kafka.LastOffsetOf(partition)},
	}})
	if err != nil {
		return 0, 0, fmt.Errorf("reading the offsets of %q (PRISM_HISTORY_TOPIC): %w", topic, err)
	}
	for _, p := range res.Topics[topic] {
		if p.Partition != partition {
			continue
		}
		if p.Error != nil {
			return 0, 0, fmt.Errorf("reading the offsets of %q (PRISM_HISTORY_TOPIC): %w", topic, p.Error)
		}
		return p.FirstOffset, p.LastOffset, nil
	}
	return 0, 0, fmt.Errorf("topic %q (PRISM_HISTORY_TOPIC) has no partition 0", topic)
}

// retry runs op until it succeeds or ctx ends, waiting between attempts
// with backoff (250 ms doubling to 10 s), and tells warn of each failure:
// Kafka not answering (a broker restarting, a topic another replica is
// creating) is waited out.
func retry(ctx context.Context, op func() error, warn func(err error, wait time.Duration)) error {
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		warn(err, wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}
