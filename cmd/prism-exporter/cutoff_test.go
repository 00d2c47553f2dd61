package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/futureagi/prism-exporter/schemas/gen"
)

// TestFaultNewOnlyCutoffSurvivesRestarts: a tenants file written like the
// README's example (no connected_at, no backfill), under traffic, through a
// kill -9 and restart, a SIGTERM with two minutes down, and a scale from one
// member to three and back. Each tenant's cut-off is fixed once, in the
// integrations topic, when its entry is first imported: every record from it
// on reaches Datadog (windows exact), and none from before it.
func TestFaultNewOnlyCutoffSurvivesRestarts(t *testing.T) {
	needRealBroker(t)
	e := newEnv(t, faultTenants())
	e.newOnly = true
	e.writeTenants()
	traffic := e.startTraffic(800, 0, 71)
	time.Sleep(3 * time.Second) // history: before any member imported the file

	m := e.startMember("first")
	e.readCutoffs(60 * time.Second)
	time.Sleep(8 * time.Second)
	m.kill()
	m = e.startMember("after-kill")
	time.Sleep(8 * time.Second)
	m.terminate(30 * time.Second)
	down := 2 * time.Minute
	if testing.Short() {
		down = 10 * time.Second
	}
	time.Sleep(down)
	a := e.startMember("after-downtime")
	time.Sleep(8 * time.Second)
	b := e.startMember("scale-b")
	c := e.startMember("scale-c")
	time.Sleep(10 * time.Second)
	b.terminate(30 * time.Second)
	c.terminate(30 * time.Second)
	time.Sleep(5 * time.Second)
	recs := traffic.finish()
	e.waitCommitted(3 * time.Minute)
	a.terminate(30 * time.Second)

	before := 0
	for _, r := range recs {
		if !r.bad && r.ev.Timestamp.Before(e.cutoff[r.ev.OrgID]) {
			before++
		}
	}
	if before == 0 {
		t.Fatal("no record before the cut-off: the test shows nothing about history")
	}
	dups := e.checkDatadog(recs, false)
	t.Logf("new-only cut-off through kill -9, 2m down and 1->3->1: %d records, %d before the cut-off (not exported), %d duplicate logs",
		len(recs), before, dups)

	// The cut-off did not move: read again, it is the one first stored.
	first := e.cutoff
	e.readCutoffs(10 * time.Second)
	for id, at := range first {
		if !e.cutoff[id].Equal(at) {
			t.Errorf("tenant %s: cut-off moved from %v to %v", id, at, e.cutoff[id])
		}
	}
}

// TestIntegrationNewGroupStartsWhereIntegrationsBegin: a brand-new consumer
// group on a topic holding a day of history that no integration exports
// does not decode it: each partition starts at the first offset whose
// timestamp reaches the earliest cut-off (offsets-for-times).
func TestIntegrationNewGroupStartsWhereIntegrationsBegin(t *testing.T) {
	e := newEnv(t, faultTenants()[:2])
	e.newOnly = true
	e.writeTenants()

	// 6,000 records a day old, produced with their old timestamps.
	ids := []string{e.tenants[0].ID, e.tenants[1].ID}
	g := gen.New(gen.Config{Tenants: ids, Seed: 5})
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.DefaultProduceTopic(e.topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-24 * time.Hour)
	var recs []*kgo.Record
	for i := 0; i < 6000; i++ {
		ts := old.Add(time.Duration(i) * time.Millisecond)
		_, v, _ := g.Next(ts)
		recs = append(recs, &kgo.Record{Partition: int32(i % partitions), Value: v, Timestamp: ts})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	stop := e.runInProcess(e.settings())
	e.waitRunning(30 * time.Second)
	e.readCutoffs(30 * time.Second)
	live := e.startTraffic(500, 0, 9)
	time.Sleep(3 * time.Second)
	sent := live.finish()
	e.waitCommitted(time.Minute)
	consumed := e.run.Load().proc.Status().Consumed
	stop()
	if consumed >= int64(len(sent))+6000 || consumed == 0 {
		t.Errorf("consumed %d records: the %d old ones were read (live: %d)", consumed, 6000, len(sent))
	}
	e.checkDatadog(sent, true)
}

// waitRunning waits for the in-process exporter to be wired.
func (e *env) waitRunning(timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for e.run.Load() == nil {
		if time.Now().After(deadline) {
			e.t.Fatalf("exporter not running after %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIntegrationSigtermAtAnyMoment: a SIGTERM at any point of a start
// (creating topics, reading the integrations topic, importing the tenants
// file, joining the group) or of a run ends the process with exit 0 within
// the drain timeout. The delays count from the process's first log line:
// before the Go runtime has reached main (its first milliseconds), a signal
// ends any Go program by the signal's default action, and nothing has been
// read or committed yet.
func TestIntegrationSigtermAtAnyMoment(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the exporter a dozen times")
	}
	e := newEnv(t, faultTenants()[:2])
	e.newOnly = true
	e.writeTenants()
	traffic := e.startTraffic(300, 20, 3)
	defer traffic.finish()
	for _, after := range []time.Duration{0, 5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, time.Second, 3 * time.Second} {
		m := e.startMember("sigterm-" + after.String())
		m.waitLogged(5 * time.Second)
		time.Sleep(after)
		// The test env's drain timeout is 5 s; a second more for the
		// process to leave the group and exit.
		if took := m.terminate(6 * time.Second); took > 6*time.Second {
			t.Errorf("SIGTERM %s after start: exit took %s", after, took)
		}
	}
}

// waitLogged waits for the member's first log line.
func (m *member) waitLogged(timeout time.Duration) {
	m.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if fi, err := os.Stat(m.log); err == nil && fi.Size() > 0 {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("%s wrote nothing in %s", m.name, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}
