package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap/zapcore"

	"github.com/futureagi/prism-exporter/history"
	"github.com/futureagi/prism-exporter/integrations"
	"github.com/futureagi/prism-exporter/processor"
	"github.com/futureagi/prism-exporter/sink"
)

// settings is the environment contract (prefix PRISM_). The names are what
// users' deployment scripts rely on: keep them.
type settings struct {
	KafkaBrokers []string `envconfig:"KAFKA_BROKERS" required:"true" desc:"comma-separated 'host:port' list"`
	KafkaTopic   string   `envconfig:"KAFKA_TOPIC" default:"prism.gateway.events" desc:"the gateway's topic"`
	KafkaGroup   string   `envconfig:"KAFKA_GROUP" default:"prism-exporter" desc:"consumer group id"`
	DLQTopic     string   `envconfig:"DLQ_TOPIC" default:"prism.gateway.events.dlq" desc:"dead-letter topic"`
	CreateDLQ    bool     `envconfig:"CREATE_DLQ_TOPIC" default:"true" desc:"create the dead-letter topic at start-up when missing"`

	KafkaSessionTimeout   time.Duration `envconfig:"KAFKA_SESSION_TIMEOUT" default:"10s" desc:"consumer group session; a member killed without leaving holds its partitions this long (6s to 5m)"`
	KafkaRebalanceTimeout time.Duration `envconfig:"KAFKA_REBALANCE_TIMEOUT" default:"30s" desc:"how long the group waits for members to rejoin; must exceed PRISM_DRAIN_TIMEOUT"`

	KafkaSASLMechanism string           `envconfig:"KAFKA_SASL_MECHANISM" desc:"'plain', 'scram-sha-256' or 'scram-sha-512'; empty: no SASL"`
	KafkaSASLUsername  string           `envconfig:"KAFKA_SASL_USERNAME" desc:"SASL user name"`
	KafkaSASLPassword  processor.Secret `envconfig:"KAFKA_SASL_PASSWORD" desc:"SASL password"`
	KafkaTLS           bool             `envconfig:"KAFKA_TLS" desc:"TLS to the brokers (implied by the CA or certificate variables)"`
	KafkaTLSCAFile     string           `envconfig:"KAFKA_TLS_CA_FILE" desc:"PEM file of the CAs that sign the brokers' certificates; empty: the system's"`
	KafkaTLSCertFile   string           `envconfig:"KAFKA_TLS_CERT_FILE" desc:"PEM client certificate, for mutual TLS (with PRISM_KAFKA_TLS_KEY_FILE)"`
	KafkaTLSKeyFile    string           `envconfig:"KAFKA_TLS_KEY_FILE" desc:"PEM key of the client certificate"`
	KafkaTLSInsecure   bool             `envconfig:"KAFKA_TLS_INSECURE_SKIP_VERIFY" desc:"do not verify the brokers' certificates; for test clusters only"`

	TenantsFile   string        `envconfig:"TENANTS_FILE" desc:"tenant integrations managed as a file (see Tenants file), imported into the integrations topic; reloaded when it changes. Optional"`
	TenantsReload time.Duration `envconfig:"TENANTS_RELOAD_INTERVAL" default:"10s" desc:"how often the tenants file is checked"`

	DatadogURL         string        `envconfig:"DATADOG_URL" desc:"one base URL for every Datadog call instead of the sites' hosts (egress proxy, tests)"`
	DatadogService     string        `envconfig:"DATADOG_SERVICE" default:"prism-gateway" desc:"the logs' 'service'"`
	DatadogTimeout     time.Duration `envconfig:"DATADOG_TIMEOUT" default:"30s" desc:"per Datadog request"`
	DatadogConcurrency int           `envconfig:"DATADOG_CONCURRENCY" default:"2" desc:"requests in flight per tenant"`

	AllowedLateness time.Duration `envconfig:"ALLOWED_LATENESS" default:"10s" desc:"a window's totals wait at most this + 5s after its last change for a partition that fed it and has not read past its end (one gone quiet); later records still correct the window within Datadog's hour"`
	MaxTagSets      int           `envconfig:"MAX_TAG_SETS" default:"1000" desc:"distinct metric tag sets per tenant and window; the rest fold into 'other'"`
	MemoryBudgetMiB int64         `envconfig:"MEMORY_BUDGET_MIB" default:"32" desc:"decoded records held until Datadog accepts them; fetching pauses above it. The Go heap gets a soft limit of this plus 192 MiB unless GOMEMLIMIT is set"`
	CommitInterval  time.Duration `envconfig:"COMMIT_INTERVAL" default:"1s" desc:"how often each partition ends a segment (its logs and window shares go out) and commits; a kill -9 re-sends at most the logs since the last commit"`
	DrainTimeout    time.Duration `envconfig:"DRAIN_TIMEOUT" default:"10s" desc:"how long a stopping or revoked partition waits for in-flight deliveries"`

	// The second stage: window shares summed into one series per tag set.
	PartialsTopic     string        `envconfig:"PARTIALS_TOPIC" default:"prism.exporter.partials" desc:"compacted topic (compact,delete) where each partition writes its share of every tenant window, partitioned by tenant; created at start-up when missing, with the gateway topic's partition count"`
	PartialsRetention time.Duration `envconfig:"PARTIALS_RETENTION" default:"3h" desc:"retention.ms of a new partials topic; at least 1h30m (Datadog takes points up to 1 h old, plus the longest window)"`
	CombinerGroup     string        `envconfig:"COMBINER_GROUP" desc:"consumer group of the second stage, which reads the partials topic; empty: PRISM_KAFKA_GROUP + '.combiner'"`
	BackfillRate      int           `envconfig:"BACKFILL_RATE" default:"20000" desc:"records per second one backfill job reads from the gateway topic, over all its readers: the cap that keeps it from slowing live traffic"`
	BackfillReaders   int           `envconfig:"BACKFILL_READERS" default:"2" desc:"partitions one backfill job reads at once"`
	CombinerSettle    time.Duration `envconfig:"COMBINER_SETTLE" default:"250ms" desc:"a window's totals go out once every partition that sent a share of it has read past its end and no share changed them for this long; again whenever one does"`
	CombinerMemoryMiB int64         `envconfig:"COMBINER_MEMORY_MIB" default:"128" desc:"bytes of window totals the second stage holds, an hour of windows (see Capacity in docs/operations.md); past it the windows that expire first are dropped, counted"`

	// The integrations store and its API (docs/api.md).
	IntegrationsTopic string      `envconfig:"INTEGRATIONS_TOPIC" default:"prism.exporter.integrations" desc:"compacted topic that holds every integration; created at start-up when missing"`
	StatusTopic       string      `envconfig:"STATUS_TOPIC" default:"prism.exporter.status" desc:"compacted topic where each replica publishes its integrations' delivery status, summed by every replica for the API; created at start-up when missing"`
	BackfillsTopic    string      `envconfig:"BACKFILLS_TOPIC" default:"prism.exporter.backfills" desc:"compacted topic that holds each integration's backfill job, its owner and progress; created at start-up when missing"`
	SecretsKey        sink.Secret `envconfig:"SECRETS_KEY" desc:"base64 of a 32-byte AES-256 key that seals the Datadog keys of integrations made through the API; a comma-separated list rotates keys (the first seals, all open). Required with PRISM_API_TOKENS_FILE"`
	SecretsKeyFile    string      `envconfig:"SECRETS_KEY_FILE" desc:"file holding PRISM_SECRETS_KEY's value (one key a line), instead of the variable"`
	APITokensFile     string      `envconfig:"API_TOKENS_FILE" desc:"tokens file, YAML or JSON, that turns on the integrations API and the console (see Integrations API); reloaded when it changes. Empty: the API is off"`
	APIAddr           string      `envconfig:"API_ADDR" desc:"listen address of the API and console when they should not share PRISM_HTTP_ADDR"`
	APITLSCertFile    string      `envconfig:"API_TLS_CERT_FILE" desc:"PEM certificate: the listener that serves the API speaks TLS (with PRISM_API_TLS_KEY_FILE)"`
	APITLSKeyFile     string      `envconfig:"API_TLS_KEY_FILE" desc:"PEM key of PRISM_API_TLS_CERT_FILE"`

	// The sync history (docs/api.md, Sync history).
	HistoryTopic      string        `envconfig:"HISTORY_TOPIC" default:"prism.exporter.history" desc:"topic (delete policy, 1 partition) where every replica writes one entry per tenant window it delivered, read by every replica for the API's sync history; created at start-up when missing"`
	HistoryRetention  time.Duration `envconfig:"HISTORY_RETENTION" default:"168h" desc:"retention.ms of a new history topic, and the age past which a replica forgets a window; at least 24h (a backfill reaches 18 h back)"`
	HistoryMaxPerOrg  int           `envconfig:"HISTORY_MAX_PER_ORG" default:"10080" desc:"history entries each replica holds in memory per org (default: a week of 1-minute windows); past it the org's oldest windows are forgotten"`
	HistoryMaxEntries int           `envconfig:"HISTORY_MAX_ENTRIES" default:"250000" desc:"history entries each replica holds in memory in all, about 160 bytes each; past it the oldest windows of every org are forgotten first"`

	HTTPAddr string `envconfig:"HTTP_ADDR" default:":8080" desc:"listen address of /metrics, /healthz, /readyz and /status"`
	LogLevel string `envconfig:"LOG_LEVEL" default:"info" desc:"'debug', 'info', 'warn' or 'error'"`
}

// envNames maps processor.Config fields to the variables that set them, so
// that a validation error names what the user has to change.
var envNames = map[string]string{
	"Brokers":           "PRISM_KAFKA_BROKERS",
	"Topic":             "PRISM_KAFKA_TOPIC",
	"Group":             "PRISM_KAFKA_GROUP",
	"DLQTopic":          "PRISM_DLQ_TOPIC",
	"AllowedLateness":   "PRISM_ALLOWED_LATENESS",
	"MaxTagSets":        "PRISM_MAX_TAG_SETS",
	"MemoryBudget":      "PRISM_MEMORY_BUDGET_MIB",
	"DrainTimeout":      "PRISM_DRAIN_TIMEOUT",
	"PartialsTopic":     "PRISM_PARTIALS_TOPIC",
	"PartialsRetention": "PRISM_PARTIALS_RETENTION",
	"CombinerGroup":     "PRISM_COMBINER_GROUP",
	"CombinerSettle":    "PRISM_COMBINER_SETTLE",
	"BackfillRate":      "PRISM_BACKFILL_RATE",
	"BackfillReaders":   "PRISM_BACKFILL_READERS",
	"CombinerMemory":    "PRISM_COMBINER_MEMORY_MIB",
	"SessionTimeout":    "PRISM_KAFKA_SESSION_TIMEOUT",
	"RebalanceTimeout":  "PRISM_KAFKA_REBALANCE_TIMEOUT",
	"CommitInterval":    "PRISM_COMMIT_INTERVAL",
	"SASL.Mechanism":    "PRISM_KAFKA_SASL_MECHANISM",
	"SASL.Username":     "PRISM_KAFKA_SASL_USERNAME",
	"TLS.CertFile":      "PRISM_KAFKA_TLS_CERT_FILE",
	"TLS":               "PRISM_KAFKA_TLS_*",
}

// loadSettings reads the process environment and checks it, naming the
// variable in every error.
func loadSettings() (settings, error) {
	var s settings
	if err := envconfig.Process("PRISM", &s); err != nil {
		return s, envError(err)
	}
	return s, s.check()
}

// envError rewrites envconfig's messages to lead with the variable's name.
func envError(err error) error {
	var pe *envconfig.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: cannot use %q as %s: %v", pe.KeyName, pe.Value, pe.TypeName, pe.Err)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "required key ") {
		key := strings.TrimSuffix(strings.TrimPrefix(msg, "required key "), " missing value")
		if !strings.HasPrefix(key, "PRISM_") {
			key = "PRISM_" + key
		}
		return fmt.Errorf("%s: required, but not set", key)
	}
	return err
}

func (s settings) check() error {
	var errs []error
	if s.TenantsReload < time.Second {
		errs = append(errs, fmt.Errorf("PRISM_TENANTS_RELOAD_INTERVAL: must be at least 1s, got %s", s.TenantsReload))
	}
	if s.MemoryBudgetMiB < 1 {
		errs = append(errs, fmt.Errorf("PRISM_MEMORY_BUDGET_MIB: must be at least 1, got %d", s.MemoryBudgetMiB))
	}
	if s.DatadogTimeout <= 0 {
		errs = append(errs, fmt.Errorf("PRISM_DATADOG_TIMEOUT: must be positive, got %s", s.DatadogTimeout))
	}
	if s.IntegrationsTopic == "" {
		errs = append(errs, errors.New("PRISM_INTEGRATIONS_TOPIC: must not be empty"))
	}
	if s.StatusTopic == "" || s.StatusTopic == s.IntegrationsTopic {
		errs = append(errs, errors.New("PRISM_STATUS_TOPIC: must be set, and differ from PRISM_INTEGRATIONS_TOPIC"))
	}
	if s.BackfillsTopic == "" {
		errs = append(errs, errors.New("PRISM_BACKFILLS_TOPIC: must not be empty"))
	}
	for _, other := range []string{s.KafkaTopic, s.DLQTopic, s.PartialsTopic, s.IntegrationsTopic, s.StatusTopic, s.HistoryTopic} {
		if s.BackfillsTopic == other {
			errs = append(errs, fmt.Errorf("PRISM_BACKFILLS_TOPIC: %q is another topic of the exporter's; give the backfill jobs their own", other))
			break
		}
	}
	if err := s.historyConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, other := range []string{s.KafkaTopic, s.DLQTopic, s.PartialsTopic, s.IntegrationsTopic, s.StatusTopic} {
		if s.HistoryTopic != "" && s.HistoryTopic == other {
			errs = append(errs, fmt.Errorf("PRISM_HISTORY_TOPIC: %q is another topic of the exporter's; give the history its own", other))
			break
		}
	}
	if s.SecretsKey != "" && s.SecretsKeyFile != "" {
		errs = append(errs, errors.New("PRISM_SECRETS_KEY and PRISM_SECRETS_KEY_FILE: set one, not both"))
	}
	if _, err := s.keyring(); err != nil {
		errs = append(errs, err)
	}
	if (s.APITLSCertFile == "") != (s.APITLSKeyFile == "") {
		errs = append(errs, errors.New("PRISM_API_TLS_CERT_FILE and PRISM_API_TLS_KEY_FILE: set both, or neither"))
	}
	if s.APITokensFile == "" && (s.APIAddr != "" || s.APITLSCertFile != "") {
		errs = append(errs, errors.New("PRISM_API_ADDR, PRISM_API_TLS_*: the API is off without PRISM_API_TOKENS_FILE"))
	}
	if _, err := s.logLevel(); err != nil {
		errs = append(errs, fmt.Errorf("PRISM_LOG_LEVEL: %q is not one of debug, info, warn, error", s.LogLevel))
	}
	if err := func() error { pc := s.processorConfig(); return pc.Validate() }(); err != nil {
		errs = append(errs, renameFields(err))
	}
	return errors.Join(errs...)
}

// keyring reads the secrets key from PRISM_SECRETS_KEY or its file. It is
// required when the API is on: integrations made through it carry keys that
// are only ever written sealed. It is nil when neither is set.
func (s settings) keyring() (*integrations.Keyring, error) {
	text, name := string(s.SecretsKey), "PRISM_SECRETS_KEY"
	if s.SecretsKeyFile != "" {
		name = "PRISM_SECRETS_KEY_FILE"
		data, err := os.ReadFile(s.SecretsKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		text = string(data)
	}
	if strings.TrimSpace(text) == "" {
		if s.APITokensFile != "" {
			return nil, errors.New("PRISM_SECRETS_KEY: required when PRISM_API_TOKENS_FILE turns the API on: base64 of 32 random bytes " +
				"(openssl rand -base64 32), or PRISM_SECRETS_KEY_FILE naming a file that holds it")
		}
		return nil, nil
	}
	kr, err := integrations.ParseKeyring(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return kr, nil
}

func renameFields(err error) error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var fe *processor.FieldError
		if errors.As(e, &fe) {
			if env, ok := envNames[fe.Field]; ok {
				out = append(out, fmt.Errorf("%s: %s", env, fe.Msg))
				return
			}
		}
		out = append(out, e)
	}
	walk(err)
	return errors.Join(out...)
}

// historyConfig is the sync history's configuration, without the
// connections (serve adds the processor's dialer and transport).
func (s settings) historyConfig() history.Config {
	return history.Config{
		Brokers:    s.KafkaBrokers,
		Topic:      s.HistoryTopic,
		Retention:  s.HistoryRetention,
		MaxPerOrg:  s.HistoryMaxPerOrg,
		MaxEntries: s.HistoryMaxEntries,
	}
}

func (s settings) logLevel() (zapcore.Level, error) {
	return zapcore.ParseLevel(s.LogLevel)
}

func (s settings) processorConfig() processor.Config {
	return processor.Config{
		Brokers:  s.KafkaBrokers,
		Topic:    s.KafkaTopic,
		Group:    s.KafkaGroup,
		DLQTopic: s.DLQTopic,
		SASL: processor.SASL{
			Mechanism: s.KafkaSASLMechanism,
			Username:  s.KafkaSASLUsername,
			Password:  s.KafkaSASLPassword,
		},
		TLS: processor.TLS{
			Enabled:            s.KafkaTLS || s.KafkaTLSCAFile != "" || s.KafkaTLSCertFile != "",
			CAFile:             s.KafkaTLSCAFile,
			CertFile:           s.KafkaTLSCertFile,
			KeyFile:            s.KafkaTLSKeyFile,
			InsecureSkipVerify: s.KafkaTLSInsecure,
		},
		AllowedLateness:  s.AllowedLateness,
		MaxTagSets:       s.MaxTagSets,
		MemoryBudget:     s.MemoryBudgetMiB << 20,
		CommitInterval:   s.CommitInterval,
		DrainTimeout:     s.DrainTimeout,
		SessionTimeout:   s.KafkaSessionTimeout,
		RebalanceTimeout: s.KafkaRebalanceTimeout,
		CreateDLQTopic:   s.CreateDLQ,

		PartialsTopic:     s.PartialsTopic,
		PartialsRetention: s.PartialsRetention,
		CombinerGroup:     s.CombinerGroup,
		CombinerSettle:    s.CombinerSettle,
		BackfillRate:      s.BackfillRate,
		BackfillReaders:   s.BackfillReaders,
		CombinerMemory:    s.CombinerMemoryMiB << 20,
	}
}
