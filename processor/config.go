package processor

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Secret is a credential. It prints as <secret> so that a logged or dumped
// configuration never shows it.
type Secret string

func (Secret) String() string               { return "<secret>" }
func (Secret) GoString() string             { return "<secret>" }
func (Secret) MarshalText() ([]byte, error) { return []byte("<secret>"), nil }
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }
func (s Secret) reveal() string             { return string(s) }

// SASL configures broker authentication. Mechanism is one of "", "plain",
// "scram-sha-256", "scram-sha-512".
type SASL struct {
	Mechanism string
	Username  string
	Password  Secret
}

// TLS configures encrypted broker connections.
type TLS struct {
	Enabled            bool
	CAFile             string
	CertFile           string
	KeyFile            string
	InsecureSkipVerify bool
}

// Config is everything the processor needs. cmd/ fills it from the
// environment; Validate is the one place that checks it.
type Config struct {
	Brokers  []string
	Topic    string
	Group    string
	DLQTopic string
	SASL     SASL
	TLS      TLS

	// AllowedLateness bounds how long after a window's end the combiner
	// waits for more shares before its first write when the window does not
	// settle sooner (CombinerSettle); a record that comes later still
	// corrects its window while Datadog takes the point. It also widens
	// where a new group starts reading (before the earliest cut-off).
	AllowedLateness time.Duration
	// MaxTagSets caps distinct metric tag sets per tenant and window.
	MaxTagSets int
	// MemoryBudget bounds the bytes of decoded records held between fetch and
	// Datadog's acceptance, summed over all partitions. Fetching pauses above
	// it.
	MemoryBudget int64
	// CommitInterval is how often each partition ends a segment (its logs
	// and partials go out) and commits what is committable.
	CommitInterval time.Duration
	// IdleAfter is how long a caught-up partition must see no record before
	// the wall clock may close its windows.
	IdleAfter time.Duration
	// DrainTimeout bounds how long a revoked or stopping partition waits for
	// in-flight deliveries before its last commit.
	DrainTimeout time.Duration
	// SessionTimeout and RebalanceTimeout are the consumer group's. A member
	// killed without leaving holds its partitions until SessionTimeout passes,
	// so it bounds the stall a crash causes.
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// CreateDLQTopic creates the dead-letter topic, and the partials topic,
	// at start-up when missing.
	CreateDLQTopic bool

	// PartialsTopic carries each partition's share of every tenant window
	// (aggregate.Partial) to the combiner: compacted, so a replay overwrites
	// its own earlier share, and deleted by age past PartialsRetention.
	PartialsTopic     string
	PartialsRetention time.Duration
	// CombinerGroup is the consumer group of the second stage, which sums
	// the partials into one series per tag set.
	CombinerGroup string
	// BackfillRate caps the records per second one backfill job reads,
	// over all its readers: a backfill shares the brokers, the CPU and the
	// tenant's Datadog limits with live traffic.
	BackfillRate int
	// BackfillReaders is how many partitions one backfill job reads at
	// once.
	BackfillReaders int

	// CombinerSettle: a closed window's totals go out once no share changed
	// them for this long (and again if one comes later).
	CombinerSettle time.Duration
	// CombinerMemory bounds the bytes of partials the combiner holds, summed
	// over its partitions' shares of it. Past it, the windows that expire
	// first are dropped.
	CombinerMemory int64
}

// FieldError is a configuration problem with one field of Config. Callers that
// fill Config from elsewhere (environment variables) map Field to their own
// names with errors.As.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func (c *Config) setDefaults() {
	if c.Topic == "" {
		c.Topic = "prism.gateway.events"
	}
	if c.Group == "" {
		c.Group = "prism-exporter"
	}
	if c.DLQTopic == "" {
		c.DLQTopic = "prism.gateway.events.dlq"
	}
	if c.MaxTagSets == 0 {
		c.MaxTagSets = 1000
	}
	if c.PartialsTopic == "" {
		c.PartialsTopic = "prism.exporter.partials"
	}
	if c.PartialsRetention == 0 {
		c.PartialsRetention = 3 * time.Hour
	}
	if c.CombinerGroup == "" {
		c.CombinerGroup = c.Group + ".combiner"
	}
	if c.BackfillRate == 0 {
		c.BackfillRate = 20000
	}
	if c.BackfillReaders == 0 {
		c.BackfillReaders = 2
	}
	if c.CombinerSettle == 0 {
		c.CombinerSettle = 250 * time.Millisecond
	}
	if c.CombinerMemory == 0 {
		c.CombinerMemory = 128 << 20
	}
	if c.MemoryBudget == 0 {
		c.MemoryBudget = 32 << 20
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
	}
	if c.IdleAfter == 0 {
		c.IdleAfter = 500 * time.Millisecond
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = 30 * time.Second
	}
}

// Validate fills defaults and reports every problem, each naming the field and
// what to do about it.
func (c *Config) Validate() error {
	c.setDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if len(c.Brokers) == 0 {
		bad("Brokers", "at least one broker address (host:port) is required")
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			bad("Brokers", "%q has no port; write host:port", b)
		}
	}
	if c.Topic == c.DLQTopic {
		bad("DLQTopic", "must differ from Topic %q, or dead letters would be consumed again", c.Topic)
	}
	if c.PartialsTopic == c.Topic || c.PartialsTopic == c.DLQTopic {
		bad("PartialsTopic", "must differ from Topic %q and DLQTopic %q", c.Topic, c.DLQTopic)
	}
	if c.CombinerGroup == c.Group {
		bad("CombinerGroup", "must differ from Group %q: the two stages are separate consumer groups", c.Group)
	}
	// The combiner rebuilds an hour of windows from the topic after a
	// restart; the margin covers the longest sync interval.
	if c.PartialsRetention < 90*time.Minute {
		bad("PartialsRetention", "must be at least 1h30m (Datadog takes points up to 1h old, plus the longest window), got %s", c.PartialsRetention)
	}
	if c.BackfillRate < 100 {
		bad("BackfillRate", "must be at least 100 records per second, got %d", c.BackfillRate)
	}
	if c.BackfillReaders < 1 || c.BackfillReaders > 64 {
		bad("BackfillReaders", "must be between 1 and 64, got %d", c.BackfillReaders)
	}
	if c.CombinerSettle < 0 || c.CombinerSettle > time.Minute {
		bad("CombinerSettle", "must be between 0 and 1m, got %s", c.CombinerSettle)
	}
	if c.CombinerMemory < 1<<20 {
		bad("CombinerMemory", "must be at least 1 MiB, got %d bytes", c.CombinerMemory)
	}
	if c.AllowedLateness < 0 || c.AllowedLateness > time.Hour {
		bad("AllowedLateness", "must be between 0 and 1h, got %s", c.AllowedLateness)
	}
	if c.MaxTagSets < 1 {
		bad("MaxTagSets", "must be at least 1, got %d", c.MaxTagSets)
	}
	if c.MemoryBudget < 1<<20 {
		bad("MemoryBudget", "must be at least 1 MiB, got %d bytes", c.MemoryBudget)
	}
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 5*time.Minute {
		bad("SessionTimeout", "must be between 6s and 5m (the brokers' default group.min/max.session.timeout.ms), got %s", c.SessionTimeout)
	}
	if c.DrainTimeout >= c.RebalanceTimeout {
		bad("DrainTimeout", "must be shorter than RebalanceTimeout (%s), or a rebalance would evict this member", c.RebalanceTimeout)
	}
	switch strings.ToLower(c.SASL.Mechanism) {
	case "", "plain", "scram-sha-256", "scram-sha-512":
	default:
		bad("SASL.Mechanism", "%q is not one of plain, scram-sha-256, scram-sha-512", c.SASL.Mechanism)
	}
	if c.SASL.Mechanism != "" && c.SASL.Username == "" {
		bad("SASL.Username", "is required with SASL mechanism %s", c.SASL.Mechanism)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("TLS.CertFile", "a client certificate needs both CertFile and KeyFile")
	}
	if len(errs) == 0 {
		if _, err := c.tlsConfig(); err != nil {
			bad("TLS", "%v", err)
		}
	}
	return errors.Join(errs...)
}

func (c *Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS.Enabled {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLS.InsecureSkipVerify} //nolint:gosec // opt-in for test clusters
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", c.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (c *Config) saslMechanism() (sasl.Mechanism, error) {
	switch strings.ToLower(c.SASL.Mechanism) {
	case "":
		return nil, nil
	case "plain":
		return plain.Mechanism{Username: c.SASL.Username, Password: c.SASL.Password.reveal()}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, c.SASL.Username, c.SASL.Password.reveal())
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, c.SASL.Username, c.SASL.Password.reveal())
	}
	return nil, fmt.Errorf("SASL.Mechanism: unknown %q", c.SASL.Mechanism)
}

// connections builds the dialer (consumer group, readers) and transport
// (client, writer) that share the configured authentication and encryption.
func (c *Config) connections() (*kafka.Dialer, *kafka.Transport, error) {
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	mech, err := c.saslMechanism()
	if err != nil {
		return nil, nil, err
	}
	d := &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: tc, SASLMechanism: mech, ClientID: "prism-exporter"}
	t := &kafka.Transport{DialTimeout: 10 * time.Second, TLS: tc, SASL: mech, ClientID: "prism-exporter", MetadataTTL: 30 * time.Second}
	return d, t, nil
}

// Connections builds the dialer (readers) and transport (clients, writers)
// that carry the cluster's authentication and encryption, for the other
// consumers and producers of the exporter's own topics.
func (c Config) Connections() (*kafka.Dialer, *kafka.Transport, error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	return c.connections()
}
