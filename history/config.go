package history

import (
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Defaults of Config; the environment variables' defaults are the same.
const (
	DefaultTopic     = "prism.exporter.history"
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultMaxPerOrg is a week of one-minute windows.
	DefaultMaxPerOrg = 10_080
	// DefaultMaxEntries bounds the index of every org together: about
	// 160 bytes an entry (see indexEntryBytes), some 40 MiB.
	DefaultMaxEntries = 250_000
	// defaultQueue is how many entries the Writer holds while Kafka is
	// slow before it drops new ones.
	defaultQueue = 10_000
)

// MinRetention: a backfill reaches 18 h back (Datadog's limit for logs), and
// its entries must not be older than the retention the moment they are
// written.
const MinRetention = 24 * time.Hour

// Config configures the Writer and the Log of one replica.
type Config struct {
	// Topic is the history topic (PRISM_HISTORY_TOPIC).
	Topic   string
	Brokers []string // PRISM_KAFKA_BROKERS
	// Dialer and Transport carry the cluster's SASL and TLS settings, as
	// the other internal topics' connections do.
	Dialer    *kafka.Dialer
	Transport *kafka.Transport
	// Retention is the topic's retention.ms when this replica creates it,
	// and the age past which the Log forgets a window
	// (PRISM_HISTORY_RETENTION).
	Retention time.Duration
	// MaxPerOrg and MaxEntries bound the Log's index: entries per org, and
	// in all (PRISM_HISTORY_MAX_PER_ORG, PRISM_HISTORY_MAX_ENTRIES). Past
	// either the oldest windows are forgotten first.
	MaxPerOrg  int
	MaxEntries int
	// QueueSize is how many entries the Writer holds for Kafka; past it
	// Write drops (default 10,000).
	QueueSize int
}

// withDefaults fills the fields left zero, for callers that build a Config
// in code (tests); the environment always sets them.
func (c Config) withDefaults() Config {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.MaxPerOrg == 0 {
		c.MaxPerOrg = DefaultMaxPerOrg
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.QueueSize == 0 {
		c.QueueSize = defaultQueue
	}
	return c
}

// Validate checks c as given (no defaults filled), naming in every error
// the variable to change.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("PRISM_KAFKA_BROKERS: required for the history topic"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("PRISM_HISTORY_TOPIC: must not be empty"))
	}
	if c.Retention < MinRetention {
		errs = append(errs, fmt.Errorf("PRISM_HISTORY_RETENTION: must be at least %s (a backfill's entries reach 18 h back), got %s", MinRetention, c.Retention))
	}
	if c.MaxPerOrg < 1 {
		errs = append(errs, fmt.Errorf("PRISM_HISTORY_MAX_PER_ORG: must be at least 1, got %d", c.MaxPerOrg))
	}
	if c.MaxEntries < 1 {
		errs = append(errs, fmt.Errorf("PRISM_HISTORY_MAX_ENTRIES: must be at least 1, got %d", c.MaxEntries))
	}
	if c.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("history: QueueSize must not be negative, got %d", c.QueueSize))
	}
	return errors.Join(errs...)
}
