package gen

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/futureagi/prism-exporter/schemas"
)

var start = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func TestGoodRecordsDecode(t *testing.T) {
	g := New(Config{Seed: 1})
	var d schemas.Decoder
	ids := make(map[string]bool)
	tenants := make(map[string]bool)
	for _, org := range sampleTenants() {
		tenants[org] = true
	}
	for i := range 20000 {
		ts := start.Add(time.Duration(i) * 1234567 * time.Nanosecond)
		key, value, malformed := g.Next(ts)
		if key != nil || malformed {
			t.Fatalf("record %d: key %q, malformed %v", i, key, malformed)
		}
		var ev schemas.Event
		if err := d.Decode(value, &ev); err != nil {
			t.Fatalf("record %d: %v\n%s", i, err, value)
		}
		if !ev.Timestamp.Equal(ts.Truncate(time.Microsecond)) {
			t.Fatalf("record %d: timestamp %v, want %v", i, ev.Timestamp, ts)
		}
		if !tenants[ev.OrgID] {
			t.Fatalf("record %d: unknown tenant %q", i, ev.OrgID)
		}
		if ids[ev.RequestID] {
			t.Fatalf("record %d: request id %q repeated", i, ev.RequestID)
		}
		ids[ev.RequestID] = true
		if ev.TotalTokens != ev.PromptTokens+ev.CompletionTokens || ev.IsError != (ev.StatusCode >= 400) {
			t.Fatalf("record %d: inconsistent %+v", i, ev)
		}
	}
}

func TestMalformedRecordsFail(t *testing.T) {
	const every = 3
	g := New(Config{Seed: 2, MalformedEvery: every})
	reasons := make(map[schemas.Reason]int)
	bad := 0
	for i := 1; i <= every*int(lastFault)*3; i++ {
		_, value, malformed := g.Next(start)
		if malformed != (i%every == 0) {
			t.Fatalf("record %d: malformed=%v", i, malformed)
		}
		var ev schemas.Event
		err := schemas.Decode(value, &ev)
		if !malformed {
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			continue
		}
		bad++
		var de *schemas.DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("record %d: malformed record decoded (err %v):\n%s", i, err, value)
		}
		reasons[de.Reason]++
	}
	if bad != int(lastFault)*3 {
		t.Errorf("%d malformed records", bad)
	}
	for _, r := range []schemas.Reason{schemas.ReasonInvalidJSON, schemas.ReasonMissingField,
		schemas.ReasonWrongType, schemas.ReasonInvalidValue} {
		if reasons[r] == 0 {
			t.Errorf("no malformed record fails with %s: %v", r, reasons)
		}
	}
}

func TestDeterministic(t *testing.T) {
	run := func(seed int64) []byte {
		g := New(Config{Seed: seed, MalformedEvery: 7, Tenants: []string{"a", "b", "c"}})
		var all []byte
		for i := range 500 {
			all, _ = g.AppendNext(all, start.Add(time.Duration(i)*time.Millisecond))
			all = append(all, '\n')
		}
		return all
	}
	if !bytes.Equal(run(42), run(42)) {
		t.Error("same seed, different records")
	}
	if bytes.Equal(run(42), run(43)) {
		t.Error("different seeds, same records")
	}
}

// The mix must stay close to the samples', or benchmarks and the demo stop
// telling the truth about real traffic.
func TestDistributions(t *testing.T) {
	const n = 50000
	g := New(Config{Seed: 3})
	var d schemas.Decoder
	var ok, cached, fallback, stream, guardrail, routed int
	perTenant := make(map[string]int)
	perModel := make(map[string]int)
	for range n {
		_, value, _ := g.Next(start)
		var ev schemas.Event
		if err := d.Decode(value, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.StatusCode == 200 {
			ok++
		}
		if ev.CacheHit {
			cached++
			if ev.Cost != 0 || ev.LatencyMS > maxCached {
				t.Fatalf("cache hit billed or slow: %+v", ev)
			}
		}
		if ev.FallbackUsed {
			fallback++
		}
		if ev.IsStream {
			stream++
		}
		if ev.GuardrailTriggered {
			guardrail++
			if ev.StatusCode != 400 || ev.ErrorCode != "guardrail_blocked" {
				t.Fatalf("guardrail without a block: %+v", ev)
			}
		}
		if ev.RoutingStrategy != "" {
			routed++
		}
		perTenant[ev.OrgID]++
		perModel[ev.Model]++
	}
	near := func(name string, got int, want float64) {
		if share := float64(got) / n; share < want*0.85 || share > want*1.15 {
			t.Errorf("%s: %.3f of records, want about %.3f", name, share, want)
		}
	}
	near("status 200", ok, 0.902)
	near("cache hits", cached, 0.131)
	near("fallbacks", fallback, 0.043)
	near("streams", stream, 0.435)
	near("guardrail blocks", guardrail, 0.022)
	near("routed", routed, 0.8)
	if len(perModel) != 5 {
		t.Errorf("models: %v", perModel)
	}
	tenants := sampleTenants()
	for i := 1; i < len(tenants); i++ {
		if perTenant[tenants[i]] >= perTenant[tenants[i-1]] {
			t.Errorf("tenants not skewed: %v", perTenant)
		}
	}
}

func TestTenantIDsAreEscaped(t *testing.T) {
	odd := "org \"q\\uote\"\t"
	g := New(Config{Seed: 4, Tenants: []string{odd, ""}})
	for range 50 {
		_, value, _ := g.Next(start)
		var ev schemas.Event
		if err := schemas.Decode(value, &ev); err != nil {
			t.Fatalf("%v\n%s", err, value)
		}
		if ev.OrgID != odd {
			t.Fatalf("org_id %q, want %q", ev.OrgID, odd)
		}
	}
}

func BenchmarkAppendNext(b *testing.B) {
	g := New(Config{Seed: 5, MalformedEvery: 1000})
	var buf []byte
	var records, size int64
	ts := start
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = g.AppendNext(buf[:0], ts)
		ts = ts.Add(time.Millisecond)
		records++
		size += int64(len(buf))
	}
	b.SetBytes(size / records)
}
