package processor

import (
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/futureagi/prism-exporter/aggregate"
)

// Every share of a tenant lands on one partition of the partials topic, the
// same one whatever the source partition or window; each reset copy lands
// on the partition it names.
func TestTenantBalancer(t *testing.T) {
	parts := []int{0, 1, 2, 3, 4, 5}
	b := tenantBalancer{}
	where := map[string]int{}
	spread := map[int]bool{}
	for source := int64(0); source < 4; source++ {
		for i := range 50 {
			tenant := "org_" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			k, _ := aggregate.PartialKey{Tenant: tenant, Start: int64(source) * 60e9, Length: 60e9, Source: source, Segment: int64(i)}.AppendBinary(nil)
			p := b.Balance(kafka.Message{Key: k}, parts...)
			if prev, ok := where[tenant]; ok && prev != p {
				t.Fatalf("tenant %s on partitions %d and %d", tenant, prev, p)
			}
			where[tenant] = p
			spread[p] = true
		}
	}
	if len(spread) < 4 {
		t.Errorf("50 tenants on %d of 6 partitions", len(spread))
	}
	for to := range 6 {
		k := aggregate.SourceReset{Source: 3, From: 99, To: to}.AppendBinary(nil)
		if p := b.Balance(kafka.Message{Key: k}, parts...); p != to {
			t.Errorf("reset for partition %d placed on %d", to, p)
		}
	}
}
