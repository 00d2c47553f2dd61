package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap/zapcore"

	"github.com/futureagi/prism-exporter/processor"
)

// settings is the environment contract (prefix PRISM_). The names are what
// users' deployment scripts rely on: keep them.
type settings struct {
	KafkaBrokers []string `envconfig:"KAFKA_BROKERS" required:"true"`
	KafkaTopic   string   `envconfig:"KAFKA_TOPIC" default:"prism.gateway.events"`
	KafkaGroup   string   `envconfig:"KAFKA_GROUP" default:"prism-exporter"`
	DLQTopic     string   `envconfig:"DLQ_TOPIC" default:"prism.gateway.events.dlq"`
	CreateDLQ    bool     `envconfig:"CREATE_DLQ_TOPIC" default:"true"`

	KafkaSessionTimeout   time.Duration `envconfig:"KAFKA_SESSION_TIMEOUT" default:"10s"`
	KafkaRebalanceTimeout time.Duration `envconfig:"KAFKA_REBALANCE_TIMEOUT" default:"30s"`

	KafkaSASLMechanism string           `envconfig:"KAFKA_SASL_MECHANISM"`
	KafkaSASLUsername  string           `envconfig:"KAFKA_SASL_USERNAME"`
	KafkaSASLPassword  processor.Secret `envconfig:"KAFKA_SASL_PASSWORD"`
	KafkaTLS           bool             `envconfig:"KAFKA_TLS"`
	KafkaTLSCAFile     string           `envconfig:"KAFKA_TLS_CA_FILE"`
	KafkaTLSCertFile   string           `envconfig:"KAFKA_TLS_CERT_FILE"`
	KafkaTLSKeyFile    string           `envconfig:"KAFKA_TLS_KEY_FILE"`
	KafkaTLSInsecure   bool             `envconfig:"KAFKA_TLS_INSECURE_SKIP_VERIFY"`

	TenantsFile   string        `envconfig:"TENANTS_FILE" required:"true"`
	TenantsReload time.Duration `envconfig:"TENANTS_RELOAD_INTERVAL" default:"10s"`

	DatadogURL         string        `envconfig:"DATADOG_URL"`
	DatadogService     string        `envconfig:"DATADOG_SERVICE" default:"prism-gateway"`
	DatadogTimeout     time.Duration `envconfig:"DATADOG_TIMEOUT" default:"30s"`
	DatadogConcurrency int           `envconfig:"DATADOG_CONCURRENCY" default:"2"`

	AllowedLateness time.Duration `envconfig:"ALLOWED_LATENESS" default:"10s"`
	MaxTagSets      int           `envconfig:"MAX_TAG_SETS" default:"1000"`
	MemoryBudgetMiB int64         `envconfig:"MEMORY_BUDGET_MIB" default:"32"`
	CommitInterval  time.Duration `envconfig:"COMMIT_INTERVAL" default:"1s"`
	DrainTimeout    time.Duration `envconfig:"DRAIN_TIMEOUT" default:"10s"`

	HTTPAddr string `envconfig:"HTTP_ADDR" default:":8080"`
	LogLevel string `envconfig:"LOG_LEVEL" default:"info"`
}

// envNames maps processor.Config fields to the variables that set them, so
// that a validation error names what the user has to change.
var envNames = map[string]string{
	"Brokers":          "PRISM_KAFKA_BROKERS",
	"Topic":            "PRISM_KAFKA_TOPIC",
	"Group":            "PRISM_KAFKA_GROUP",
	"DLQTopic":         "PRISM_DLQ_TOPIC",
	"AllowedLateness":  "PRISM_ALLOWED_LATENESS",
	"MaxTagSets":       "PRISM_MAX_TAG_SETS",
	"MemoryBudget":     "PRISM_MEMORY_BUDGET_MIB",
	"DrainTimeout":     "PRISM_DRAIN_TIMEOUT",
	"SessionTimeout":   "PRISM_KAFKA_SESSION_TIMEOUT",
	"RebalanceTimeout": "PRISM_KAFKA_REBALANCE_TIMEOUT",
	"CommitInterval":   "PRISM_COMMIT_INTERVAL",
	"SASL.Mechanism":   "PRISM_KAFKA_SASL_MECHANISM",
	"SASL.Username":    "PRISM_KAFKA_SASL_USERNAME",
	"TLS.CertFile":     "PRISM_KAFKA_TLS_CERT_FILE",
	"TLS":              "PRISM_KAFKA_TLS_*",
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
	if _, err := s.logLevel(); err != nil {
		errs = append(errs, fmt.Errorf("PRISM_LOG_LEVEL: %q is not one of debug, info, warn, error", s.LogLevel))
	}
	if err := func() error { pc := s.processorConfig(); return pc.Validate() }(); err != nil {
		errs = append(errs, renameFields(err))
	}
	return errors.Join(errs...)
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
	}
}
