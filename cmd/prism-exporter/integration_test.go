package main

import (
	"testing"
	"time"
)

func integrationTenants() []testTenant {
	return []testTenant{
		{ID: "org_3f9a1c", Site: "US1", APIKey: "key-3f9a1c-0000000000000000000001", Interval: 5 * time.Second},
		{ID: "org_77b2e0", Site: "EU1", APIKey: "key-77b2e0-0000000000000000000002", Interval: 10 * time.Second},
		{ID: "org_5a1e5", Site: "AP1", APIKey: "key-5a1e5-00000000000000000000003", Interval: 3 * time.Second},
		{ID: "org_c0ffee", Site: "US5", APIKey: "key-c0ffee-0000000000000000000004", Interval: 5 * time.Second, Paused: true},
		{ID: "org_9d2b7", APIKey: "key-9d2b7-00000000000000000000005", Interval: 5 * time.Second, NoIntegr: true},
	}
}

// TestIntegrationPipeline: 100k records over 6 partitions, malformed ones
// mixed in, through the real exporter against the broker and the local
// Datadog: every good record's log arrives exactly once in its own tenant's
// account, every window's totals are exact, every bad record is
// dead-lettered with its reason, and the committed offsets reach the end.
func TestIntegrationPipeline(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	e := newEnv(t, integrationTenants())
	recs := e.traffic(n, 90*time.Second, 97, 1)
	e.produce(recs)
	e.runInProcess(e.settings())
	e.waitCommitted(90 * time.Second)
	e.checkDeadLetters(recs)
	e.checkDatadog(recs, true)
	if bad := e.dd.InvalidTags("org_3f9a1c"); len(bad) > 0 {
		t.Errorf("the exporter sent tags Datadog would rewrite: %v", bad)
	}
}
