package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/futureagi/prism-exporter/sink/ddfake"
)

// The tests allow 5 s of lateness (newEnv): under a loaded machine a produced
// record can take over a second to become visible, and a record that arrives
// after its window was closed by the wall clock, in a window this partition
// never saw, is exported as a log only (counted as a late metric drop).

func faultTenants() []testTenant {
	return []testTenant{
		{ID: "org_3f9a1c", Site: "US1", APIKey: "fault-3f9a1c-000000000000000000001", Interval: 2 * time.Second},
		{ID: "org_77b2e0", Site: "EU1", APIKey: "fault-77b2e0-000000000000000000002", Interval: 5 * time.Second},
		{ID: "org_5a1e5", Site: "AP1", APIKey: "fault-5a1e5-0000000000000000000003", Interval: 3 * time.Second},
		{ID: "org_c0ffee", Site: "US5", APIKey: "fault-c0ffee-000000000000000000004", Interval: 4 * time.Second},
	}
}

// TestFaultKill9: 20 kill -9 restarts under load. Every record's log arrives
// at least once in its own account, every window's totals are exact (a replay
// never overwrites a full total with a partial one), the dead-letter topic is
// complete, and the committed offsets reach the end.
func TestFaultKill9(t *testing.T) {
	needRealBroker(t)
	e := newEnv(t, faultTenants())
	traffic := e.startTraffic(1000, 150, 21)
	rng := rand.New(rand.NewPCG(21, 1))
	kills := 20
	if os.Getenv("PRISM_KILLS") != "" {
		kills, _ = strconv.Atoi(os.Getenv("PRISM_KILLS"))
	}
	m := e.startMember("m0")
	for i := 1; i <= kills; i++ {
		// A killed member holds its partitions for the session timeout (6 s
		// here); kill the next one a little after the group has moved on.
		time.Sleep(time.Duration(6500+rng.IntN(3000)) * time.Millisecond)
		m.kill()
		m = e.startMember(fmt.Sprintf("m%d", i))
	}
	recs := traffic.finish()
	start := time.Now()
	e.waitCommitted(2 * time.Minute)
	catchUp := time.Since(start)
	t.Logf("last member: %s", m.lateCounts())
	m.terminate(30 * time.Second)
	e.checkDeadLetters(recs)
	dups := e.checkDatadog(recs, false)
	t.Logf("kill -9 x%d over %d records: %d duplicate logs (%.1f per crash), caught up %s after the traffic stopped",
		kills, len(recs), dups, float64(dups)/float64(kills), catchUp.Round(time.Millisecond))
}

// TestFaultScaleOutAndIn: 1 -> 3 -> 1 members under load, records spread over
// partitions without regard to tenant. Each partition moves with its commit
// point; no window is lost or counted twice.
func TestFaultScaleOutAndIn(t *testing.T) {
	needRealBroker(t)
	e := newEnv(t, faultTenants())
	traffic := e.startTraffic(1500, 200, 31)
	a := e.startMember("a")
	time.Sleep(8 * time.Second)
	b := e.startMember("b")
	c := e.startMember("c")
	time.Sleep(12 * time.Second)
	tb := b.terminate(30 * time.Second)
	tc := c.terminate(30 * time.Second)
	time.Sleep(8 * time.Second)
	recs := traffic.finish()
	e.waitCommitted(2 * time.Minute)
	t.Logf("member a: %s", a.lateCounts())
	ta := a.terminate(30 * time.Second)
	e.checkDeadLetters(recs)
	dups := e.checkDatadog(recs, false)
	t.Logf("1->3->1 over %d records: %d duplicate logs; SIGTERM exits took %s, %s, %s",
		len(recs), dups, tb.Round(time.Millisecond), tc.Round(time.Millisecond), ta.Round(time.Millisecond))
}

// TestFaultDatadogStorm: a third of Datadog's answers are 429 (with
// rate-limit headers) or 5xx for a while. Delivery is delayed, nothing is lost
// or counted twice.
func TestFaultDatadogStorm(t *testing.T) {
	needRealBroker(t)
	e := newEnv(t, faultTenants())
	traffic := e.startTraffic(1500, 0, 41)
	m := e.startMember("storm")
	time.Sleep(3 * time.Second)
	e.dd.SetFault(ddfake.Fault{Status: 429, Probability: 0.2, For: 20 * time.Second, RetryAfter: time.Second})
	e.dd.SetFault(ddfake.Fault{Status: 503, Probability: 0.15, For: 20 * time.Second})
	e.dd.SetFault(ddfake.Fault{Status: 500, Probability: 0.1, For: 20 * time.Second})
	time.Sleep(22 * time.Second)
	recs := traffic.finish()
	e.waitCommitted(2 * time.Minute)
	t.Logf("member: %s", m.lateCounts())
	m.terminate(30 * time.Second)
	st := e.dd.Stats()
	if st.ByStatus[429] == 0 || st.ByStatus[503] == 0 {
		t.Fatalf("the storm did not happen: %v", st.ByStatus)
	}
	e.checkDatadog(recs, false)
	t.Logf("storm: answers %v", st.ByStatus)
}

// TestFaultDatadogDown: Datadog drops every connection for a minute. Lag
// grows, nothing is lost, and delivery catches up afterwards.
func TestFaultDatadogDown(t *testing.T) {
	needRealBroker(t)
	e := newEnv(t, faultTenants())
	traffic := e.startTraffic(1000, 0, 51)
	m := e.startMember("down")
	time.Sleep(3 * time.Second)
	e.dd.SetFault(ddfake.Fault{Drop: true, For: time.Minute})
	time.Sleep(time.Minute)
	during := e.committed()
	end := e.endOffsets()
	var behind int64
	for p, off := range end {
		behind += off - during[p]
	}
	recs := traffic.finish()
	start := time.Now()
	e.waitCommitted(3 * time.Minute)
	catchUp := time.Since(start)
	t.Logf("member: %s", m.lateCounts())
	m.terminate(30 * time.Second)
	if behind == 0 {
		t.Fatalf("commits kept up while Datadog was down: nothing held back")
	}
	e.checkDatadog(recs, false)
	t.Logf("Datadog down 1m: %d records uncommitted at the end of the outage, caught up %s after the traffic stopped", behind, catchUp.Round(time.Millisecond))
}

// TestFaultRevokedKey: one tenant's key is revoked mid-run. That tenant goes
// to Error; the others keep flowing, exact, and the commits reach the end.
func TestFaultRevokedKey(t *testing.T) {
	needRealBroker(t)
	tenants := faultTenants()
	e := newEnv(t, tenants)
	traffic := e.startTraffic(1000, 0, 61)
	m := e.startMember("revoke")
	time.Sleep(12 * time.Second) // a few of its 5 s windows reach Datadog first
	revoked := tenants[1]
	e.dd.RevokeAPIKey(revoked.APIKey)
	time.Sleep(10 * time.Second)
	recs := traffic.finish()
	e.waitCommitted(2 * time.Minute)
	t.Logf("member: %s", m.lateCounts())
	m.terminate(30 * time.Second)

	var others []sent
	for _, r := range recs {
		if r.bad || r.ev.OrgID != revoked.ID {
			others = append(others, r)
		}
	}
	// Check the other tenants alone: the revoked one's account is incomplete
	// by design.
	e.tenants = append(tenants[:1:1], tenants[2:]...)
	e.checkDatadog(others, false)
	if n := e.dd.LogCount(revoked.ID); n == 0 {
		t.Errorf("the revoked tenant received nothing before its key was revoked")
	}
	if st := e.dd.Stats(); st.ByStatus[403] == 0 {
		t.Errorf("Datadog never refused the revoked key: %v", st.ByStatus)
	}
}

// TestFaultLateRecordsAcrossKill9: 3-second windows, a second stream of
// records 12 s late (past the allowed lateness, so their windows closed
// long before, and more than the first stage's retained windows), and a
// kill -9 in between. The late records reach their windows through the
// partials topic, so every window total is exact, including those closed
// before the crash.
func TestFaultLateRecordsAcrossKill9(t *testing.T) {
	needRealBroker(t)
	e := newEnv(t, []testTenant{
		{ID: "org_1a7e0", Site: "US1", APIKey: "late-1a7e0-00000000000000000000001", Interval: 3 * time.Second},
		{ID: "org_2b8f1", Site: "EU1", APIKey: "late-2b8f1-00000000000000000000002", Interval: 3 * time.Second},
	})
	onTime := e.startTraffic(400, 0, 51)
	late := e.startTrafficAt(100, 0, 52, 12*time.Second)
	m := e.startMember("m0")
	time.Sleep(15 * time.Second)
	m.kill()
	m = e.startMember("m1")
	time.Sleep(15 * time.Second)
	recs := append(onTime.finish(), late.finish()...)
	e.waitCommitted(2 * time.Minute)
	t.Logf("last member: %s", m.lateCounts())
	m.terminate(30 * time.Second)
	dups := e.checkDatadog(recs, false)
	t.Logf("late records across a kill -9: %d records (%d late), %d duplicate logs", len(recs), len(recs)/5, dups)
}
