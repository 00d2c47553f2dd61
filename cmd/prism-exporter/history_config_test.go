package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// The sync history's variables: their defaults make a valid history
// configuration, and a bad value names the variable.
func TestHistorySettings(t *testing.T) {
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PRISM_") {
			t.Setenv(strings.SplitN(kv, "=", 2)[0], "")
			os.Unsetenv(strings.SplitN(kv, "=", 2)[0])
		}
	}
	t.Setenv("PRISM_KAFKA_BROKERS", "127.0.0.1:9092")
	t.Setenv("PRISM_TENANTS_FILE", "tenants.yaml")
	s, err := loadSettings()
	if err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	hc := s.historyConfig()
	if hc.Topic != "prism.exporter.history" || hc.Retention != 168*time.Hour || hc.MaxPerOrg != 10080 || hc.MaxEntries != 250000 ||
		len(hc.Brokers) != 1 {
		t.Errorf("history config from the defaults: %+v", hc)
	}
	for _, c := range []struct{ name, value, want string }{
		{"PRISM_HISTORY_RETENTION", "1h", "PRISM_HISTORY_RETENTION"},
		{"PRISM_HISTORY_RETENTION", "a week", "PRISM_HISTORY_RETENTION"},
		{"PRISM_HISTORY_MAX_PER_ORG", "0", "PRISM_HISTORY_MAX_PER_ORG"},
		{"PRISM_HISTORY_MAX_ENTRIES", "-5", "PRISM_HISTORY_MAX_ENTRIES"},
		{"PRISM_HISTORY_TOPIC", "prism.exporter.status", "PRISM_HISTORY_TOPIC"},
		{"PRISM_HISTORY_TOPIC", "prism.gateway.events", "PRISM_HISTORY_TOPIC"},
	} {
		t.Setenv(c.name, c.value)
		_, err := loadSettings()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%s: error %v does not name %s", c.name, c.value, err, c.want)
		}
		os.Unsetenv(c.name)
	}
}
