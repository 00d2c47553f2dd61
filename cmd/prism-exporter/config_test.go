package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Every configuration error names the variable the user has to change.
func TestConfigErrorsNameTheVariable(t *testing.T) {
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PRISM_") {
			t.Setenv(strings.SplitN(kv, "=", 2)[0], "")
			os.Unsetenv(strings.SplitN(kv, "=", 2)[0])
		}
	}
	base := map[string]string{"PRISM_KAFKA_BROKERS": "127.0.0.1:9092", "PRISM_TENANTS_FILE": "tenants.yaml"}
	cases := []struct {
		set  map[string]string
		want []string
	}{
		{map[string]string{"PRISM_KAFKA_BROKERS": ""}, []string{"PRISM_KAFKA_BROKERS"}},
		{map[string]string{"PRISM_API_TOKENS_FILE": "tokens.yaml"}, []string{"PRISM_SECRETS_KEY", "PRISM_API_TOKENS_FILE"}},
		{map[string]string{"PRISM_SECRETS_KEY": "c2hvcnQ="}, []string{"PRISM_SECRETS_KEY", "32 bytes"}},
		{map[string]string{"PRISM_SECRETS_KEY_FILE": "/no/such/key"}, []string{"PRISM_SECRETS_KEY_FILE"}},
		{map[string]string{"PRISM_API_TLS_CERT_FILE": "cert.pem"}, []string{"PRISM_API_TLS_KEY_FILE"}},
		{map[string]string{"PRISM_ALLOWED_LATENESS": "soon"}, []string{"PRISM_ALLOWED_LATENESS", `"soon"`}},
		{map[string]string{"PRISM_ALLOWED_LATENESS": "2h"}, []string{"PRISM_ALLOWED_LATENESS", "1h"}},
		{map[string]string{"PRISM_KAFKA_BROKERS": "kafka"}, []string{"PRISM_KAFKA_BROKERS", "host:port"}},
		{map[string]string{"PRISM_DLQ_TOPIC": "prism.gateway.events"}, []string{"PRISM_DLQ_TOPIC"}},
		{map[string]string{"PRISM_KAFKA_SASL_MECHANISM": "gssapi"}, []string{"PRISM_KAFKA_SASL_MECHANISM"}},
		{map[string]string{"PRISM_KAFKA_SASL_MECHANISM": "plain"}, []string{"PRISM_KAFKA_SASL_USERNAME"}},
		{map[string]string{"PRISM_LOG_LEVEL": "loud"}, []string{"PRISM_LOG_LEVEL"}},
		{map[string]string{"PRISM_KAFKA_SESSION_TIMEOUT": "1s"}, []string{"PRISM_KAFKA_SESSION_TIMEOUT"}},
		{map[string]string{"PRISM_DRAIN_TIMEOUT": "40s"}, []string{"PRISM_DRAIN_TIMEOUT"}},
		{map[string]string{"PRISM_MEMORY_BUDGET_MIB": "0"}, []string{"PRISM_MEMORY_BUDGET_MIB"}},
		{map[string]string{"PRISM_BACKFILLS_TOPIC": "prism.exporter.status"}, []string{"PRISM_BACKFILLS_TOPIC"}},
		{map[string]string{"PRISM_KAFKA_TLS_CA_FILE": "/no/such/ca.pem"}, []string{"PRISM_KAFKA_TLS", "ca.pem"}},
	}
	for _, c := range cases {
		for k, v := range base {
			t.Setenv(k, v)
		}
		for k, v := range c.set {
			t.Setenv(k, v)
			if v == "" {
				os.Unsetenv(k)
			}
		}
		_, err := loadSettings()
		if err == nil {
			t.Errorf("%v: accepted", c.set)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not mention %s", c.set, err, w)
			}
		}
		for k := range c.set {
			os.Unsetenv(k)
		}
	}
	for k, v := range base {
		t.Setenv(k, v)
	}
	if _, err := loadSettings(); err != nil {
		t.Fatalf("valid configuration refused: %v", err)
	}
}

func TestSecretsPrintRedacted(t *testing.T) {
	t.Setenv("PRISM_KAFKA_BROKERS", "127.0.0.1:9092")
	t.Setenv("PRISM_TENANTS_FILE", "tenants.yaml")
	t.Setenv("PRISM_KAFKA_SASL_MECHANISM", "plain")
	t.Setenv("PRISM_KAFKA_SASL_USERNAME", "svc")
	t.Setenv("PRISM_KAFKA_SASL_PASSWORD", "hunter2-very-secret")
	s, err := loadSettings()
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmtAll(s), fmtAll(s.processorConfig())} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("the SASL password is printed: %s", out)
		}
	}
}

func fmtAll(v any) string {
	return strings.Join([]string{fmt.Sprint(v), fmt.Sprintf("%v %+v %#v", v, v, v)}, " ")
}
