package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap/zaptest"

	"github.com/futureagi/prism-exporter/sink"
)

const jobsTopic = "backfills"

// testClock is the wall clock moved by a shared offset, so that a test
// can end a lease without waiting for it.
type testClock struct{ ahead atomic.Int64 }

func (c *testClock) now() time.Time       { return time.Now().Add(time.Duration(c.ahead.Load())) }
func (c *testClock) move(d time.Duration) { c.ahead.Add(int64(d)) }

// startJobs runs a Jobs on topic until the test ends and returns it once
// it has read the topic to its end.
func startJobs(t *testing.T, brokers []string, topic string, clock *testClock) *Jobs {
	t.Helper()
	cfg := JobsConfig{Topic: topic, Brokers: brokers, Create: true, Logger: zaptest.NewLogger(t)}
	if clock != nil {
		cfg.Clock = clock.now
	}
	j, err := NewJobs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- j.Run(ctx, func() { close(ready) }) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("jobs stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("jobs not caught up in 20s")
	}
	return j
}

func testIntegration(id string) Integration {
	return Integration{ID: id, OrgID: "org_" + id, ManagedBy: ManagedByAPI}
}

// state is what a replica holds of every job, for comparing replicas.
func state(j *Jobs) string {
	b, _ := json.Marshal(j.List())
	return string(b)
}

// exact reports whether every key's last record holds its state.
func exact(j *Jobs) bool {
	j.mu.RLock()
	defer j.mu.RUnlock()
	for _, e := range j.byID {
		if !e.exact {
			return false
		}
	}
	return true
}

// compacted copies the last record of every key of topic into a new topic,
// as log compaction would leave it, and returns its name.
func compacted(t *testing.T, brokers []string, topic string) string {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	last := map[string]kafka.Message{}
	var order []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		m, err := r.ReadMessage(ctx)
		cancel()
		if err != nil {
			break
		}
		if _, seen := last[string(m.Key)]; !seen {
			order = append(order, string(m.Key))
		}
		last[string(m.Key)] = m
	}
	name := topic + ".compacted"
	tp := newTopic(name, "TEST", brokers, nil, nil, true, nil, nil, nil)
	if err := EnsureCompactedTopic(context.Background(), tp.client, name, "TEST", nil); err != nil {
		t.Fatal(err)
	}
	var recs []kafka.Record
	for _, k := range order {
		recs = append(recs, record(k, last[k].Value))
	}
	if _, err := tp.produce(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestJobsClaimRace: two replicas' runners claim the same pending job at the
// same moment, 50 times over: exactly one wins each time, both replicas
// name the same owner, and a replica reading the compacted topic folds the
// same jobs.
func TestJobsClaimRace(t *testing.T) {
	brokers := newCluster(t)
	a := startJobs(t, brokers, jobsTopic, nil)
	b := startJobs(t, brokers, jobsTopic, nil)
	ctx := context.Background()
	from := time.Now().Add(-2 * time.Hour)
	for round := range 50 {
		in := testIntegration(fmt.Sprintf("dd_%02d", round))
		job, err := a.Start(ctx, in, from, from.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the other replica sees the job", func() bool { g, ok := b.Get(in.ID); return ok && g.ID == job.ID })
		var wg sync.WaitGroup
		start := make(chan struct{})
		type result struct {
			job Job
			ok  bool
			err error
		}
		res := make([]result, 2)
		for i, j := range []*Jobs{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				g, ok, err := j.Claim(ctx, fmt.Sprintf("member-%d", i), time.Minute)
				res[i] = result{g, ok, err}
			}()
		}
		close(start)
		wg.Wait()
		winners := 0
		winner := ""
		for _, r := range res {
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.ok {
				winners++
				winner = r.job.Owner
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d claims won", round, winners)
		}
		eventually(t, "both replicas name the winner", func() bool {
			ga, _ := a.Get(in.ID)
			gb, _ := b.Get(in.ID)
			return ga.Owner == winner && gb.Owner == winner && ga.State == JobRunning && gb.State == JobRunning
		})
		// The loser's runner cannot write as the owner.
		loser, loserJobs := "member-0", a
		if winner == "member-0" {
			loser, loserJobs = "member-1", b
		}
		lj, _ := loserJobs.Get(in.ID)
		if _, err := loserJobs.Progress(ctx, loser, lj, time.Minute); !errors.Is(err, ErrLostLease) {
			t.Fatalf("round %d: the loser's progress: %v", round, err)
		}
	}
	eventually(t, "every key's last record holds its state", func() bool { return exact(a) && exact(b) })
	eventually(t, "the replicas agree", func() bool { return state(a) == state(b) })
	c := startJobs(t, brokers, compacted(t, brokers, jobsTopic), nil)
	if state(c) != state(a) {
		t.Fatalf("the compacted topic folds to\n%s\nnot\n%s", state(c), state(a))
	}
}

// TestJobsLeaseExpiryTakeOver: while its owner's lease lasts nobody else
// takes a job; once it has ended another member does, from the positions
// the owner last recorded, and the old owner learns it lost the job.
func TestJobsLeaseExpiryTakeOver(t *testing.T) {
	brokers := newCluster(t)
	clock := &testClock{}
	a := startJobs(t, brokers, jobsTopic, clock)
	b := startJobs(t, brokers, jobsTopic, clock)
	ctx := context.Background()
	in := testIntegration("dd_1")
	if _, err := a.Start(ctx, in, clock.now().Add(-3*time.Hour), clock.now()); err != nil {
		t.Fatal(err)
	}
	job, ok, err := a.Claim(ctx, "m-a", 10*time.Second)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if job.Percent() != 0 {
		t.Errorf("percent before the ranges are known: %v", job.Percent())
	}
	job.Partitions = map[int32]PartitionProgress{0: {Start: 0, End: 100, Next: 40}, 1: {Start: 10, End: 60, Next: 60}}
	job.Matched, job.LogsSent, job.LogsTooOld = 70, 50, 20
	job, err = a.Progress(ctx, "m-a", job, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if job.Total != 150 || job.Scanned != 90 || job.Percent() != 60 {
		t.Fatalf("after progress: total %d scanned %d percent %v", job.Total, job.Scanned, job.Percent())
	}
	eventually(t, "b reads the progress", func() bool { g, _ := b.Get(in.ID); return g.Scanned == 90 })
	if _, ok, _ := b.Claim(ctx, "m-b", 10*time.Second); ok {
		t.Fatal("b took a job whose lease has not ended")
	}
	clock.move(11 * time.Second)
	got, ok, err := b.Claim(ctx, "m-b", 10*time.Second)
	if err != nil || !ok {
		t.Fatalf("claim after the lease ended: %v %v", ok, err)
	}
	if got.ID != job.ID || got.Owner != "m-b" || got.Token != job.Token || got.LogsSent != 50 ||
		got.Partitions[0] != job.Partitions[0] || got.Partitions[1] != job.Partitions[1] {
		t.Fatalf("taken over as %+v, want the positions of %+v", got, job)
	}
	eventually(t, "a reads the take-over", func() bool { g, _ := a.Get(in.ID); return g.Owner == "m-b" })
	if _, err := a.Progress(ctx, "m-a", job, 10*time.Second); !errors.Is(err, ErrLostLease) {
		t.Fatalf("the old owner's progress: %v", err)
	}
	if err := a.Finish(ctx, "m-a", job, JobDone, ""); !errors.Is(err, ErrLostLease) {
		t.Fatalf("the old owner's finish: %v", err)
	}
	// The new owner finishes it.
	got.Partitions[0] = PartitionProgress{Start: 0, End: 100, Next: 100}
	if err := b.Finish(ctx, "m-b", got, JobDone, ""); err != nil {
		t.Fatal(err)
	}
	done, _ := b.Get(in.ID)
	if done.State != JobDone || done.Percent() != 100 || done.FinishedAt.IsZero() || done.Owner != "m-b" {
		t.Fatalf("finished: %+v", done)
	}
}

// TestJobsCancelBeatsLateProgress: a cancel applies whatever its writer
// had read, and a progress record its owner wrote from a view before the
// cancel does not bring the job back, on any replica, nor once the topic
// is compacted.
func TestJobsCancelBeatsLateProgress(t *testing.T) {
	brokers := newCluster(t)
	a := startJobs(t, brokers, jobsTopic, nil)
	b := startJobs(t, brokers, jobsTopic, nil)
	ctx := context.Background()
	in := testIntegration("dd_1")
	if _, err := a.Start(ctx, in, time.Now().Add(-time.Hour), time.Now()); err != nil {
		t.Fatal(err)
	}
	job, ok, err := a.Claim(ctx, "m-a", time.Minute)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	job.Partitions = map[int32]PartitionProgress{0: {Start: 0, End: 10, Next: 5}}
	if job, err = a.Progress(ctx, "m-a", job, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, seq, _ := a.current(in.ID) // the runner's view before the cancel
	eventually(t, "b reads the progress", func() bool { g, _ := b.Get(in.ID); return g.Scanned == 5 })
	cancelled, err := b.Cancel(ctx, in.ID)
	if err != nil || cancelled.State != JobCancelled || cancelled.Scanned != 5 {
		t.Fatalf("cancel: %+v %v", cancelled, err)
	}
	eventually(t, "a reads the cancel", func() bool { g, _ := a.Get(in.ID); return g.State == JobCancelled })

	// The runner's progress, written from its view before the cancel.
	late := job
	late.Partitions = map[int32]PartitionProgress{0: {Start: 0, End: 10, Next: 9}}
	late.tally()
	late.LeaseUntil = time.Now().Add(time.Minute)
	if _, accepted, err := a.write(ctx, jobRecord{Job: late, Op: opProgress, Member: "m-a", Base: seq}); err != nil || accepted {
		t.Fatalf("a late progress record: accepted %v, %v", accepted, err)
	}
	// And through the API: the owner is told it lost the job.
	if _, err := a.Progress(ctx, "m-a", late, time.Minute); !errors.Is(err, ErrLostLease) {
		t.Fatalf("progress after the cancel: %v", err)
	}
	if _, ok, _ := b.Claim(ctx, "m-b", time.Minute); ok {
		t.Fatal("a cancelled job was claimed")
	}
	for _, j := range []*Jobs{a, b} {
		if g, _ := j.Get(in.ID); g.State != JobCancelled || g.Scanned != 5 {
			t.Fatalf("after the late progress: %+v", g)
		}
	}
	if _, err := b.Cancel(ctx, in.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cancel of a cancelled job: %v", err)
	}
	// The late record was the key's last: the state is written again, so
	// that a compacted topic folds to it too.
	eventually(t, "the state is written again after the refused record", func() bool { return exact(a) && exact(b) })
	c := startJobs(t, brokers, compacted(t, brokers, jobsTopic), nil)
	if g, _ := c.Get(in.ID); g.State != JobCancelled || state(c) != state(a) {
		t.Fatalf("the compacted topic folds to %s, not %s", state(c), state(a))
	}
}

// TestJobsCancelRacesProgress: a runner writing progress as fast as it can
// and a cancel at the same time: the cancel wins, and the runner is told.
func TestJobsCancelRacesProgress(t *testing.T) {
	brokers := newCluster(t)
	a := startJobs(t, brokers, jobsTopic, nil)
	b := startJobs(t, brokers, jobsTopic, nil)
	ctx := context.Background()
	for round := range 10 {
		in := testIntegration(fmt.Sprintf("dd_%d", round))
		if _, err := a.Start(ctx, in, time.Now().Add(-time.Hour), time.Now()); err != nil {
			t.Fatal(err)
		}
		job, ok, err := a.Claim(ctx, "m-a", time.Minute)
		if err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		eventually(t, "b sees the claim", func() bool { g, _ := b.Get(in.ID); return g.State == JobRunning })
		runner := make(chan error, 1)
		go func() {
			for n := int64(1); ; n++ {
				job.Matched = n
				if _, err := a.Progress(ctx, "m-a", job, time.Minute); err != nil {
					runner <- err
					return
				}
			}
		}()
		time.Sleep(20 * time.Millisecond)
		if _, err := b.Cancel(ctx, in.ID); err != nil {
			t.Fatalf("round %d: cancel: %v", round, err)
		}
		select {
		case err := <-runner:
			if !errors.Is(err, ErrLostLease) {
				t.Fatalf("round %d: the runner stopped with %v", round, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the runner was not told", round)
		}
		for _, j := range []*Jobs{a, b} {
			eventually(t, "the job stays cancelled", func() bool { g, _ := j.Get(in.ID); return g.State == JobCancelled })
		}
	}
	eventually(t, "the replicas agree", func() bool { return exact(a) && exact(b) && state(a) == state(b) })
}

// TestJobsReplacement: one job per integration; a new request while one is
// active is refused, a new one replaces an ended one, and the old job's
// runner can no longer write.
func TestJobsReplacement(t *testing.T) {
	brokers := newCluster(t)
	a := startJobs(t, brokers, jobsTopic, nil)
	ctx := context.Background()
	in := testIntegration("dd_1")
	from, until := time.Now().Add(-time.Hour), time.Now()
	if _, err := a.Start(ctx, in, until, from); !errors.Is(err, ErrEmptyRange) {
		t.Fatalf("an empty range: %v", err)
	}
	first, err := a.Start(ctx, in, from, until)
	if err != nil {
		t.Fatal(err)
	}
	if first.Token == 0 || first.Token >= 1<<40 || first.State != JobPending {
		t.Fatalf("new job: %+v", first)
	}
	if _, err := a.Start(ctx, in, from, until); !errors.Is(err, ErrBackfillRunning) {
		t.Fatalf("a second job while one is pending: %v", err)
	}
	job, _, _ := a.Claim(ctx, "m-a", time.Minute)
	if _, err := a.Start(ctx, in, from, until); !errors.Is(err, ErrBackfillRunning) {
		t.Fatalf("a second job while one runs: %v", err)
	}
	if _, err := a.Cancel(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	second, err := a.Start(ctx, in, from.Add(-time.Hour), until)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID == first.ID || second.Token == first.Token || second.State != JobPending || second.Owner != "" || second.Partitions != nil {
		t.Fatalf("the replacement: %+v", second)
	}
	if _, err := a.Progress(ctx, "m-a", job, time.Minute); !errors.Is(err, ErrLostLease) {
		t.Fatalf("the replaced job's runner: %v", err)
	}
	// A late claim record of the old job changes nothing.
	old := job
	old.Owner = "m-b"
	if _, accepted, _ := a.write(ctx, jobRecord{Job: old, Op: opClaim, Member: "m-b", Base: 1 << 20}); accepted {
		t.Fatal("a claim of the replaced job was taken")
	}
	if g, _ := a.Get(in.ID); g.ID != second.ID || g.State != JobPending {
		t.Fatalf("after the late claim: %+v", g)
	}
	// A finished job is replaced without a cancel.
	job, ok, _ := a.Claim(ctx, "m-a", time.Minute)
	if !ok || job.ID != second.ID {
		t.Fatalf("claim of the replacement: %v %+v", ok, job)
	}
	if err := a.Finish(ctx, "m-a", job, JobFailed, "Datadog refused the key"); err != nil {
		t.Fatal(err)
	}
	if g, _ := a.Get(in.ID); g.State != JobFailed || g.Error != "Datadog refused the key" {
		t.Fatalf("failed: %+v", g)
	}
	if _, err := a.Cancel(ctx, in.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cancel of an ended job: %v", err)
	}
	third, err := a.Start(ctx, in, from, until)
	if err != nil || third.ID == second.ID {
		t.Fatalf("a job after a failed one: %+v %v", third, err)
	}
}

// TestJobsFold holds the fold's rules one by one, without Kafka.
func TestJobsFold(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	running := Job{ID: "bf_1", IntegrationID: "dd_1", State: JobRunning, Owner: "m-a", LeaseUntil: t0.Add(time.Minute)}
	prev := &jobEntry{job: running, seq: 4, exact: true}
	claim := func(member string, at time.Time, base int64) jobRecord {
		j := running
		j.Owner, j.LeaseUntil = member, at.Add(time.Minute)
		return jobRecord{Job: j, Op: opClaim, Member: member, WrittenAt: at, Base: base}
	}
	cases := []struct {
		name string
		rec  jobRecord
		want bool
	}{
		{"claim during another's lease", claim("m-b", t0.Add(30*time.Second), 4), false},
		{"claim at the lease's end", claim("m-b", t0.Add(time.Minute), 4), false},
		{"claim after the lease", claim("m-b", t0.Add(61*time.Second), 4), true},
		{"claim after the lease, from an old view", claim("m-b", t0.Add(61*time.Second), 3), false},
		{"renewal by the owner", claim("m-a", t0.Add(30*time.Second), 4), true},
		{"progress by a non-owner", jobRecord{Job: Job{ID: "bf_1", IntegrationID: "dd_1", State: JobRunning, Owner: "m-b"}, Op: opProgress, Member: "m-b", WrittenAt: t0.Add(2 * time.Minute), Base: 4}, false},
		{"progress of another job", jobRecord{Job: Job{ID: "bf_0", IntegrationID: "dd_1", State: JobRunning, Owner: "m-a"}, Op: opProgress, Member: "m-a", WrittenAt: t0, Base: 4}, false},
		{"finish that leaves it running", jobRecord{Job: running, Op: opFinish, Member: "m-a", WrittenAt: t0, Base: 4}, false},
		{"start while running", jobRecord{Job: Job{ID: "bf_2", IntegrationID: "dd_1", State: JobPending}, Op: opStart, Base: 4}, false},
		{"cancel from an old view", jobRecord{Job: Job{ID: "bf_1", IntegrationID: "dd_1", State: JobCancelled}, Op: opCancel, Base: 1}, true},
		{"cancel of another job", jobRecord{Job: Job{ID: "bf_0", IntegrationID: "dd_1", State: JobCancelled}, Op: opCancel, Base: 4}, false},
		{"unknown operation", jobRecord{Job: running, Op: "take", Base: 4}, false},
	}
	for _, c := range cases {
		next, why := decide(prev, c.rec)
		if (next != nil) != c.want {
			t.Errorf("%s: taken %v (%s), want %v", c.name, next != nil, why, c.want)
		}
	}
	// A cancel keeps the runner's latest positions, whatever its writer read.
	prev.job.Partitions = map[int32]PartitionProgress{0: {Start: 0, End: 10, Next: 7}}
	next, _ := decide(prev, jobRecord{Job: Job{ID: "bf_1", IntegrationID: "dd_1", State: JobCancelled}, Op: opCancel, Base: 1})
	if next.job.State != JobCancelled || next.job.Partitions[0].Next != 7 || next.job.Owner != "m-a" || next.exact || next.seq != 5 {
		t.Errorf("cancel: %+v", next)
	}
	// Once ended, no runner record applies.
	ended := &jobEntry{job: next.job, seq: 5, exact: true}
	for _, op := range []string{opClaim, opProgress, opFinish} {
		r := claim("m-a", t0, 5)
		r.Op = op
		if op == opFinish {
			r.Job.State = JobDone
		}
		if n, _ := decide(ended, r); n != nil {
			t.Errorf("%s of a cancelled job taken", op)
		}
	}
	// A restate of the state as it is changes nothing.
	if n, _ := decide(ended, jobRecord{Job: ended.job, Op: opRestate, Base: 2}); n == nil || n.seq != 5 || !n.exact {
		t.Errorf("restate: %+v", n)
	}
}

// TestServiceBackfillAtCreateAndDelete: an integration created with all or
// range gets its job, ending at the cut-off where its live export (which
// keeps its cut-off) begins; deleting it cancels the job, and its runner
// learns it.
func TestServiceBackfillAtCreateAndDelete(t *testing.T) {
	brokers := newCluster(t)
	kr, err := ParseKeyring(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	jobs := startJobs(t, brokers, jobsTopic, nil)
	svc := NewService(startStore(t, brokers), kr, nil, zaptest.NewLogger(t))
	if _, err := svc.Create(context.Background(), New{OrgID: "org_x", APIKey: "k0123456789", SyncInterval: time.Minute, Historical: Historical{Mode: All}}); !errors.Is(err, ErrBackfillOff) {
		t.Fatalf("history without jobs: %v", err)
	}
	svc.SetJobs(jobs)
	ctx := context.Background()

	all, err := svc.Create(ctx, New{OrgID: "org_a", Site: sink.SiteUS1, APIKey: "k0123456789", SyncInterval: time.Minute, Historical: Historical{Mode: All}})
	if err != nil {
		t.Fatal(err)
	}
	job, ok := jobs.Get(all.ID)
	if !ok || job.State != JobPending || job.OrgID != "org_a" || !job.Until.Equal(all.ConnectedAt) || !job.From.Equal(all.ConnectedAt.Add(-LogsMaxAge)) {
		t.Fatalf("job of an all integration: %+v (cut-off %v)", job, all.ConnectedAt)
	}
	from := time.Now().Add(-5 * time.Hour).UTC().Truncate(time.Second)
	to := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	rng, err := svc.Create(ctx, New{OrgID: "org_b", Site: sink.SiteUS1, APIKey: "k0123456789", SyncInterval: time.Minute, Historical: Historical{Mode: Range, From: &from, To: &to}})
	if err != nil {
		t.Fatal(err)
	}
	if job, _ := jobs.Get(rng.ID); !job.From.Equal(from) || !job.Until.Equal(rng.ConnectedAt) {
		t.Fatalf("job of a range integration: %+v (cut-off %v)", job, rng.ConnectedAt)
	}
	newOnly, err := svc.Create(ctx, New{OrgID: "org_c", Site: sink.SiteUS1, APIKey: "k0123456789", SyncInterval: time.Minute, Historical: Historical{Mode: NewOnly}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := jobs.Get(newOnly.ID); ok {
		t.Fatal("a new_only integration got a job")
	}
	// The live export of an integration with history keeps its cut-off.
	if err := svc.SyncFile(ctx, "/f", []sink.Tenant{{ID: "org_f", Site: sink.SiteUS1, APIKey: "key-org_f-0123456789", SyncInterval: time.Minute, Backfill: true}}, true); err != nil {
		t.Fatal(err)
	}
	for _, tn := range svc.Tenants() {
		switch tn.ID {
		case "org_a", "org_b":
			if tn.Backfill || tn.ConnectedAt.IsZero() {
				t.Errorf("%s: live export without its cut-off: %+v", tn.ID, tn)
			}
		case "org_f":
			if !tn.Backfill {
				t.Errorf("the tenants file's backfill: true no longer lifts the cut-off")
			}
		}
	}
	if _, ok := jobs.Get(FileID("org_f")); ok {
		t.Error("a tenants-file entry got a job")
	}

	running, ok, err := jobs.Claim(ctx, "m-a", time.Minute)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if err := svc.Delete(ctx, running.IntegrationID); err != nil {
		t.Fatal(err)
	}
	if g, _ := jobs.Get(running.IntegrationID); g.State != JobCancelled {
		t.Fatalf("the deleted integration's job: %+v", g)
	}
	if _, err := jobs.Progress(ctx, "m-a", running, time.Minute); !errors.Is(err, ErrLostLease) {
		t.Fatalf("the runner of a deleted integration's job: %v", err)
	}
	// A pending job is cancelled too.
	other := all.ID
	if other == running.IntegrationID {
		other = rng.ID
	}
	if err := svc.Delete(ctx, other); err != nil {
		t.Fatal(err)
	}
	if g, _ := jobs.Get(other); g.State != JobCancelled {
		t.Fatalf("the deleted integration's pending job: %+v", g)
	}
	if _, ok, _ := jobs.Claim(ctx, "m-a", time.Minute); ok {
		t.Fatal("a job of a deleted integration was claimed")
	}
}
